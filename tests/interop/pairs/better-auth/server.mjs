// The better-auth interop pair for mcp-oauth's matrix (issue 16; tests/interop/CONTRACT.md).
//
// One app, as the better-auth 1.7 docs (docs/plugins/mcp, docs/plugins/oauth-provider,
// docs/integrations/hono, docs/adapters/sqlite) tell an MCP server author to build it:
//   - better-auth with the JWT plugin and the MCP plugin (`mcp()` from @better-auth/mcp,
//     which *is* the OAuth 2.1 provider of @better-auth/oauth-provider configured for MCP),
//     plus the CIMD companion plugin the docs install beside it;
//   - storage: SQLite through better-sqlite3 (the docs' recommended driver) in
//     INTEROP_STATE_DIR, tables created by better-auth's programmatic migration
//     (`getMigrations`, docs/concepts/database: the CLI-less equivalent of `npx auth migrate`);
//   - the MCP server: the official MCP TypeScript SDK v2 (`createMcpHandler` + `McpServer`
//     from @modelcontextprotocol/server, `legacy: "reject"` as the docs configure it),
//     protected with `requireMcpAuth` from @better-auth/mcp; only POST /mcp is exported
//     (the docs' Next.js route exports POST only, so GET/DELETE answer 405);
//   - the framework: Hono on Node (@hono/node-server), mounted as docs/integrations/hono
//     shows (`app.all("/api/auth/*", c => auth.handler(c.req.raw))`); the well-known URLs are
//     forwarded to `auth.handler` as docs/plugins/oauth-provider ("Confirm /.well-known
//     endpoints") and docs/plugins/mcp ("Protected Resource Metadata") require.
// The only stand-in is the human: GET /sign-in (the plugin's `loginPage`) signs a fixed test
// user in (signing up on first use) through better-auth's own API and lets the plugin continue
// the authorization; GET /consent (`consentPage`) approves every requested scope with the
// plugin's own consent endpoint. See README.md for what this pair does and why.
//
// Environment: see CONTRACT.md (INTEROP_AS_PORT, INTEROP_MCP_PORT, INTEROP_STATE_DIR,
// INTEROP_AS_LOG, INTEROP_MCP_LOG, INTEROP_AT_TTL, INTEROP_CONTROL, INTEROP_EXIT_ON_STDIN_EOF).
// `--describe` prints the pair's description and exits.

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const t0 = performance.now();
const here = path.dirname(fileURLToPath(import.meta.url));

function pkgVersion(name) {
  const file = path.join(here, "node_modules", ...name.split("/"), "package.json");
  return JSON.parse(fs.readFileSync(file, "utf8")).version;
}

const VERSION_PACKAGES = [
  "better-auth",
  "@better-auth/mcp",
  "@better-auth/oauth-provider",
  "@better-auth/cimd",
  "@modelcontextprotocol/server",
  "hono",
  "@hono/node-server",
  "better-sqlite3",
];

function versions() {
  const v = { node: process.versions.node };
  for (const name of VERSION_PACKAGES) v[name] = pkgVersion(name);
  return v;
}

