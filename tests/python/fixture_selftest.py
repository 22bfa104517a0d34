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
``initialize`` handshake with the 1.x one. Last, the seed report's setup as shipped:
tests/python/fastmcp_server.py (PyPI fastmcp 4.x, run with .deps/venv-fastmcp's python) in
front of oidc-as.mjs with ``AS_PROFILE=default``: FastMCP's challenge and PRM, then a table
of what oidc-provider's defaults do with each scope choice (offline_access with and without
prompt=consent, no scope, openid, the resource scope), refreshes with and without
``scope``/``resource``, rotation and reuse, an AS restart on the same port (invalid_client,
the HTML error page, FastMCP's JWKS cache), wrong-audience and expired tokens, and the AS's
fault knobs (AS_REFRESH_REQUIRES_SCOPE, AS_CONTROL).

If this passes and ``real_servers.rs`` fails, the bug is in the client, not the fixtures.

Usage: .deps/venv/bin/python tests/python/fixture_selftest.py   (exit 0 = fixtures OK)
Env: MCP_OAUTH_NODE (default tests/node/node_modules/.bin/node), BROWSER_SELFTEST (the
user agent to test, default tests/browser.sh), MCP_OAUTH_PYTHON_MODERN /
MCP_OAUTH_PYTHON_FASTMCP (default .deps/venv-modern, .deps/venv-fastmcp), KEEP_LOGS=1 to
keep (and print) the logs.
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
    def __init__(self, args: list[str], env: dict[str, str], name: str, logdir: Path, wait: bool = True):
        self.name = name
        self.logdir = logdir
        self.stderr = open(logdir / f"{name}.stderr", "ab")
        self.p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=self.stderr, stdin=subprocess.DEVNULL, cwd=ROOT)
        self.ready: dict[str, Any] = {}
        if wait:
            self.wait_ready()

    def wait_ready(self) -> dict[str, Any]:
        """Waits for (and returns) the JSON ready line."""
        name, logdir = self.name, self.logdir
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
        return self.ready

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
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

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


# ---------------------------------------------------------------- FastMCP + oidc-provider defaults

PYTHON_FASTMCP = os.environ.get("MCP_OAUTH_PYTHON_FASTMCP", str(ROOT / ".deps/venv-fastmcp/bin/python"))
INIT_2025 = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "selftest", "version": "0"}}
# FastMCP's description for any bearer token it does not accept (expired, wrong audience,
# unknown key, not a JWT): in the 401's WWW-Authenticate and its JSON body.
FASTMCP_INVALID = (
    "Authentication failed. The provided bearer token is invalid, expired, or no longer recognized by the server. "
    "To resolve: clear authentication tokens in your MCP client and reconnect. Your client should automatically "
    "re-register and obtain new tokens."
)


def fastmcp_refused(st: int, www: str, body: Any, prm_url: str) -> bool:
    """FastMCP's 401 for a bearer token it does not accept, exactly."""
    return (
        st == 401
        and www == f'Bearer error="invalid_token", error_description="{FASTMCP_INVALID}", resource_metadata="{prm_url}"'
        and body == {"error": "invalid_token", "error_description": FASTMCP_INVALID}
    )


def lower(hdrs: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in hdrs.items()}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def register(meta: dict[str, Any], name: str) -> str:
    """Open DCR of a native public client (authorization_code + refresh_token)."""
    body = {
        "application_type": "native",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "client_name": name,
    }
    st, _, reg = http_json("POST", meta["registration_endpoint"], body=json.dumps(body).encode(), headers={"content-type": "application/json"})
    if st != 201 or not isinstance(reg, dict) or not reg.get("client_id"):
        fail(f"DCR at {meta['registration_endpoint']} -> {st} {reg}")
    return str(reg["client_id"])


def authorize(meta: dict[str, Any], client_id: str, resource: str, env: dict[str, str], scope: str | None, prompt: str | None) -> dict[str, str]:
    """One authorization request through $BROWSER (PKCE S256, resource, a loopback redirect
    URI on another port than registered): the callback's parameters (code or error), plus
    the redirect_uri and code_verifier used."""
    cb = Callback()
    redirect_uri = f"http://127.0.0.1:{cb.port}/callback"
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }
    if scope is not None:
        query["scope"] = scope
    if prompt is not None:
        query["prompt"] = prompt
    try:
        subprocess.run([BROWSER, meta["authorization_endpoint"] + "?" + urllib.parse.urlencode(query)], env=env, check=True, timeout=5, stdin=subprocess.DEVNULL)
        if not cb.event.wait(STEP_TIMEOUT):
            fail(f"authorization (scope={scope!r}, prompt={prompt!r}) never reached the redirect URI")
    finally:
        cb.close()
    params = dict(cb.params or {})
    if params.get("state") != state:
        fail(f"callback state mismatch: {params}")
    return dict(params, redirect_uri=redirect_uri, verifier=verifier)


