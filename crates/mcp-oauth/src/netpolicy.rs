//! The network policy for URLs that servers hand us: protection against server-side
//! request forgery (SSRF) through discovery.
//!
//! During an authorization the client fetches URLs that come from the network, not from
//! the user: the `resource_metadata` of a challenge, the `authorization_servers` of the
//! protected resource metadata, and the endpoints of the authorization server metadata
//! (registration, token, device authorization, revocation). A hostile or compromised MCP
//! server on the internet could point them at addresses only the user's machine can
//! reach: the cloud instance metadata service (`169.254.169.254`, which hands out the
//! credentials of the virtual machine), a router's admin page, a service of the corporate
//! network, or a port on the user's own loopback interface. The client would then send
//! requests there, and `doctor` would even print what came back.
//!
//! # The rule
//!
//! Whether an address may be contacted depends on where the MCP server the user
//! configured lives ([`ServerZone`]):
//!
//! | target address ([`AddressClass`])                 | public server | private server | loopback server |
//! |---------------------------------------------------|---------------|----------------|-----------------|
//! | public                                            | yes           | yes            | yes             |
//! | private (RFC 1918, ULA `fc00::/7`, CGNAT, …)      | no¹           | yes            | yes             |
//! | link-local (`169.254/16`, `fe80::/10`), reserved   | no            | yes            | yes             |
//! | loopback (`127/8`, `::1`, `localhost`)            | no            | no             | yes             |
//! | cloud metadata (`169.254.169.254`, `fd00:ec2::254`, …) | no       | no             | no              |
//! | unspecified (`0.0.0.0/8`, `::`), multicast, broadcast | no        | no             | no              |
//!
//! ¹ unless [`AddressPolicy::AllowPrivateNetworks`] (a documented weakening, for an
//! MCP server on the internet whose authorization server lives on a corporate network).
//!
//! A server is *loopback* when all its addresses are loopback (development servers,
//! tests), *private* when any of its addresses is not public (it lives on a private
//! network, and so may its authorization server), *public* otherwise, and also when its
//! name cannot be resolved (the strictest reading).
//!
//! # How it is checked
//!
//! An IP literal is classified directly (whatever form the URL spelled it in:
//! `http://2852039166/`, `http://0xA9FEA9FE/` and `http://[::ffff:169.254.169.254]/` are
//! all `169.254.169.254` once parsed). A name is resolved with the guard's
//! [`HostResolver`] (the system resolver unless a caller brings another), and refused if
//! *any* of its addresses is refused: a name that resolves to a public and a private
//! address is treated as private. `localhost` and `*.localhost` are loopback without
//! asking DNS (RFC 6761). The host of the configured MCP server itself is always allowed
//! (the user chose it), and so are the hosts of the other URLs the user configured (an
//! authorization server metadata URL, an enterprise IdP's token endpoint; see
//! [`crate::http::HttpClient::for_config`]) and of the HTTP proxies; everything is when
//! the policy is [`AddressPolicy::AllowAll`].
//!
//! Names are resolved once per connection, and the connection goes to the addresses that
//! were checked: the HTTP clients a guard applies to resolve through it
//! ([`AddressGuard::resolve_for_connection`], plugged into reqwest and into the proxy's
//! hyper connector), so a DNS server that answers a public address to a check and a
//! private one to the connection (DNS rebinding) gets the second answer refused. That
//! holds for every connection, those of redirects included. [`AddressGuard::check`]
//! runs before a request as well, for an error that names the step. The server's own
//! name keeps the zone of its first resolution: a later resolution to another kind of
//! address is refused, so that a server cannot be loopback when its zone is decided and
//! public when the client talks to it.
//!
//! Where it applies: every request of an [`crate::http::HttpClient`] made with
//! [`crate::http::HttpClient::for_config`] (or `for_server`), which is what [`crate::OAuthClient`],
//! [`crate::discovery::discover`] and [`crate::doctor::diagnose`] use, and the MCP
//! traffic that shares an OAuth client's guard ([`crate::wire::RequestAuth::address_guard`]:
//! the proxy, `mcp-oauth call`), which may go to the server's own host only.
//!
//! Limits: behind an HTTP proxy the proxy resolves the names it is asked for, which the
//! client cannot hold to anything; a name that resolves here is checked here (the proxy
//! may still answer otherwise, as split-horizon DNS does), and a name that does not
//! resolve here is refused unless the user trusts the proxy's resolution (see
//! [`crate::http`]). A long-running process keeps the zone its server's name had at
//! first: a server that really moves between public and private addresses needs a
//! restart.

