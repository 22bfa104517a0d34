#!/usr/bin/env python3
"""A real OAuth-protected MCP server for mcp-oauth's integration tests.

Built on the official MCP Python SDK (``mcp``): FastMCP over Streamable HTTP with the SDK's
own resource-server auth (``AuthSettings`` + a ``TokenVerifier``), so the 401 challenge,
the protected-resource-metadata route and the bearer middleware are exactly what the SDK
ships. Loopback only. Runs on either SDK major: 1.x (tests/python/requirements.txt,
.deps/venv: the 2025-11-25 wire) and 2.x (tests/python/requirements-modern.txt,
.deps/venv-modern: FastMCP is ``MCPServer`` there, and it serves the 2026-07-28 wire beside
the legacy one).

Usage:
    .deps/venv/bin/python tests/python/mcp_server.py --issuer http://127.0.0.1:PORT [--port N]
    .deps/venv-modern/bin/python tests/python/mcp_server.py --issuer ...   (SDK 2.x)

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
    MCP_MODERN_ONLY=1          (SDK 2.x only) serve the 2026-07-28 wire alone: an
                               authorized legacy POST gets 400 and the SDK's
                               UnsupportedProtocolVersionError (ModernOnly), GET/DELETE 405
    --stdio                    serve the same tools on stdio instead, without auth (``whoami``
                               then reports no token): a server the stdio client fixtures'
                               self-test (fixture_selftest.py) can launch
    MCP_LOG                    append one JSON line per HTTP request (method, path, status,
                               whether an Authorization header was present, the
                               MCP-Protocol-Version, Mcp-Method and Mcp-Name headers, whether an
                               Mcp-Session-Id was sent) to this file.
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
from pydantic import AnyHttpUrl

try:  # SDK 1.x (.deps/venv)
    from mcp.server.fastmcp import FastMCP as _Server

    SDK_MAJOR = 1
except ModuleNotFoundError:  # SDK 2.x (.deps/venv-modern): FastMCP is MCPServer there
    from mcp.server.mcpserver import MCPServer as _Server

    SDK_MAJOR = 2
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

        raw = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        headers = set(raw)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            entry = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status.get("code"),
                "authorization": "authorization" in headers,
                # The wire the request came on (protocol headers carry no secrets).
                "protocol_version": raw.get("mcp-protocol-version"),
                "mcp_method": raw.get("mcp-method"),
                "mcp_name": raw.get("mcp-name"),
                "session": "mcp-session-id" in headers,
            }
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


class ModernOnly:
    """ASGI app in front of the SDK's /mcp handler (behind its bearer auth) that makes the
    server 2026-07-28-only (MCP_MODERN_ONLY=1; SDK 2.x has no setting for it).

    SDK 2.x serves both eras on one endpoint: its session manager sends a request whose
    ``MCP-Protocol-Version`` is not a handshake-era version to the 2026-07-28 handler, and
    everything else to the legacy one. This keeps that routing and replaces the legacy
    branch with what the spec asks of a modern-only server (streamable-http.md, "Protocol
    Version Header"; versioning.md: it names its versions in any error to
    ``initialize``): a POST gets ``400`` and the SDK's own ``UnsupportedProtocolVersionError``
    (-32022, ``supported`` = the SDK's modern versions), the legacy GET stream and DELETE
    get ``405``."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await self.app(scope, receive, send)
        elif scope.get("method") != "POST":
            await _respond(send, 405, b"")
        else:
            msg = await _json_body(receive)
            requested = version or str((msg.get("params") or {}).get("protocolVersion") or "")
            await _respond(send, 400, json.dumps(_unsupported_version(msg.get("id"), requested)).encode(), "application/json")


def _unsupported_version(request_id: Any, requested: str) -> dict[str, Any]:
    """The SDK's UnsupportedProtocolVersionError for ``requested``, as a JSON-RPC error."""
    from mcp.shared.inbound import unsupported_protocol_version_rejection

    rejection = unsupported_protocol_version_rejection(requested)
    assert rejection is not None, f"{requested!r} is a modern version"
    error = {"code": rejection.code, "message": rejection.message, "data": rejection.data}
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


async def _json_body(receive: Any) -> dict[str, Any]:
    """The request body as a JSON object ({} when it is none)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    try:
        msg = json.loads(body)
    except ValueError:
        return {}
    return msg if isinstance(msg, dict) else {}


async def _respond(send: Any, status: int, body: bytes, content_type: str | None = None) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def modern_only(app: Any, path: str) -> None:
    """Puts ModernOnly between the SDK's bearer auth and its handler at ``path``, so that
    a request without a valid token still gets the SDK's 401 challenge first."""
    routes = [r for r in app.router.routes if getattr(r, "path", None) == path]
    auth = routes[0].endpoint if len(routes) == 1 else None
    if not hasattr(auth, "required_scopes"):
        raise RuntimeError(f"no SDK bearer-auth route at {path}: {app.router.routes}")
    auth.app = ModernOnly(auth.app)


def build_server(auth: dict[str, Any]) -> Any:
    """The SDK server with the tools; ``auth`` holds its auth keyword arguments ({} for
    none)."""
    common = dict(instructions="Test server for mcp-oauth's real-server integration tests.", **auth)
    # 1.x takes the path in the constructor, 2.x in streamable_http_app().
    if SDK_MAJOR == 1:
        mcp = _Server("mcp-oauth-test-server", streamable_http_path="/mcp", **common)
    else:
        mcp = _Server("mcp-oauth-test-server", **common)

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

    return mcp


def build_app(url: str, issuer: str, scope: str, prm_as: str) -> Any:
    auth = dict(
        token_verifier=JwtVerifier(issuer, url, [scope]),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(url),
            required_scopes=[scope],
            # The verifier checks `aud` itself *and* reports it as AccessToken.resource.
            validate_token_resource=True,
        ),
    )
    mcp = build_server(auth)
    app = mcp.streamable_http_app() if SDK_MAJOR == 1 else mcp.streamable_http_app(streamable_http_path="/mcp")

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
    parser.add_argument("--stdio", action="store_true", help="serve the tools on stdio, without auth")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="[mcp-server] %(levelname)s %(name)s: %(message)s")
    if args.stdio:
        build_server({}).run("stdio")
        return
    if not args.issuer:
        parser.error("--issuer (or MCP_ISSUER) is required")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"

    app = build_app(url, args.issuer, args.scope, args.prm_as)
    if os.environ.get("MCP_MODERN_ONLY") == "1":
        if SDK_MAJOR < 2:
            raise SystemExit("MCP_MODERN_ONLY=1 needs the 2.x SDK (.deps/venv-modern)")
        modern_only(app, "/mcp")
    app = RequestLog(app, os.environ.get("MCP_LOG"))
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