if (process.argv.includes("--describe")) {
  process.stdout.write(
    JSON.stringify({
      as: "better-auth",
      server: "better-auth-mcp",
      versions: versions(),
      // docs/plugins/oauth-provider "Revoke Endpoint": RFC 7009 at /oauth2/revoke; a refresh
      // token is deleted with every access token it minted. JWT access tokens (what an MCP
      // client gets, since it always sends `resource`) cannot be revoked server-side: the
      // endpoint answers 400 unsupported_token_type for a live one.
      revocation: true,
      // docs: "This implementation currently issues a new refresh token for every refresh
      // request"; mcp() sets refreshTokenReuseInterval to 30 s (a rotated-out token replays
      // the same response within 30 s; later reuse revokes the family).
      rotation: true,
      restart_forgets_clients: false,
      notes: [
        "better-auth 1.7 moved MCP out of better-auth/plugins (the old `mcp` plugin is gone) into @better-auth/mcp, built on @better-auth/oauth-provider; its newest release (1.7.5) declares peer better-call@1.4.0 while better-auth 1.7.29 depends on better-call 1.4.6, so the documented `npm install` fails with ERESOLVE; installed with --legacy-peer-deps (@better-auth/mcp never imports better-call).",
        "DCR is off by default (the docs recommend CIMD; MCP 2026-07-28 deprecates DCR); enabled with the documented 'Optional DCR fallback' (allowDynamicClientRegistration + allowUnauthenticatedClientRegistration), since CIMD needs a client metadata document at a public https URL the AS can fetch, which a loopback-only machine cannot offer.",
        "Endpoints live under the issuer http://127.0.0.1:P/api/auth: /oauth2/register, /oauth2/authorize, /oauth2/token, /oauth2/revoke; AS metadata at /.well-known/oauth-authorization-server/api/auth (RFC 8414 path insertion) and /api/auth/.well-known/oauth-authorization-server; PRM at /.well-known/oauth-protected-resource and /.well-known/oauth-protected-resource/mcp.",
        "Refresh tokens only when `offline_access` is requested and granted (default scopes: openid profile email offline_access); DCR clients get the refresh_token grant by default.",
        "Access tokens are JWTs bound to the MCP resource (aud), verified locally by requireMcpAuth against the JWKS: forget-clients and revocation do not invalidate an access token that has not expired yet.",
        "The MCP endpoint is 2026-07-28 only (createMcpHandler legacy: 'reject', as the docs configure it): 2025-era initialize is refused.",
      ].join(" "),
    }) + "\n",
  );
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// Configuration from the contract's environment.

const env = process.env;
const asPortWanted = Number(env.INTEROP_AS_PORT ?? 0);
const mcpPortWanted = Number(env.INTEROP_MCP_PORT ?? 0);
const control = env.INTEROP_CONTROL === "1";
const atTtl = env.INTEROP_AT_TTL ? Number(env.INTEROP_AT_TTL) : undefined;
let stateDir = env.INTEROP_STATE_DIR;
if (!stateDir) {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "better-auth-pair."));
  console.error(`better-auth pair: no INTEROP_STATE_DIR, using ${stateDir}`);
}
fs.mkdirSync(stateDir, { recursive: true });

function appendLine(file, obj) {
  if (!file) return;
  try {
    fs.appendFileSync(file, JSON.stringify(obj) + "\n");
  } catch (e) {
    console.error(`better-auth pair: cannot write ${file}: ${e.message}`);
  }
}

// BETTER_AUTH_SECRET: a deployment sets one and keeps it (it signs the authorization
// query, cookies, and encrypts the JWT plugin's private keys in the database). Kept in the
// state dir so a restart keeps working with the same database.
function secret() {
  const file = path.join(stateDir, "better-auth-secret");
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    const s = randomBytes(32).toString("base64url");
    fs.writeFileSync(file, s + "\n", { mode: 0o600 });
    return s;
  }
}

// ---------------------------------------------------------------------------------------
// HTTP listeners first: with port 0 the origin (better-auth's baseURL, the MCP resource)
// is known only once the port is bound.

const { createAdaptorServer } = await import("@hono/node-server");

let app = null; // set once the auth instance exists
const fetchHandler = (req) =>
  app ? app.fetch(req) : new Response("starting", { status: 503 });

async function listen(port) {
  const server = createAdaptorServer({ fetch: fetchHandler });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return server;
}

// One app serves both the AS and the MCP endpoint: one port unless the runner asks for two
// different ones (then the same app listens on both).
const servers = [];
servers.push(await listen(asPortWanted || mcpPortWanted || 0));
const asPort = servers[0].address().port;
let mcpPort = asPort;
if (asPortWanted && mcpPortWanted && mcpPortWanted !== asPortWanted) {
  servers.push(await listen(mcpPortWanted));
  mcpPort = mcpPortWanted;
}
const asOrigin = `http://127.0.0.1:${asPort}`;
const mcpUrl = `http://127.0.0.1:${mcpPort}/mcp`;

// ---------------------------------------------------------------------------------------
// The auth instance (docs/plugins/mcp "Configure authorization").

const { betterAuth } = await import("better-auth");
const { jwt } = await import("better-auth/plugins");
const { getMigrations } = await import("better-auth/db/migration");
const { mcp, requireMcpAuth } = await import("@better-auth/mcp");
const { cimd } = await import("@better-auth/cimd");
const { fetchClientMetadataResource } = await import("@better-auth/cimd/node");
const { default: Database } = await import("better-sqlite3");

