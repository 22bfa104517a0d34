#!/usr/bin/env node
// A real OAuth 2.1 / OpenID Connect authorization server for mcp-oauth's integration
// tests, built on `oidc-provider` (pinned in tests/node/package.json). Loopback only.
//
// Usage:  node tests/node/oidc-as.mjs [PORT]        (PORT 0 or absent = any free port)
//
// Environment (all optional):
//   AS_PORT        port when no argv port is given (default 0 = pick a free one)
//   AS_KEY_FILE    keep the signing key in this file across restarts (as a deployment
//                  configures its keys); default: a new key per process
//   AS_LOG         append one JSON line per HTTP request to this file ("Log lines" below;
//                  never codes, verifiers, secrets or token values)
//   AT_TTL         access-token lifetime in seconds (default 300; AS_PROFILE=default: 3600)
//   RT_TTL         refresh-token lifetime in seconds (default 86400; AS_PROFILE=default:
//                  oidc-provider's default, 14 days)
//   AS_SCOPES      resource-server scopes granted for any resource (default "mcp:tools")
//   AS_RFC8414     "0" = answer 404 at /.well-known/oauth-authorization-server so that only
//                  the OIDC /.well-known/openid-configuration works (exercises the client's
//                  RFC 8414 -> OIDC discovery fallback, like providers that lack RFC 8414)
//   AS_ACCOUNT     the account id (JWT `sub`) the auto-login creates (default "test-user")
//   AS_TOKEN_DELAY_MS  delay every token endpoint response by this many milliseconds
//                  (default 0), so that tests can make concurrent clients overlap for sure
//   AS_PROFILE     "test" (default): the tuned configuration described under "Behaviour"
//                  below, which every existing test relies on.
//                  "default": oidc-provider as close to its own defaults as an RFC 8707
//                  (resource indicator) deployment with open DCR allows; see "The default
//                  profile" below. AT_TTL / RT_TTL apply there only when set.
//
// Test-only fault knobs (both profiles; off unless set; each a deliberate bend of the AS
// for fault tests, not something oidc-provider does):
//   AS_CONTROL=1   serve POST /__test/fail-next-token?status=503&body=html&grant_type=G:
//                  the next token-endpoint request (only one of grant type G, when given)
//                  is answered with that status (default 503) and a gateway's HTML page
//                  (body=html, the default), an OAuth-style JSON error (body=json) or
//                  nothing (body=empty), without reaching oidc-provider; then back to
//                  normal. Answers 200 {"armed":{...}}. The failed request is logged with
//                  "injected":"fail-next-token".
//   AS_REFRESH_REQUIRES_SCOPE=1
//                  a refresh_token grant without a (non-empty) `scope` form parameter is
//                  answered 400 {"error":"invalid_request","error_description":"AADSTS900144:
//                  The request body must contain the following parameter: 'scope'."}, as
//                  Microsoft Entra ID does; logged with "injected":"refresh-requires-scope".
//                  Refreshes with a scope go to oidc-provider unchanged.
//   AS_CONTROL=1   also serves the interop matrix's control endpoint (tests/interop/CONTRACT.md):
//                  POST /__interop/deny-next: the next authorization's interaction is finished
//                  as a user who refuses (oidc-provider's interactionFinished with
//                  error=access_denied), so the client gets its redirect with
//                  error=access_denied, state and iss as oidc-provider sends them; once, then
//                  back to approving. Answers 204; the interaction is logged with
//                  "injected":"deny-next".
//
// Log lines (AS_LOG) have: ts, method, path, status and, where they apply, route,
// grant_type, resource, scope, client_id, response_type, code_challenge_method, prompt,
// token_type_hint (as sent), scope_effective (authorization endpoint: the scope
// oidc-provider kept, when not the one sent; null = none), scope_param (token endpoint:
// whether the request carried `scope`),
// refresh_token_issued and granted_scope (successful token responses), error and
// error_description and error_detail (oidc-provider's explanation, which it does not send
// to the client; also for HTML error pages and error redirects), injected, armed.
//
// On startup it prints exactly one JSON line to stdout, e.g.
//   {"ready":true,"issuer":"http://127.0.0.1:40123","port":40123,"pid":1234,"profile":"test"}
// and logs diagnostics to stderr. It exits on SIGTERM/SIGINT, and with
// AS_EXIT_ON_STDIN_EOF=1 also when stdin reaches EOF (so a parent holding our stdin pipe
// takes us down with it, even if it is SIGKILLed).
//
// Behaviour of the test profile (what the existing tests rely on):
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
//
// The default profile (AS_PROFILE=default) keeps oidc-provider's defaults for everything a
// client can observe except what such a deployment must configure; each departure is
// commented at `defaultProfile` below. Consequences a client meets (as shipped):
// * `offline_access` is dropped from an authorization request unless it also has
//   prompt=consent; refresh tokens are issued only when offline_access was granted; they
//   rotate for public clients, with reuse detection.
// * A request that grants no scope at all (offline_access alone without prompt=consent,
//   or no `scope`) ends in an access_denied redirect without error_description (the log's
//   error_detail says "no scope was granted").
// * A token response for the resource lists only resource scopes: `scope` is "" when just
//   offline_access and/or openid were granted (the JWT then has no `scope` claim), and
//   offline_access is never listed.
// * PKCE is required for public clients only (S256 only); no revocation, introspection
//   or device flow endpoints; response types, scopes and claims as shipped.
// * Errors that cannot be redirected (an unknown client_id, a bad redirect_uri) are
//   oidc-provider's own HTML error page (renderError default).
// * A refresh without `resource` keeps the granted resource only when its scope has no
//   `openid` (useGrantedResource default); JWT access tokens (`aud` = resource) come from
//   getResourceServerInfo with scope AS_SCOPES; without AT_TTL they live 3600 s.
// * Memory adapter: a restart (same port: AS_PORT or argv) forgets every client and grant,
//   and the signing key changes.

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
const profile = process.env.AS_PROFILE ?? 'test';
if (!['test', 'default'].includes(profile)) {
  process.stderr.write(`[oidc-as] AS_PROFILE must be "test" or "default", not ${JSON.stringify(profile)}\n`);
  process.exit(2);
}
const asControl = process.env.AS_CONTROL === '1';
const refreshRequiresScope = process.env.AS_REFRESH_REQUIRES_SCOPE === '1';

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

