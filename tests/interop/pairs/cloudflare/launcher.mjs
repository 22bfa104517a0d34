// Launcher of the Cloudflare interop pair (tests/interop/CONTRACT.md, an app-embedded pair):
// the Worker (Workers OAuth Provider + the agents MCP server) bundled with esbuild (as wrangler
// bundles one) and run on the real workerd runtime through miniflare, behind a small HTTP
// front on the public port that writes the contract's request logs. Run it through
// ./launcher (the project's Node 22).
//
// Two MCP servers, both from the `agents` package (INTEROP_CF_SERVER):
//   handler    (default) worker.js: createMcpHandler (agents/mcp/server) over an MCP SDK v2
//              McpServer: what the agents docs tell a server author to write today
//   mcp-agent  worker-mcp-agent.js: the McpAgent Durable Object (MCP SDK v1): what the
//              templates shipped and most deployed servers run; deprecated in the docs
//
// Why a front: the logs are the harness's, not the app's, so they stay out of the Worker.
// The front forwards every request unchanged to workerd (Host header included, so the
// Worker sees the public origin in request.url and its issuer, resource and
// PRM URLs are the public ones), streams MCP responses, and only adds one header of its
// own: x-interop-deny on the consent hop after POST /__interop/deny-next (INTEROP_CONTROL=1
// only; the same header coming from outside is dropped).
//
// Environment: INTEROP_AS_PORT / INTEROP_MCP_PORT (one app, one port: the first non-zero of
// the two, 0 = a free one), INTEROP_STATE_DIR (KV lives in <dir>/kv, so registered clients
// and grants survive a restart, as in production), INTEROP_AS_LOG, INTEROP_MCP_LOG,
// INTEROP_AT_TTL (the provider refuses an access-token lifetime under 60 s, KV's minimum
// expiration: a smaller value is raised to 60 and the ready line says so in "at_ttl"),
// INTEROP_CONTROL=1, INTEROP_EXIT_ON_STDIN_EOF=1, INTEROP_CF_SERVER (above).
// `--describe` prints what the pair supports; `--build` (re)bundles both Workers.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { builtinModules, createRequire } from "node:module";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// stdout carries the ready line only; anything else that would print there goes to stderr.
for (const level of ["log", "info", "debug"]) console[level] = (...args) => console.error(...args);
const say = (msg) => process.stderr.write(`[cloudflare-pair] ${msg}\n`);

const KV_MIN_TTL = 60; // the provider's KV_MIN_EXPIRATION_TTL_SECONDS
const COMPATIBILITY_DATE = "2026-06-11"; // the agents docs' wrangler.jsonc
const COMPATIBILITY_FLAGS = ["nodejs_compat"]; // agents/mcp/server uses AsyncLocalStorage

const VARIANTS = {
  handler: { entry: "worker.js", server: "agents-createMcpHandler", sdk: "@modelcontextprotocol/server" },
  "mcp-agent": { entry: "worker-mcp-agent.js", server: "agents-McpAgent", sdk: "@modelcontextprotocol/sdk" },
};
const variantName = process.env.INTEROP_CF_SERVER || "handler";
const variant = VARIANTS[variantName];
if (!variant) {
  say(`INTEROP_CF_SERVER=${variantName}: expected one of ${Object.keys(VARIANTS).join(", ")}`);
  process.exit(2);
}

