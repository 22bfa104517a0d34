#!/usr/bin/env python3
"""Interop pair "fastmcp-oauth": FastMCP's own OAuth authorization server and its MCP server
in one FastMCP app, as FastMCP's docs set it up (tests/interop/CONTRACT.md, app-embedded pair).

What is FastMCP's and what is ours
----------------------------------
FastMCP documents a "Full OAuth Server" mode (docs: servers/auth/full-oauth-server): the
FastMCP app is authorization server and resource server at once; the author subclasses
``fastmcp.server.auth.OAuthProvider`` and FastMCP mounts the endpoints (``/register``,
``/authorize``, ``/token``, ``/revoke``, ``/.well-known/oauth-authorization-server``, the
protected resource metadata at ``/.well-known/oauth-protected-resource/mcp``) in front of
``/mcp``. FastMCP ships one such subclass, ``InMemoryOAuthProvider``
(``fastmcp.server.auth.providers.in_memory``, "an in-memory OAuth provider for testing
purposes"): clients, codes and tokens in dicts, opaque random tokens, and an
``authorize()`` that approves at once (no login or consent page: it stands in for the
user by itself). That provider is what runs here (behind the thin subclass below), with its
constructor's documented options: ``base_url=<origin>``, ``client_registration_options``,
``revocation_options``; then ``FastMCP(..., auth=provider)`` and
``mcp.run(transport="streamable-http", path="/mcp")`` as FastMCP's docs run a server.

Departures from the defaults, each needed and commented where it is made:
  * ``ClientRegistrationOptions(enabled=True)``: dynamic client registration is off by
    default in the MCP SDK's options (``enabled: bool = False``); an MCP client without a
    pre-registered client id needs it (the MCP authorization spec's way for a client to
    get one from an AS it has never seen).
  * ``RevocationOptions(enabled=True)``: the provider implements ``revoke_token`` but the
    ``/revoke`` route is mounted only when enabled (off by default).
  * ``INTEROP_AT_TTL``: the provider has no lifetime setting; its access-token lifetime is
    the module constant ``DEFAULT_ACCESS_TOKEN_EXPIRY_SECONDS`` (3600 s), read at each
    issuance. When the runner asks for a TTL we set that constant (nothing else changes).
  * The stand-in user, made explicit in a thin subclass (``TestUserProvider``): the
    provider's own auto-approval, the fixed test user recorded as the issued access tokens'
    ``subject`` (the shipped provider has no user, so whoami would have no ``sub``), and,
    reachable only with ``INTEROP_CONTROL=1``, a refusal of the next authorization with
    ``access_denied`` after ``POST /__interop/deny-next`` (the "user" says no) and
    ``POST /__interop/forget-clients``.

Harness only (observation, no change to FastMCP's behaviour): the ready line, logs through
an ASGI middleware passed with ``mcp.run(middleware=[...])`` (FastMCP's documented hook),
stdout pointed at stderr after the ready line, exit on stdin EOF.

Environment: see tests/interop/CONTRACT.md (INTEROP_AS_PORT / INTEROP_MCP_PORT: one app, one
port; INTEROP_STATE_DIR is unused: everything is in memory). ``--describe`` prints the pair's
description and exits.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from importlib.metadata import version as dist_version
from typing import Any

# ---------------------------------------------------------------- describe (fast path)

AS_PATHS = (
    "/register",
    "/authorize",
    "/token",
    "/revoke",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
)


def versions() -> dict[str, str]:
    return {name: dist_version(name) for name in ("fastmcp", "mcp", "starlette", "uvicorn")}


def describe() -> dict[str, Any]:
    return {
        "as": "fastmcp-oauth",
        "server": "fastmcp",
        "versions": versions(),
        "revocation": True,
        "rotation": True,
        "restart_forgets_clients": True,
        "notes": (
            "FastMCP 'Full OAuth Server' mode with the provider FastMCP ships, "
            "InMemoryOAuthProvider (for testing: dicts, opaque tokens, authorize() approves at "
            "once, so no login/consent page exists and the provider itself is the headless "
            "user). DCR (/register) and /revoke are off by default in the MCP SDK's options "
            "and turned on here (ClientRegistrationOptions(enabled=True), "
            "RevocationOptions(enabled=True)). Rotation: every refresh deletes the presented "
            "refresh token and its access token and issues a new pair; no reuse detection (a "
            "rotated-out refresh token is just unknown: invalid_grant). FastMCP's token "
            "endpoint answers invalid_grant with HTTP 401 (not 400) and unauthorized_client "
            "as 401 invalid_client. Revocation of either token removes both. Access-token "
            "lifetime is the module constant DEFAULT_ACCESS_TOKEN_EXPIRY_SECONDS (3600 s, no "
            "setting): INTEROP_AT_TTL overwrites that constant. Refresh tokens never expire. "
            "Unknown client_id at /authorize: 400 JSON error, no redirect. No 'iss' in the "
            "authorization response (RFC 9207 not implemented); tokens are not bound to the "
            "resource (the 'resource' parameter is accepted and ignored); the provider has no "
            "user: the stand-in records the fixed test user as the tokens' subject (whoami's "
            "sub). Scope: a scope the client did not name in its "
            "registration is refused at /authorize (invalid_scope, redirected), so a client "
            "that registered without 'scope' may only ask for none; no scope is advertised. "
            "Redirect URIs must match a registered one exactly (no loopback port relaxation). "
            "Clients whose registration names no token_endpoint_auth_method get a "
            "client_secret (client_secret_post). "
            "FastMCP's other AS, OAuthProxy (and OIDCProxy on top of it), is a different "
            "thing: it fronts an upstream IdP that has no DCR (upstream_client_id/secret "
            "registered by hand), answers DCR itself (loopback ports may vary), shows its own "
            "consent page before sending the browser to the upstream IdP with its fixed "
            "callback (require_authorization_consent=True by default), mints its own JWTs "
            "(jwt_signing_key) that reference the upstream tokens, and keeps clients and "
            "tokens in an encrypted file store by default; that pair is not built here."
        ),
    }


if __name__ == "__main__" and sys.argv[1:] == ["--describe"]:
    print(json.dumps(describe()))
    sys.exit(0)

# ---------------------------------------------------------------- the app (FastMCP's part)

from fastmcp import FastMCP  # noqa: E402
from fastmcp.server.auth.auth import ClientRegistrationOptions, RevocationOptions  # noqa: E402
from fastmcp.server.auth.providers import in_memory  # noqa: E402
from fastmcp.server.auth.providers.in_memory import InMemoryOAuthProvider  # noqa: E402
from fastmcp.server.dependencies import get_access_token  # noqa: E402
from mcp.server.auth.provider import AuthorizeError  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402


TEST_USER = "interop-test-user"


class TestUserProvider(InMemoryOAuthProvider):
    """The shipped provider with the stand-in for the user made explicit; everything else
    (storage, codes, tokens, rotation, revocation) is InMemoryOAuthProvider's own.

    * Its authorize() approves at once (the provider has no login or consent page): that is
      the stand-in user approving. An author's authorize() would log a user in; the shipped
      provider has no user at all, so the tokens it issues carry no subject. Here the fixed
      test user is recorded as each issued access token's ``subject`` (the MCP SDK's
      AccessToken field), so that whoami can name who approved (the contract's ``sub``).
    * Test-only, reachable only through POST /__interop/deny-next (INTEROP_CONTROL=1): the
      next authorization is refused with access_denied. The MCP SDK's authorization handler
      turns the AuthorizeError into the redirect to the client (error, error_description,
      state), as for any provider that refuses."""

    deny_next = False

    async def authorize(self, client, params):  # type: ignore[no-untyped-def]
        if self.deny_next:
            self.deny_next = False
            raise AuthorizeError(error="access_denied", error_description="the user denied the request")
        return await super().authorize(client, params)

    async def exchange_authorization_code(self, client, authorization_code):  # type: ignore[no-untyped-def]
        return self._with_subject(await super().exchange_authorization_code(client, authorization_code))

    async def exchange_refresh_token(self, client, refresh_token, scopes):  # type: ignore[no-untyped-def]
        return self._with_subject(await super().exchange_refresh_token(client, refresh_token, scopes))

    def _with_subject(self, issued):  # type: ignore[no-untyped-def]
        token = self.access_tokens.get(issued.access_token)
        if token is not None:
            self.access_tokens[issued.access_token] = token.model_copy(update={"subject": TEST_USER})
        return issued

    def forget_clients(self) -> None:
        """Every registered client and everything issued to one (the provider keeps no grants
        apart from its codes and tokens)."""
        self.clients.clear()
        self.auth_codes.clear()
        self.access_tokens.clear()
        self.refresh_tokens.clear()
        self._access_to_refresh_map.clear()
        self._refresh_to_access_map.clear()


def build_server(origin: str, control: bool) -> tuple[FastMCP, str]:
    auth = TestUserProvider(
        base_url=origin,
        # Off by default (MCP SDK ClientRegistrationOptions.enabled = False); MCP clients
        # register dynamically, so an MCP server author turns it on.
        client_registration_options=ClientRegistrationOptions(enabled=True),
        # Off by default too; the provider implements revoke_token, so offer /revoke.
        revocation_options=RevocationOptions(enabled=True),
    )
    mcp = FastMCP("interop fastmcp-oauth", auth=auth)

    @mcp.tool
    def echo(text: str) -> str:
        """Return the given text unchanged."""
        return text

    @mcp.tool
    def whoami() -> str:
        """Describe the access token this request was authorized with."""
        token = get_access_token()
        claims: dict[str, Any] = (getattr(token, "claims", None) or {}) if token else {}
        return json.dumps(
            {
                # The stand-in user (TestUserProvider); the shipped provider sets no subject.
                "sub": (getattr(token, "subject", None) or claims.get("sub")) if token else None,
                "client_id": token.client_id if token else None,
                "scope": " ".join(token.scopes) if token else None,
                "aud": claims.get("aud") if token else None,
                "resource": getattr(token, "resource", None) if token else None,
                "expires_at": token.expires_at if token else None,
            }
        )

    if control:
        # Test-only control endpoints (CONTRACT.md), FastMCP's documented custom_route hook.
        @mcp.custom_route("/__interop/deny-next", methods=["POST"])
        async def deny_next(_request: Request) -> Response:
            auth.deny_next = True
            return Response(status_code=204)

        @mcp.custom_route("/__interop/forget-clients", methods=["POST"])
        async def forget_clients(_request: Request) -> Response:
            auth.forget_clients()
            return Response(status_code=204)

    # The issuer as the AS's metadata states it: pydantic's AnyHttpUrl gives the bare
    # origin a trailing slash ("http://127.0.0.1:P/"), and clients compare against that.
    return mcp, str(auth.issuer_url)


# ---------------------------------------------------------------- test harness only


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class InteropLog:
    """ASGI middleware: one JSON line per HTTP request, to INTEROP_MCP_LOG for the MCP endpoint
    and the protected resource metadata, to INTEROP_AS_LOG for everything else (the AS's
    endpoints and metadata, the control endpoints). Observation only: the request body is
    copied as it passes through ``receive``, the response as it passes through ``send``.
    Logged: method, path, status; for the MCP side whether an Authorization header came;
    for the AS side grant_type, client_id and error where known. Never a code, token,
    verifier or secret (only those named fields are ever taken from a body)."""

    MAX_BODY = 64 * 1024

    def __init__(self, app: Any, as_log: str | None, mcp_log: str | None):
        self.app = app
        self.as_log = as_log
        self.mcp_log = mcp_log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path") or ""
        is_mcp = path == "/mcp" or path.startswith("/mcp/") or path.startswith("/.well-known/oauth-protected-resource")
        target = self.mcp_log if is_mcp else self.as_log
        if not target:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        req_body = bytearray()
        resp: dict[str, Any] = {"status": None, "location": None, "body": bytearray(), "ctype": ""}

        async def receive_wrapper() -> Any:
            message = await receive()
            if not is_mcp and message.get("type") == "http.request" and len(req_body) < self.MAX_BODY:
                req_body.extend(message.get("body", b""))
            return message

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                resp["status"] = message["status"]
                for k, v in message.get("headers", []):
                    name = k.decode("latin-1").lower()
                    if name == "location":
                        resp["location"] = v.decode("latin-1")
                    elif name == "content-type":
                        resp["ctype"] = v.decode("latin-1")
            elif message["type"] == "http.response.body" and not is_mcp and len(resp["body"]) < self.MAX_BODY:
                resp["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            entry: dict[str, Any] = {
                "ts": _now(),
                "method": scope.get("method"),
                "path": path,
                "status": resp["status"],
            }
            if is_mcp:
                entry["authorization"] = "authorization" in headers
            else:
                entry.update(self._as_fields(scope, headers, bytes(req_body), resp))
            with open(target, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    @staticmethod
    def _as_fields(scope: Any, headers: dict[str, str], body: bytes, resp: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        params: dict[str, list[str]] = urllib.parse.parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded") and body:
            params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
        if params.get("grant_type"):
            out["grant_type"] = params["grant_type"][0]
        if params.get("client_id"):
            out["client_id"] = params["client_id"][0]
        elif headers.get("authorization", "").startswith("Basic "):
            # client_secret_basic: the client id is the user part (the secret is not read).
            try:
                user = base64.b64decode(headers["authorization"][6:]).decode("utf-8").split(":", 1)[0]
                out["client_id"] = urllib.parse.unquote(user)
                out["client_auth"] = "basic"
            except (ValueError, UnicodeDecodeError):
                out["client_auth"] = "basic (unreadable)"
        if params.get("token_type_hint"):
            out["token_type_hint"] = params["token_type_hint"][0]
        # The response: a JSON error (token, register, revoke, or /authorize's direct error),
        # the client_id a registration answered with, or the error of a redirect.
        if resp["ctype"].startswith("application/json") and resp["body"]:
            try:
                doc = json.loads(bytes(resp["body"]))
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                if isinstance(doc.get("error"), str):
                    out["error"] = doc["error"]
                if scope.get("path") == "/register" and isinstance(doc.get("client_id"), str):
                    out["client_id"] = doc["client_id"]
        if resp["location"]:
            loc = urllib.parse.urlsplit(resp["location"])
            q = urllib.parse.parse_qs(loc.query)
            if q.get("error"):
                out["error"] = q["error"][0]
            out["redirect"] = f"{loc.scheme}://{loc.netloc}{loc.path}"
        return out


def bind_socket(port: int) -> socket.socket:
    """The listening socket, bound here (port 0 = a free one) and handed to uvicorn through
    ``mcp.run(sockets=[...])``, so the port is known before the app (whose base_url needs it)
    is built and no other process can take it in between."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def announce_when_listening(ready: dict[str, Any], out: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", ready["as_port"]), timeout=1):
                break
        except OSError:
            time.sleep(0.02)
    else:
        print(f"fastmcp-oauth: port {ready['as_port']} never accepted connections", file=sys.stderr)
        os._exit(1)
    out.write(json.dumps(ready) + "\n")
    out.flush()


