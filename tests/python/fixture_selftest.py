#!/usr/bin/env python3
"""Self-test of the real-server test fixtures, independent of mcp-oauth's Rust code.

Starts tests/node/oidc-as.mjs (oidc-provider) and tests/python/mcp_server.py (MCP Python
SDK), then plays a spec-following OAuth client by hand: 401 challenge -> PRM from the
``resource_metadata`` URL -> RFC 8414 AS metadata -> DCR (native, loopback redirect) ->
PKCE S256 authorization through ``tests/browser.sh`` (the headless user agent) with a
loopback callback -> RFC 9207 ``iss`` check -> code exchange with ``resource`` -> JWT
``aud`` check -> MCP initialize / tools/list / tools/call via the official SDK client ->
refresh (rotation) -> reuse of the rotated refresh token is refused and revokes the grant.
Also checks that nobody requested the root PRM. Then the 2026-07-28 fixtures (MCP SDK
2.x, .deps/venv-modern): mcp_server.py with ``MCP_MODERN_ONLY=1`` answers without a token
with the SDK's 401 challenge, refuses an authorized legacy ``initialize`` with 400 and an
``UnsupportedProtocolVersionError`` naming 2026-07-28, and serves ``server/discover`` and
``tools/call`` on the 2026-07-28 wire (headers and per-request ``_meta``, no session);
proxy_client_modern.py speaks 2026-07-28 on stdio to the 2.x server and falls back to the
``initialize`` handshake with the 1.x one.

If this passes and ``real_servers.rs`` fails, the bug is in the client, not the fixtures.

Usage: .deps/venv/bin/python tests/python/fixture_selftest.py   (exit 0 = fixtures OK)
Env: MCP_OAUTH_NODE (default tests/node/node_modules/.bin/node), BROWSER_SELFTEST (the
user agent to test, default tests/browser.sh), KEEP_LOGS=1 to keep (and print) the logs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NODE = os.environ.get("MCP_OAUTH_NODE", str(ROOT / "tests/node/node_modules/.bin/node"))
BROWSER = os.environ.get("BROWSER_SELFTEST", str(ROOT / "tests/browser.sh"))
PYTHON_MODERN = os.environ.get("MCP_OAUTH_PYTHON_MODERN", str(ROOT / ".deps/venv-modern/bin/python"))
STEP_TIMEOUT = 20.0


def fail(msg: str) -> None:
    raise AssertionError(msg)


def check(cond: bool, msg: str) -> None:
    if not cond:
        fail(msg)
    print(f"  ok  {msg}")


def http_json(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, dict(e.headers), e.read()
    try:
        data = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        data = raw.decode("utf-8", "replace")
    return status, hdrs, data


def form(url: str, fields: dict[str, str]) -> tuple[int, Any]:
    status, _, data = http_json(
        "POST", url, body=urllib.parse.urlencode(fields).encode(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    return status, data


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], name: str, logdir: Path):
        self.name = name
        self.stderr = open(logdir / f"{name}.stderr", "wb")
        self.p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=self.stderr, stdin=subprocess.DEVNULL, cwd=ROOT)
        line: list[bytes] = []

        def read() -> None:
            assert self.p.stdout is not None
            line.append(self.p.stdout.readline())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(STEP_TIMEOUT)
        if not line or not line[0].strip():
            self.stop()
            fail(f"{name} did not print a ready line; see {logdir / (name + '.stderr')}")
        self.ready = json.loads(line[0])

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.stderr.close()


class Callback:
    """One-shot loopback redirect-URI listener."""

    def __init__(self) -> None:
        self.params: dict[str, str] | None = None
        self.event = threading.Event()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                q = urllib.parse.urlsplit(self.path)
                outer.params = dict(urllib.parse.parse_qsl(q.query))
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"done")
                outer.event.set()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


MODERN = "2026-07-28"
SSE_OR_JSON = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def rpc_result(data: Any) -> Any:
    """The JSON-RPC message of a response body: JSON, or the last ``data:`` of an SSE stream."""
    if isinstance(data, str):
        lines = [line[5:].strip() for line in data.splitlines() if line.startswith("data:")]
        data = json.loads(lines[-1]) if lines else data
    return data


def modern_post(url: str, token: str, msg: dict[str, Any], name: str | None = None) -> tuple[int, dict[str, str], Any]:
    """A POST on the 2026-07-28 wire: the per-request _meta and the Mcp-* headers."""
    msg = dict(msg, jsonrpc="2.0")
    msg["params"] = dict(msg.get("params") or {}, _meta={
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "selftest", "version": "0"},
    })
    headers = dict(SSE_OR_JSON, **{"authorization": f"Bearer {token}", "mcp-protocol-version": MODERN, "mcp-method": msg["method"]})
    if name is not None:
        headers["mcp-name"] = name
    st, hdrs, data = http_json("POST", url, body=json.dumps(msg).encode(), headers=headers)
    return st, hdrs, rpc_result(data)


def access_token_for(meta: dict[str, Any], client_id: str, resource: str, env: dict[str, str]) -> str:
    """An access token for ``resource``: one more authorization through $BROWSER (PKCE
    S256, a loopback callback) and its code exchange, for the second MCP server."""
    cb = Callback()
    redirect_uri = f"http://127.0.0.1:{cb.port}/callback"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "mcp:tools",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }
    try:
        subprocess.run([BROWSER, meta["authorization_endpoint"] + "?" + urllib.parse.urlencode(query)], env=env, check=True, timeout=5)
        if not cb.event.wait(STEP_TIMEOUT) or (cb.params or {}).get("state") != state:
            fail(f"the second authorization did not come back ({cb.params})")
    finally:
        cb.close()
    fields = {"grant_type": "authorization_code", "code": (cb.params or {})["code"], "redirect_uri": redirect_uri}
    st, tok = form(meta["token_endpoint"], dict(fields, client_id=client_id, code_verifier=verifier, resource=resource))
    check(st == 200 and jwt_claims(tok["access_token"]).get("aud") == resource, f"a token for the SDK 2.x server (aud {resource})")
    return tok["access_token"]


def modern_server_checks(issuer: str, token_for: Any, env: dict[str, str], logdir: Path, procs: list[Proc]) -> None:
    """mcp_server.py on the SDK 2.x (.deps/venv-modern) with MCP_MODERN_ONLY=1, by hand:
    the SDK's 401 challenge comes first, an authorized legacy initialize is refused with an
    UnsupportedProtocolVersionError naming 2026-07-28, and server/discover and tools/call
    work on the 2026-07-28 wire with a token for this server (``token_for(url)``)."""
    mcp = Proc(
        [PYTHON_MODERN, str(ROOT / "tests/python/mcp_server.py"), "--issuer", issuer],
        dict(env, MCP_MODERN_ONLY="1", MCP_LOG=str(logdir / "mcp-modern.log")),
        "mcp-server-modern",
        logdir,
    )
    procs.append(mcp)
    url = mcp.ready["url"]
    prm_url = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    init = b'{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"selftest","version":"0"}}}'
    st, hdrs, _ = http_json("POST", url, body=init, headers=SSE_OR_JSON)
    www = {k.lower(): v for k, v in hdrs.items()}.get("www-authenticate", "")
    check(st == 401 and f'resource_metadata="{prm_url}"' in www, f"SDK 2.x: no token -> 401 challenge first ({st} {www})")
    st, _, prm = http_json("GET", prm_url)
    check(st == 200 and prm["resource"] == url and prm["authorization_servers"] == [issuer], f"SDK 2.x PRM {prm}")
    token = token_for(url)
    auth = dict(SSE_OR_JSON, authorization=f"Bearer {token}")
    st, _, body = http_json("POST", url, body=init, headers=auth)
    err = body.get("error", {}) if isinstance(body, dict) else {}
    check(
        st == 400 and body.get("id") == 7 and err.get("code") == -32022 and MODERN in err.get("data", {}).get("supported", []),
        f"2026-07-28-only: legacy initialize -> 400 UnsupportedProtocolVersion naming {MODERN} ({st} {body})",
    )
    st, _, _ = http_json("GET", url, headers=dict(auth, accept="text/event-stream"))
    check(st == 405, f"2026-07-28-only: no legacy GET stream ({st})")
    st, hdrs, body = modern_post(url, token, {"id": 8, "method": "server/discover"})
    check(
        st == 200 and MODERN in body["result"]["supportedVersions"] and "mcp-session-id" not in {k.lower() for k in hdrs},
        f"server/discover on the 2026-07-28 wire -> 200, no session ({st} {body})",
    )
    st, _, body = modern_post(url, token, {"id": 9, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "modern"}}}, "echo")
    check(st == 200 and body["result"]["content"][0]["text"] == "modern", f"tools/call echo on the 2026-07-28 wire ({st} {body})")
    st, _, body = modern_post(url, token, {"id": 10, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}, "whoami")
    check(st == 400 and body["error"]["code"] == -32020, f"an Mcp-Name that is not the body's name -> 400 HeaderMismatch ({st} {body})")
    mcp.stop()
    procs.remove(mcp)


def modern_client_checks() -> None:
    """proxy_client_modern.py (SDK 2.x Client, mode="auto") on stdio against mcp_server.py
    --stdio: 2026-07-28 with the 2.x server, the initialize fallback with the 1.x one."""
    for python, want in ((PYTHON_MODERN, MODERN), (sys.executable, "2025-11-25")):
        out = subprocess.run(
            [PYTHON_MODERN, str(ROOT / "tests/python/proxy_client_modern.py"), python, str(ROOT / "tests/python/mcp_server.py"), "--stdio"],
            capture_output=True,
            check=True,
            timeout=STEP_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        v = json.loads(out.stdout)
        check(
            v["protocol"] == want and v["tools"] == ["echo", "whoami"] and v["echo"] == "through the proxy",
            f"SDK 2.x stdio client -> {'2.x' if python == PYTHON_MODERN else '1.x'} stdio server: {want}, tools, echo",
        )


async def mcp_calls(url: str, token: str) -> tuple[list[str], str, str]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(url, headers={"Authorization": f"Bearer {token}"}) as (r, w, _):
        async with ClientSession(r, w) as s:
            await s.initialize()
            tools = [t.name for t in (await s.list_tools()).tools]
            echo = await s.call_tool("echo", {"text": "hi from selftest"})
            who = await s.call_tool("whoami", {})
            return tools, echo.content[0].text, who.content[0].text  # type: ignore[union-attr]


def main() -> int:
    logdir = Path(tempfile.mkdtemp(prefix="mcp-oauth-selftest."))
    as_log, mcp_log, browser_log = logdir / "as.log", logdir / "mcp.log", logdir / "browser.log"
    env = dict(os.environ, AS_LOG=str(as_log), MCP_LOG=str(mcp_log), BROWSER_LOG=str(browser_log), AT_TTL="60")
    procs: list[Proc] = []
    ok = False
    t0 = time.monotonic()
    try:
        print("fixture self-test: starting oidc-provider and the MCP server")
        as_ = Proc([NODE, str(ROOT / "tests/node/oidc-as.mjs"), "0"], env, "oidc-as", logdir)
        procs.append(as_)
        issuer = as_.ready["issuer"]
        mcp = Proc([sys.executable, str(ROOT / "tests/python/mcp_server.py"), "--issuer", issuer], env, "mcp-server", logdir)
        procs.append(mcp)
        url = mcp.ready["url"]
        check(issuer.startswith("http://127.0.0.1:") and not issuer.endswith("/"), f"AS issuer {issuer}")

        # 1. Challenge
        st, hdrs, _ = http_json(
            "POST",
            url,
            body=b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"selftest","version":"0"}}}',
            headers={"content-type": "application/json", "accept": "application/json, text/event-stream"},
        )
        www = {k.lower(): v for k, v in hdrs.items()}.get("www-authenticate", "")
        prm_url = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
        check(st == 401, "unauthenticated POST /mcp -> 401")
        check(
            www == f'Bearer error="invalid_token", error_description="Authentication required", resource_metadata="{prm_url}"',
            f"WWW-Authenticate: {www}",
        )
        # 2. PRM
        st, _, prm = http_json("GET", prm_url)
        check(st == 200 and prm["resource"] == url and prm["authorization_servers"] == [issuer], f"PRM {prm}")
        check(prm.get("scopes_supported") == ["mcp:tools"], "PRM scopes_supported == [mcp:tools]")
        st, _, _ = http_json("GET", url.replace("/mcp", "/.well-known/oauth-protected-resource"))
        check(st == 404, "root PRM -> 404")
        # 3. AS metadata (RFC 8414 alias and OIDC)
        st, _, meta = http_json("GET", issuer + "/.well-known/oauth-authorization-server")
        check(st == 200 and meta["issuer"] == issuer, "RFC 8414 metadata served, issuer exact")
        check(meta.get("authorization_response_iss_parameter_supported") is True, "advertises RFC 9207 iss")
        check(meta.get("code_challenge_methods_supported") == ["S256"], "PKCE S256 only")
        st, _, oidc = http_json("GET", issuer + "/.well-known/openid-configuration")
        check(st == 200 and oidc == meta, "OIDC discovery serves the same document")
        # 4. DCR
        cb = Callback()
        redirect_uri = f"http://127.0.0.1:{cb.port}/callback"
        reg_body = {
            "application_type": "native",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "client_name": "fixture self-test",
        }
        st, _, reg = http_json(
            "POST", meta["registration_endpoint"], body=json.dumps(reg_body).encode(), headers={"content-type": "application/json"}
        )
        check(st == 201 and reg.get("client_id"), f"DCR -> 201 client_id={reg.get('client_id') if isinstance(reg, dict) else reg}")
        client_id = reg["client_id"]
        # 5. Authorization via the headless browser (redirect URI port is irrelevant for
        # native loopback clients, so register one port and use another to prove it).
        cb2 = Callback()
        redirect_uri2 = f"http://127.0.0.1:{cb2.port}/callback"
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(16)
        scope = "mcp:tools" + (" offline_access" if "offline_access" in meta.get("scopes_supported", []) else "")
        auth_url = meta["authorization_endpoint"] + "?" + urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri2,
                "scope": scope,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "resource": prm["resource"],
            }
        )
        b0 = time.monotonic()
        subprocess.run([BROWSER, auth_url], env=env, check=True, timeout=5, stdin=subprocess.DEVNULL)
        check(time.monotonic() - b0 < 2, f"$BROWSER returned at once ({time.monotonic() - b0:.2f}s)")
        check(cb2.event.wait(STEP_TIMEOUT), "browser reached the loopback redirect URI (other port than registered)")
        params = cb2.params or {}
        check(params.get("state") == state and "code" in params, "callback has code and matching state")
        check(params.get("iss") == issuer, f"RFC 9207 iss == issuer ({params.get('iss')})")
        # 6. Token
        st, tok = form(
            meta["token_endpoint"],
            {
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": redirect_uri2,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": prm["resource"],
            },
        )
        check(st == 200 and tok.get("token_type") == "Bearer", f"code exchange -> 200 ({tok if st != 200 else 'Bearer'})")
        check(bool(tok.get("refresh_token")), "refresh token issued")
        check(tok.get("expires_in", 0) <= 60, f"expires_in honours AT_TTL ({tok.get('expires_in')})")
        claims = jwt_claims(tok["access_token"])
        check(claims.get("aud") == url and claims.get("iss") == issuer, f"JWT aud={claims.get('aud')} iss={claims.get('iss')}")
        check("mcp:tools" in str(claims.get("scope", "")).split(), f"JWT scope={claims.get('scope')}")
        # 7. MCP with the token (official SDK client)
        tools, echoed, who = asyncio.run(mcp_calls(url, tok["access_token"]))
        check(sorted(tools) == ["echo", "whoami"], f"tools/list -> {tools}")
        check(echoed == "hi from selftest", "tools/call echo")
        check(json.loads(who)["sub"] == claims["sub"], f"whoami -> {who}")
        # A token for another resource is refused by the MCP server.
        st, _, _ = http_json(
            "POST",
            url,
            body=b"{}",
            headers={"authorization": "Bearer not-a-jwt", "content-type": "application/json", "accept": "application/json, text/event-stream"},
        )
        check(st == 401, "garbage bearer token -> 401")
        # 8. Refresh with rotation
        rt1 = tok["refresh_token"]
        st, tok2 = form(
            meta["token_endpoint"], {"grant_type": "refresh_token", "refresh_token": rt1, "client_id": client_id, "resource": prm["resource"]}
        )
        check(st == 200 and tok2.get("refresh_token") and tok2["refresh_token"] != rt1, "refresh -> 200 with a rotated refresh token")
        check(jwt_claims(tok2["access_token"]).get("aud") == url, "refreshed JWT aud == MCP URL")
        tools, echoed, _ = asyncio.run(mcp_calls(url, tok2["access_token"]))
        check(echoed == "hi from selftest", "refreshed token accepted by the MCP server")
        # 9. Reuse detection: the consumed RT is refused and the grant (incl. rt2) revoked
        st, err = form(meta["token_endpoint"], {"grant_type": "refresh_token", "refresh_token": rt1, "client_id": client_id})
        check(st == 400 and err.get("error") == "invalid_grant", f"reused refresh token -> 400 invalid_grant ({err})")
        st, err = form(meta["token_endpoint"], {"grant_type": "refresh_token", "refresh_token": tok2["refresh_token"], "client_id": client_id})
        check(st == 400 and err.get("error") == "invalid_grant", "reuse revoked the whole grant (rotated RT dead too)")
        # 10. Revocation endpoint exists
        st, _ = form(meta["revocation_endpoint"], {"token": "whatever", "client_id": client_id})
        check(st == 200, "revocation endpoint answers 200 (RFC 7009)")
        # 11. Logs
        as_lines = [json.loads(x) for x in as_log.read_text().splitlines()]
        grants = [x.get("grant_type") for x in as_lines if x["path"] == "/token"]
        check(grants == ["authorization_code", "refresh_token", "refresh_token", "refresh_token"], f"AS log grant_types {grants}")
        check(not any("code_verifier" in json.dumps(x) or rt1 in json.dumps(x) for x in as_lines), "AS log holds no secrets")
        mcp_paths = [json.loads(x)["path"] for x in mcp_log.read_text().splitlines()]
        check(mcp_paths.count("/.well-known/oauth-protected-resource") == 1, "MCP log records the (one, deliberate) root PRM probe")
        blog = browser_log.read_text()
        check(blog.count(" open ") == 1 and " done status=200 " in blog and params["code"] not in blog, "browser log: 1 open, done 200, code redacted")
        cb.close()
        cb2.close()
        # 12. The SDK 2.x fixtures: the 2026-07-28-only server and the stdio client.
        modern_server_checks(issuer, lambda u: access_token_for(meta, client_id, u, env), env, logdir, procs)
        modern_client_checks()
        ok = True
    except AssertionError as e:
        print(f"FAIL {e}", file=sys.stderr)
    finally:
        for p in reversed(procs):
            p.stop()
        if not ok or os.environ.get("KEEP_LOGS") == "1":
            print(f"logs kept in {logdir}", file=sys.stderr)
            for f in sorted(logdir.iterdir()):
                print(f"--- {f.name}", file=sys.stderr)
                print(f.read_text(errors="replace")[-3000:], file=sys.stderr)
        else:
            shutil.rmtree(logdir, ignore_errors=True)
    print(f"fixture self-test: {'PASS' if ok else 'FAIL'} in {time.monotonic() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
