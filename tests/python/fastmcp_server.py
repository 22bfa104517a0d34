#!/usr/bin/env python3
"""A FastMCP 4.x server written the way FastMCP's documentation tells its users to write one:
the seed bug report's server, as a test fixture for mcp-oauth.

The server itself (everything inside ``build_server`` and the ``mcp.run(...)`` call) is
FastMCP's documented "Remote OAuth" pattern with nothing added: ``RemoteAuthProvider`` +
``JWTVerifier`` in front of an external authorization server (here oidc-provider,
tests/node/oidc-as.mjs, normally with ``AS_PROFILE=default``), **no scope configuration**
(no ``required_scopes``, no ``scopes_supported``), and
``mcp.run(transport="streamable-http", path="/mcp")``. Whatever a client sees (the 401
challenge, the protected resource metadata, how tokens are judged) is FastMCP's default
behaviour. Runs on PyPI ``fastmcp`` (tests/python/requirements-fastmcp.txt, installed into
.deps/venv-fastmcp by scripts/bootstrap), not on the MCP SDK's built-in FastMCP class.

Usage:
    .deps/venv-fastmcp/bin/python tests/python/fastmcp_server.py --issuer http://127.0.0.1:PORT [--port N]

Test-harness additions (none of them changes how FastMCP behaves):
    --issuer URL | MCP_ISSUER  the authorization server's issuer (required): where a user
                               would paste their IdP's URL. The JWKS URL is read once at
                               startup from the issuer's metadata (``jwks_uri``), where a user
                               would paste it from the same document.
    --port N | MCP_PORT        listen port; 0 (default) = pick a free one before starting
                               (bind a socket to port 0, read its port, close it; FastMCP
                               then binds that port itself)
    MCP_LOG                    append one JSON line per HTTP request to this file: ts,
                               method, path, status, authorization (whether an Authorization
                               header came), protocol_version (MCP-Protocol-Version),
                               session (whether an Mcp-Session-Id came). An ASGI middleware
                               passed through ``mcp.run(middleware=[...])``, FastMCP's
                               documented hook; it only observes. FastMCP puts its Host/Origin
                               guard outside user middleware, so a request that guard refuses
                               is not logged.
    MCP_EXIT_ON_STDIN_EOF=1    exit as soon as stdin reaches EOF (a parent that holds our
                               stdin pipe takes us down with it, even if it is SIGKILLed)

On startup, once the port accepts connections, it prints one JSON line on stdout
(the protocol of tests/python/mcp_server.py):
    {"ready": true, "url": "http://127.0.0.1:P/mcp", "issuer": "...", "port": P, "pid": N}
and nothing else there: FastMCP's banner and logs go to stderr, and so does uvicorn's
access log, which would go to stdout (fd 1 is pointed at stderr after startup).

Tools: ``echo(text)`` returns ``text``; ``whoami()`` returns the presented access token's
``sub``, ``scope``, ``client_id`` and ``aud`` as JSON text (FastMCP's ``get_access_token()``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.auth import RemoteAuthProvider
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.server.dependencies import get_access_token
from pydantic import AnyHttpUrl
from starlette.middleware import Middleware


def build_server(issuer: str, jwks_uri: str, origin: str) -> FastMCP:
    """The server, as FastMCP's docs write it (servers/auth/remote-oauth): a JWT verifier for
    the IdP's tokens, the IdP as the one authorization server, this server's base URL."""
    token_verifier = JWTVerifier(
        jwks_uri=jwks_uri,
        issuer=issuer,
        audience=f"{origin}/mcp",
    )
    auth = RemoteAuthProvider(
        token_verifier=token_verifier,
        authorization_servers=[AnyHttpUrl(issuer)],
        base_url=origin,
    )
    mcp = FastMCP("mcp-oauth FastMCP fixture", auth=auth)
    add_tools(mcp)
    return mcp


def add_tools(mcp: FastMCP) -> None:
    """The fixture's tools: ``echo(text)``, and ``whoami()`` from FastMCP's
    ``get_access_token()``."""

    @mcp.tool
    def echo(text: str) -> str:
        """Return the given text unchanged."""
        return text

    @mcp.tool
    def whoami() -> str:
        """Describe the access token this request was authorized with."""
        token = get_access_token()
        claims: dict[str, Any] = (token.claims or {}) if token else {}
        return json.dumps(
            {
                "sub": claims.get("sub") if token else None,
                "scope": " ".join(token.scopes) if token else None,
                "client_id": token.client_id if token else None,
                "aud": claims.get("aud"),
            }
        )


# ---------------------------------------------------------------- test harness only


class RequestLog:
    """ASGI middleware: one JSON line per HTTP request to MCP_LOG (no header values but the
    protocol version). Observation only: the request and response pass through untouched."""

    def __init__(self, app: Any, path: str):
        self.app = app
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: dict[str, int] = {}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        raw = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            entry = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status.get("code"),
                "authorization": "authorization" in raw,
                "protocol_version": raw.get("mcp-protocol-version"),
                "session": "mcp-session-id" in raw,
            }
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


def jwks_uri_of(issuer: str) -> str:
    """``jwks_uri`` from the issuer's metadata (RFC 8414, then OIDC discovery)."""
    errors = []
    for suffix in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(issuer.rstrip("/") + suffix, timeout=5) as resp:
                meta = json.load(resp)
            if meta.get("jwks_uri"):
                return str(meta["jwks_uri"])
            errors.append(f"{suffix}: no jwks_uri")
        except Exception as exc:  # noqa: BLE001 - try the next well-known URL
            errors.append(f"{suffix}: {exc}")
    raise SystemExit(f"fastmcp_server: no jwks_uri for issuer {issuer}: {'; '.join(errors)}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def announce_when_listening(ready: dict[str, Any], out: Any) -> None:
    """Writes the ready line to ``out`` once 127.0.0.1:port accepts connections (FastMCP's
    run() has no started hook)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", ready["port"]), timeout=1):
                break
        except OSError:
            time.sleep(0.02)
    else:
        print(f"fastmcp_server: port {ready['port']} never accepted connections", file=sys.stderr)
        os._exit(1)
    out.write(json.dumps(ready) + "\n")
    out.flush()


def announce_and_watch_stdin(ready: dict[str, Any]) -> None:
    """The harness around ``mcp.run``: the ready line alone on stdout once the port
    listens, and (MCP_EXIT_ON_STDIN_EOF=1) exit at stdin's EOF.

    stdout carries the ready line only: uvicorn's access log (which FastMCP leaves at
    uvicorn's default, stdout) would otherwise follow it there, and a parent that reads
    just the ready line would eventually block us on a full pipe. Everything written to
    fd 1 goes to stderr from here on; the ready line goes to a copy of the original fd 1.
    """
    ready_out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    threading.Thread(target=announce_when_listening, args=(ready, ready_out), daemon=True).start()

    if os.environ.get("MCP_EXIT_ON_STDIN_EOF") == "1":

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("MCP_PORT", "0")))
    parser.add_argument("--issuer", default=os.environ.get("MCP_ISSUER"))
    args = parser.parse_args()
    if not args.issuer:
        parser.error("--issuer (or MCP_ISSUER) is required")

    port = args.port or free_port()
    origin = f"http://127.0.0.1:{port}"
    mcp = build_server(args.issuer, jwks_uri_of(args.issuer), origin)

    middleware = [Middleware(RequestLog, path=os.environ["MCP_LOG"])] if os.environ.get("MCP_LOG") else None
    ready = {"ready": True, "url": f"{origin}/mcp", "issuer": args.issuer, "port": port, "pid": os.getpid()}
    announce_and_watch_stdin(ready)

    # Exactly the seed report's call, plus where to listen and the log middleware.
    mcp.run(transport="streamable-http", path="/mcp", host="127.0.0.1", port=port, middleware=middleware)


if __name__ == "__main__":
    main()
