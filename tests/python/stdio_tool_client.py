#!/usr/bin/env python3
"""A stdio MCP client on the official MCP Python SDK that calls one named tool.

Usage:  stdio_tool_client.py TOOL ARGS_JSON COMMAND [ARGS...]

Launches COMMAND ARGS (e.g. ``mcp-oauth proxy http://localhost:3000/mcp``) as a stdio MCP
server with the SDK's ``stdio_client`` (the whole environment is passed on), initializes,
lists the tools, calls TOOL with the JSON object ARGS_JSON and prints one JSON line:

  {"protocol": ..., "tools": [...], "text": <the first text content of the result>}

For servers whose tools are their own (tests/python/proxy_client.py calls the project's
``echo`` and ``whoami``). Exit status 0 on success; an exception otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    tool, arguments = sys.argv[1], json.loads(sys.argv[2])
    params = StdioServerParameters(command=sys.argv[3], args=sys.argv[4:], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool(tool, arguments)
            if result.isError:
                raise RuntimeError(f"{tool} reported an error: {result}")
            print(
                json.dumps(
                    {
                        "protocol": init.protocolVersion,
                        "tools": sorted(t.name for t in tools.tools),
                        "text": result.content[0].text,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
