#!/usr/bin/env node
// A real OAuth 2.1 / OpenID Connect authorization server for mcp-oauth's integration
// tests, built on `oidc-provider` (pinned in tests/node/package.json). Loopback only.
//
// Usage:  node tests/node/oidc-as.mjs [PORT]        (PORT 0 or absent = any free port)
//
// Environment (all optional):
//   AS_PORT        port when no argv port is given (default 0 = pick a free one)
//   AS_LOG         append one JSON line per HTTP request to this file (method, path,
//                  status, oidc route, grant_type, resource, scope, client_id, error;
//                  never codes, verifiers, secrets or token values)
//   AT_TTL         access-token lifetime in seconds (default 300)
//   RT_TTL         refresh-token lifetime in seconds (default 86400)
//   AS_SCOPES      resource-server scopes granted for any resource (default "mcp:tools")
//   AS_RFC8414     "0" = answer 404 at /.well-known/oauth-authorization-server so that only
//                  the OIDC /.well-known/openid-configuration works (exercises the client's
//                  RFC 8414 -> OIDC discovery fallback, like providers that lack RFC 8414)
//   AS_ACCOUNT     the account id (JWT `sub`) the auto-login creates (default "test-user")
//   AS_TOKEN_DELAY_MS  delay every token endpoint response by this many milliseconds
//                  (default 0), so that tests can make concurrent clients overlap for sure
//
// On startup it prints exactly one JSON line to stdout, e.g.
//   {"ready":true,"issuer":"http://127.0.0.1:40123","port":40123,"pid":1234}
// and logs diagnostics to stderr. It exits on SIGTERM/SIGINT, and with
// AS_EXIT_ON_STDIN_EOF=1 also when stdin reaches EOF (so a parent holding our stdin pipe
// takes us down with it, even if it is SIGKILLed).
//
// Behaviour (what the tests rely on):
// * issuer `http://127.0.0.1:<port>` (no trailing slash); the same metadata document at
//   /.well-known/oauth-authorization-server (RFC 8414; oidc-provider 9.x serves it natively)
//   and /.well-known/openid-configuration;
//   `authorization_response_iss_parameter_supported: true` and `iss` on every
//   authorization response (oidc-provider does this by default, RFC 9207).
// * open Dynamic Client Registration at /reg (no initial access token); `application_type:
//   "native"` clients may register http://127.0.0.1/... or http://[::1]/... redirect URIs and
//   use them with ANY port (oidc-provider implements RFC 8252 §7.3 for native clients).
// * PKCE (S256) required for every client.
// * Resource indicators (RFC 8707): any absolute http(s) resource is accepted; the access
//   token for it is a JWT (`typ: at+jwt`, RS256, key in /jwks) with `aud` = the resource
//   and `scope` = the requested subset of AS_SCOPES.
// * A refresh token is issued to every client whose grant_types include refresh_token
//   (regardless of offline_access); refresh tokens rotate on every use and reusing a
//   rotated one revokes the whole grant (oidc-provider's default reuse detection).
// * Token revocation (RFC 7009) at /token/revocation; revoking a refresh token revokes its
//   grant (a later refresh with it answers invalid_grant).
// * Device authorization grant (RFC 8628) at /device/auth, advertised as
//   `device_authorization_endpoint`; the user-facing pages are oidc-provider's defaults
//   (GET /device?user_code=... -> form -> confirm form -> the same auto-login/consent
//   interaction), so a cookie-keeping user agent can approve a code headlessly. A client
//   must register the urn:ietf:params:oauth:grant-type:device_code grant type to use it.
// * Headless: the login + consent interactions are completed automatically by
//   /interaction/<uid> (account AS_ACCOUNT, every requested scope and resource granted),
//   so a user agent that follows redirects and keeps cookies ends at the redirect_uri.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.AS_PORT ?? 0);
const atTtl = Number(process.env.AT_TTL ?? 300);
const rtTtl = Number(process.env.RT_TTL ?? 86400);
const resourceScopes = process.env.AS_SCOPES ?? 'mcp:tools';
const serveRfc8414 = process.env.AS_RFC8414 !== '0';
const accountId = process.env.AS_ACCOUNT ?? 'test-user';
const logFile = process.env.AS_LOG;
const tokenDelayMs = Number(process.env.AS_TOKEN_DELAY_MS ?? 0);

function log(entry) {
  if (!logFile) return;
  fs.appendFileSync(logFile, `${JSON.stringify({ ts: new Date().toISOString(), ...entry })}\n`);
}

function stderr(msg) {
  process.stderr.write(`[oidc-as] ${msg}\n`);
}

