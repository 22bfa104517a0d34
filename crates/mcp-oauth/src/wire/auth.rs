//! The authorization hook of every MCP request, shared by the client ([`crate::mcp`]) and
//! the proxy (crate `mcp-oauth-proxy`): [`RequestAuth`] supplies the headers and hears
//! every refusal; [`Refusal`] is what the server said ([`is_refusal`] tells one from any
//! other answer). [`crate::OAuthClient`] implements it.

use crate::error::Result;
use http::{HeaderMap, StatusCode, header};
use std::future::Future;
use std::pin::Pin;

/// A boxed future, as the hooks return them (object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the client saw when the server refused a request with 401 or 403.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The URL the refused request went to.
    pub url: String,
    /// 401 or 403.
    pub status: u16,
    /// Every `WWW-Authenticate` field value of the response, in order.
    pub www_authenticate: Vec<String>,
    /// Whether the refused request carried an `Authorization` header.
    pub sent_credentials: bool,
    /// How many times this same request has already been refused and retried (0 on the
    /// first refusal). Implementations bound their retries with it.
    pub attempt: u32,
    /// The `DPoP-Nonce` header of the response (RFC 9449 §9), if any.
    pub dpop_nonce: Option<String>,
}

impl Refusal {
    /// The refusal that a response with `status` and `headers` to a request for `url`
    /// is: the challenges (`WWW-Authenticate`, every field value in order) and the
    /// `DPoP-Nonce` as the server sent them.
    pub fn from_response(
        url: &str,
        status: StatusCode,
        headers: &HeaderMap,
        sent_credentials: bool,
        attempt: u32,
    ) -> Refusal {
        Refusal {
            url: url.to_string(),
            status: status.as_u16(),
            www_authenticate: headers
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect(),
            sent_credentials,
            attempt,
            dpop_nonce: headers
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

/// Does a response refuse the request for lack of authorization? A 401, or a 403 that
/// carries a challenge (`insufficient_scope`): a bare 403 is the server's answer, not a
/// question about credentials.
pub fn is_refusal(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        || (status == StatusCode::FORBIDDEN && headers.contains_key(header::WWW_AUTHENTICATE))
}

/// Supplies credentials to the MCP client and reacts to refusals.
pub trait RequestAuth: Send + Sync {
    /// The `Authorization` header value for a request to `url`, or `None` when there is
    /// no credential (yet). Implementations must return `None` for any URL other than
    /// the resource the credential was issued for.
    fn authorization<'a>(
        &'a self,
        url: &'a str,
    ) -> BoxFuture<'a, Result<Option<http::HeaderValue>>>;

    /// Every authorization header for a request (`Authorization`, and `DPoP` for
    /// sender-constrained tokens, whose proof binds the method and URL). The default
    /// sends [`RequestAuth::authorization`] alone.
    fn request_headers<'a>(
        &'a self,
        method: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<http::HeaderMap>> {
        let _ = method;
        Box::pin(async move {
            let mut map = http::HeaderMap::new();
            if let Some(mut v) = self.authorization(url).await? {
                v.set_sensitive(true);
                map.insert(http::header::AUTHORIZATION, v);
            }
            Ok(map)
        })
    }

    /// The server refused a request. `Ok(())` means new credentials are in place and the
    /// request should be sent again; an error is final for this request.
    fn on_refusal<'a>(&'a self, refusal: &'a Refusal) -> BoxFuture<'a, Result<()>>;

    /// The network policy of the server's authorization traffic, which the MCP traffic
    /// to the same server shares: its connections go through the policy's resolver, so
    /// that the server's name resolves to one kind of address for both (see
    /// [`crate::netpolicy`]). `None` (the default): MCP traffic resolves on its own.
    fn address_guard(&self) -> Option<std::sync::Arc<crate::netpolicy::AddressGuard>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_refusal_is_a_401_or_a_403_with_a_challenge() {
        let mut challenged = HeaderMap::new();
        challenged.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
        );
        let bare = HeaderMap::new();
        assert!(is_refusal(StatusCode::UNAUTHORIZED, &bare));
        assert!(is_refusal(StatusCode::FORBIDDEN, &challenged));
        assert!(!is_refusal(StatusCode::FORBIDDEN, &bare));
        assert!(!is_refusal(StatusCode::OK, &challenged));
        assert!(!is_refusal(StatusCode::NOT_FOUND, &bare));
    }

    #[test]
    fn a_refusal_keeps_every_challenge_in_order_and_the_dpop_nonce() {
        let mut headers = HeaderMap::new();
        headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("DPoP"));
        headers.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"mcp\""),
        );
        headers.insert("dpop-nonce", HeaderValue::from_static("n-1"));
        let r = Refusal::from_response(
            "https://mcp.example/mcp",
            StatusCode::UNAUTHORIZED,
            &headers,
            true,
            2,
        );
        assert_eq!(r.url, "https://mcp.example/mcp");
        assert_eq!(r.status, 401);
        assert_eq!(r.www_authenticate, ["DPoP", "Bearer realm=\"mcp\""]);
        assert!(r.sent_credentials);
        assert_eq!(r.attempt, 2);
        assert_eq!(r.dpop_nonce.as_deref(), Some("n-1"));
        let r = Refusal::from_response("u", StatusCode::FORBIDDEN, &HeaderMap::new(), false, 0);
        assert!(r.www_authenticate.is_empty() && r.dpop_nonce.is_none());
    }
}
