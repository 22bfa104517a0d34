#!/usr/bin/env python3
"""A stdio MCP client built on the official MCP Python SDK, for mcp-oauth's proxy tests.

Usage:  proxy_client.py COMMAND [ARGS...]

Launches COMMAND ARGS (e.g. ``mcp-oauth proxy http://127.0.0.1:P/mcp``) as a stdio MCP
server with the SDK's ``stdio_client`` (the whole environment is passed on), initializes,
lists the tools, calls ``echo`` and ``whoami`` and prints one JSON line:

  {"client": "python-sdk", "server": ..., "protocol": ..., "tools": [...], "echo": ..., "whoami": {...}}

Exit status 0 on success; an exception (with a traceback on stderr) otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    params = StdioServerParameters(command=sys.argv[1], args=sys.argv[2:], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            echo = await session.call_tool("echo", {"text": "through the proxy"})
            who = await session.call_tool("whoami", {})
            if echo.isError or who.isError:
                raise RuntimeError(f"a tool reported an error: {echo} {who}")
            print(
                json.dumps(
                    {
                        "client": "python-sdk",
                        "server": init.serverInfo.name,
                        "protocol": init.protocolVersion,
                        "tools": sorted(t.name for t in tools.tools),
                        "echo": echo.content[0].text,
                        "whoami": json.loads(who.content[0].text),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
