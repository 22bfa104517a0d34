#!/usr/bin/env python3
"""A real OAuth-protected MCP server for mcp-oauth's integration tests.

Built on the official MCP Python SDK (``mcp``, pinned in tests/python/requirements.txt):
FastMCP over Streamable HTTP with the SDK's own resource-server auth (``AuthSettings`` +
a ``TokenVerifier``), so the 401 challenge, the protected-resource-metadata route and
the bearer middleware are exactly what the SDK ships. Loopback only.

Usage:
    .deps/venv/bin/python tests/python/mcp_server.py --issuer http://127.0.0.1:PORT [--port N]

Options / environment:
    --port N | MCP_PORT        listen port (default 0 = any free port)
    --issuer URL | MCP_ISSUER  the authorization server's issuer (required), e.g. the
                               "issuer" of tests/node/oidc-as.mjs's ready line
    --scope S | MCP_SCOPES     scopes_supported / required scope (default "mcp:tools")
    --prm-as exact|sdk | MCP_PRM_AS
                               how PRM ``authorization_servers`` is spelled:
                               exact (default) = the issuer string verbatim;
                               sdk = what the unmodified SDK serves: pydantic's AnyHttpUrl
                               re-serialisation, which appends "/" to a path-less issuer
                               ("http://127.0.0.1:PORT/"), a real-world trailing-slash quirk.
    MCP_LOG                    append one JSON line per HTTP request (method, path, status,
                               whether an Authorization header was present) to this file.
    MCP_EXIT_ON_STDIN_EOF=1    exit as soon as stdin reaches EOF (a parent that holds our
                               stdin pipe takes us down with it, even if it is SIGKILLed).

On startup it prints one JSON line on stdout:
    {"ready": true, "url": "http://127.0.0.1:P/mcp", "prm": "...", "issuer": "...", "port": P, "pid": N}

What a client sees:
* ``POST /mcp`` without a valid token -> 401 with the SDK's challenge
  ``WWW-Authenticate: Bearer error="invalid_token", error_description="Authentication required",
  resource_metadata="http://127.0.0.1:P/.well-known/oauth-protected-resource/mcp"``.
* PRM only at ``/.well-known/oauth-protected-resource/mcp``:
  ``{"resource": "http://127.0.0.1:P/mcp", "authorization_servers": [<issuer>],
  "scopes_supported": ["mcp:tools"], "bearer_methods_supported": ["header"]}``;
  the root ``/.well-known/oauth-protected-resource`` is a 404.
* Tokens: JWTs verified with the AS's JWKS (``<issuer>/jwks``, discovered from the AS
  metadata), checking signature (RS256/ES256/PS256/EdDSA), ``iss`` == issuer exactly,
  ``aud`` contains the MCP URL exactly, ``exp`` (no leeway), and scope ``mcp:tools``.
* Tools: ``echo(text)`` returns ``text``; ``whoami()`` returns ``{"sub", "scope",
  "client_id", "aud"}`` of the presented token as JSON text.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
import time
import urllib.request
from typing import Any

import anyio
import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.fastmcp import FastMCP
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger("mcp_server")


class JwtVerifier:
    """The SDK's TokenVerifier protocol, backed by PyJWT and the AS's JWKS."""

    def __init__(self, issuer: str, audience: str, required_scopes: list[str]):
        self.issuer = issuer
        self.audience = audience
        self.required_scopes = required_scopes
        self._jwks: jwt.PyJWKClient | None = None

    def _jwks_client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            jwks_uri = None
            for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
                try:
                    with urllib.request.urlopen(self.issuer + path, timeout=5) as resp:
                        meta = json.load(resp)
                    if meta.get("issuer") == self.issuer and meta.get("jwks_uri"):
                        jwks_uri = meta["jwks_uri"]
                        break
                except Exception as exc:  # noqa: BLE001 - try the next well-known URL
                    log.info("AS metadata %s%s: %s", self.issuer, path, exc)
            if jwks_uri is None:
                raise RuntimeError(f"no usable AS metadata with jwks_uri for issuer {self.issuer}")
            self._jwks = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=300, timeout=5)
        return self._jwks

    def _verify_sync(self, token: str) -> AccessToken | None:
        try:
            key = self._jwks_client().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "PS256", "ES256", "EdDSA"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["iss", "aud", "exp", "sub"], "strict_aud": False},
            )
        except Exception as exc:  # noqa: BLE001 - any failure means "not a valid token"
            log.warning("token rejected: %s: %s", type(exc).__name__, exc)
            return None
        # PyJWT compares iss with ==; make the exact-string intent explicit anyway.
        if claims.get("iss") != self.issuer:
            log.warning("token rejected: iss %r != %r", claims.get("iss"), self.issuer)
            return None
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if self.audience not in auds:
            log.warning("token rejected: aud %r does not contain %r", aud, self.audience)
            return None
        scopes = str(claims.get("scope") or "").split()
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or ""),
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=self.audience,
            subject=str(claims.get("sub")),
            claims=claims,
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        return await anyio.to_thread.run_sync(self._verify_sync, token)


class RequestLog:
    """ASGI middleware: one JSON line per HTTP request to MCP_LOG (no header values)."""

    def __init__(self, app: Any, path: str | None):
        self.app = app
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.path:
            await self.app(scope, receive, send)
            return
        status: dict[str, int] = {}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        headers = {k.decode("latin-1").lower() for k, _ in scope.get("headers", [])}
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            entry = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status.get("code"),
                "authorization": "authorization" in headers,
            }
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


def build_app(url: str, issuer: str, scope: str, prm_as: str) -> Any:
    mcp = FastMCP(
        "mcp-oauth-test-server",
        instructions="Test server for mcp-oauth's real-server integration tests.",
        token_verifier=JwtVerifier(issuer, url, [scope]),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(url),
            required_scopes=[scope],
            # The verifier checks `aud` itself *and* reports it as AccessToken.resource.
            validate_token_resource=True,
        ),
        streamable_http_path="/mcp",
    )

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the given text unchanged."""
        return text

    @mcp.tool()
    def whoami() -> str:
        """Describe the access token this request was authorized with."""
        token = get_access_token()
        claims = (token.claims or {}) if token else {}
        return json.dumps(
            {
                "sub": token.subject if token else None,
                "scope": " ".join(token.scopes) if token else None,
                "client_id": token.client_id if token else None,
                "aud": claims.get("aud"),
            }
        )

    app = mcp.streamable_http_app()

    prm_path = "/.well-known/oauth-protected-resource/mcp"
    sdk_routes = [r for r in app.router.routes if getattr(r, "path", None) == prm_path]
    if len(sdk_routes) != 1:
        raise RuntimeError(f"the SDK did not register exactly one PRM route at {prm_path}: {app.router.routes}")
    if prm_as == "exact":
        # Same document the SDK serves, but with the issuer string verbatim (the SDK's
        # pydantic URL type turns "http://127.0.0.1:P" into "http://127.0.0.1:P/").
        document = {
            "resource": url,
            "authorization_servers": [issuer],
            "scopes_supported": [scope],
            "bearer_methods_supported": ["header"],
        }

        async def prm(_request: Request) -> JSONResponse:
            return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600"})

        idx = app.router.routes.index(sdk_routes[0])
        app.router.routes[idx] = Route(prm_path, endpoint=prm, methods=["GET", "OPTIONS"])
    elif prm_as != "sdk":
        raise SystemExit(f"--prm-as must be exact or sdk, not {prm_as!r}")
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("MCP_PORT", "0")))
    parser.add_argument("--issuer", default=os.environ.get("MCP_ISSUER"))
    parser.add_argument("--scope", default=os.environ.get("MCP_SCOPES", "mcp:tools"))
    parser.add_argument("--prm-as", default=os.environ.get("MCP_PRM_AS", "exact"), choices=["exact", "sdk"])
    args = parser.parse_args()
    if not args.issuer:
        parser.error("--issuer (or MCP_ISSUER) is required")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="[mcp-server] %(levelname)s %(name)s: %(message)s")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"

    app = RequestLog(build_app(url, args.issuer, args.scope, args.prm_as), os.environ.get("MCP_LOG"))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)

    async def run() -> None:
        async def announce() -> None:
            while not server.started:
                await anyio.sleep(0.02)
            ready = {
                "ready": True,
                "url": url,
                "prm": f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp",
                "issuer": args.issuer,
                "port": port,
                "pid": os.getpid(),
            }
            print(json.dumps(ready), flush=True)

        async with anyio.create_task_group() as tg:
            tg.start_soon(announce)
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()

    if os.environ.get("MCP_EXIT_ON_STDIN_EOF") == "1":

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()

    anyio.run(run)


if __name__ == "__main__":
    main()
