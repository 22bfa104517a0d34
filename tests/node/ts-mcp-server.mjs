#!/usr/bin/env node
// An MCP server written with the official MCP TypeScript SDK (@modelcontextprotocol/sdk,
// pinned in tests/node/package.json) the way its docs write a resource server in front of
// an external authorization server: `McpServer` + `StreamableHTTPServerTransport` (stateful
// sessions, as in the SDK's simpleStreamableHttp example) on `createMcpExpressApp()`, the
// SDK's `mcpAuthMetadataRouter` (protected resource metadata) and `requireBearerAuth` with
// a JWT/JWKS token verifier (`jose`, the SDK's own dependency, pinned by the lock file).
// A fixture of the interop matrix (tests/interop/run.py). Loopback only.
//
// Usage:  node tests/node/ts-mcp-server.mjs --issuer http://127.0.0.1:PORT [--port N]
//
// Harness only (none of it changes what a client sees):
//   --issuer URL | MCP_ISSUER   the authorization server's issuer (required): its metadata
//                               is read once at start-up with the SDK's
//                               discoverAuthorizationServerMetadata, as an author would
//   --port N | MCP_PORT         listen port (0 = any free port, the default)
//   MCP_LOG                     append one JSON line per HTTP request: ts, method, path,
//                               status, authorization (whether the header came),
//                               protocol_version, session
//   MCP_EXIT_ON_STDIN_EOF=1     exit when stdin reaches EOF
//
// Prints one JSON line on stdout once listening:
//   {"ready":true,"url":"http://127.0.0.1:P/mcp","issuer":"...","port":P,"pid":N,"versions":{...}}
// and nothing else there (diagnostics to stderr).
//
// What the SDK makes of it (as shipped): 401 `Bearer error="invalid_token",
// error_description="Missing Authorization header",
// resource_metadata="<origin>/.well-known/oauth-protected-resource/mcp"`; the protected
// resource metadata only at that path-inserted URL, with `scopes_supported: ["mcp:tools"]`
// (the SDK example's value) and the issuer verbatim; the AS metadata mirrored at
// /.well-known/oauth-authorization-server (mcpAuthMetadataRouter always adds it); no
// required scope (the SDK example's `requiredScopes: []`).
//
// Tools: echo(text) returns text; whoami() returns {sub, client_id, scope, aud} of the
// verified token as JSON text.

import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { getOAuthProtectedResourceMetadataUrl, mcpAuthMetadataRouter } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as z from 'zod/v4';

function arg(name, envName, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1 && process.argv[i + 1] !== undefined) return process.argv[i + 1];
  return process.env[envName] ?? fallback;
}

const issuer = arg('issuer', 'MCP_ISSUER');
const port = Number(arg('port', 'MCP_PORT', '0'));
const logFile = process.env.MCP_LOG;
if (!issuer) {
  process.stderr.write('usage: ts-mcp-server.mjs --issuer URL [--port N]\n');
  process.exit(2);
}
const stderr = (msg) => process.stderr.write(`[ts-mcp-server] ${msg}\n`);

// Read from node_modules directly: the SDK's exports map package.json to a stub without
// a version.
const versionOf = (pkg) => JSON.parse(fs.readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version;
const versions = {
  '@modelcontextprotocol/sdk': versionOf('@modelcontextprotocol/sdk'),
  jose: versionOf('jose'),
  express: versionOf('express'),
  node: process.versions.node,
};

// The authorization server's metadata, as the SDK's client helper reads it.
const oauthMetadata = await discoverAuthorizationServerMetadata(issuer);
if (!oauthMetadata?.jwks_uri) {
  stderr(`no authorization server metadata with a jwks_uri for ${issuer}`);
  process.exit(1);
}

// Listen first (port 0 works), then mount the app with the real URL.
const app = createMcpExpressApp();
const server = app.listen(port, '127.0.0.1');
await new Promise((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
});
const actualPort = server.address().port;
const mcpServerUrl = new URL(`http://127.0.0.1:${actualPort}/mcp`);

// Harness only: the request log (observes, changes nothing). First, so it sees everything.
if (logFile) {
  app.use((req, res, next) => {
    res.on('finish', () => {
      const entry = {
        ts: new Date().toISOString(),
        method: req.method,
        path: req.path,
        status: res.statusCode,
        authorization: Boolean(req.headers.authorization),
        protocol_version: req.headers['mcp-protocol-version'] ?? null,
        session: Boolean(req.headers['mcp-session-id']),
      };
      fs.appendFileSync(logFile, `${JSON.stringify(entry)}\n`);
    });
    next();
  });
}

// The token verifier: the access token is a JWT signed by the AS (RFC 9068); check its
// signature against the AS's JWKS, its issuer and that it was issued for this server
// (audience = the MCP server's URL, RFC 8707), as the MCP authorization spec requires.
// Failures are the SDK's InvalidTokenError, so that requireBearerAuth answers 401 with
// its challenge (any other error becomes a 500).
const jwks = createRemoteJWKSet(new URL(oauthMetadata.jwks_uri));
const verifier = {
  async verifyAccessToken(token) {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, { issuer: oauthMetadata.issuer, audience: mcpServerUrl.href }));
    } catch (err) {
      throw new InvalidTokenError(`Invalid token: ${err.code ?? err.message}`);
    }
    return {
      token,
      clientId: String(payload.client_id ?? payload.azp ?? ''),
      scopes: typeof payload.scope === 'string' && payload.scope ? payload.scope.split(' ') : [],
      expiresAt: payload.exp,
      resource: mcpServerUrl,
      extra: { sub: payload.sub, aud: payload.aud },
    };
  },
};

app.use(
  mcpAuthMetadataRouter({
    oauthMetadata,
    resourceServerUrl: mcpServerUrl,
    scopesSupported: ['mcp:tools'],
    resourceName: 'mcp-oauth interop TypeScript SDK server',
  }),
);
const auth = requireBearerAuth({
  verifier,
  requiredScopes: [],
  resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpServerUrl),
  expectedResource: mcpServerUrl,
});

function buildServer() {
  const mcp = new McpServer({ name: 'mcp-oauth-interop-ts-server', version: '1.0.0' });
  mcp.registerTool(
    'echo',
    { description: 'Return the given text unchanged.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  mcp.registerTool('whoami', { description: 'Describe the access token this request was authorized with.' }, async (extra) => {
    const info = extra.authInfo;
    const body = {
      sub: info?.extra?.sub ?? null,
      client_id: info?.clientId ?? null,
      scope: info ? info.scopes.join(' ') : null,
      aud: info?.extra?.aud ?? null,
    };
    return { content: [{ type: 'text', text: JSON.stringify(body) }] };
  });
  return mcp;
}

// Stateful Streamable HTTP, as in the SDK's docs: one transport per session.
const transports = new Map();
app.post('/mcp', auth, async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports.get(sessionId) : undefined;
  if (!transport) {
    if (sessionId || !isInitializeRequest(req.body)) {
      res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await buildServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});
const sessionRequest = async (req, res) => {
  const transport = transports.get(req.headers['mcp-session-id']);
  if (!transport) {
    res.status(400).send('Invalid or missing session ID');
    return;
  }
  await transport.handleRequest(req, res);
};
app.get('/mcp', auth, sessionRequest);
app.delete('/mcp', auth, sessionRequest);

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (process.env.MCP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}

stderr(`listening on ${mcpServerUrl.href} (issuer ${issuer})`);
process.stdout.write(`${JSON.stringify({ ready: true, url: mcpServerUrl.href, issuer, port: actualPort, pid: process.pid, versions })}\n`);