def exchange(meta: dict[str, Any], client_id: str, resource: str, cb: dict[str, str]) -> tuple[int, Any]:
    return form(
        meta["token_endpoint"],
        {
            "grant_type": "authorization_code",
            "code": cb["code"],
            "redirect_uri": cb["redirect_uri"],
            "client_id": client_id,
            "code_verifier": cb["verifier"],
            "resource": resource,
        },
    )


def refresh(meta: dict[str, Any], client_id: str, rt: str, **extra: str) -> tuple[int, dict[str, str], Any]:
    fields = dict({"grant_type": "refresh_token", "refresh_token": rt, "client_id": client_id}, **extra)
    return http_json("POST", meta["token_endpoint"], body=urllib.parse.urlencode(fields).encode(), headers={"content-type": "application/x-www-form-urlencoded"})


def fastmcp_tool(url: str, token: str, tool: str, args: dict[str, Any]) -> tuple[int, str, Any]:
    """Raw Streamable HTTP (2025-11-25): initialize, notifications/initialized, tools/call.
    (status, WWW-Authenticate, the tool's text or the JSON-RPC error); the status is the
    first non-2xx one, or 200."""
    auth = dict(SSE_OR_JSON, authorization=f"Bearer {token}")
    st, hdrs, body = http_json("POST", url, body=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_2025}).encode(), headers=auth)
    if st != 200:
        return st, lower(hdrs).get("www-authenticate", ""), body
    h = dict(auth, **{"mcp-protocol-version": "2025-11-25"})
    sid = lower(hdrs).get("mcp-session-id")
    if sid:
        h["mcp-session-id"] = sid
    st, hdrs, body = http_json("POST", url, body=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=h)
    if st not in (200, 202):
        return st, lower(hdrs).get("www-authenticate", ""), body
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}}
    st, hdrs, body = http_json("POST", url, body=json.dumps(call).encode(), headers=h)
    if sid:
        http_json("DELETE", url, headers=h)
    msg = rpc_result(body)
    if st != 200 or not isinstance(msg, dict) or "result" not in msg:
        return st, lower(hdrs).get("www-authenticate", ""), msg
    return 200, "", msg["result"]["content"][0]["text"]