use crate::wire::BoxFuture;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use url::{Host, Url};

/// Resolves host names: for the policy's checks and for the connections of the HTTP
/// clients it guards ([`crate::http::HttpClient`], the proxy's client), which connect to
/// the addresses it returns. The system resolver by default; tests bring their own (no
/// real DNS).
pub trait HostResolver: Send + Sync + std::fmt::Debug {
    /// The addresses of `host` (a name, not an IP literal).
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>>;
}

/// The system resolver (`getaddrinfo`, through tokio), what the HTTP clients use by
/// default.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host, 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// What kind of address an IP is, for the purposes of [`AddressPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Routable on the internet (documentation ranges count as public: nothing is there).
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), shared address space (`100.64/10`,
    /// carrier-grade NAT), benchmarking (`198.18/15`), unique local (`fc00::/7`) and the
    /// deprecated site-local (`fec0::/10`) IPv6 ranges.
    Private,
    /// `169.254.0.0/16`, `fe80::/10` (except the cloud metadata addresses).
    LinkLocal,
    /// Instance metadata services of cloud platforms: `169.254.169.254` (AWS, GCP, Azure,
    /// OpenStack, Oracle, DigitalOcean, ...), `169.254.170.2` (AWS ECS), `169.254.170.23`
    /// (AWS EKS pod identity), `fd00:ec2::254` (AWS, IPv6), `100.100.100.200`
    /// (Alibaba Cloud), `192.0.0.192` (Oracle Cloud), `168.63.129.16` (Azure WireServer).
    CloudMetadata,
    /// `0.0.0.0/8`, `::` (connecting to `0.0.0.0` reaches the local host on Linux).
    Unspecified,
    /// Multicast and the limited broadcast address.
    NotUnicast,
    /// Other special-purpose ranges (`192.0.0.0/24`, `240.0.0.0/4`, `100::/64`).
    Reserved,
}

impl AddressClass {
    /// Words for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private-network address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::CloudMetadata => "a cloud instance metadata address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::NotUnicast => "a multicast or broadcast address",
            AddressClass::Reserved => "a reserved special-purpose address",
        }
    }
}

/// Where the configured MCP server lives; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerZone {
    /// Every address is public, or the name could not be resolved (the strictest case):
    /// discovery may reach public addresses only.
    Public,
    /// Some address is not public: the server lives on a private network, and discovery
    /// may reach that network too (but not loopback).
    Private,
    /// Every address is loopback (a development server, a test): discovery may reach
    /// loopback too.
    Loopback,
}

impl ServerZone {
    /// The zone of a server with these addresses. No address (the name could not be
    /// resolved) is the strictest case, public.
    pub fn of(addrs: &[IpAddr]) -> ServerZone {
        if addrs.is_empty() {
            return ServerZone::Public;
        }
        let classes: Vec<AddressClass> = addrs.iter().map(|ip| classify_ip(*ip)).collect();
        if classes
            .iter()
            .all(|c| matches!(c, AddressClass::Loopback | AddressClass::Unspecified))
        {
            ServerZone::Loopback
        } else if classes.iter().any(|c| *c != AddressClass::Public) {
            ServerZone::Private
        } else {
            ServerZone::Public
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ServerZone::Public => "public",
            ServerZone::Private => "on a private network",
            ServerZone::Loopback => "on loopback",
        }
    }

    /// The addresses of a server in this zone, in words.
    fn kind_of_addresses(self) -> &'static str {
        match self {
            ServerZone::Public => "public",
            ServerZone::Private => "private-network",
            ServerZone::Loopback => "loopback",
        }
    }
}

/// Which addresses discovery may contact; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AddressPolicy {
    /// The table of the module documentation.
    #[default]
    Strict,
    /// Also let a public MCP server point the client at private-network addresses
    /// (RFC 1918, unique local IPv6, shared address space), e.g. an internet-facing MCP
    /// server whose authorization server is only reachable on the corporate network.
    /// **Weakens a security check**: such a server can then make the client send
    /// requests into the user's private network. Link-local, loopback, unspecified and
    /// cloud metadata addresses stay refused.
    AllowPrivateNetworks,
    /// No address check at all. **Disables a security check**; for tests and for
    /// environments with their own egress filtering.
    AllowAll,
}

