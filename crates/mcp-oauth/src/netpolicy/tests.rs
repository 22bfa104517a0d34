use super::*;

fn class(s: &str) -> AddressClass {
    classify_ip(s.parse().unwrap())
}

#[test]
fn ipv4_classes() {
    use AddressClass::*;
    for (ip, want) in [
        ("8.8.8.8", Public),
        ("1.1.1.1", Public),
        ("203.0.113.7", Public),
        ("127.0.0.1", Loopback),
        ("127.255.255.254", Loopback),
        ("10.0.0.1", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("172.32.0.1", Public),
        ("172.15.255.255", Public),
        ("192.168.1.1", Private),
        ("100.64.0.1", Private),
        ("100.127.255.255", Private),
        ("100.128.0.1", Public),
        ("198.18.0.1", Private),
        ("169.254.169.254", CloudMetadata),
        ("169.254.170.2", CloudMetadata),
        ("100.100.100.200", CloudMetadata),
        ("168.63.129.16", CloudMetadata),
        ("192.0.0.192", CloudMetadata),
        ("169.254.1.1", LinkLocal),
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("224.0.0.1", NotUnicast),
        ("255.255.255.255", NotUnicast),
        ("240.0.0.1", Reserved),
        ("192.0.0.8", Reserved),
    ] {
        assert_eq!(class(ip), want, "{ip}");
    }
}

#[test]
fn ipv6_classes() {
    use AddressClass::*;
    for (ip, want) in [
        ("2606:4700::1111", Public),
        ("2001:db8::1", Public),
        ("::1", Loopback),
        ("::", Unspecified),
        ("fd00:ec2::254", CloudMetadata),
        ("fd12:3456::1", Private),
        ("fc00::1", Private),
        ("fe80::1", LinkLocal),
        ("febf::1", LinkLocal),
        ("fec0::1", Private),
        ("ff02::1", NotUnicast),
        ("100::1", Reserved),
        ("::ffff:169.254.169.254", CloudMetadata),
        ("::ffff:127.0.0.1", Loopback),
        ("::ffff:10.1.2.3", Private),
        ("::ffff:8.8.8.8", Public),
        ("::127.0.0.1", Loopback),
        ("64:ff9b::a9fe:a9fe", CloudMetadata),
        ("64:ff9b:1::a00:1", Private),
        ("2002:a9fe:a9fe::1", CloudMetadata),
        ("2002:0808:0808::1", Public),
    ] {
        assert_eq!(class(ip), want, "{ip}");
    }
}

#[test]
fn server_zones() {
    let ips = |v: &[&str]| {
        v.iter()
            .map(|s| s.parse().unwrap())
            .collect::<Vec<IpAddr>>()
    };
    assert_eq!(
        ServerZone::of(&ips(&["127.0.0.1", "::1"])),
        ServerZone::Loopback
    );
    assert_eq!(ServerZone::of(&ips(&["10.0.0.1"])), ServerZone::Private);
    assert_eq!(
        ServerZone::of(&ips(&["8.8.8.8", "10.0.0.1"])),
        ServerZone::Private
    );
    assert_eq!(
        ServerZone::of(&ips(&["8.8.8.8", "2606:4700::1"])),
        ServerZone::Public
    );
    assert_eq!(ServerZone::of(&[]), ServerZone::Public);
}

/// The whole table of the module documentation.
#[test]
fn decision_table() {
    use AddressClass::*;
    use ServerZone as Z;
    let strict = AddressPolicy::Strict;
    let table: [(AddressClass, [bool; 3]); 8] = [
        // (public server, private server, loopback server)
        (Public, [true, true, true]),
        (Private, [false, true, true]),
        (LinkLocal, [false, true, true]),
        (Reserved, [false, true, true]),
        (Loopback, [false, false, true]),
        (CloudMetadata, [false, false, false]),
        (Unspecified, [false, false, false]),
        (NotUnicast, [false, false, false]),
    ];
    for (class, want) in table {
        for (zone, w) in [Z::Public, Z::Private, Z::Loopback].into_iter().zip(want) {
            assert_eq!(
                decide(zone, class, strict).is_ok(),
                w,
                "{class:?} from a {zone:?} server"
            );
            assert!(decide(zone, class, AddressPolicy::AllowAll).is_ok());
        }
    }
    let hatch = AddressPolicy::AllowPrivateNetworks;
    assert!(decide(Z::Public, Private, hatch).is_ok());
    for still_refused in [LinkLocal, Loopback, CloudMetadata, Unspecified, NotUnicast] {
        assert!(
            decide(Z::Public, still_refused, hatch).is_err(),
            "{still_refused:?}"
        );
    }
    let e = decide(Z::Public, Private, strict).unwrap_err();
    assert!(
        e.contains("allow_private_networks") && e.contains("weakens"),
        "{e}"
    );
}

#[test]
fn any_refused_address_refuses_the_name() {
    let ips = |v: &[&str]| {
        v.iter()
            .map(|s| s.parse().unwrap())
            .collect::<Vec<IpAddr>>()
    };
    let strict = AddressPolicy::Strict;
    let e = check_addresses(
        ServerZone::Public,
        "as.example",
        &ips(&["8.8.8.8", "10.0.0.7"]),
        strict,
    )
    .unwrap_err();
    assert!(
        e.contains("as.example (resolves to 10.0.0.7)") && e.contains("private-network"),
        "{e}"
    );
    assert!(
        check_addresses(
            ServerZone::Public,
            "as.example",
            &ips(&["8.8.8.8", "2606:4700::1"]),
            strict
        )
        .is_ok()
    );
    let e = check_addresses(
        ServerZone::Public,
        "metadata.google.internal",
        &ips(&["169.254.169.254"]),
        strict,
    )
    .unwrap_err();
    assert!(e.contains("cloud instance metadata"), "{e}");
    let e = check_addresses(
        ServerZone::Loopback,
        "169.254.169.254",
        &ips(&["169.254.169.254"]),
        strict,
    )
    .unwrap_err();
    assert!(
        e.starts_with("refused by the network policy: 169.254.169.254 is a cloud"),
        "{e}"
    );
}

/// Every spelling of an address is classified after URL parsing, so none of the
/// classic bypasses (decimal, hex, octal, short forms, mapped IPv6, userinfo,
/// trailing dots) gets through. No name is resolved here and nothing is sent.
#[tokio::test]
async fn url_spellings_cannot_bypass_the_check() {
    let guard = AddressGuard::with_zone(
        "https://203.0.113.10/mcp",
        AddressPolicy::Strict,
        ServerZone::Public,
    );
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "http://0xA9FEA9FE/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fd00:ec2::254]/",
        "http://public.example.com@169.254.169.254/",
        "http://127.1/",
        "http://0/",
        "http://[::]/",
        "http://[::1]:8080/",
        "http://localhost./",
        "http://LOCALHOST/",
        "http://api.localhost/",
        "http://10.0.0.1/.well-known/oauth-authorization-server",
        "https://192.168.0.1/",
        "http://[fe80::1]/",
    ] {
        assert!(guard.check(url).await.is_err(), "{url} must be refused");
    }
    assert!(guard.check("https://8.8.8.8/x").await.is_ok());
    // The server's own host is the user's choice.
    assert!(
        guard
            .check("https://203.0.113.10/.well-known/oauth-protected-resource")
            .await
            .is_ok()
    );
}