// AS_KEY_FILE: keep the signing key in this file (read when it exists, written when it
// does not), as a deployment keeps its configured keys across restarts; without it, a new
// key per process.
function loadOrMakeSigningKey(file) {
  if (file && fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const key = {
    ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(8).toString('hex'),
    use: 'sig',
    alg: 'RS256',
  };
  if (file) fs.writeFileSync(file, JSON.stringify(key), { mode: 0o600 });
  return key;
}
const signingKey = loadOrMakeSigningKey(process.env.AS_KEY_FILE);

function isAbsoluteHttpUrl(value) {
  try {
    const u = new URL(value);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.hash;
  } catch {
    return false;
  }
}

const testProfile = {
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

// AS_PROFILE=default: oidc-provider's defaults, departing only where a deployment of this
// kind must (each departure says why). Everything not named here (scopes, claims,
// responseTypes, issueRefreshToken, rotateRefreshToken, expiresWithSession, pkce,
// clientDefaults, interactions.url, the interaction policy, renderError, ttl, the
// defaultResource/useGrantedResource of resourceIndicators, every other feature) is
// oidc-provider's default.
const defaultProfile = {
  // Departure: oidc-provider's default keys are fixed development keys it warns about;
  // every deployment supplies its own. A fresh key per process also makes a restart look
  // like a real redeploy with a new key.
  jwks: { keys: [signingKey] },
  // Departure: cookie signing keys are a deployment secret (the default is none).
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  // Departure in form only: oidc-provider says findAccount MUST be replaced by one's own
  // account model; this one behaves exactly like the default (the account id is the `sub`).
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub }),
  }),
  features: {
    // Departure: the development login/consent pages are replaced by the headless
    // interaction below (/interaction/<uid>, the default interactions.url), which stands
    // in for a user who logs in and approves exactly what was requested.
    devInteractions: { enabled: false },
    // Departure: open Dynamic Client Registration, which MCP clients need (the default is
    // off; initialAccessToken stays at its default, false: no token needed).
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true, // (already the default)
      // Departure: the default getResourceServerInfo throws InvalidTarget (it MUST be
      // provided). As in oidc-provider's docs: the resource server's scope, the audience =
      // the resource indicator, JWT access tokens (signed with the default
      // id_token_signed_response_alg, RS256). Any absolute http(s) URI is a resource.
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (!isAbsoluteHttpUrl(resourceIndicator)) {
          throw new Provider.errors.InvalidTarget('resource must be an absolute http(s) URI');
        }
        return {
          scope: resourceScopes,
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          // Test knob: only when AT_TTL is set (else the default, 3600 s).
          ...(process.env.AT_TTL ? { accessTokenTTL: atTtl } : {}),
        };
      },
    },
  },
  // Test knob: only when RT_TTL is set (else the default ttl.RefreshToken).
  ...(process.env.RT_TTL ? { ttl: { RefreshToken: rtTtl } } : {}),
};

