// The app's own pages for the Cloudflare pair (the `defaultHandler` of OAuthProvider), shared
// by worker.js and worker-mcp-agent.js: the authorize/consent page, written after the
// provider's docs/consent-page.md, with the human replaced by a headless test user.
//
// This is the only stand-in of the pair:
//   - GET /authorize is the docs' page: parseAuthRequest() validates the request and
//     beginConsent() keeps it server-side with a browser-bound __Host- cookie. Where the docs
//     render a form, the page redirects at once to /consent (the form's POST, as a GET that
//     a redirect-following curl can make). Two hops, as with the real page, so a client that
//     probes only the first hop of /authorize creates no grant.
//   - GET /consent is what the docs' POST /authorize does when the user clicks Allow for
//     every requested scope (approveConsent(), completeAuthorization() for the fixed user
//     "interop-user", props { userId }) or, once after the launcher's POST
//     /__interop/deny-next, Deny (denyConsent(): access_denied with state and iss).
//   - errors as the docs' table says: redirect only what parseAuthRequest() validated,
//     render the rest on a local page.
//   - with INTEROP_CONTROL="1" only: POST /__interop/forget-clients deletes every client
//     through env.OAUTH_PROVIDER.listClients()/deleteClient() (which also revokes their
//     grants and tokens) and answers 204.
import { AuthorizationError, CimdFetchError } from "@cloudflare/workers-oauth-provider";

export const TEST_USER = "interop-user";

const escape = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function renderError(message, status = 400) {
  return new Response(`<!doctype html><meta charset="utf-8"><title>Error</title><p>${escape(message)}</p>`, {
    status,
    headers: { "Content-Type": "text/html; charset=utf-8" },
  });
}

export const defaultHandler = {
  async fetch(request, env) {
    const url = new URL(request.url);
    const control = env.INTEROP_CONTROL === "1";

    if (control && url.pathname === "/__interop/forget-clients" && request.method === "POST") {
      let cursor;
      let deleted = 0;
      do {
        const page = await env.OAUTH_PROVIDER.listClients({ cursor });
        for (const client of page.items) {
          await env.OAUTH_PROVIDER.deleteClient(client.clientId);
          deleted++;
        }
        cursor = page.cursor;
      } while (cursor);
      console.log(`interop: forget-clients deleted ${deleted} client(s)`);
      return new Response(null, { status: 204 });
    }

    try {
      // GET /authorize: the docs' page. It validates the request and starts a consent
      // transaction (beginConsent: the request kept server-side, a browser-bound __Host-
      // cookie); where the docs render the form, the headless user "submits" it at once by
      // following a redirect to /consent (the form's POST, as a GET that curl can follow).
      if (url.pathname === "/authorize" && request.method === "GET") {
        const oauthReqInfo = await env.OAUTH_PROVIDER.parseAuthRequest(request);
        const consent = await env.OAUTH_PROVIDER.beginConsent(oauthReqInfo);
        consent.headers.set("Location", `/consent?handle=${encodeURIComponent(consent.handle)}`);
        return new Response(null, { status: 302, headers: consent.headers });
      }
      // GET /consent: the docs' POST /authorize. The test user approves every requested scope
      // (approveConsent + completeAuthorization), or declines once after the launcher's
      // deny-next (denyConsent: access_denied with state and iss, as the docs' Deny button).
      if (url.pathname === "/consent" && request.method === "GET") {
        const handle = url.searchParams.get("handle") ?? "";
        // The launcher sets this header (and drops it from what clients send) after POST
        // /__interop/deny-next; it is honoured only with INTEROP_CONTROL=1.
        if (control && request.headers.get("x-interop-deny") === "1") {
          const denied = await env.OAUTH_PROVIDER.denyConsent(request, handle);
          return new Response(null, { status: 302, headers: denied.headers });
        }
        const approved = await env.OAUTH_PROVIDER.approveConsent(request, handle);
        const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
          request: approved.request, // from storage, not from the browser
          userId: TEST_USER,
          metadata: {},
          scope: approved.request.scope,
          props: { userId: TEST_USER },
        });
        approved.headers.set("Location", redirectTo);
        return new Response(null, { status: 302, headers: approved.headers });
      }
    } catch (error) {
      // The docs' error table: redirect only what parseAuthRequest() validated, render the rest.
      if (error instanceof AuthorizationError && error.redirectTo) {
        return Response.redirect(error.redirectTo, 302);
      }
      if (error instanceof AuthorizationError || error instanceof CimdFetchError) {
        return renderError(error instanceof AuthorizationError ? error.description : "This app could not be verified.");
      }
      throw error;
    }

    return new Response("Not Found", { status: 404 });
  },
};

