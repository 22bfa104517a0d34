#!/usr/bin/env node
// The official MCP TypeScript SDK (pinned in package.json) as an OAuth client of a remote
// MCP server, e.g. `mcp-oauth demo --serve`: its StreamableHTTPClientTransport with an
// OAuthClientProvider (dynamic registration, PKCE, tokens in memory) and a headless
// "browser" that follows the authorization server's redirects (loopback only) to this
// script's own loopback callback listener.
//
// Usage:  node tests/node/demo-ts-client.mjs MCP_URL
//
// Connects (the first attempt gets the 401, the SDK discovers, registers and redirects;
// the callback's code is exchanged with finishAuth), lists the tools, calls `echo` and
// `whoami`, and prints one JSON line. Checks on the way: the callback's `state` is ours
// and its `iss` (RFC 9207) is the authorization server's issuer. Exit status 0 on success.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const TIMEOUT_MS = 30_000;
const target = process.argv[2];
if (!target) {
  process.stderr.write('usage: demo-ts-client.mjs MCP_URL\n');
  process.exit(2);
}
const mcpUrl = new URL(target);
const log = (msg) => process.stderr.write(`[ts-sdk] ${msg}\n`);

// ---- the loopback callback listener
let resolveCallback;
const callback = new Promise((resolve) => {
  resolveCallback = resolve;
});
const listener = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  if (u.pathname !== '/callback') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' }).end('Authorized; you can close this window.');
  resolveCallback(u.searchParams);
});
await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
const redirectUrl = `http://127.0.0.1:${listener.address().port}/callback`;

// ---- a headless browser: follows redirects, loopback only
const isLoopback = (u) => u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
async function browse(start) {
  let url = new URL(start);
  for (let hop = 0; hop < 10; hop++) {
    if (!isLoopback(url)) throw new Error(`refusing to browse to ${url.origin}`);
    const resp = await fetch(url, { redirect: 'manual' });
    const location = resp.headers.get('location');
    if (resp.status >= 300 && resp.status < 400 && location) {
      url = new URL(location, url);
      continue;
    }
    log(`browser stopped at ${url.origin}${url.pathname}: HTTP ${resp.status}`);
    return;
  }
  throw new Error('too many redirects');
}

// ---- the SDK's OAuth client provider, in memory
let authorizationUrl;
const provider = {
  clientInfo: undefined,
  savedTokens: undefined,
  verifier: undefined,
  lastState: undefined,
  get redirectUrl() {
    return redirectUrl;
  },
  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript SDK (mcp-oauth demo test)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  state() {
    this.lastState = randomBytes(16).toString('hex');
    return this.lastState;
  },
  clientInformation() {
    return this.clientInfo;
  },
  saveClientInformation(info) {
    this.clientInfo = info;
  },
  tokens() {
    return this.savedTokens;
  },
  saveTokens(tokens) {
    this.savedTokens = tokens;
  },
  redirectToAuthorization(url) {
    authorizationUrl = new URL(url);
    log(`opening ${authorizationUrl.origin}${authorizationUrl.pathname} (headless)`);
    browse(url).catch((e) => log(`browser failed: ${e.message}`));
  },
  saveCodeVerifier(v) {
    this.verifier = v;
  },
  codeVerifier() {
    return this.verifier;
  },
};

const withTimeout = (p, what) =>
  Promise.race([
    p,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS).unref()),
  ]);

const client = new Client({ name: 'ts-sdk-demo-client', version: '1.0.0' });
let transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
let sawUnauthorized = false;
let iss = null;
try {
  await client.connect(transport);
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
  sawUnauthorized = true;
  const params = await withTimeout(callback, 'the authorization callback');
  if (params.get('error')) throw new Error(`authorization error: ${params.get('error')}: ${params.get('error_description')}`);
  if (params.get('state') !== provider.lastState) throw new Error('the callback state is not ours');
  iss = params.get('iss');
  // The demo's issuer is the authorization endpoint's origin (no path).
  if (iss !== authorizationUrl.origin) throw new Error(`iss ${iss} is not the issuer ${authorizationUrl.origin}`);
  await transport.finishAuth(params.get('code'));
  transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await client.connect(transport);
}
const tools = await client.listTools();
const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello from the TypeScript SDK' } });
const who = await client.callTool({ name: 'whoami', arguments: {} });
if (echo.isError || who.isError) {
  throw new Error(`a tool reported an error: ${JSON.stringify([echo, who])}`);
}
process.stdout.write(
  `${JSON.stringify({
    client: 'ts-sdk',
    unauthorized_first: sawUnauthorized,
    client_id: provider.clientInfo?.client_id ?? null,
    iss,
    refresh_token: Boolean(provider.savedTokens?.refresh_token),
    server: client.getServerVersion()?.name,
    protocol: transport.protocolVersion ?? null,
    tools: tools.tools.map((t) => t.name).sort(),
    echo: echo.content[0].text,
    whoami: JSON.parse(who.content[0].text),
  })}\n`,
);
await client.close();
listener.close();
