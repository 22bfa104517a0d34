// Interop pair "ts-sdk-auth": the official MCP TypeScript SDK's authorization-server router
// (mcpAuthRouter) and its MCP server (McpServer + StreamableHTTPServerTransport behind
// requireBearerAuth) in one Express app (tests/interop/CONTRACT.md, app-embedded pair).
//
// What is the SDK's and what is ours
// ----------------------------------
// The SDK (@modelcontextprotocol/sdk, pinned in tests/node/package.json) supplies every
// endpoint: mcpAuthRouter mounts /authorize, /token, /register (because the clients store
// can register), /revoke (because the provider can revoke), /.well-known/oauth-authorization-server
// and, through mcpAuthMetadataRouter, the protected resource metadata at
// /.well-known/oauth-protected-resource/mcp (resourceServerUrl = the MCP URL). Their
// validation, PKCE check, client authentication, error answers, CORS and rate limits are the
// SDK's, at their defaults. requireBearerAuth({ verifier: provider, resourceMetadataUrl })
// guards /mcp and writes the SDK's WWW-Authenticate challenge. The MCP side is the SDK
// README's stateful Streamable HTTP server (a transport per session, createMcpExpressApp()).
//
// The SDK leaves the provider (OAuthServerProvider: storage, the user's approval, token
// issuance) to the author; it ships one only as an example, DemoInMemoryAuthProvider
// (dist/esm/examples/server/demoInMemoryOAuthProvider.js, "DEMO ONLY - NOT FOR PRODUCTION"),
// which issues no refresh token (exchangeRefreshToken throws "Not implemented for example
// demo"), has no revokeToken (so the router mounts no /revoke) and a fixed 1 h lifetime.
// With it the router's refresh and revocation handlers would never run, so the provider
// below is ours, as small as the interface allows: it keeps the demo's clients store
// (DemoInMemoryClientsStore, imported from the SDK) and the demo's auto-approving
// authorize() (the only stand-in: the "user" approves every request at once), and adds what
// an author's provider has: refresh tokens with rotation, revocation, a lifetime
// (INTEROP_AT_TTL). INTEROP_TS_PROVIDER=demo runs the SDK's demo provider unchanged instead
// (deny-next and forget-clients still work; INTEROP_AT_TTL, refresh and revocation do not).
//
// Minimum configuration: no scopesSupported (optional in the SDK; nothing is advertised),
// no requiredScopes, no expectedResource (optional audience check), rate limits at the SDK's
// defaults (token 50 and authorize 100 requests per 15 min, registration 20 per hour, per IP:
// the limiter's memory is the process's, so a restart resets it).
//
// Harness only: the ready line, logs (an Express middleware that observes), the
// INTEROP_CONTROL endpoints, exit on stdin EOF. INTEROP_STATE_DIR is unused (all in memory).

import { randomUUID } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';

// The project's pinned Node packages (tests/node/package.json). Node resolves bare specifiers
// only from this file's ancestors, and tests/node is not one: its modules are imported by path
// (the SDK's own imports, express and friends, resolve from its directory as usual).
const NODE_DIR = new URL('../../../node/', import.meta.url);
const SDK_DIR = new URL('node_modules/@modelcontextprotocol/sdk/', NODE_DIR);
const pkgVersion = (dir) => JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')).version;

function versions() {
  return {
    '@modelcontextprotocol/sdk': pkgVersion(SDK_DIR),
    express: pkgVersion(new URL('node_modules/express/', NODE_DIR)),
    'express-rate-limit': pkgVersion(new URL('node_modules/express-rate-limit/', NODE_DIR)),
    node: process.versions.node,
  };
}

const PROVIDER = process.env.INTEROP_TS_PROVIDER === 'demo' ? 'demo' : 'minimal';

