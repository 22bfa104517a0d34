#!/usr/bin/env python3
"""An MCP server that asks for no authorization: the MCP Python SDK's FastMCP over
Streamable HTTP, as its quick start writes it, with no auth settings at all.

mcp-oauth's CLI tests (crates/mcp-oauth-cli/tests/new_user.rs) use it to check what a
user is told when a server needs no OAuth: `call` simply works, `login` says there is
nothing to log in to, `doctor` says so too. Loopback only.

Usage:
    .deps/venv/bin/python tests/python/open_mcp_server.py [--port N]

On startup it prints one JSON line on stdout:
    {"ready": true, "url": "http://127.0.0.1:P/mcp", "port": P, "pid": N}

Tools: ``echo(text)`` returns ``text``. With MCP_EXIT_ON_STDIN_EOF=1 it exits when its
stdin reaches EOF (a parent holding the pipe takes it down with it).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading

import anyio
import uvicorn

try:  # SDK 1.x (.deps/venv)
    from mcp.server.fastmcp import FastMCP as _Server
except ModuleNotFoundError:  # SDK 2.x: FastMCP is MCPServer there
    from mcp.server.mcpserver import MCPServer as _Server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    mcp = _Server("open-mcp-server")

    @mcp.tool()
    def echo(text: str) -> str:
        """Returns the text it is given."""
        return text

    app = mcp.streamable_http_app()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1))

    async def run() -> None:
        async def announce() -> None:
            while not server.started:
                await anyio.sleep(0.02)
            ready = {"ready": True, "url": f"http://127.0.0.1:{port}/mcp", "port": port, "pid": os.getpid()}
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