// Listen first so that port 0 works and the issuer carries the real port.
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = http.createServer((req, res) => handler(req, res));
server.keepAliveTimeout = 1000;
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const actualPort = server.address().port;
const issuer = `http://127.0.0.1:${actualPort}`;

// A fresh signing key per process (the MCP server fetches it from /jwks).
const signingKey = {
  ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: crypto.randomBytes(8).toString('hex'),
  use: 'sig',
  alg: 'RS256',
};

function isAbsoluteHttpUrl(value) {
  try {
    const u = new URL(value);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.hash;
  } catch {
    return false;
  }
}

const configuration = {
  // Memory adapter (the default when `adapter` is omitted): nothing persists.
  clients: [],
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  // Static (OIDC) scopes. offline_access stays listed (so scopes_supported advertises it,
  // as most OIDC providers do); note oidc-provider drops it from an authorization request
  // unless prompt=consent is also sent, which is why issueRefreshToken below ignores it.
  scopes: ['openid', 'offline_access'],
  // Pure OAuth 2.1 code flow: no implicit / hybrid response types.
  responseTypes: ['code'],
  claims: { openid: ['sub'] },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub }),
  }),
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true, initialAccessToken: false },
    revocation: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No implicit default resource: the client must ask for one.
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      // A refresh/code exchange without `resource` keeps the resource that was granted.
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (!isAbsoluteHttpUrl(resourceIndicator)) {
          throw new Provider.errors.InvalidTarget('resource must be an absolute http(s) URI');
        }
        return {
          scope: resourceScopes,
          audience: resourceIndicator,
          accessTokenTTL: atTtl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  // Refresh tokens must not die with the (cookie) session of the headless user agent.
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: atTtl,
    AuthorizationCode: 60,
    RefreshToken: rtTtl,
    Grant: rtTtl,
    Session: rtTtl,
    Interaction: 600,
    IdToken: 3600,
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => stderr(`server_error: ${err.stack ?? err}`));
provider.on('grant.error', (_ctx, err) => stderr(`grant.error: ${err.message} ${err.error_description ?? ''}`));
provider.on('authorization.error', (_ctx, err) => stderr(`authorization.error: ${err.message} ${err.error_description ?? ''}`));
provider.on('registration_create.error', (_ctx, err) => stderr(`registration_create.error: ${err.message} ${err.error_description ?? ''}`));
provider.on('refresh_token.consumed', () => stderr('refresh_token.consumed (rotation)'));
provider.on('grant.revoked', (_ctx, grantId) => stderr(`grant.revoked ${grantId}`));

if (tokenDelayMs > 0) {
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/token') {
      await new Promise((resolve) => setTimeout(resolve, tokenDelayMs));
    }
    await next();
  });
}

// Record non-secret request details for the log line written when the response finishes.
provider.use(async (ctx, next) => {
  await next();
  const info = { route: ctx.oidc?.route };
  const params = ctx.oidc?.params;
  if (params) {
    for (const key of ['grant_type', 'resource', 'scope', 'client_id', 'response_type', 'code_challenge_method', 'prompt', 'token_type_hint']) {
      if (params[key] !== undefined) info[key] = params[key];
    }
  }
  if (ctx.oidc?.client?.clientId && !info.client_id) info.client_id = ctx.oidc.client.clientId;
  if (ctx.status >= 400 && ctx.body && typeof ctx.body === 'object' && ctx.body.error) {
    info.error = ctx.body.error;
    info.error_description = ctx.body.error_description;
  }
  ctx.req.logInfo = info;
});

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId } };
  } else if (prompt.name === 'consent') {
    let grant;
    if (details.grantId) {
      grant = await provider.Grant.find(details.grantId);
    } else {
      grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    }
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
  }
  req.logInfo = { route: 'interaction', prompt: prompt.name };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
handler = (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  res.on('finish', () => {
    log({ method: req.method, path, status: res.statusCode, ...(req.logInfo ?? {}) });
  });
  if (path.startsWith('/interaction/') && req.method === 'GET') {
    interaction(req, res).catch((err) => {
      stderr(`interaction failed: ${err.stack ?? err}`);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: 'server_error', error_description: String(err.message ?? err) }));
      }
    });
    return;
  }
  if (!serveRfc8414 && path === '/.well-known/oauth-authorization-server') {
    res.statusCode = 404;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ error: 'invalid_request', error_description: 'RFC 8414 metadata disabled (AS_RFC8414=0)' }));
    return;
  }
  callback(req, res);
};

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (process.env.AS_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}

stderr(`listening on ${issuer} (AT_TTL=${atTtl}s, RFC 8414 metadata ${serveRfc8414 ? 'on' : 'off: 404'})`);
process.stdout.write(`${JSON.stringify({ ready: true, issuer, port: actualPort, pid: process.pid })}\n`);