const configuration = profile === 'default' ? defaultProfile : testProfile;

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => stderr(`server_error: ${err.stack ?? err}`));
// Errors also reach the log line through ctx.req (an HTML error page or an error redirect
// has no JSON body to read them from).
function noteError(ctx, err) {
  if (ctx?.req && err?.error) {
    ctx.req.oidcError = { error: err.error, error_description: err.error_description, error_detail: err.error_detail };
  }
}
provider.on('grant.error', (ctx, err) => {
  noteError(ctx, err);
  stderr(`grant.error: ${err.message} ${err.error_description ?? ''}`);
});
provider.on('authorization.error', (ctx, err) => {
  noteError(ctx, err);
  stderr(`authorization.error: ${err.message} ${err.error_description ?? ''}`);
});
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
    // As the client sent them (query or form body) where they came in this request (a
    // resumed authorization has them from its interaction): oidc-provider rewrites some,
    // e.g. it drops offline_access from `scope` without prompt=consent.
    const sent = { ...(ctx.method === 'GET' ? ctx.query : {}), ...(ctx.oidc?.body ?? {}) };
    for (const key of ['grant_type', 'resource', 'scope', 'client_id', 'response_type', 'code_challenge_method', 'prompt', 'token_type_hint']) {
      const value = sent[key] ?? params[key];
      if (value !== undefined) info[key] = value;
    }
    // What oidc-provider made of `scope` when it differs (undefined = no scope left).
    if (ctx.oidc.route === 'authorization' && sent.scope !== undefined && params.scope !== sent.scope) {
      info.scope_effective = params.scope ?? null;
    }
  }
  if (ctx.oidc?.client?.clientId && !info.client_id) info.client_id = ctx.oidc.client.clientId;
  if (ctx.oidc?.route === 'token') {
    info.scope_param = params?.scope !== undefined;
    if (ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      info.refresh_token_issued = Boolean(ctx.body.refresh_token);
      if (ctx.body.scope !== undefined) info.granted_scope = ctx.body.scope;
    }
  }
  if (ctx.status >= 400 && ctx.body && typeof ctx.body === 'object' && ctx.body.error) {
    info.error = ctx.body.error;
    info.error_description = ctx.body.error_description;
    if (ctx.req.oidcError?.error_detail) info.error_detail = ctx.req.oidcError.error_detail;
  } else if (ctx.req.oidcError) {
    Object.assign(info, ctx.req.oidcError);
  }
  ctx.req.logInfo = info;
});

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (denyNext) {
    // The "user" refuses (AS_CONTROL's /__interop/deny-next): oidc-provider redirects to
    // the client with error=access_denied.
    denyNext = false;
    result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
    req.logInfo = { route: 'interaction', prompt: prompt.name, injected: 'deny-next' };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    return;
  }
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

// ---------------------------------------------------------------- test-only fault knobs
// AS_CONTROL=1: POST /__test/fail-next-token arms one failure of the token endpoint.
let failNextToken = null; // { status, body, grant_type? }
// AS_CONTROL=1: POST /__interop/deny-next makes the next interaction a refusal.
let denyNext = false;

