#!/usr/bin/env node
// A stdio MCP client built on the official MCP TypeScript SDK (pinned in package.json),
// for mcp-oauth's proxy tests.
//
// Usage:  node tests/node/proxy-client.mjs COMMAND [ARGS...]
//
// Launches COMMAND ARGS (e.g. `mcp-oauth proxy http://127.0.0.1:P/mcp`) with the SDK's
// StdioClientTransport (the whole environment is passed on; the child's stderr goes to
// ours), connects (initialize), lists the tools, calls `echo` and `whoami`, and prints one
// JSON line like tests/python/proxy_client.py. Exit status 0 on success.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write('usage: proxy-client.mjs COMMAND [ARGS...]\n');
  process.exit(2);
}
const transport = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: 'inherit' });
const client = new Client({ name: 'ts-sdk-stdio-client', version: '1.0.0' });
await client.connect(transport);
const tools = await client.listTools();
const echo = await client.callTool({ name: 'echo', arguments: { text: 'through the proxy' } });
const who = await client.callTool({ name: 'whoami', arguments: {} });
if (echo.isError || who.isError) {
  throw new Error(`a tool reported an error: ${JSON.stringify([echo, who])}`);
}
process.stdout.write(
  `${JSON.stringify({
    client: 'ts-sdk',
    server: client.getServerVersion()?.name,
    protocol: transport.protocolVersion ?? null,
    tools: tools.tools.map((t) => t.name).sort(),
    echo: echo.content[0].text,
    whoami: JSON.parse(who.content[0].text),
  })}\n`,
);
await client.close();
