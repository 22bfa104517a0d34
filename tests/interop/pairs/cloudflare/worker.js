// The Worker of the Cloudflare interop pair: an MCP server with OAuth written the way
// Cloudflare's docs tell an MCP server author to write one today:
//   - `agents` 0.32 docs/mcp-servers.md ("Authentication") and docs/securing-mcp-servers.md:
//     `createMcpHandler` (agents/mcp/server) over an MCP SDK v2 `McpServer`
//     (@modelcontextprotocol/server), wrapped by `OAuthProvider`
//     (@cloudflare/workers-oauth-provider) with `apiRoute: "/mcp"`, the endpoints
//     `/authorize`, `/oauth/token`, `/oauth/register`, `resourceMetadata: { resource:
//     env.MCP_RESOURCE }` and a KV namespace bound as `OAUTH_KV`;
//   - the provider's docs/consent-page.md for the authorize page (parseAuthRequest ->
//     completeAuthorization, errors rendered or redirected as its table says).
// `McpAgent` (Durable Objects, MCP SDK v1) is what the older templates use; the agents docs
// now call it deprecated and point new servers at `createMcpHandler`, so this is the
// default; worker-mcp-agent.js is the McpAgent variant (INTEROP_CF_SERVER=mcp-agent).
//
// Departures from the docs, each for the harness only:
//   - accessTokenTTL from the ACCESS_TOKEN_TTL binding (INTEROP_AT_TTL, raised by the
//     launcher to the provider's minimum of 60 s): the runner's expiry scenarios;
//     unset, the provider's default (1 hour) applies.
//   - the app's authorize/consent page (defaultHandler) is the headless test user: app.js.
import { OAuthProvider } from "@cloudflare/workers-oauth-provider";
import { McpServer } from "@modelcontextprotocol/server";
import { createMcpHandler, getMcpAuthContext } from "agents/mcp/server";
import { env } from "cloudflare:workers";
import { z } from "zod";
import { defaultHandler } from "./app.js";

function createServer() {
  const server = new McpServer({ name: "interop-cloudflare", version: "1.0.0" });

  server.registerTool(
    "echo",
    { description: "Returns the text it is given", inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: "text", text }] }),
  );

  server.registerTool(
    "whoami",
    { description: "Who the access token belongs to" },
    async (context) => {
      // props: what completeAuthorization() stored; authInfo: the verified token's grant
      // (client, scopes, resource), as the agents docs' whoami example reads them.
      const props = getMcpAuthContext()?.props ?? {};
      const authInfo = context.http?.authInfo;
      const who = {
        sub: props.userId ?? null,
        client_id: authInfo?.clientId ?? null,
        scope: authInfo ? authInfo.scopes.join(" ") : null,
        aud: authInfo?.resource ? String(authInfo.resource) : null,
        exp: authInfo?.expiresAt ?? null,
      };
      return { content: [{ type: "text", text: JSON.stringify(who) }] };
    },
  );

  return server;
}

const mcpHandler = createMcpHandler(createServer);

const options = {
  authorizeEndpoint: "/authorize",
  tokenEndpoint: "/oauth/token",
  clientRegistrationEndpoint: "/oauth/register",
  apiRoute: "/mcp",
  apiHandler: {
    // OAuthProvider needs an object with a fetch method (agents docs).
    fetch(request, env, ctx) {
      return mcpHandler(request, env, ctx);
    },
  },
  defaultHandler,
  // The URL MCP clients connect to; every token is bound to it.
  resourceMetadata: { resource: env.MCP_RESOURCE },
};
if (env.ACCESS_TOKEN_TTL) options.accessTokenTTL = Number(env.ACCESS_TOKEN_TTL);

export default new OAuthProvider(options);