def main() -> None:
    as_port = int(os.environ.get("INTEROP_AS_PORT") or 0)
    mcp_port = int(os.environ.get("INTEROP_MCP_PORT") or 0)
    if as_port and mcp_port and as_port != mcp_port:
        raise SystemExit(
            f"fastmcp-oauth: one app, one port: INTEROP_AS_PORT={as_port} and INTEROP_MCP_PORT={mcp_port} differ"
        )
    sock = bind_socket(as_port or mcp_port)
    port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"

    ttl = os.environ.get("INTEROP_AT_TTL")
    if ttl:
        # The provider has no lifetime setting: this module constant is its access-token
        # lifetime, looked up at every issuance (see the module docstring).
        in_memory.DEFAULT_ACCESS_TOKEN_EXPIRY_SECONDS = int(ttl)

    control = os.environ.get("INTEROP_CONTROL") == "1"
    mcp, issuer = build_server(origin, control)

    as_log, mcp_log = os.environ.get("INTEROP_AS_LOG"), os.environ.get("INTEROP_MCP_LOG")
    middleware = [Middleware(InteropLog, as_log=as_log, mcp_log=mcp_log)] if (as_log or mcp_log) else None

    ready = {
        "ready": True,
        "issuer": issuer,
        "mcp_url": f"{origin}/mcp",
        "as_port": port,
        "mcp_port": port,
        "pid": os.getpid(),
        "versions": versions(),
    }
    # stdout carries the ready line only: uvicorn's access log and FastMCP's banner would
    # follow it there. fd 1 goes to stderr from here on; the ready line to a copy of fd 1.
    ready_out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    threading.Thread(target=announce_when_listening, args=(ready, ready_out), daemon=True).start()

    if os.environ.get("INTEROP_EXIT_ON_STDIN_EOF") == "1":

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()

    # FastMCP's documented call, plus where to listen (a pre-bound socket), the log
    # middleware, and no banner (startup time; the banner is cosmetic).
    mcp.run(
        transport="streamable-http",
        path="/mcp",
        host="127.0.0.1",
        port=port,
        middleware=middleware,
        sockets=[sock],
        show_banner=False,
    )


if __name__ == "__main__":
    main()
