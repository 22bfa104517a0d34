//! The resolver the HTTP clients connect through: reqwest's (`reqwest::dns::Resolve`)
//! and the proxy's hyper connector (a `tower_service::Service` of hyper-util's `Name`).
//! Names are resolved with the [`HostResolver`] of the client (the system's by default).

use crate::mcp::BoxFuture;
use crate::netpolicy::{AddressGuard, HostResolver};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves the names an HTTP client connects to. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ConnectResolver {
    resolver: Arc<dyn HostResolver>,
    guard: Option<Arc<AddressGuard>>,
}

impl ConnectResolver {
    /// Resolves with `resolver`; with `guard`, the connections are those of that
    /// guard's server.
    pub(crate) fn new(
        resolver: Arc<dyn HostResolver>,
        guard: Option<Arc<AddressGuard>>,
    ) -> ConnectResolver {
        ConnectResolver { resolver, guard }
    }

    /// The addresses to connect to for `name` (port 0: the connector sets the URL's).
    async fn addresses(&self, name: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let _ = &self.guard;
        let ips = crate::netpolicy::resolve_name(&*self.resolver, name).await?;
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }
}

impl reqwest::dns::Resolve for ConnectResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let me = self.clone();
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs = me.addresses(&name).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for ConnectResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let me = self.clone();
        Box::pin(async move { Ok(me.addresses(name.as_str()).await?.into_iter()) })
    }
}
