//! The network policy's address classification (mcp-oauth `netpolicy`), on any URL
//! whose host is an IP literal or `localhost` (never a name: nothing is resolved here).
//! Never panics; agrees with the standard library where both have a notion; the
//! decision table's invariants hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::netpolicy::{AddressClass, AddressPolicy, ServerZone, classify_ip, decide};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let mut ips: Vec<IpAddr> = Vec::new();
    if data.len() >= 16 {
        let b: [u8; 16] = data[..16].try_into().unwrap();
        ips.push(IpAddr::from(b));
    }
    if data.len() >= 4 {
        let b: [u8; 4] = data[..4].try_into().unwrap();
        ips.push(IpAddr::from(b));
    }
    let s = String::from_utf8_lossy(data);
    if let Ok(u) = url::Url::parse(&s) {
        match u.host() {
            Some(url::Host::Ipv4(ip)) => ips.push(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => ips.push(IpAddr::V6(ip)),
            _ => {}
        }
    }
    for ip in ips {
        let c = classify_ip(ip);
        if ip.is_loopback() {
            assert_eq!(c, AddressClass::Loopback, "{ip}");
        }
        if ip.is_unspecified() {
            assert_eq!(c, AddressClass::Unspecified, "{ip}");
        }
        if let IpAddr::V4(v4) = ip {
            if v4.is_private() {
                assert_eq!(c, AddressClass::Private, "{ip}");
            }
            if v4.is_link_local() {
                assert!(
                    matches!(c, AddressClass::LinkLocal | AddressClass::CloudMetadata),
                    "{ip}"
                );
            }
            // The same address as an IPv4-mapped IPv6 address is classified alike.
            assert_eq!(classify_ip(IpAddr::V6(v4.to_ipv6_mapped())), c, "{ip}");
        }
        for zone in [
            ServerZone::Public,
            ServerZone::Private,
            ServerZone::Loopback,
        ] {
            let strict = decide(zone, c, AddressPolicy::Strict).is_ok();
            let hatch = decide(zone, c, AddressPolicy::AllowPrivateNetworks).is_ok();
            assert!(!strict || hatch, "the hatch only ever allows more");
            assert!(decide(zone, c, AddressPolicy::AllowAll).is_ok());
            if c == AddressClass::CloudMetadata {
                assert!(!hatch, "metadata is never allowed");
            }
            if zone == ServerZone::Public && c != AddressClass::Public {
                assert!(
                    !strict,
                    "a public server reaches only public addresses: {ip}"
                );
            }
        }
    }
});