function describe() {
  const demo = PROVIDER === 'demo';
  return {
    as: 'ts-sdk-auth',
    server: 'mcp-ts-sdk',
    versions: versions(),
    revocation: demo
      ? "n/a: the SDK's DemoInMemoryAuthProvider has no revokeToken, so mcpAuthRouter mounts no /revoke"
      : true,
    rotation: demo
      ? "n/a: the SDK's DemoInMemoryAuthProvider issues no refresh token (exchangeRefreshToken throws 'Not implemented for example demo')"
      : true,
    restart_forgets_clients: true,
    notes:
      `Provider: ${demo ? "the SDK's DemoInMemoryAuthProvider as shipped (access tokens 1 h, fixed)" : "ours, minimal (the SDK ships only a demo provider without refresh or revocation): the SDK's DemoInMemoryClientsStore, the demo's auto-approving authorize(), opaque tokens, rotation on every refresh (the presented refresh token and its access token are deleted; no reuse detection: a rotated-out token is just unknown, invalid_grant), revocation of a refresh token takes its access token along, refresh tokens never expire, INTEROP_AT_TTL honoured"}. ` +
      'The SDK router: DCR issues a client_secret unless token_endpoint_auth_method is none (secrets expire after 30 days); ' +
      "metadata lists token_endpoint_auth_methods_supported [client_secret_post, none] and revocation_endpoint_auth_methods_supported [client_secret_post]; " +
      'no client_secret_basic: DCR accepts a registration asking for it, but the token and revocation endpoints ignore an Authorization: Basic header (no client_id in the body: 400 invalid_request; client_id without client_secret: 400 invalid_client "Client secret is required"); ' +
      'invalid_client is answered with HTTP 400 (not 401); an unknown client_id at /authorize gets a 400 JSON error (no redirect); ' +
      'redirect URIs: exact match except the port of a loopback URI (RFC 8252); scope is not checked against the registration; ' +
      'no iss in the authorization response (RFC 9207); tokens carry the resource they were asked for but requireBearerAuth checks it only with expectedResource (not set: minimum configuration); ' +
      'rate limits per IP at the SDK defaults: /token 50 and /authorize 100 per 15 min, /register 20 per hour (HTTP 429 after that; a restart resets them); ' +
      `whoami's sub is the stand-in user's fixed id (AuthInfo.extra.sub: ${demo ? "'demo_user', the demo's simulated login" : `'${'interop-test-user'}'`}).`,
  };
}

if (process.argv.slice(2).join(' ') === '--describe') {
  process.stdout.write(JSON.stringify(describe()) + '\n');
  process.exit(0);
}

const sdk = (p) => import(new URL(`dist/esm/${p}`, SDK_DIR).href);
const [{ McpServer }, { StreamableHTTPServerTransport }, { createMcpExpressApp }, router, { requireBearerAuth }, errors, demo, types, z] =
  await Promise.all([
    sdk('server/mcp.js'),
    sdk('server/streamableHttp.js'),
    sdk('server/express.js'),
    sdk('server/auth/router.js'),
    sdk('server/auth/middleware/bearerAuth.js'),
    sdk('server/auth/errors.js'),
    sdk('examples/server/demoInMemoryOAuthProvider.js'),
    sdk('types.js'),
    import(new URL('node_modules/zod/v4/index.js', NODE_DIR).href),
  ]);
const { mcpAuthRouter, getOAuthProtectedResourceMetadataUrl } = router;
const { AccessDeniedError, InvalidGrantError, InvalidScopeError, InvalidTokenError } = errors;

// ------------------------------------------------------------------ the provider (ours)

const TEST_USER = 'interop-test-user';

/** A minimal OAuthServerProvider (server/auth/provider.d.ts): in-memory, opaque tokens. */
class MinimalProvider {
  constructor({ accessTokenTtl }) {
    this.accessTokenTtl = accessTokenTtl; // seconds
    this.clientsStore = new demo.DemoInMemoryClientsStore(); // the SDK's demo store
    this.codes = new Map(); // code -> { clientId, params }
    this.accessTokens = new Map(); // token -> { clientId, scopes, resource, expiresAt (s) }
    this.refreshTokens = new Map(); // token -> { clientId, scopes, resource, accessToken }
    this.denyNext = false; // INTEROP_CONTROL only
  }

  // The stand-in for the user, as in the SDK's demo provider: approve at once and redirect
  // back with the code and state. (The router has already checked client and redirect_uri.)
  async authorize(client, params, res) {
    if (this.denyNext) {
      this.denyNext = false;
      // The router turns an OAuthError into the error redirect (error, error_description, state).
      throw new AccessDeniedError('the user denied the request');
    }
    const code = randomUUID();
    this.codes.set(code, { clientId: client.client_id, params });
    const target = new URL(params.redirectUri);
    target.searchParams.set('code', code);
    if (params.state !== undefined) target.searchParams.set('state', params.state);
    res.redirect(target.href);
  }

  async challengeForAuthorizationCode(client, code) {
    const entry = this.codes.get(code);
    if (!entry || entry.clientId !== client.client_id) throw new InvalidGrantError('invalid authorization code');
    return entry.params.codeChallenge;
  }

  // PKCE was checked by the router (challengeForAuthorizationCode) before this is called.
  async exchangeAuthorizationCode(client, code, _verifier, redirectUri) {
    const entry = this.codes.get(code);
    if (!entry || entry.clientId !== client.client_id) throw new InvalidGrantError('invalid authorization code');
    if (redirectUri !== undefined && redirectUri !== entry.params.redirectUri) {
      throw new InvalidGrantError('redirect_uri does not match the authorization request');
    }
    this.codes.delete(code);
    return this.issue(client.client_id, entry.params.scopes ?? [], entry.params.resource);
  }

