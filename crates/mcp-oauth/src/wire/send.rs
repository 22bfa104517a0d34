//! Sending one request with authorization: the loop the client ([`crate::mcp`]) and the
//! proxy (crate `mcp-oauth-proxy`) share, over whichever HTTP client each one has.
//!
//! Every attempt carries the headers the [`RequestAuth`] hook supplies, merged over the
//! request's own; a refusal ([`is_refusal`]) goes to the hook, and when the hook has
//! renewed the credentials the request is sent again, at most [`MAX_AUTH_RESENDS`]
//! times. What to do with a refusal nobody could answer is the caller's choice: the
//! client reports an error, the proxy relays the server's response ([`Sent`]).
//!
//! The loop is generic over [`HttpAttempt`] (no boxing, no copy of the body), so that
//! the proxy's relay path costs what it did with a loop of its own.

use super::MAX_AUTH_RESENDS;
use super::auth::{Refusal, RequestAuth, is_refusal};
use http::{HeaderMap, Method, StatusCode, header};
use std::future::Future;

/// The status and headers of a response, whatever the HTTP client.
pub trait ResponseHead {
    /// The HTTP status.
    fn status(&self) -> StatusCode;
    /// The response headers.
    fn headers(&self) -> &HeaderMap;
}

impl ResponseHead for reqwest::Response {
    fn status(&self) -> StatusCode {
        reqwest::Response::status(self)
    }

    fn headers(&self) -> &HeaderMap {
        reqwest::Response::headers(self)
    }
}

/// One request as [`send_authorized`] sends it: once per attempt, on the caller's HTTP
/// client, to the caller's target, with the caller's body.
pub trait HttpAttempt: Send {
    /// A response of the HTTP client.
    type Response: ResponseHead + Send;
    /// Why a request got no response; the hook's errors convert into it.
    type Error: From<crate::Error> + Send;

    /// Sends the request once with `headers` (the request's own with the hook's merged
    /// in). `Ok(None)`: nothing reached the server (a connection refused, say) and the
    /// request should be sent again; any pause before that is the implementation's.
    fn send(
        &mut self,
        headers: HeaderMap,
    ) -> impl Future<Output = Result<Option<Self::Response>, Self::Error>> + Send;

    /// Awaits a call to the hook (the headers of an attempt, or a renewal after a
    /// refusal). The default just awaits it; the proxy stops the request's clock
    /// meanwhile, because a login may take the user minutes.
    fn authorizing<F>(&self, call: F) -> impl Future<Output = F::Output> + Send
    where
        F: Future + Send,
    {
        call
    }

    /// The request is held while the hook renews the credentials after `refusal` (it
    /// may be a while): where an implementation says so. The default says nothing.
    fn holding(&self, refusal: &Refusal) {
        let _ = refusal;
    }
}

/// What an authorized request came to.
#[derive(Debug)]
pub enum Sent<R> {
    /// The server's response: not a refusal (of any status).
    Response(R),
    /// A refusal (401, or 403 with a challenge), and no hook to renew the credentials.
    Unauthorized(R, Refusal),
    /// Still refused after [`MAX_AUTH_RESENDS`] renewals: the hook's credentials do not
    /// satisfy the server.
    StillRefused(R, Refusal),
}

impl<R> Sent<R> {
    /// The server's last response, a refusal or not (what the proxy relays).
    pub fn into_response(self) -> R {
        match self {
            Sent::Response(r) | Sent::Unauthorized(r, _) | Sent::StillRefused(r, _) => r,
        }
    }
}

/// The request [`send_authorized`] sends, besides how it is sent.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizedRequest<'a> {
    /// The HTTP method (a DPoP proof binds it).
    pub method: &'a Method,
    /// The resource the credentials are for: the MCP endpoint, also when the request
    /// goes to another URL of its origin (the HTTP+SSE transport's POST endpoint). The
    /// URL of every [`Refusal`].
    pub resource: &'a str,
    /// Headers of every request (the caller's options).
    pub defaults: &'a HeaderMap,
    /// This request's headers; they replace defaults of the same name.
    pub headers: &'a HeaderMap,
}

