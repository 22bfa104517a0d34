//! The resolver the HTTP clients connect through: reqwest's (`reqwest::dns::Resolve`)
//! and the proxy's hyper connector (a `tower_service::Service` of hyper-util's `Name`).
//! Names are resolved with the [`HostResolver`] of the client (the system's by default).

use crate::netpolicy::{AddressGuard, HostResolver};
use crate::wire::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves the names an HTTP client connects to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectResolver {
    resolver: Arc<dyn HostResolver>,
    guard: Option<Arc<AddressGuard>>,
    /// Hosts of the HTTP proxies the client goes through.
    proxies: Arc<[String]>,
}

impl ConnectResolver {
    /// Resolves with `resolver`; with `guard`, the connections are held to that guard's
    /// network policy.
    pub fn new(
        resolver: Arc<dyn HostResolver>,
        guard: Option<Arc<AddressGuard>>,
    ) -> ConnectResolver {
        ConnectResolver {
            resolver,
            guard,
            proxies: Arc::from(Vec::new()),
        }
    }

    /// The HTTP proxies' hosts, resolved without the policy: connections to them are the
    /// environment's choice, and the names behind them are the proxy's to resolve.
    pub fn with_proxy_hosts(self, hosts: Arc<[String]>) -> ConnectResolver {
        ConnectResolver {
            proxies: hosts,
            ..self
        }
    }

    /// The addresses to connect to for `name` (port 0: the connector sets the URL's).
    /// With a guard, only addresses its policy allows, from the one lookup that was
    /// checked ([`AddressGuard::resolve_for_connection`]); the hosts of the HTTP proxies
    /// are the environment's choice and are not checked.
    async fn addresses(&self, name: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let ips = match &self.guard {
            Some(g) if !self.proxies.iter().any(|p| p.eq_ignore_ascii_case(name)) => {
                g.resolve_for_connection(name).await?
            }
            _ => crate::netpolicy::resolve_name(&*self.resolver, name).await?,
        };
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