const dbFile = path.join(stateDir, "better-auth.sqlite");
const db = new Database(dbFile);

const mcpOptions = {
  loginPage: "/sign-in",
  consentPage: "/consent",
  resource: mcpUrl,
  // docs/plugins/mcp "Optional DCR fallback": the docs recommend CIMD and leave DCR off;
  // MCP clients that register dynamically (mcp-oauth without a client metadata URL, and
  // every client here: CIMD needs a metadata document at a public https URL that the AS
  // fetches, impossible on a loopback-only machine) need both switches, exactly as shown.
  allowDynamicClientRegistration: true,
  allowUnauthenticatedClientRegistration: true,
};
// The matrix's access-token lifetime (documented option, default 3600 s); only when set.
if (atTtl) mcpOptions.accessTokenExpiresIn = atTtl;

const auth = betterAuth({
  // The deployment's URL (BETTER_AUTH_URL in the docs' installation guide); the issuer is
  // `${baseURL}/api/auth` (the default basePath).
  baseURL: asOrigin,
  secret: secret(),
  database: db,
  // A login method for the test user. The MCP docs leave the login method to the app;
  // email/password is better-auth's basic one (docs/basic-usage).
  emailAndPassword: { enabled: true },
  plugins: [
    jwt(),
    mcp(mcpOptions),
    cimd({ fetchClientMetadataResource, metadataProfile: "mcp-2026-07-28" }),
  ],
});

const tMigrate = performance.now();
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
const migrateMs = Math.round(performance.now() - tMigrate);

// ---------------------------------------------------------------------------------------
// The MCP server (docs/plugins/mcp "Protecting an MCP Route").

const { createMcpHandler, McpServer } = await import("@modelcontextprotocol/server");
const z = await import("zod");

function whoamiFrom(authInfo) {
  const claims = authInfo?.extra?.claims ?? {};
  return {
    sub: claims.sub,
    client_id: authInfo?.clientId,
    scope: (authInfo?.scopes ?? []).join(" "),
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    sid: claims.sid,
  };
}

const mcpServerHandler = createMcpHandler(
  (ctx) => {
    const server = new McpServer({ name: "better-auth-interop", version: "1.0.0" });
    server.registerTool(
      "echo",
      { description: "Echo the text back", inputSchema: z.object({ text: z.string() }) },
      async ({ text }) => ({ content: [{ type: "text", text }] }),
    );
    server.registerTool(
      "whoami",
      { description: "Who the access token says the caller is", inputSchema: z.object({}) },
      async () => ({
        content: [{ type: "text", text: JSON.stringify(whoamiFrom(ctx.authInfo)) }],
      }),
    );
    return server;
  },
  { legacy: "reject" },
);

// docs: "if a tool needs token context, convert those claims to the SDK's AuthInfo and pass
// it through mcpServerHandler.fetch(request, { authInfo })".
function toAuthInfo(request, claims) {
  const header = request.headers.get("authorization") ?? "";
  return {
    token: header.replace(/^(Bearer|DPoP)\s+/i, ""),
    clientId: claims.azp ?? claims.client_id,
    scopes: typeof claims.scope === "string" ? claims.scope.split(" ").filter(Boolean) : [],
    expiresAt: claims.exp,
    resource: typeof claims.aud === "string" ? new URL(claims.aud) : undefined,
    extra: { claims },
  };
}

const POST = requireMcpAuth(
  auth,
  (request, claims) => mcpServerHandler.fetch(request, { authInfo: toAuthInfo(request, claims) }),
  { resource: mcpUrl },
);

// ---------------------------------------------------------------------------------------
// The headless user: login and consent pages (the app author's part, auto-approving).

const TEST_USER = { email: "interop@example.com", password: "interop-password-1", name: "Interop Test User" };
let denyNext = false;

function redirectResponse(url, setCookies = []) {
  const headers = new Headers({ location: url, "cache-control": "no-store" });
  for (const c of setCookies) headers.append("set-cookie", c);
  return new Response(null, { status: 302, headers });
}

