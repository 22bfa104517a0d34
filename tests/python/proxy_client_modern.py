#!/usr/bin/env python3
"""A stdio MCP client built on the official MCP Python SDK 2.x, for mcp-oauth's proxy tests.

Usage:  .deps/venv-modern/bin/python proxy_client_modern.py COMMAND [ARGS...]

The 2.x twin of proxy_client.py: launches COMMAND ARGS (e.g. ``mcp-oauth proxy
http://127.0.0.1:P/mcp``) as a stdio MCP server with the SDK's ``Client`` in its default
``mode="auto"`` (it probes ``server/discover`` and speaks 2026-07-28 when the server does,
else falls back to the ``initialize`` handshake), lists the tools, calls ``echo`` and
``whoami`` and prints one JSON line:

  {"client": "python-sdk-2", "server": ..., "protocol": ..., "tools": [...], "echo": ..., "whoami": {...}}

Exit status 0 on success; an exception (with a traceback on stderr) otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters


async def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    params = StdioServerParameters(command=sys.argv[1], args=sys.argv[2:], env=dict(os.environ))
    async with Client(params, mode="auto", read_timeout_seconds=60) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("echo", {"text": "through the proxy"})
        who = await client.call_tool("whoami", {})
        if echo.is_error or who.is_error:
            raise RuntimeError(f"a tool reported an error: {echo} {who}")
        info = client.server_info
        print(
            json.dumps(
                {
                    "client": "python-sdk-2",
                    "server": info.name if info else None,
                    "protocol": client.protocol_version,
                    "tools": sorted(t.name for t in tools.tools),
                    "echo": echo.content[0].text,
                    "whoami": json.loads(who.content[0].text),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
