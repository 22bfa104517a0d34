//! The authorization hook of every MCP request, shared by the client ([`crate::mcp`]) and
//! the proxy (crate `mcp-oauth-proxy`): [`RequestAuth`] supplies the headers and hears
//! every refusal; [`Refusal`] is what the server said. [`crate::OAuthClient`] implements
//! it.

use crate::error::Result;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the client saw when the server refused a request with 401 or 403.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The URL the refused request went to.
    pub url: String,
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