/// Classifies one IP address. IPv4 addresses embedded in IPv6 (mapped `::ffff:0:0/96`,
/// compatible `::/96`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`) are
/// classified as the IPv4 address they carry when that is not public, since a request to
/// them may reach it.
pub fn classify_ip(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    let metadata = [
        [169, 254, 169, 254],
        [169, 254, 170, 2],
        [169, 254, 170, 23],
        [100, 100, 100, 200],
        [192, 0, 0, 192],
        [168, 63, 129, 16],
    ];
    if metadata.contains(&o) {
        return AddressClass::CloudMetadata;
    }
    match o {
        [0, ..] => AddressClass::Unspecified,
        [127, ..] => AddressClass::Loopback,
        [10, ..] | [192, 168, ..] => AddressClass::Private,
        [172, b, ..] if (16..32).contains(&b) => AddressClass::Private,
        [100, b, ..] if (64..128).contains(&b) => AddressClass::Private,
        [198, b, ..] if b == 18 || b == 19 => AddressClass::Private,
        [169, 254, ..] => AddressClass::LinkLocal,
        [255, 255, 255, 255] => AddressClass::NotUnicast,
        [a, ..] if (224..240).contains(&a) => AddressClass::NotUnicast,
        [a, ..] if a >= 240 => AddressClass::Reserved,
        [192, 0, 0, _] => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    // fd00:ec2::254, AWS's IPv6 instance metadata endpoint.
    if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return AddressClass::CloudMetadata;
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let carried = match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => Some(embedded(hi, lo)),
        // NAT64, well-known prefix (RFC 6052).
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(embedded(hi, lo)),
        // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
        [0x2002, hi, lo, ..] => Some(embedded(hi, lo)),
        _ => None,
    };
    if let Some(v4) = carried {
        return classify_v4(v4);
    }
    // Local-use NAT64 (RFC 8215) translates into the operator's own network: private at
    // least, and whatever the last 32 bits carry when that is worse.
    if let [0x64, 0xff9b, 1, _, _, _, hi, lo] = s {
        return match classify_v4(embedded(hi, lo)) {
            AddressClass::Public => AddressClass::Private,
            c => c,
        };
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => AddressClass::Private, // fc00::/7
        x if x & 0xffc0 == 0xfe80 => AddressClass::LinkLocal, // fe80::/10
        x if x & 0xffc0 == 0xfec0 => AddressClass::Private, // fec0::/10 (site-local)
        x if x & 0xff00 == 0xff00 => AddressClass::NotUnicast, // ff00::/8
        0x0100 if s[1..4] == [0, 0, 0] => AddressClass::Reserved, // 100::/64 discard-only
        _ => AddressClass::Public,
    }
}

/// Is `host` loopback by name (`localhost`, `*.localhost`, RFC 6761) or literal?
fn loopback_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// The decision for one address class, given the server's zone and the policy: `Ok`, or
/// the reason for refusing. Pure; [`check_addresses`] applies it to every address of a
/// host.
pub fn decide(zone: ServerZone, class: AddressClass, policy: AddressPolicy) -> Result<(), String> {
    if policy == AddressPolicy::AllowAll {
        return Ok(());
    }
    let allowed = match class {
        AddressClass::Public => true,
        AddressClass::CloudMetadata | AddressClass::Unspecified | AddressClass::NotUnicast => false,
        AddressClass::Loopback => zone == ServerZone::Loopback,
        AddressClass::Private => {
            zone != ServerZone::Public || policy == AddressPolicy::AllowPrivateNetworks
        }
        AddressClass::LinkLocal | AddressClass::Reserved => zone != ServerZone::Public,
    };
    if allowed {
        return Ok(());
    }
    Err(match class {
        AddressClass::CloudMetadata => "discovery never contacts a cloud instance metadata service".into(),
        AddressClass::Unspecified | AddressClass::NotUnicast => "such an address is never contacted".into(),
        AddressClass::Loopback => format!(
            "only an MCP server on loopback may point the client at loopback addresses, and this \
             one is {}",
            zone.describe()
        ),
        AddressClass::Private => format!(
            "a public MCP server may not point the client into private networks (SSRF \
             protection); if this authorization server really lives on your private network, \
             {}, which weakens this check (zone of the MCP server: {})",
            crate::remedy::Remedy::AllowPrivateNetworks,
            zone.describe()
        ),
        _ => "a public MCP server may not point the client at link-local or reserved addresses (SSRF protection)".into(),
    })
}