function jsonHeaders(from) {
  const h = new Headers(from);
  // better-auth answers an API call with {redirect, url} instead of a 302 when asked for JSON.
  h.set("accept", "application/json");
  h.delete("content-type");
  h.delete("content-length");
  return h;
}

async function signIn(request, oauthQuery) {
  const headers = jsonHeaders(request.headers);
  const body = { email: TEST_USER.email, password: TEST_USER.password, oauth_query: oauthQuery };
  try {
    return await auth.api.signInEmail({ body, headers, returnHeaders: true });
  } catch (e) {
    if (e?.statusCode !== 401) throw e;
    // First use: the account does not exist yet. Sign-up signs in as well (autoSignIn).
    return await auth.api.signUpEmail({ body: { ...body, name: TEST_USER.name }, headers, returnHeaders: true });
  }
}

async function consent(request, oauthQuery, accept, cookies) {
  const headers = jsonHeaders(request.headers);
  if (cookies?.length) headers.set("cookie", cookies.map((c) => c.split(";")[0]).join("; "));
  return auth.api.oauth2Consent({ body: { accept, oauth_query: oauthQuery } , headers });
}

async function loginPage(c) {
  const oauthQuery = new URL(c.req.url).search.slice(1);
  const { headers, response } = await signIn(c.req.raw, oauthQuery);
  const cookies = headers.getSetCookie();
  if (denyNext) {
    // The user refuses at the first interaction page they see (a fresh browser always
    // lands here first): the plugin's own consent endpoint with accept=false.
    denyNext = false;
    const res = await consent(c.req.raw, oauthQuery, false, cookies);
    return redirectResponse(res.url, cookies);
  }
  if (response?.redirect && response.url) return redirectResponse(response.url, cookies);
  return new Response("signed in, but the authorization did not continue", { status: 500 });
}

async function consentPage(c) {
  const oauthQuery = new URL(c.req.url).search.slice(1);
  const accept = !denyNext;
  denyNext = false;
  const res = await consent(c.req.raw, oauthQuery, accept);
  return redirectResponse(res.url);
}

// ---------------------------------------------------------------------------------------
// Request logs (never codes, tokens, secrets).

function isAsPath(p) {
  return (
    p.startsWith("/api/auth/") || p.startsWith("/.well-known/") || p === "/sign-in" ||
    p === "/consent" || p.startsWith("/__interop/")
  );
}

function basicClientId(request) {
  const h = request.headers.get("authorization") ?? "";
  const m = /^Basic\s+(.+)$/i.exec(h);
  if (!m) return undefined;
  try {
    const user = Buffer.from(m[1], "base64").toString("utf8").split(":")[0];
    return decodeURIComponent(user);
  } catch {
    return undefined;
  }
}

async function logAs(c, started, formBody) {
  const url = new URL(c.req.url);
  const entry = { ts: new Date(started).toISOString(), method: c.req.method, path: url.pathname, status: c.res.status };
  const q = url.searchParams;
  if (formBody) {
    if (formBody.get("grant_type")) entry.grant_type = formBody.get("grant_type");
    if (formBody.get("client_id")) entry.client_id = formBody.get("client_id");
    if (formBody.get("scope") !== null) entry.scope = formBody.get("scope");
    if (formBody.get("resource")) entry.resource = formBody.getAll("resource").join(" ");
    if (formBody.get("token_type_hint")) entry.token_type_hint = formBody.get("token_type_hint");
  }
  if (!entry.client_id && q.get("client_id")) entry.client_id = q.get("client_id");
  if (!entry.client_id) entry.client_id = basicClientId(c.req.raw);
  if (url.pathname.endsWith("/oauth2/authorize")) {
    for (const k of ["scope", "prompt", "resource"]) if (q.get(k) !== null) entry[k] = q.getAll(k).join(" ");
  }
  const loc = c.res.headers.get("location");
  if (loc) {
    try {
      const l = new URL(loc, asOrigin);
      if (l.searchParams.get("error")) entry.error = l.searchParams.get("error");
      entry.redirect = l.origin === asOrigin ? l.pathname : `${l.origin}${l.pathname}`;
    } catch {}
  }
  const ct = c.res.headers.get("content-type") ?? "";
  if (ct.includes("json") && (c.res.status >= 400 || url.pathname.endsWith("/oauth2/register") || url.pathname.endsWith("/oauth2/token"))) {
    try {
      const body = await c.res.clone().json();
      if (body?.error && !entry.error) entry.error = String(body.error);
      if (body?.error_description) entry.error_description = String(body.error_description).slice(0, 200);
      if (body?.code && !entry.error && c.res.status >= 400) entry.error = String(body.code);
      if (url.pathname.endsWith("/oauth2/register") && body?.client_id) entry.client_id = body.client_id;
      if (url.pathname.endsWith("/oauth2/token") && c.res.status === 200) {
        entry.granted_scope = body.scope;
        entry.refresh_token_issued = typeof body.refresh_token === "string";
        entry.expires_in = body.expires_in;
      }
    } catch {}
  }
  appendLine(env.INTEROP_AS_LOG, entry);
}

