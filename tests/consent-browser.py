#!/usr/bin/env python3
"""Headless "browser" for mcp-oauth's tests that, unlike tests/browser.sh, clicks the
approve button of a consent page: a user in front of FastMCP's OAuth proxy, whose own
consent page (an HTML form with a CSRF token, bound to a cookie) comes before the
upstream identity provider. Set BROWSER=<this file>; Python 3 standard library only.

    tests/consent-browser.py <authorization-url>

Returns at once (the client under test may or may not wait); the work goes on in a
detached child with its output closed. It follows redirects with a private cookie jar,
loopback http only (every hop is checked), and on a page with a POST form that has a
submit button named ``action`` (FastMCP's "Allow"/"Deny"), submits the form with every
field it carries and ``action=approve``, as the user's click would, at most 3 times.

Environment:
  BROWSER_LOG         append what happened: one "open" line (tests count them), each hop
                      with code/state/txn_id values redacted, a "consent" line per form
                      submitted, and one "done" line with the final status and URL.
  BROWSER_FOREGROUND  "1" = work in the foreground (for debugging).
"""

from __future__ import annotations

import html.parser
import http.cookiejar
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_FORMS = 3


def log(line: str) -> None:
    path = os.environ.get("BROWSER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")


def redacted(url: str) -> str:
    return re.sub(r"([?&](?:code|state|txn_id|csrf_token)=)[^&#]*", r"\1…", url)


def loopback_only(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise RuntimeError(f"not a loopback http URL: {redacted(url)}")
    return url


class Hops(urllib.request.HTTPRedirectHandler):
    """Checks and logs every redirect before it is followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        target = loopback_only(urllib.parse.urljoin(req.full_url, newurl))
        log(f"hop {code} {redacted(target)}")
        return super().redirect_request(req, fp, code, msg, headers, target)


class ApproveForm(html.parser.HTMLParser):
    """The first POST form with a submit button named ``action``: its action URL and
    fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.has_action_button = False
        self._inside = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if self._done:
            return
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._inside, self.action, self.fields = True, a.get("action", ""), {}
        elif self._inside and tag == "input" and a.get("name") and a.get("type", "text") != "submit":
            self.fields[a["name"]] = a.get("value", "")
        elif self._inside and tag in ("button", "input") and a.get("name") == "action":
            self.has_action_button = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._inside:
            self._inside = False
            self._done = self.has_action_button


def browse(url: str) -> None:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        Hops(),
    )
    log(f"open url={redacted(url)}")
    try:
        response = opener.open(loopback_only(url), timeout=30)
        for _ in range(MAX_FORMS):
            page = response.read().decode("utf-8", "replace")
            form = ApproveForm()
            form.feed(page)
            if not form.has_action_button:
                break
            target = loopback_only(urllib.parse.urljoin(response.geturl(), form.action or ""))
            origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(target))
            log(f"consent approve -> {redacted(target)}")
            request = urllib.request.Request(
                target,
                data=urllib.parse.urlencode({**form.fields, "action": "approve"}).encode(),
                headers={"Origin": origin, "Referer": response.geturl()},
                method="POST",
            )
            response = opener.open(request, timeout=30)
        log(f"done {response.status} {redacted(response.geturl())}")
    except urllib.error.HTTPError as e:
        log(f"done {e.code} {redacted(e.geturl())}")
    except Exception as e:  # noqa: BLE001 - the log says what stopped the "user"
        log(f"done error {type(e).__name__}: {e}")


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1]:
        sys.exit("usage: consent-browser.py <authorization-url>")
    if os.environ.get("BROWSER_FOREGROUND") == "1":
        browse(sys.argv[1])
        return
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            browse(sys.argv[1])
        os._exit(0)


if __name__ == "__main__":
    main()