/// URLs the user configured are the user's choice (an IdP or a metadata URL on the
/// corporate network), like the server URL; other hosts stay under the policy.
#[tokio::test]
async fn configured_hosts_are_trusted() {
    let guard = AddressGuard::trusting(
        "https://203.0.113.10/mcp",
        AddressPolicy::Strict,
        [
            "https://10.1.2.3/.well-known/openid-configuration",
            "not a url",
        ],
    );
    *guard.zone_slot() = Some(ServerZone::Public);
    assert_eq!(guard.trusted_hosts(), ["10.1.2.3"]);
    assert!(guard.check("https://10.1.2.3/token").await.is_ok());
    assert!(guard.check("https://10.1.2.4/token").await.is_err());
    assert!(guard.check("http://169.254.169.254/").await.is_err());
}

/// Answers each lookup with the next list of `answers` (the last from then on); an
/// empty list is a name that does not resolve.
#[derive(Debug)]
struct Script {
    answers: Vec<Vec<IpAddr>>,
    n: std::sync::atomic::AtomicUsize,
}

fn script(answers: &[&[&str]]) -> Arc<Script> {
    Arc::new(Script {
        answers: answers
            .iter()
            .map(|a| a.iter().map(|s| s.parse().unwrap()).collect())
            .collect(),
        n: Default::default(),
    })
}