def fastmcp_checks(env: dict[str, str], logdir: Path, procs: list[Proc]) -> None:
    """The seed report's setup as shipped: tests/python/fastmcp_server.py (PyPI fastmcp 4.x
    in .deps/venv-fastmcp, RemoteAuthProvider + JWTVerifier, no scope configuration) in
    front of oidc-as.mjs with AS_PROFILE=default (oidc-provider's defaults). Checks what a
    client sees, then establishes (and asserts) what the AS does for the scope choices a
    client could make, refreshes with and without `scope`, an AS restart, and the two test
    knobs (AS_REFRESH_REQUIRES_SCOPE, AS_CONTROL)."""
    t0 = time.monotonic()
    print("FastMCP (PyPI fastmcp) + oidc-provider (AS_PROFILE=default)")
    as_log, mcp_log = logdir / "as-default.log", logdir / "fastmcp.log"
    as_env = dict(env, AS_PROFILE="default", AS_CONTROL="1", AS_LOG=str(as_log))
    as_env.pop("AT_TTL", None)
    as_ = Proc([NODE, str(ROOT / "tests/node/oidc-as.mjs"), "0"], as_env, "oidc-as-default", logdir)
    procs.append(as_)
    issuer, as_port = as_.ready["issuer"], as_.ready["port"]
    check(as_.ready.get("profile") == "default", f"AS ready line names the profile ({as_.ready})")
    # Two FastMCP servers, started together: the main one, and one that verifies its first
    # token only at the end (after the AS restarts with a new key and AT_TTL=3), for the
    # expired-token check. JWTVerifier reads the JWKS on first use.
    fm_env = dict(env, MCP_LOG=str(mcp_log))
    fm = Proc([PYTHON_FASTMCP, str(ROOT / "tests/python/fastmcp_server.py"), "--issuer", issuer], fm_env, "fastmcp", logdir, wait=False)
    procs.append(fm)
    fm2 = Proc([PYTHON_FASTMCP, str(ROOT / "tests/python/fastmcp_server.py"), "--issuer", issuer], dict(env), "fastmcp-2", logdir, wait=False)
    procs.append(fm2)
    url = fm.wait_ready()["url"]
    url2 = fm2.wait_ready()["url"]
    origin = url[: -len("/mcp")]
    prm_url = f"{origin}/.well-known/oauth-protected-resource/mcp"
    check(url.startswith("http://127.0.0.1:") and url.endswith("/mcp"), f"FastMCP ready line {fm.ready} ({time.monotonic() - t0:.1f}s to start both)")

    # What a client sees before any token.
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_2025}).encode()
    st, hdrs, body = http_json("POST", url, body=init, headers=SSE_OR_JSON)
    www = lower(hdrs).get("www-authenticate", "")
    check(st == 401 and www == f'Bearer resource_metadata="{prm_url}"', f"no token -> 401, WWW-Authenticate: {www} (no error, no scope)")
    st, _, _ = http_json("GET", f"{origin}/.well-known/oauth-protected-resource")
    check(st == 404, f"root PRM -> {st}")
    st, hdrs, prm = http_json("GET", prm_url)
    check(st == 200 and prm.get("resource") == url, f"PRM at the path-suffixed URL: {prm}")
    check(not prm.get("scopes_supported"), f"PRM scopes_supported empty/absent ({prm.get('scopes_supported')!r})")
    check(prm.get("authorization_servers") == [issuer + "/"], f"PRM authorization_servers {prm.get('authorization_servers')} = issuer {issuer} + '/'")
    st, _, meta = http_json("GET", issuer + "/.well-known/oauth-authorization-server")
    check(st == 200 and meta["issuer"] == issuer, f"AS metadata at {issuer}/.well-known/oauth-authorization-server (no trailing slash in issuer)")
    check("revocation_endpoint" not in meta and meta.get("scopes_supported") == ["openid", "offline_access"], f"default AS: no revocation endpoint, scopes_supported {meta.get('scopes_supported')}")
    client_id = register(meta, "selftest fastmcp")
    check(True, f"DCR -> client_id {client_id}")

    # Which scope choices work against the default oidc-provider (resource = the MCP URL, PKCE).
    cases = [
        ("a", "offline_access", None),
        ("b", "offline_access", "consent"),
        ("c", None, None),
        ("d", "openid offline_access", "consent"),
        ("e", "mcp:tools", None),
        ("f", "mcp:tools offline_access", "consent"),
        ("g", "mcp:tools offline_access", None),
    ]
    rows: list[dict[str, Any]] = []
    grants: dict[str, dict[str, Any]] = {}
    first_token_use = None
    for key, scope, prompt in cases:
        cb = authorize(meta, client_id, url, env, scope, prompt)
        row: dict[str, Any] = {"case": key, "scope": scope, "prompt": prompt}
        if "error" in cb:
            row["outcome"] = cb["error"] + (f" ({cb['error_description']})" if cb.get("error_description") else "")
            row["error_description"] = cb.get("error_description")
        else:
            st, tok = exchange(meta, client_id, url, cb)
            if st != 200:
                row["outcome"] = f"code, exchange {st} {tok}"
            else:
                claims = jwt_claims(tok["access_token"])
                if first_token_use is None:
                    first_token_use = time.monotonic()
                mst, mwww, out = fastmcp_tool(url, tok["access_token"], "whoami", {})
                row.update(
                    outcome="code",
                    refresh_token=bool(tok.get("refresh_token")),
                    id_token=bool(tok.get("id_token")),
                    token_scope=tok.get("scope"),
                    jwt_scope=claims.get("scope"),
                    aud=claims.get("aud"),
                    fastmcp=mst,
                )
                if mst == 200:
                    who = json.loads(out)
                    row["whoami"] = who
                grants[key] = {"tok": tok, "claims": claims}
        rows.append(row)
    print("  case scope                  prompt   outcome        refresh_token  token_response_scope  jwt_scope    FastMCP tools/call")
    for r in rows:
        print(
            f"  ({r['case']})  {r['scope'] if r['scope'] is not None else '(no scope param)':22} {r['prompt'] or '-':8} "
            f"{r['outcome']:14} {str(r.get('refresh_token', '-')):14} {json.dumps(r.get('token_scope')) if 'token_scope' in r else '-':21} "
            f"{json.dumps(r.get('jwt_scope')) if 'jwt_scope' in r else '-':12} {r.get('fastmcp', '-')}"
        )
    by = {r["case"]: r for r in rows}
    # Findings as observed with oidc-provider 9.13.3 (AS_PROFILE=default) and fastmcp 4.2.3.
    denied = [x for x in (json.loads(line) for line in as_log.read_text().splitlines()) if x.get("error") == "access_denied"]
    for key in ("a", "c"):
        check(by[key]["outcome"] == "access_denied" and by[key]["error_description"] is None, f"({key}) scope={by[key]['scope']!r}, prompt={by[key]['prompt']!r}: access_denied redirect without error_description")
    check(
        len(denied) == 2 and all("no scope was granted" in str(x.get("error_detail")) for x in denied),
        f"AS log: both denials say 'no scope was granted' ({[x.get('error_detail') for x in denied]})",
    )
    auth_a = [x for x in (json.loads(line) for line in as_log.read_text().splitlines()) if x.get("route") == "authorization" and x.get("scope") == "offline_access" and "prompt" not in x]
    check(len(auth_a) == 1 and auth_a[0].get("scope_effective", "") is None, f"AS log: (a)'s offline_access dropped without prompt=consent (scope_effective {auth_a[0].get('scope_effective', '?') if auth_a else '?'})")

    def got(key: str, rt: bool, scope: str, jwt_scope: str | None) -> None:
        r = by[key]
        check(
            r["outcome"] == "code" and r["refresh_token"] is rt and r["token_scope"] == scope and r["jwt_scope"] == jwt_scope and r["fastmcp"] == 200,
            f"({key}) scope={r['scope']!r}, prompt={r['prompt']!r}: code; refresh token {r['refresh_token']}, "
            f"token response scope {r['token_scope']!r}, JWT scope {r['jwt_scope']!r}; FastMCP tools/call {r['fastmcp']}",
        )

    got("b", True, "", None)
    got("d", True, "", None)
    check(by["d"]["id_token"] and not by["b"]["id_token"], "(d) also has an id_token, (b) none")
    got("e", False, "mcp:tools", "mcp:tools")
    got("f", True, "mcp:tools", "mcp:tools")
    got("g", False, "mcp:tools", "mcp:tools")
    who = by["b"]["whoami"]
    check(who["aud"] == url and who["client_id"] == client_id and who["sub"] == "test-user", f"FastMCP whoami (b): {who}")
    # The official SDK client (1.x, in this venv) through tools/list, echo, whoami.
    tools, echoed, _ = asyncio.run(mcp_calls(url, grants["b"]["tok"]["access_token"]))
    check(sorted(tools) == ["echo", "whoami"] and echoed == "hi from selftest", f"MCP SDK client against FastMCP: tools {tools}, echo")

    # Refreshes, with and without `scope`, with `resource` unless said otherwise; each grant's
    # refresh tokens are used in sequence (they rotate).
    latest = {k: grants[k]["tok"]["refresh_token"] for k in ("b", "d", "f")}
    attempts = [
        ("b1", "b", {"resource": url}),
        ("b2", "b", {"resource": url, "scope": "offline_access"}),
        ("b3", "b", {"resource": url, "scope": "offline_access mcp:tools"}),
        ("f1", "f", {"resource": url}),
        ("f2", "f", {"resource": url, "scope": "mcp:tools"}),
        ("f3", "f", {"resource": url, "scope": "mcp:tools offline_access"}),
        ("f4", "f", {}),
        ("d1", "d", {}),
        ("d2", "d", {"resource": url}),
    ]
    refreshes: dict[str, dict[str, Any]] = {}
    print("  refresh  grant  scope param                 resource  status  rotated  response scope  access token")
    for name, key, extra in attempts:
        old = latest[key]
        st, _, r = refresh(meta, client_id, old, **extra)
        res: dict[str, Any] = {"status": st}
        if st == 200:
            at = r["access_token"]
            res.update(rotated=bool(r.get("refresh_token")) and r["refresh_token"] != old, scope=r.get("scope"), at=at)
            res["kind"] = f"JWT aud={'MCP URL' if jwt_claims(at).get('aud') == url else jwt_claims(at).get('aud')}" if at.count(".") == 2 else "opaque"
            latest[key] = r.get("refresh_token") or old
        else:
            res.update(error=r.get("error") if isinstance(r, dict) else r, rotated=False, kind="-")
        refreshes[name] = res
        print(
            f"  {name:8} ({key})    {extra.get('scope', '(none)'):27} {'yes' if 'resource' in extra else 'no':9} {st:<7} {str(res['rotated']):8} "
            f"{json.dumps(res.get('scope')) if st == 200 else res.get('error'):15} {res['kind']}"
        )

    def refreshed(name: str, scope: str, kind: str) -> None:
        r = refreshes[name]
        check(r["status"] == 200 and r["rotated"] and r["scope"] == scope and r["kind"] == kind, f"refresh {name}: 200, rotated, scope {r.get('scope')!r}, {r['kind']}")

    refreshed("b1", "", "JWT aud=MCP URL")
    refreshed("b2", "", "JWT aud=MCP URL")
    check(refreshes["b3"]["status"] == 400 and refreshes["b3"]["error"] == "invalid_scope", f"refresh b3 (a scope beyond the grant) -> {refreshes['b3']}")
    refreshed("f1", "mcp:tools", "JWT aud=MCP URL")
    refreshed("f2", "mcp:tools", "JWT aud=MCP URL")
    refreshed("f3", "mcp:tools", "JWT aud=MCP URL")
    refreshed("f4", "mcp:tools", "JWT aud=MCP URL")
    refreshed("d1", "openid offline_access", "opaque")
    refreshed("d2", "", "JWT aud=MCP URL")
    for name in ("b2", "f2", "d2"):
        mst, _, _ = fastmcp_tool(url, refreshes[name]["at"], "echo", {"text": "x"})
        check(mst == 200, f"FastMCP accepts refresh {name}'s access token")
    mst, mwww, mbody = fastmcp_tool(url, refreshes["d1"]["at"], "echo", {"text": "x"})
    check(fastmcp_refused(mst, mwww, mbody, prm_url), f"FastMCP refuses d1's opaque token -> {mst}, the invalid_token challenge")
    st, _, reused = refresh(meta, client_id, grants["b"]["tok"]["refresh_token"], resource=url)
    check(st == 400 and reused.get("error") == "invalid_grant", f"a rotated-out refresh token -> {st} {reused}")
    st, _, after = refresh(meta, client_id, latest["b"], resource=url)
    check(st == 400 and after.get("error") == "invalid_grant", f"... and it revoked the grant: the latest one -> {st} {after.get('error')}")

    # Token the server must refuse: another audience.
    cb = authorize(meta, client_id, url + "-other", env, "mcp:tools", None)
    st, other = exchange(meta, client_id, url + "-other", cb)
    mst, mwww, mbody = fastmcp_tool(url, other["access_token"], "echo", {"text": "x"})
    check(fastmcp_refused(mst, mwww, mbody, prm_url), f"wrong-audience JWT -> {mst}, WWW-Authenticate: {mwww}, body {mbody}")

    # The AS restarts on the same port (memory adapter: clients, grants and the key are gone).
    as_.stop()
    procs.remove(as_)
    as_ = Proc([NODE, str(ROOT / "tests/node/oidc-as.mjs"), str(as_port)], as_env, "oidc-as-default", logdir)
    procs.append(as_)
    check(as_.ready["issuer"] == issuer, f"AS restarted on the same port ({issuer})")
    st, hdrs, r = refresh(meta, client_id, latest["d"], resource=url)
    check(st == 401 and r.get("error") == "invalid_client", f"after restart: refresh -> {st} {r}")
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:9/callback", "scope": "offline_access", "prompt": "consent", "code_challenge": pkce_pair()[1], "code_challenge_method": "S256", "resource": url, "state": "s"}
    st, hdrs, page = http_json("GET", meta["authorization_endpoint"] + "?" + urllib.parse.urlencode(q))
    cty = lower(hdrs).get("content-type", "")
    check(st == 400 and cty.startswith("text/html") and "oops! something went wrong" in str(page) and "invalid_client" in str(page), f"after restart: authorization request with the old client_id -> {st} {cty}, oidc-provider's HTML error page (invalid_client)")
    client_id = register(meta, "selftest fastmcp after restart")
    cb = authorize(meta, client_id, url, env, "offline_access", "consent")
    st, tok = exchange(meta, client_id, url, cb)
    since = time.monotonic() - (first_token_use or t0)
    mst, mwww, mbody = fastmcp_tool(url, tok["access_token"], "echo", {"text": "x"})
    # JWTVerifier refreshes its JWKS for an unknown kid at most every 30 s (jwks_refresh_interval,
    # counted from its last fetch): a token from the new key is refused until then.
    check(fastmcp_refused(mst, mwww, mbody, prm_url) if since < 29 else mst == 200, f"a token signed with the restarted AS's new key, {since:.0f}s after FastMCP first read the JWKS -> {mst} (JWKS refresh at most every 30 s)")

    # AS_REFRESH_REQUIRES_SCOPE=1 (Microsoft Entra's refresh) and AS_CONTROL's fail-next-token,
    # on a restarted AS with AT_TTL=3 (for the expired-token check on the second FastMCP).
    as_.stop()
    procs.remove(as_)
    as_ = Proc([NODE, str(ROOT / "tests/node/oidc-as.mjs"), str(as_port)], dict(as_env, AS_REFRESH_REQUIRES_SCOPE="1", AT_TTL="3"), "oidc-as-default", logdir)
    procs.append(as_)
    client_id = register(meta, "selftest knobs")
    cb = authorize(meta, client_id, url2, env, "offline_access", "consent")
    st, tok = exchange(meta, client_id, url2, cb)
    check(st == 200 and tok.get("expires_in", 99) <= 3, f"AT_TTL=3 honoured in the default profile ({tok.get('expires_in')})")
    mst, _, _ = fastmcp_tool(url2, tok["access_token"], "echo", {"text": "x"})
    check(mst == 200, "second FastMCP accepts a fresh token")
    st, hdrs, r = refresh(meta, client_id, tok["refresh_token"], resource=url2)
    check(st == 400 and r == {"error": "invalid_request", "error_description": "AADSTS900144: The request body must contain the following parameter: 'scope'."}, f"AS_REFRESH_REQUIRES_SCOPE: refresh without scope -> {st} {r}")
    st, hdrs, r = refresh(meta, client_id, tok["refresh_token"], resource=url2, scope="offline_access")
    check(st == 200 and r.get("refresh_token"), f"AS_REFRESH_REQUIRES_SCOPE: refresh with scope -> {st} (the refused one consumed nothing)")
    rt = r["refresh_token"]
    st, _, armed = http_json("POST", issuer + "/__test/fail-next-token?status=503&body=html&grant_type=refresh_token")
    check(st == 200 and armed == {"armed": {"status": 503, "body": "html", "grant_type": "refresh_token"}}, f"AS_CONTROL: armed {armed}")
    st, hdrs, page = refresh(meta, client_id, rt, resource=url2, scope="offline_access")
    check(st == 503 and lower(hdrs).get("content-type", "").startswith("text/html") and "<h1>503 Service Unavailable</h1>" in str(page), f"AS_CONTROL: next refresh -> {st} HTML gateway page")
    st, _, r = refresh(meta, client_id, rt, resource=url2, scope="offline_access")
    check(st == 200, f"AS_CONTROL: only once; the same refresh token then works ({st})")
    time.sleep(max(0.0, jwt_claims(tok["access_token"])["exp"] + 1.05 - time.time()))  # the AT (3 s) has expired
    mst, mwww, mbody = fastmcp_tool(url2, tok["access_token"], "echo", {"text": "x"})
    check(fastmcp_refused(mst, mwww, mbody, url2.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")), f"expired JWT -> {mst}, the same invalid_token challenge")

    # Logs.
    lines = [json.loads(x) for x in as_log.read_text().splitlines()]
    tokens = [x for x in lines if x["path"] == "/token"]
    check(all("scope_param" in x for x in tokens), "AS log: every token request says whether it carried scope")
    check([x.get("injected") for x in tokens if x.get("injected")] == ["refresh-requires-scope", "fail-next-token"], "AS log: the two injected answers")
    auths = [x for x in lines if x["path"] == "/auth" and x.get("prompt") == "consent"]
    check(len(auths) >= 3, f"AS log records prompt ({len(auths)} prompt=consent requests)")
    mlines = [json.loads(x) for x in mcp_log.read_text().splitlines()]
    check(
        mlines[0] == dict(mlines[0], method="POST", path="/mcp", status=401, authorization=False, session=False)
        and any(x["session"] and x["protocol_version"] == "2025-11-25" for x in mlines),
        f"FastMCP log: first line {mlines[0]}",
    )
    print(f"  FastMCP section: {time.monotonic() - t0:.1f}s")


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
        # 13. FastMCP (PyPI fastmcp 4.x) in front of oidc-provider's defaults.
        fastmcp_checks(env, logdir, procs)
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
