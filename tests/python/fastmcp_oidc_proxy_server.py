#!/usr/bin/env python3
"""A FastMCP 4.x server behind FastMCP's ``OIDCProxy``, in front of a real OpenID provider:
how FastMCP users put an MCP server in front of Auth0, Google, Azure, Keycloak or any
OIDC identity provider (FastMCP's provider classes for those are this proxy). The
proxy is the MCP client's authorization server: it registers clients itself (DCR), shows
its own consent page, sends the user on to the upstream provider with its one
pre-registered confidential client, and issues its own tokens.

The server (everything inside ``build_server`` and the ``mcp.run(...)`` call) is
``OIDCProxy(config_url=…, client_id=…, client_secret=…, base_url=…)`` as its docstring
shows, with the upstream client's credentials from the environment (as a user keeps
them out of source). With ``--scopes`` (the test's default) it departs from that minimum
where oidc-provider's defaults require, each with ``OIDCProxy``'s documented parameters:

* ``required_scopes=["mcp:tools"]``: with no scope at all the proxy sends none upstream,
  and oidc-provider grants nothing (``access_denied``, "no scope was granted"); with
  ``openid`` the upstream access token is an opaque userinfo token (the proxy sends no
  ``resource`` to the token endpoint, and oidc-provider keeps the granted resource only
  without ``openid``), which the proxy's JWT verifier cannot read. ``mcp:tools`` is the
  resource scope oidc-provider grants for this resource, as a JWT.
* ``valid_scopes`` adds ``offline_access`` and ``extra_authorize_params`` sends
  ``prompt=consent``: oidc-provider issues a refresh token only for ``offline_access``,
  which it keeps only with ``prompt=consent`` (OpenID Connect Core §11).

``--minimal`` runs the docstring's minimum unchanged (the unbent case: it cannot work with
oidc-provider's defaults, for the first reason above).

Usage:
    .deps/venv-fastmcp/bin/python tests/python/fastmcp_oidc_proxy_server.py \\
        --upstream http://127.0.0.1:AS --port N [--minimal]

Environment: UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET (the upstream client, registered
with the redirect URI ``http://127.0.0.1:N/auth/callback``); FASTMCP_HOME (where the proxy
keeps its clients and tokens); MCP_LOG, MCP_EXIT_ON_STDIN_EOF and the ready line as in
fastmcp_server.py, whose harness this reuses.

Tools: fastmcp_server.py's ``echo(text)`` and ``whoami()`` (here ``whoami`` describes the
proxy's token as FastMCP hands it to a tool: ``sub``, ``scope``, ``client_id``, ``aud``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.auth.oidc_proxy import OIDCProxy
from starlette.middleware import Middleware

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastmcp_server import RequestLog, add_tools, announce_and_watch_stdin  # noqa: E402


def build_server(upstream: str, origin: str, minimal: bool) -> FastMCP:
    """``OIDCProxy`` as its docstring writes it, plus (unless ``minimal``) the scope
    settings oidc-provider's defaults need (see the module documentation)."""
    settings: dict[str, Any] = {}
    if not minimal:
        settings = {
            "required_scopes": ["mcp:tools"],
            "valid_scopes": ["mcp:tools", "offline_access"],
            "extra_authorize_params": {"prompt": "consent"},
        }
    auth = OIDCProxy(
        config_url=f"{upstream}/.well-known/openid-configuration",
        client_id=os.environ["UPSTREAM_CLIENT_ID"],
        client_secret=os.environ["UPSTREAM_CLIENT_SECRET"],
        base_url=origin,
        **settings,
    )
    mcp = FastMCP("mcp-oauth FastMCP OIDCProxy fixture", auth=auth)
    add_tools(mcp)
    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="the OpenID provider's issuer")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--minimal", action="store_true", help="OIDCProxy's docstring minimum, unbent")
    args = parser.parse_args()

    origin = f"http://127.0.0.1:{args.port}"
    mcp = build_server(args.upstream.rstrip("/"), origin, args.minimal)
    middleware = [Middleware(RequestLog, path=os.environ["MCP_LOG"])] if os.environ.get("MCP_LOG") else None
    ready = {"ready": True, "url": f"{origin}/mcp", "issuer": f"{origin}/", "port": args.port, "pid": os.getpid()}
    announce_and_watch_stdin(ready)
    mcp.run(transport="streamable-http", path="/mcp", host="127.0.0.1", port=args.port, middleware=middleware)


if __name__ == "__main__":
    main()