function gatewayPage(status) {
  const title = `${status} ${http.STATUS_CODES[status] ?? 'Error'}`;
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

function send(res, status, contentType, body) {
  res.statusCode = status;
  if (contentType) res.setHeader('content-type', contentType);
  res.setHeader('cache-control', 'no-store');
  res.end(body);
}

function armFailure(req, res) {
  const q = new URL(req.url, issuer).searchParams;
  const status = Number(q.get('status') ?? 503);
  const body = q.get('body') ?? 'html';
  if (!Number.isInteger(status) || status < 100 || status > 599 || !['html', 'json', 'empty'].includes(body)) {
    send(res, 400, 'application/json', JSON.stringify({ error: 'bad status or body (html|json|empty)' }));
    return;
  }
  failNextToken = { status, body, ...(q.get('grant_type') ? { grant_type: q.get('grant_type') } : {}) };
  req.logInfo = { route: '__test', armed: failNextToken };
  send(res, 200, 'application/json', JSON.stringify({ armed: failNextToken }));
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// A POST /token while a knob may apply: the body is read here and, unless a knob answers,
// handed to oidc-provider as req.body (its body parser takes an already-read body; it
// warns once on stderr about it).
async function tokenWithKnobs(req, res) {
  const body = await readBody(req);
  const form = new URLSearchParams(body);
  const grantType = form.get('grant_type') ?? undefined;
  const hasScope = Boolean(form.get('scope'));
  if (failNextToken && (!failNextToken.grant_type || failNextToken.grant_type === grantType)) {
    const { status, body: kind } = failNextToken;
    failNextToken = null;
    req.logInfo = { route: 'token', grant_type: grantType, scope_param: form.has('scope'), injected: 'fail-next-token' };
    if (kind === 'html') send(res, status, 'text/html', gatewayPage(status));
    else if (kind === 'json') send(res, status, 'application/json', JSON.stringify({ error: 'temporarily_unavailable', error_description: 'injected by AS_CONTROL' }));
    else send(res, status, undefined, '');
    return;
  }
  if (refreshRequiresScope && grantType === 'refresh_token' && !hasScope) {
    const out = {
      error: 'invalid_request',
      error_description: "AADSTS900144: The request body must contain the following parameter: 'scope'.",
    };
    req.logInfo = { route: 'token', grant_type: grantType, scope_param: form.has('scope'), injected: 'refresh-requires-scope', ...out };
    send(res, 400, 'application/json', JSON.stringify(out));
    return;
  }
  req.body = body;
  callback(req, res);
}

const callback = provider.callback();
handler = (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  res.on('finish', () => {
    log({ method: req.method, path, status: res.statusCode, ...(req.logInfo ?? {}) });
  });
  if (asControl && path === '/__test/fail-next-token' && req.method === 'POST') {
    armFailure(req, res);
    return;
  }
  if (asControl && path === '/__interop/deny-next' && req.method === 'POST') {
    denyNext = true;
    req.logInfo = { route: '__interop', armed: 'deny-next' };
    send(res, 204, undefined, '');
    return;
  }
  if (path === '/token' && req.method === 'POST' && (failNextToken || refreshRequiresScope)) {
    tokenWithKnobs(req, res).catch((err) => {
      stderr(`token knob failed: ${err.stack ?? err}`);
      if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ error: 'server_error' }));
    });
    return;
  }
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

const knobs = [asControl && 'AS_CONTROL', refreshRequiresScope && 'AS_REFRESH_REQUIRES_SCOPE'].filter(Boolean);
stderr(`listening on ${issuer} (profile ${profile}, AT_TTL=${profile === 'default' && !process.env.AT_TTL ? 'default' : `${atTtl}s`}, RFC 8414 metadata ${serveRfc8414 ? 'on' : 'off: 404'}${knobs.length ? `, fault knobs: ${knobs.join(' ')}` : ''})`);
process.stdout.write(`${JSON.stringify({ ready: true, issuer, port: actualPort, pid: process.pid, profile })}\n`);
