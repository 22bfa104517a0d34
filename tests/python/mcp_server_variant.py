#!/usr/bin/env python3
"""tests/python/mcp_server.py with FastMCP settings changed from the environment, for the
proxy tests' second wire. Same arguments, output and behaviour as mcp_server.py.

  MCP_STATELESS_HTTP=1   FastMCP(stateless_http=True): no Mcp-Session-Id, no GET stream
  MCP_JSON_RESPONSE=1    FastMCP(json_response=True): application/json instead of SSE

Implemented by wrapping FastMCP.__init__ before running mcp_server.py unchanged.
"""

from __future__ import annotations

import os
import runpy
import sys

from mcp.server.fastmcp import FastMCP

_init = FastMCP.__init__


def _patched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    if os.environ.get("MCP_STATELESS_HTTP") == "1":
        kwargs.setdefault("stateless_http", True)
    if os.environ.get("MCP_JSON_RESPONSE") == "1":
        kwargs.setdefault("json_response", True)
    _init(self, *args, **kwargs)


FastMCP.__init__ = _patched  # type: ignore[method-assign]

if __name__ == "__main__":
    server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mcp_server.py")
    sys.argv = [server, *sys.argv[1:]]
    runpy.run_path(server, run_name="__main__")
