// The McpAgent variant of the Cloudflare pair (INTEROP_CF_SERVER=mcp-agent): the MCP server
// as Cloudflare's remote-MCP templates have shipped it, and as most deployed Workers MCP
// servers still run: a `McpAgent` Durable Object (agents/mcp, MCP SDK v1 `McpServer` from
// @modelcontextprotocol/sdk, sessions kept in the object's SQLite storage) served at /mcp
// with `McpAgent.serve("/mcp")` (Streamable HTTP), behind the same OAuthProvider as
// worker.js. The agents 0.32 docs call McpAgent deprecated (docs/mcp-servers.md, "Upgrading
// an existing McpAgent server") but keep it working; its Durable Object is bound as
// MCP_OBJECT (serve()'s default binding) with SQLite storage, as the templates'
// wrangler.jsonc declare it (new_sqlite_classes).
//
// Only /mcp: Workers OAuth Provider 1.x binds every token to one resource and refuses a
// protected route outside it, so the templates' second route (/sse, serveSSE) cannot sit
// beside resource /mcp.
//
// Departures from the templates, each for the harness only: accessTokenTTL from
// ACCESS_TOKEN_TTL (see worker.js), the headless consent page (app.js).
import { OAuthProvider } from "@cloudflare/workers-oauth-provider";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { McpAgent } from "agents/mcp";
import { env } from "cloudflare:workers";
import { z } from "zod";
import { defaultHandler } from "./app.js";

export class InteropMCP extends McpAgent {
  server = new McpServer({ name: "interop-cloudflare-mcp-agent", version: "1.0.0" });

  async init() {
    this.server.registerTool(
      "echo",
      { description: "Returns the text it is given", inputSchema: { text: z.string() } },
      async ({ text }) => ({ content: [{ type: "text", text }] }),
    );

    this.server.registerTool(
      "whoami",
      { description: "Who the access token belongs to" },
      async () => {
        // McpAgent hands the agent only ctx.props (what completeAuthorization() stored):
        // the token's client and scopes do not reach it.
        const who = {
          sub: this.props?.userId ?? null,
          client_id: null,
          scope: null,
          aud: null,
        };
        return { content: [{ type: "text", text: JSON.stringify(who) }] };
      },
    );
  }
}

const options = {
  authorizeEndpoint: "/authorize",
  tokenEndpoint: "/oauth/token",
  clientRegistrationEndpoint: "/oauth/register",
  apiRoute: "/mcp",
  apiHandler: InteropMCP.serve("/mcp"),
  defaultHandler,
  // The URL MCP clients connect to; every token is bound to it (required by the provider 1.x).
  resourceMetadata: { resource: env.MCP_RESOURCE },
};
if (env.ACCESS_TOKEN_TTL) options.accessTokenTTL = Number(env.ACCESS_TOKEN_TTL);

export default new OAuthProvider(options);