/// Checks every address a host resolved to (refused if any is refused). `host` names
/// the host in the message.
pub fn check_addresses(
    zone: ServerZone,
    host: &str,
    addrs: &[IpAddr],
    policy: AddressPolicy,
) -> Result<(), String> {
    for ip in addrs {
        let class = classify_ip(*ip);
        if let Err(why) = decide(zone, class, policy) {
            let shown = if host.trim_matches(|c| c == '[' || c == ']') == ip.to_string() {
                format!("{ip}")
            } else {
                format!("{host} (resolves to {ip})")
            };
            return Err(format!(
                "refused by the network policy: {shown} is {}; {why}",
                class.describe()
            ));
        }
    }
    Ok(())
}

/// The addresses of a URL host: literal, `localhost`, or resolved with `resolver`.
/// `None` when a name cannot be resolved.
pub async fn resolve_host(resolver: &dyn HostResolver, host: &Host<&str>) -> Option<Vec<IpAddr>> {
    match host {
        Host::Ipv4(ip) => Some(vec![IpAddr::V4(*ip)]),
        Host::Ipv6(ip) => Some(vec![IpAddr::V6(*ip)]),
        Host::Domain(d) => resolve_name(resolver, d).await.ok(),
    }
}

/// The addresses of a host name: `localhost` and `*.localhost` are loopback without
/// asking DNS (RFC 6761); an error for a name that resolves to nothing.
pub(crate) async fn resolve_name(
    resolver: &dyn HostResolver,
    name: &str,
) -> std::io::Result<Vec<IpAddr>> {
    if loopback_name(name) {
        return Ok(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    let addrs = resolver.lookup(name).await?;
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{name} resolves to no address"),
        ));
    }
    Ok(addrs)
}

/// Applies the policy to the URLs one MCP server's discovery hands out. Cheap to share
/// (`Arc`); the server's zone is worked out once, at the first check.
#[derive(Debug)]
pub struct AddressGuard {
    server_url: String,
    policy: AddressPolicy,
    /// Hosts of URLs the user configured (besides the server's): always allowed.
    trusted: Vec<String>,
    resolver: Arc<dyn HostResolver>,
    /// Let an HTTP proxy resolve names that do not resolve here (see
    /// [`AddressGuard::check_via`]).
    trust_proxy_dns: bool,
    /// The server's zone, from the first resolution of its name that succeeded (or
    /// given). Every later resolution of the name must agree with it.
    zone: std::sync::Mutex<Option<ServerZone>>,
}

/// A connection the network policy refused: the error the resolvers of the guarded
/// clients return, so that the refusal reaches the user as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Builds an [`AddressGuard`]: [`AddressGuard::builder`].
#[derive(Debug)]
pub struct AddressGuardBuilder {
    guard: AddressGuard,
}

impl AddressGuardBuilder {
    /// Also allow the hosts of `trusted`: URLs the user configured (an authorization
    /// server metadata URL, an enterprise IdP's token endpoint) are the user's choice,
    /// like the server URL, and not subject to the policy.
    pub fn trusting<'a>(mut self, trusted: impl IntoIterator<Item = &'a str>) -> Self {
        self.guard.trusted.extend(
            trusted
                .into_iter()
                .filter_map(|u| Url::parse(u).ok())
                .filter_map(|u| u.host().map(|h| h.to_string())),
        );
        self
    }

    /// Resolve names with `resolver` (the system resolver by default).
    pub fn resolver(mut self, resolver: Arc<dyn HostResolver>) -> Self {
        self.guard.resolver = resolver;
        self
    }

    /// Let an HTTP proxy resolve the names that do not resolve here, unchecked. **Weakens
    /// a security check**: a server could then point discovery at a name only the proxy
    /// knows (a host of the proxy's network). Off by default.
    pub fn trust_proxy_dns(mut self, trust: bool) -> Self {
        self.guard.trust_proxy_dns = trust;
        self
    }

    /// The server's zone, given rather than resolved (for tests and callers that
    /// classified the server themselves).
    pub fn zone(self, zone: ServerZone) -> Self {
        *self.guard.zone_slot() = Some(zone);
        self
    }

    /// The guard, ready to be shared by the HTTP clients it applies to.
    pub fn build(self) -> Arc<AddressGuard> {
        Arc::new(self.guard)
    }
}