// ---------------------------------------------------------------------------------------
// Routes.

const { Hono } = await import("hono");
const hono = new Hono();

hono.use("*", async (c, next) => {
  const started = Date.now();
  const p = new URL(c.req.url).pathname;
  let formBody;
  if (c.req.method === "POST" && /\/oauth2\/(token|revoke|introspect)$/.test(p)) {
    try {
      formBody = new URLSearchParams(await c.req.raw.clone().text());
    } catch {}
  }
  try {
    await next();
  } finally {
    if (p === "/mcp") {
      appendLine(env.INTEROP_MCP_LOG, {
        ts: new Date(started).toISOString(),
        method: c.req.method,
        path: p,
        status: c.res.status,
        authorization: c.req.header("authorization") !== undefined,
        protocol_version: c.req.header("mcp-protocol-version"),
        mcp_method: c.req.header("mcp-method"),
      });
    } else if (isAsPath(p)) {
      await logAs(c, started, formBody);
    }
  }
});

hono.onError((err, c) => {
  console.error(`better-auth pair: ${c.req.method} ${new URL(c.req.url).pathname}:`, err);
  return c.text("internal error", 500);
});

hono.all("/api/auth/*", (c) => auth.handler(c.req.raw));
hono.all("/.well-known/*", (c) => auth.handler(c.req.raw));
hono.post("/mcp", (c) => POST(c.req.raw));
// The docs' route exports POST only and Next.js answers other methods with 405; Hono would
// answer 404, so say 405 as the documented deployment does.
hono.all("/mcp", () => new Response(null, { status: 405, headers: { allow: "POST" } }));
hono.get("/sign-in", loginPage);
hono.get("/consent", consentPage);

if (control) {
  hono.post("/__interop/deny-next", () => {
    denyNext = true;
    return new Response(null, { status: 204 });
  });
  hono.post("/__interop/forget-clients", () => {
    // Every OAuth client and what hangs off it (its resource links, consents, refresh and
    // access token records), as deleting the clients from the database would. The
    // protected resource itself (oauthResource, the MCP URL) is configuration and stays.
    const tables = ["oauthClientResource", "oauthConsent", "oauthRefreshToken", "oauthAccessToken", "oauthClient"];
    const counts = db.transaction(() => tables.map((t) => `${t}=${db.prepare(`delete from "${t}"`).run().changes}`))();
    console.error(`better-auth pair: forget-clients deleted ${counts.join(" ")}`);
    return new Response(null, { status: 204 });
  });
}

app = hono;

// ---------------------------------------------------------------------------------------
// Ready.

const issuer = `${asOrigin}/api/auth`;
process.stdout.write(
  JSON.stringify({
    ready: true,
    issuer,
    mcp_url: mcpUrl,
    as_port: asPort,
    mcp_port: mcpPort,
    pid: process.pid,
    versions: versions(),
  }) + "\n",
);
console.error(
  `better-auth pair: ready in ${Math.round(performance.now() - t0)} ms (migrations ${migrateMs} ms): issuer=${issuer} mcp=${mcpUrl} state=${stateDir}`,
);

function shutdown() {
  for (const s of servers) s.close();
  try {
    db.close();
  } catch {}
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
if (env.INTEROP_EXIT_ON_STDIN_EOF === "1") {
  process.stdin.on("end", shutdown);
  process.stdin.on("close", shutdown);
  process.stdin.resume();
}