function versionOf(pkg) {
  try {
    return JSON.parse(fs.readFileSync(path.join(here, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return null;
  }
}

function versions() {
  return {
    "@cloudflare/workers-oauth-provider": versionOf("@cloudflare/workers-oauth-provider"),
    agents: versionOf("agents"),
    [variant.sdk]: versionOf(variant.sdk),
    miniflare: versionOf("miniflare"),
    workerd: versionOf("workerd"),
    zod: versionOf("zod"),
  };
}

if (process.argv.includes("--describe")) {
  process.stdout.write(
    JSON.stringify({
      as: "cloudflare-workers-oauth-provider",
      server: variant.server,
      versions: versions(),
      revocation: true,
      rotation: true,
      restart_forgets_clients: false,
      notes:
        "OAuthProvider (one Worker: AS + its only resource) with " +
        (variantName === "handler"
          ? "createMcpHandler from agents/mcp/server (MCP SDK v2, stateless: 2026-07-28 and stateless 2025 wires; " +
            "whoami from getMcpAuthContext().props and the token's authInfo)"
          : "the McpAgent Durable Object from agents/mcp (MCP SDK v1, sessions in the object's SQLite storage, " +
            "persisted in INTEROP_STATE_DIR; deprecated in the agents docs; whoami has only sub: McpAgent sees " +
            "ctx.props, not the token's client or scopes)") +
        " on workerd via miniflare, KV persisted in INTEROP_STATE_DIR. Endpoints as the agents docs write them: /authorize (the app's page), " +
        "/oauth/token, /oauth/register (open DCR, public clients allowed); RFC 7009 revocation is served at " +
        "the token endpoint URL (metadata revocation_endpoint = token_endpoint); revoking the refresh token " +
        "revokes the grant and its access tokens. Refresh tokens rotate on every use; the one just used stays " +
        "valid until its replacement is used (a retry after a lost response works), and using it again " +
        "issues a new pair and invalidates that replacement: no reuse detection, the grant is never revoked " +
        "on replay. Access-token " +
        "lifetime: at least 60 s (the provider refuses less: KV's minimum expiration), so INTEROP_AT_TTL below " +
        "60 becomes 60 (ready line at_ttl; mcp-oauth refreshes once half of it has passed). No scopes configured (the docs' minimum): the 401 challenge and the PRM name none, grants " +
        "carry the requested scopes. RFC 8707: every token is bound to the one resource (http://127.0.0.1:P/mcp), " +
        "resource may be omitted (the sole resource is chosen). RFC 9207 iss on every authorization response, " +
        "errors included. RFC 9728 PRM only at /.well-known/oauth-protected-resource/mcp (root 404); RFC 8414 " +
        "metadata at /.well-known/oauth-authorization-server, no OIDC discovery. Unknown client_id at " +
        "/authorize: a local 400 page (no redirect). Consent is two GET hops here (the docs' page and " +
        "its form post, auto-approved: /authorize -> /consent?handle=...), so a first-hop probe of " +
        "/authorize creates no grant. completeAuthorization revokes the user's earlier grants for the same " +
        "client and resource (the provider's default).",
    }) + "\n",
  );
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// Configuration

const env = process.env;
const control = env.INTEROP_CONTROL === "1";
const requestedPort = Number(env.INTEROP_AS_PORT || 0) || Number(env.INTEROP_MCP_PORT || 0) || 0;
const stateDir = env.INTEROP_STATE_DIR || null;
let atTtl = null;
if (env.INTEROP_AT_TTL) {
  const asked = Math.round(Number(env.INTEROP_AT_TTL));
  if (!Number.isFinite(asked) || asked <= 0) {
    say(`INTEROP_AT_TTL=${env.INTEROP_AT_TTL} is not a positive number`);
    process.exit(2);
  }
  atTtl = Math.max(asked, KV_MIN_TTL);
  if (atTtl !== asked) say(`INTEROP_AT_TTL=${asked} raised to ${atTtl}: the provider's minimum (KV expiration)`);
}

// ---------------------------------------------------------------------------------------
// Logs (one JSON line per request; never codes, tokens, secrets)

function appender(file) {
  if (!file) return () => {};
  return (entry) => {
    try {
      fs.appendFileSync(file, JSON.stringify({ ts: new Date().toISOString(), ...entry }) + "\n");
    } catch (err) {
      say(`log write failed: ${err.message}`);
    }
  };
}
const asLog = appender(env.INTEROP_AS_LOG);
const mcpLog = appender(env.INTEROP_MCP_LOG);

// ---------------------------------------------------------------------------------------
// The Worker bundle (esbuild, as wrangler bundles a Worker), named after what goes into it

const ESBUILD_OPTIONS = {
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  conditions: ["workerd", "worker", "browser"],
  mainFields: ["browser", "module", "main"],
  // As wrangler does with nodejs_compat: Node built-ins, with or without "node:", are the
  // runtime's (McpAgent's dependencies import "path").
  external: ["cloudflare:*", "node:*", ...builtinModules],
  logLevel: "warning",
};

function bundlePath(entry) {
  const h = crypto.createHash("sha256");
  for (const f of [entry, "app.js", "package-lock.json"]) h.update(fs.readFileSync(path.join(here, f)));
  h.update(JSON.stringify(ESBUILD_OPTIONS));
  const stem = path.basename(entry, ".js");
  return path.join(here, ".build", stem, `${stem}-${h.digest("hex").slice(0, 16)}.mjs`);
}

async function workerBundle(entry) {
  const out = bundlePath(entry);
  if (fs.existsSync(out)) return out;
  const t0 = Date.now();
  await buildWorker(entry, out);
  say(`bundled ${entry} in ${Date.now() - t0} ms`);
  return out;
}

async function buildWorker(entry, out) {
  const esbuild = require("esbuild");
  const dir = path.dirname(out);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await esbuild.build({ ...ESBUILD_OPTIONS, entryPoints: [path.join(here, entry)], outfile: tmp });
  fs.renameSync(tmp, out); // atomic: a concurrent launcher never reads half a bundle
  for (const f of fs.readdirSync(dir)) {
    if (f.endsWith(".mjs") && f !== path.basename(out)) fs.rmSync(path.join(dir, f), { force: true });
  }
}

if (process.argv.includes("--build")) {
  for (const { entry } of Object.values(VARIANTS)) await buildWorker(entry, bundlePath(entry));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// The front

const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length",
]);
let upstreamPort = null;
let publicPort = null;
let denyNext = false;
// One connection per forwarded request: a pooled keep-alive socket that workerd has just
// closed would turn a client's request into a 502 of our own (seen: ECONNRESET on reuse).
const upstreamAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function formFields(body, contentType) {
  if (!body.length) return {};
  try {
    if ((contentType || "").includes("application/json")) return JSON.parse(body.toString("utf8"));
    return Object.fromEntries(new URLSearchParams(body.toString("utf8")));
  } catch {
    return {};
  }
}

function basicClientId(header) {
  const m = /^Basic\s+(.+)$/i.exec(header || "");
  if (!m) return undefined;
  try {
    const user = Buffer.from(m[1], "base64").toString("utf8").split(":")[0];
    return decodeURIComponent(user.replace(/\+/g, " "));
  } catch {
    return undefined;
  }
}

function forward(req, res, body, extraHeaders, onResponse) {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (HOP_BY_HOP.has(k) || k.startsWith("x-interop-")) continue;
    headers[k] = v;
  }
  Object.assign(headers, extraHeaders);
  if (body !== null) headers["content-length"] = String(body.length);
  else if (req.headers["content-length"]) headers["content-length"] = req.headers["content-length"];
  else if (req.headers["transfer-encoding"]) headers["transfer-encoding"] = req.headers["transfer-encoding"];
  const up = http.request(
    { host: "127.0.0.1", port: upstreamPort, method: req.method, path: req.url, headers, agent: upstreamAgent },
    (upRes) => onResponse(upRes),
  );
  up.on("error", (err) => {
    say(`upstream error ${req.method} ${req.url.split("?")[0]}: ${err.message}`);
    if (!res.headersSent) {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end("bad gateway\n");
    } else res.destroy();
  });
  if (body !== null) up.end(body);
  else req.pipe(up);
  return up;
}

function copyHead(upRes, res) {
  const headers = {};
  for (const [k, v] of Object.entries(upRes.headers)) {
    if (HOP_BY_HOP.has(k) && k !== "content-length") continue;
    headers[k] = v;
  }
  res.writeHead(upRes.statusCode, upRes.statusMessage, headers);
}

async function handleAs(req, res, url) {
  const p = url.pathname;
  if (control && p === "/__interop/deny-next" && req.method === "POST") {
    await readBody(req);
    denyNext = true;
    res.writeHead(204).end();
    asLog({ method: req.method, path: p, status: 204 });
    return;
  }
  const body = await readBody(req);
  const fields = formFields(body, req.headers["content-type"]);
  const entry = { method: req.method, path: p };
  const extra = {};
  if (p === "/authorize") {
    const cid = url.searchParams.get("client_id");
    if (cid) entry.client_id = cid;
  }
  if (p === "/oauth/token" && req.method === "POST") {
    if (fields.grant_type) entry.grant_type = fields.grant_type;
    else if (fields.token) {
      entry.revocation = true; // RFC 7009 at the token endpoint URL
      if (fields.token_type_hint) entry.token_type_hint = fields.token_type_hint;
    }
    const cid = fields.client_id || basicClientId(req.headers.authorization);
    if (cid) entry.client_id = cid;
    if (fields.resource) entry.resource = fields.resource;
    if (fields.scope !== undefined) entry.scope = fields.scope;
  }
  if (p === "/consent" && control && denyNext) {
    denyNext = false;
    extra["x-interop-deny"] = "1";
    entry.denied_by_control = true;
  }
  forward(req, res, body, extra, (upRes) => {
    const chunks = [];
    upRes.on("data", (c) => chunks.push(c));
    upRes.on("end", () => {
      const out = Buffer.concat(chunks);
      copyHead(upRes, res);
      res.end(out);
      entry.status = upRes.statusCode;
      const loc = upRes.headers.location;
      if (loc) {
        try {
          const l = new URL(loc, url);
          if (l.origin !== url.origin) {
            entry.redirect = l.searchParams.has("code") ? "code" : l.searchParams.has("error") ? "error" : "other";
            if (l.searchParams.has("error")) entry.error = l.searchParams.get("error");
            entry.iss = l.searchParams.has("iss");
          } else entry.redirect = l.pathname;
        } catch {}
      }
      if ((upRes.headers["content-type"] || "").includes("application/json") && out.length) {
        try {
          const j = JSON.parse(out.toString("utf8"));
          if (j && typeof j === "object") {
            if (j.error) entry.error = j.error;
            if (j.error_description) entry.error_description = j.error_description;
            if (p === "/oauth/register" && j.client_id) entry.client_id = j.client_id;
            if (p === "/oauth/token" && j.access_token) {
              entry.refresh_token_issued = !!j.refresh_token;
              if (j.scope !== undefined) entry.granted_scope = j.scope;
              if (j.expires_in !== undefined) entry.expires_in = j.expires_in;
            }
          }
        } catch {}
      } else if (upRes.statusCode >= 400 && p === "/authorize") {
        const m = /<p>([^<]{0,200})<\/p>/.exec(out.toString("utf8"));
        if (m) entry.error_page = m[1];
      }
      asLog(entry);
    });
    upRes.on("error", () => res.destroy());
  });
}

async function handleMcp(req, res, url) {
  const body = await readBody(req);
  const entry = { method: req.method, path: url.pathname, authorization: !!req.headers.authorization };
  if (req.headers["mcp-protocol-version"]) entry.protocol_version = req.headers["mcp-protocol-version"];
  if (req.headers["mcp-method"]) entry.mcp_method = req.headers["mcp-method"];
  if (req.headers["mcp-session-id"]) entry.session = true;
  if (body.length) {
    try {
      const j = JSON.parse(body.toString("utf8"));
      const msgs = Array.isArray(j) ? j : [j];
      const methods = msgs.map((m) => m && m.method).filter(Boolean);
      if (methods.length) entry.rpc = methods.join(",");
    } catch {}
  }
  forward(req, res, body, {}, (upRes) => {
    copyHead(upRes, res);
    entry.status = upRes.statusCode;
    if (upRes.statusCode === 401 || upRes.statusCode === 403) {
      const m = /error="([^"]+)"/.exec(upRes.headers["www-authenticate"] || "");
      if (m) entry.error = m[1];
    }
    mcpLog(entry);
    upRes.pipe(res);
    upRes.on("error", () => res.destroy());
    res.on("close", () => upRes.destroy());
  });
}