/// Sends `request` through `attempt`, authorized by `auth`: every attempt asks the hook
/// for its headers; a refusal goes to the hook, and the request is sent again once the
/// hook has renewed the credentials (at most [`MAX_AUTH_RESENDS`] times). The hook's
/// errors are final for the request.
pub async fn send_authorized<A: HttpAttempt>(
    attempt: &mut A,
    auth: Option<&dyn RequestAuth>,
    request: AuthorizedRequest<'_>,
) -> Result<Sent<A::Response>, A::Error> {
    let mut renewals: u32 = 0;
    loop {
        let auth_headers = match auth {
            Some(auth) => Some(
                attempt
                    .authorizing(auth.request_headers(request.method.as_str(), request.resource))
                    .await?,
            ),
            None => None,
        };
        let (headers, sent_credentials) =
            merge_headers(request.defaults, request.headers, auth_headers);
        let Some(response) = attempt.send(headers).await? else {
            continue;
        };
        if !is_refusal(response.status(), response.headers()) {
            return Ok(Sent::Response(response));
        }
        let refusal = Refusal::from_response(
            request.resource,
            response.status(),
            response.headers(),
            sent_credentials,
            renewals,
        );
        tracing::debug!(url = %request.resource, status = refusal.status, attempt = renewals, "the MCP server refused the request");
        let Some(auth) = auth else {
            return Ok(Sent::Unauthorized(response, refusal));
        };
        if renewals >= MAX_AUTH_RESENDS {
            return Ok(Sent::StillRefused(response, refusal));
        }
        drop(response);
        attempt.holding(&refusal);
        attempt.authorizing(auth.on_refusal(&refusal)).await?;
        renewals += 1;
        tracing::debug!(url = %request.resource, "authorization renewed; sending the request again");
    }
}

/// The headers of one attempt: `defaults`, then the request's own `headers` (which
/// replace defaults of the same name), then the hook's (marked sensitive, replacing
/// both). Also whether the attempt carries credentials (an `Authorization` header, from
/// wherever it came).
fn merge_headers(
    defaults: &HeaderMap,
    headers: &HeaderMap,
    auth_headers: Option<HeaderMap>,
) -> (HeaderMap, bool) {
    let mut all = defaults.clone();
    for (name, value) in headers {
        all.insert(name.clone(), value.clone());
    }
    let mut sent_credentials = all.contains_key(header::AUTHORIZATION);
    if let Some(auth_headers) = auth_headers {
        if auth_headers.contains_key(header::AUTHORIZATION) {
            sent_credentials = true;
        }
        for (name, mut value) in auth_headers {
            if let Some(name) = name {
                value.set_sensitive(true);
                all.insert(name, value);
            }
        }
    }
    (all, sent_credentials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn request_headers_replace_defaults_and_the_hooks_replace_both() {
        let mut defaults = HeaderMap::new();
        defaults.insert("x-a", HeaderValue::from_static("default"));
        defaults.append("x-a", HeaderValue::from_static("default-2"));
        defaults.insert("x-b", HeaderValue::from_static("default"));
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("request"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        let (all, sent) = merge_headers(&defaults, &headers, None);
        assert!(sent, "an Authorization header of the request counts");
        assert_eq!(all.get_all("x-a").iter().count(), 1);
        assert_eq!(all["x-a"], "request");
        assert_eq!(all["x-b"], "default");

        let mut hook = HeaderMap::new();
        hook.insert(header::AUTHORIZATION, HeaderValue::from_static("DPoP t"));
        hook.insert("dpop", HeaderValue::from_static("proof"));
        let (all, sent) = merge_headers(&defaults, &headers, Some(hook));
        assert!(sent);
        assert_eq!(all[header::AUTHORIZATION], "DPoP t");
        assert!(all[header::AUTHORIZATION].is_sensitive());
        assert!(all["dpop"].is_sensitive());

        let (_, sent) = merge_headers(&defaults, &HeaderMap::new(), Some(HeaderMap::new()));
        assert!(!sent, "no credentials anywhere");
    }
}