impl HostResolver for Script {
    fn lookup<'a>(&'a self, _: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        let i = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let a = self.answers[i.min(self.answers.len() - 1)].clone();
        Box::pin(async move {
            if a.is_empty() {
                Err(std::io::Error::other("no such name"))
            } else {
                Ok(a)
            }
        })
    }
}

/// What a connection may use is what was checked, from one lookup: a rebound name is
/// refused at the connection, whatever the check saw before.
#[tokio::test]
async fn connections_get_only_checked_addresses() {
    let guard = AddressGuard::builder("https://mcp.example.com/mcp", AddressPolicy::Strict)
        .zone(ServerZone::Public)
        .resolver(script(&[&["203.0.113.5"], &["169.254.169.254"]]))
        .trusting(["https://idp.example.com/token"])
        .build();
    assert!(guard.check("https://as.example.net/token").await.is_ok());
    let e = guard
        .resolve_for_connection("as.example.net")
        .await
        .unwrap_err();
    assert!(
        e.0.contains("as.example.net (resolves to 169.254.169.254)"),
        "{e}"
    );
    // A configured host is the user's choice.
    assert!(
        guard
            .resolve_for_connection("IDP.example.com.")
            .await
            .is_ok()
    );
    // localhost never asks DNS; from a public server, it is refused.
    assert!(guard.resolve_for_connection("localhost").await.is_err());
}

/// The server's own name keeps the zone of its first resolution: a later answer of
/// another kind is refused; a name that did not resolve sets no zone.
#[tokio::test]
async fn the_servers_name_keeps_its_zone() {
    let guard = AddressGuard::builder("https://mcp.example.com/mcp", AddressPolicy::Strict)
        .resolver(script(&[
            &[],
            &["127.0.0.1"],
            &["127.0.0.2", "::1"],
            &["203.0.113.5"],
        ]))
        .build();
    // Not resolved: the strictest zone, not remembered.
    assert_eq!(guard.zone().await, ServerZone::Public);
    assert_eq!(guard.zone().await, ServerZone::Loopback);
    let same = guard.resolve_for_connection("mcp.example.com").await;
    assert_eq!(same.unwrap().len(), 2);
    let e = guard
        .resolve_for_connection("mcp.example.com")
        .await
        .unwrap_err();
    assert!(
        e.0.contains("203.0.113.5 (public addresses), but to loopback addresses before"),
        "{e}"
    );
    assert_eq!(guard.zone().await, ServerZone::Loopback);
}

#[tokio::test]
async fn loopback_servers_may_use_loopback() {
    let guard = AddressGuard::new("http://127.0.0.1:3000/mcp", AddressPolicy::Strict);
    assert_eq!(guard.zone().await, ServerZone::Loopback);
    assert!(
        guard
            .check("http://127.0.0.1:9000/.well-known/oauth-authorization-server")
            .await
            .is_ok()
    );
    assert!(guard.check("http://localhost:9000/token").await.is_ok());
    assert!(guard.check("http://[::1]:9000/token").await.is_ok());
    assert!(guard.check("http://169.254.169.254/").await.is_err());
    let guard = AddressGuard::new("http://localhost:3000/mcp", AddressPolicy::Strict);
    assert_eq!(guard.zone().await, ServerZone::Loopback);
}

#[tokio::test]
async fn private_servers_may_use_private_networks_but_not_loopback() {
    let guard = AddressGuard::new("https://10.1.2.3/mcp", AddressPolicy::Strict);
    assert_eq!(guard.zone().await, ServerZone::Private);
    assert!(guard.check("https://10.9.9.9/token").await.is_ok());
    assert!(guard.check("https://[fd00::5]/token").await.is_ok());
    assert!(guard.check("http://127.0.0.1:9000/token").await.is_err());
    assert!(guard.check("http://169.254.169.254/").await.is_err());
}