impl AddressGuard {
    /// A guard for the MCP server `server_url` under `policy`, to be refined with the
    /// builder's methods.
    pub fn builder(server_url: impl Into<String>, policy: AddressPolicy) -> AddressGuardBuilder {
        AddressGuardBuilder {
            guard: AddressGuard {
                server_url: server_url.into(),
                policy,
                trusted: Vec::new(),
                resolver: Arc::new(SystemResolver),
                trust_proxy_dns: false,
                zone: std::sync::Mutex::new(None),
            },
        }
    }

    /// A guard for the MCP server `server_url` under `policy`, with the defaults of
    /// [`AddressGuard::builder`] (the system resolver, no other trusted host).
    pub fn new(server_url: impl Into<String>, policy: AddressPolicy) -> Arc<Self> {
        Self::builder(server_url, policy).build()
    }

    /// A guard that also allows the hosts of `trusted` (see
    /// [`AddressGuardBuilder::trusting`]).
    pub fn trusting<'a>(
        server_url: impl Into<String>,
        policy: AddressPolicy,
        trusted: impl IntoIterator<Item = &'a str>,
    ) -> Arc<Self> {
        Self::builder(server_url, policy).trusting(trusted).build()
    }

    /// The hosts allowed besides the server's (see [`AddressGuard::trusting`]).
    pub fn trusted_hosts(&self) -> &[String] {
        &self.trusted
    }

    /// The resolver this guard (and the connections it guards) use.
    pub fn resolver(&self) -> &Arc<dyn HostResolver> {
        &self.resolver
    }

    /// Does this guard let an HTTP proxy resolve names that do not resolve here?
    pub fn trusts_proxy_dns(&self) -> bool {
        self.trust_proxy_dns
    }

    /// A guard whose server zone is given rather than resolved (for tests and callers
    /// that classified the server themselves).
    pub fn with_zone(
        server_url: impl Into<String>,
        policy: AddressPolicy,
        zone: ServerZone,
    ) -> Arc<Self> {
        Self::builder(server_url, policy).zone(zone).build()
    }

    /// The URL of the configured MCP server, whose zone decides what may be contacted.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The policy this guard applies.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    fn zone_slot(&self) -> std::sync::MutexGuard<'_, Option<ServerZone>> {
        self.zone.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The host of the configured MCP server.
    fn server_host(&self) -> Option<Host<String>> {
        Url::parse(&self.server_url)
            .ok()?
            .host()
            .map(|h| h.to_owned())
    }

    fn is_server_name(&self, name: &str) -> bool {
        matches!(self.server_host(), Some(Host::Domain(d)) if same_name(&d, name))
    }

    fn is_trusted(&self, host: &str) -> bool {
        self.trusted.iter().any(|t| same_name(t, host))
    }

    /// The zone of the configured MCP server: from the first resolution of its name that
    /// succeeded (here, or when a guarded client connected to it). A name that does not
    /// resolve is the strictest case, public, until it does.
    pub async fn zone(&self) -> ServerZone {
        if let Some(z) = *self.zone_slot() {
            return z;
        }
        match self.server_host() {
            Some(Host::Domain(d)) => match self.resolve_server(&d).await {
                Ok((_, zone)) => zone,
                Err(_) => self.zone_slot().unwrap_or(ServerZone::Public),
            },
            Some(Host::Ipv4(ip)) => self.pin_zone(ServerZone::of(&[IpAddr::V4(ip)])),
            Some(Host::Ipv6(ip)) => self.pin_zone(ServerZone::of(&[IpAddr::V6(ip)])),
            None => ServerZone::Public,
        }
    }

    /// Sets the zone unless one is set; returns the zone in force.
    fn pin_zone(&self, zone: ServerZone) -> ServerZone {
        *self.zone_slot().get_or_insert(zone)
    }

    /// Resolves the server's own name, holding it to one zone: the first resolution sets
    /// the zone, and one that disagrees later is refused. Otherwise a DNS server could
    /// answer a loopback address when the zone is decided (so that discovery may reach
    /// loopback services) and its own public one when the client connects (to hand out
    /// that discovery).
    async fn resolve_server(&self, name: &str) -> Result<(Vec<IpAddr>, ServerZone), Refused> {
        let addrs = resolve_name(&*self.resolver, name)
            .await
            .map_err(|e| Refused(format!("cannot resolve {name}: {e}")))?;
        let now = ServerZone::of(&addrs);
        let pinned = self.pin_zone(now);
        if pinned != now {
            let shown: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
            return Err(Refused(format!(
                "refused by the network policy: the MCP server's name {name} now resolves to {} \
                 ({} addresses), but to {} addresses before; a name that moves between public, \
                 private-network and loopback addresses is not followed (DNS rebinding). If the \
                 server really moved, start again",
                shown.join(", "),
                now.kind_of_addresses(),
                pinned.kind_of_addresses()
            )));
        }
        Ok((addrs, now))
    }

    /// The addresses a guarded client may connect to for `name`: resolved once, and only
    /// those the policy allows, so that the addresses checked are the addresses used (no
    /// second lookup between the check and the connection). The server's name keeps its
    /// zone ([`zone`](Self::zone)); the names the user configured are not checked.
    pub async fn resolve_for_connection(&self, name: &str) -> Result<Vec<IpAddr>, Refused> {
        if self.is_server_name(name) {
            return Ok(self.resolve_server(name).await?.0);
        }
        let addrs = resolve_name(&*self.resolver, name)
            .await
            .map_err(|e| Refused(format!("cannot resolve {name}: {e}")))?;
        if self.policy == AddressPolicy::AllowAll || self.is_trusted(name) {
            return Ok(addrs);
        }
        let zone = self.zone().await;
        check_addresses(zone, name, &addrs, self.policy).map_err(Refused)?;
        Ok(addrs)
    }

    /// `Ok` when `target` may be requested; the reason otherwise. Nothing is sent to
    /// the target's host. A check before the request, for an error that names the step;
    /// the connection itself resolves once more and is held to the same policy
    /// ([`resolve_for_connection`](Self::resolve_for_connection)).
    pub async fn check(&self, target: &str) -> Result<(), String> {
        self.check_via(target, false).await
    }

    /// [`check`](Self::check) for a request that `proxied` goes through an HTTP proxy.
    /// The proxy resolves the target's name itself, so the client never connects to
    /// what it resolved: a name that resolves here is checked here (the proxy is
    /// expected to see the same addresses), and one that does not resolve here is
    /// refused, since only the proxy could say where it leads (an intranet name that a
    /// public server must not reach). The user may trust the proxy's resolution instead
    /// ([`AddressGuardBuilder::trust_proxy_dns`]).
    pub async fn check_via(&self, target: &str, proxied: bool) -> Result<(), String> {
        if self.policy == AddressPolicy::AllowAll {
            return Ok(());
        }
        let url = Url::parse(target).map_err(|e| format!("not an absolute URL: {e}"))?;
        let Some(host) = url.host() else {
            return Err("the URL has no host".into());
        };
        // The user chose the server's host, and the hosts of the URLs they configured.
        if self.server_host().as_ref().map(Host::to_string) == Some(host.to_string()) {
            return Ok(());
        }
        let host_text = host.to_string();
        if self.is_trusted(&host_text) {
            return Ok(());
        }
        let Some(addrs) = resolve_host(&*self.resolver, &host).await else {
            if proxied && !self.trust_proxy_dns {
                return Err(format!(
                    "refused by the network policy: {host_text} does not resolve here, and the \
                     HTTP proxy from the environment would resolve it instead, so where the \
                     request would go cannot be checked (a server could point discovery at a \
                     name only the proxy's network knows). If the proxy may reach whatever \
                     this server names, {}, which weakens this check",
                    crate::remedy::Remedy::TrustProxyDns
                ));
            }
            // Without a proxy, a name that cannot be resolved cannot be connected to
            // either: the request itself then fails with the resolver's error.
            return Ok(());
        };
        let zone = self.zone().await;
        check_addresses(zone, &host_text, &addrs, self.policy)
    }
}

/// Do two host names name the same host (ASCII case, a trailing dot)?
fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

#[cfg(test)]
mod tests;