function handle(req, res) {
  let url;
  try {
    url = new URL(req.url, `http://127.0.0.1:${publicPort}`);
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (upstreamPort === null) {
    res.writeHead(503, { "retry-after": "1" }).end();
    return;
  }
  const isMcp = url.pathname === "/mcp" || url.pathname.startsWith("/mcp/");
  (isMcp ? handleMcp : handleAs)(req, res, url).catch((err) => {
    say(`front error: ${err.stack || err}`);
    if (!res.headersSent) res.writeHead(500).end();
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------
// Start

const t0 = Date.now();
const server = http.createServer(handle);
server.keepAliveTimeout = 5000;
// A restart on the same port may race the previous launcher's exit: retry EADDRINUSE a while.
for (let attempt = 0; ; attempt++) {
  try {
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(requestedPort, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    break;
  } catch (err) {
    if (err.code !== "EADDRINUSE" || requestedPort === 0 || attempt >= 100) {
      say(`cannot listen on 127.0.0.1:${requestedPort}: ${err.message}`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
publicPort = server.address().port;
const origin = `http://127.0.0.1:${publicPort}`;

const bundle = await workerBundle(variant.entry);
const { Miniflare } = await import("miniflare");
// workerd through a wrapper that sets a parent-death signal (see workerd-pdeathsig).
env.INTEROP_WORKERD_BINARY = require("workerd").default;
env.MINIFLARE_WORKERD_PATH = path.join(here, "workerd-pdeathsig");
const bindings = { MCP_RESOURCE: `${origin}/mcp` };
if (atTtl !== null) bindings.ACCESS_TOKEN_TTL = String(atTtl);
if (control) bindings.INTEROP_CONTROL = "1";
if (stateDir) {
  fs.mkdirSync(stateDir, { recursive: true });
  // miniflare keeps a scratch directory under os.tmpdir() and removes it at exit, except when
  // killed outright: keep it in the state dir and sweep what a killed predecessor left.
  const tmp = path.join(stateDir, "tmp");
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  env.TMPDIR = tmp;
} else say("INTEROP_STATE_DIR unset: KV in memory, lost on exit");

const privatePort = await freePort();
const mf = new Miniflare({
  name: "interop-cloudflare",
  modules: true,
  scriptPath: bundle,
  modulesRoot: path.dirname(bundle),
  compatibilityDate: COMPATIBILITY_DATE,
  compatibilityFlags: COMPATIBILITY_FLAGS,
  kvNamespaces: ["OAUTH_KV"],
  kvPersist: stateDir ? path.join(stateDir, "kv") : false,
  ...(variantName === "mcp-agent"
    ? {
        // wrangler.jsonc of the templates: durable_objects.bindings MCP_OBJECT -> the agent
        // class, migrations new_sqlite_classes.
        durableObjects: { MCP_OBJECT: { className: "InteropMCP", useSQLite: true } },
        durableObjectsPersist: stateDir ? path.join(stateDir, "do") : false,
      }
    : {}),
  bindings,
  host: "127.0.0.1",
  port: privatePort,
  handleRuntimeStdio(stdout, stderr) {
    stdout.pipe(process.stderr);
    stderr.pipe(process.stderr);
  },
});

// SIGTERM/SIGINT: miniflare's own exit hook stops workerd and exits (128+signal).
let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections?.();
  try {
    await mf.dispose();
  } catch (err) {
    say(`dispose: ${err.message}`);
  }
  process.exit(code);
}
if (env.INTEROP_EXIT_ON_STDIN_EOF === "1") {
  process.stdin.on("end", () => stop(0));
  process.stdin.on("error", () => stop(0));
  process.stdin.resume();
}

try {
  const ready = await mf.ready;
  upstreamPort = Number(ready.port);
} catch (err) {
  say(`miniflare failed: ${err.stack || err}`);
  await stop(1);
}

process.stdout.write(
  JSON.stringify({
    ready: true,
    issuer: origin,
    mcp_url: `${origin}/mcp`,
    as_port: publicPort,
    mcp_port: publicPort,
    pid: process.pid,
    versions: versions(),
    at_ttl: atTtl,
    server: variant.server,
    state_dir: stateDir,
  }) + "\n",
);
say(`ready in ${Date.now() - t0} ms: ${origin} (workerd on 127.0.0.1:${upstreamPort})`);