  // Rotation: the presented refresh token (and the access token issued with it) is spent.
  async exchangeRefreshToken(client, refreshToken, scopes) {
    const entry = this.refreshTokens.get(refreshToken);
    if (!entry || entry.clientId !== client.client_id) throw new InvalidGrantError('invalid refresh token');
    const granted = scopes ?? entry.scopes;
    if (!granted.every((s) => entry.scopes.includes(s))) {
      throw new InvalidScopeError('the requested scope exceeds the granted scope');
    }
    this.refreshTokens.delete(refreshToken);
    this.accessTokens.delete(entry.accessToken);
    return this.issue(client.client_id, granted, entry.resource);
  }

  async verifyAccessToken(token) {
    const entry = this.accessTokens.get(token);
    if (!entry || entry.expiresAt < Date.now() / 1000) throw new InvalidTokenError('invalid or expired token');
    return {
      token,
      clientId: entry.clientId,
      scopes: entry.scopes,
      expiresAt: entry.expiresAt,
      resource: entry.resource,
      extra: { sub: TEST_USER },
    };
  }

  // RFC 7009: unknown tokens are ignored; a refresh token takes its access token along.
  async revokeToken(client, { token }) {
    const refresh = this.refreshTokens.get(token);
    if (refresh && refresh.clientId === client.client_id) {
      this.refreshTokens.delete(token);
      this.accessTokens.delete(refresh.accessToken);
      return;
    }
    const access = this.accessTokens.get(token);
    if (access && access.clientId === client.client_id) this.accessTokens.delete(token);
  }

  issue(clientId, scopes, resource) {
    const accessToken = randomUUID();
    const refreshToken = randomUUID();
    const expiresAt = Math.floor(Date.now() / 1000) + this.accessTokenTtl;
    this.accessTokens.set(accessToken, { clientId, scopes, resource, expiresAt });
    this.refreshTokens.set(refreshToken, { clientId, scopes, resource, accessToken });
    return {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: this.accessTokenTtl,
      refresh_token: refreshToken,
      scope: scopes.join(' '),
    };
  }

  forgetClients() {
    this.clientsStore.clients.clear();
    this.codes.clear();
    this.accessTokens.clear();
    this.refreshTokens.clear();
  }
}

/** INTEROP_TS_PROVIDER=demo: the SDK's demo provider unchanged, plus the two test switches
 *  and the name of its simulated user. */
function demoProvider() {
  const provider = new demo.DemoInMemoryAuthProvider();
  const authorize = provider.authorize.bind(provider);
  provider.denyNext = false;
  provider.authorize = async (client, params, res) => {
    if (provider.denyNext) {
      provider.denyNext = false;
      throw new AccessDeniedError('the user denied the request');
    }
    return authorize(client, params, res);
  };
  // The demo's authorize() simulates the login of 'demo_user' (a cookie) but its tokens do
  // not remember who: name that user in AuthInfo.extra for whoami's sub.
  const verify = provider.verifyAccessToken.bind(provider);
  provider.verifyAccessToken = async (token) => ({ ...(await verify(token)), extra: { sub: 'demo_user' } });
  provider.forgetClients = () => {
    provider.clientsStore.clients.clear();
    provider.codes.clear();
    provider.tokens.clear();
  };
  return provider;
}

// ------------------------------------------------------------------ the MCP server

function mcpServer() {
  const server = new McpServer({ name: 'interop ts-sdk-auth', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Return the given text unchanged.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  server.registerTool('whoami', { description: 'Describe the access token of this request.' }, async (extra) => {
    const auth = extra.authInfo;
    const info = {
      sub: auth?.extra?.sub ?? null,
      client_id: auth?.clientId ?? null,
      scope: auth ? auth.scopes.join(' ') : null,
      aud: auth?.resource ? String(auth.resource) : null,
      expires_at: auth?.expiresAt ?? null,
    };
    return { content: [{ type: 'text', text: JSON.stringify(info) }] };
  });
  return server;
}

// ------------------------------------------------------------------ test harness: logs

const now = () => new Date().toISOString();

/** One JSON line per request: INTEROP_MCP_LOG for /mcp and the protected resource metadata,
 *  INTEROP_AS_LOG for the rest. Observes only (res.json is wrapped to read the error or the
 *  registered client_id of a JSON answer; nothing else is taken from any body). Requests that
 *  createMcpExpressApp's Host check refuses (it runs first) are not logged. */
function interopLog(asLog, mcpLog) {
  return (req, res, next) => {
    const path = req.path;
    const isMcp = path === '/mcp' || path.startsWith('/mcp/') || path.startsWith('/.well-known/oauth-protected-resource');
    const target = isMcp ? mcpLog : asLog;
    if (!target) return next();
    const hadAuthorization = req.headers.authorization !== undefined;
    let answered;
    if (!isMcp) {
      const json = res.json.bind(res);
      res.json = (body) => {
        answered = body;
        return json(body);
      };
    }
    res.on('finish', () => {
      const entry = { ts: now(), method: req.method, path, status: res.statusCode };
      if (isMcp) {
        entry.authorization = hadAuthorization;
      } else {
        const params = { ...(req.query ?? {}), ...(typeof req.body === 'object' && req.body ? req.body : {}) };
        if (typeof params.grant_type === 'string') entry.grant_type = params.grant_type;
        if (typeof params.client_id === 'string') entry.client_id = params.client_id;
        if (typeof params.token_type_hint === 'string') entry.token_type_hint = params.token_type_hint;
        if (answered && typeof answered === 'object') {
          if (typeof answered.error === 'string') entry.error = answered.error;
          if (path === '/register' && typeof answered.client_id === 'string') entry.client_id = answered.client_id;
        }
        const location = res.getHeader('location');
        if (typeof location === 'string') {
          try {
            const loc = new URL(location);
            const error = loc.searchParams.get('error');
            if (error) entry.error = error;
            entry.redirect = `${loc.origin}${loc.pathname}`;
          } catch {
            /* not an absolute URL */
          }
        }
      }
      appendFileSync(target, JSON.stringify(entry) + '\n');
    });
    next();
  };
}

// ------------------------------------------------------------------ the app

const asPort = Number(process.env.INTEROP_AS_PORT || 0);
const mcpPort = Number(process.env.INTEROP_MCP_PORT || 0);
if (asPort && mcpPort && asPort !== mcpPort) {
  console.error(`ts-sdk-auth: one app, one port: INTEROP_AS_PORT=${asPort} and INTEROP_MCP_PORT=${mcpPort} differ`);
  process.exit(2);
}

// The SDK's Express app for MCP servers: Host-header check for loopback, JSON bodies.
const app = createMcpExpressApp();
if (process.env.INTEROP_AS_LOG || process.env.INTEROP_MCP_LOG) {
  app.use(interopLog(process.env.INTEROP_AS_LOG, process.env.INTEROP_MCP_LOG));
}

// Listen first (port 0 = a free one): the issuer and the MCP URL need the port. Routes added
// afterwards are live at once; the ready line is printed only after they are all in place.
const httpServer = app.listen(asPort || mcpPort, '127.0.0.1');
await new Promise((resolve, reject) => {
  httpServer.once('listening', resolve);
  httpServer.once('error', reject);
});
const port = httpServer.address().port;
const issuerUrl = new URL(`http://127.0.0.1:${port}`);
const mcpUrl = new URL('/mcp', issuerUrl);

const provider =
  PROVIDER === 'demo'
    ? demoProvider()
    : new MinimalProvider({ accessTokenTtl: Number(process.env.INTEROP_AT_TTL || 3600) });

if (process.env.INTEROP_CONTROL === '1') {
  // Test-only control endpoints (CONTRACT.md), before the SDK's routers.
  app.post('/__interop/deny-next', (_req, res) => {
    provider.denyNext = true;
    res.status(204).end();
  });
  app.post('/__interop/forget-clients', (_req, res) => {
    provider.forgetClients();
    res.status(204).end();
  });
}

// The authorization server, at the application root as the SDK requires; the protected
// resource metadata names the MCP URL (served at /.well-known/oauth-protected-resource/mcp).
app.use(mcpAuthRouter({ provider, issuerUrl, resourceServerUrl: mcpUrl }));

const bearer = requireBearerAuth({ verifier: provider, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl) });

// The SDK README's stateful Streamable HTTP server: one transport (and McpServer) per session.
const transports = new Map();
app.post('/mcp', bearer, async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports.get(sessionId) : undefined;
  if (!transport) {
    if (sessionId || !types.isInitializeRequest(req.body)) {
      res.status(sessionId ? 404 : 400).json({
        jsonrpc: '2.0',
        error: { code: sessionId ? -32001 : -32000, message: sessionId ? 'Session not found' : 'Bad Request: No valid session ID provided' },
        id: null,
      });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
    await mcpServer().connect(transport);
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
app.get('/mcp', bearer, sessionRequest);
app.delete('/mcp', bearer, sessionRequest);

// ------------------------------------------------------------------ ready

if (process.env.INTEROP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));

// The issuer as the AS's metadata states it (URL.href: "http://127.0.0.1:P/").
process.stdout.write(
  JSON.stringify({
    ready: true,
    issuer: issuerUrl.href,
    mcp_url: mcpUrl.href,
    as_port: port,
    mcp_port: port,
    pid: process.pid,
    versions: versions(),
    provider: PROVIDER,
  }) + '\n',
);
