//! Small helpers shared by several modules.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `n` bytes from the operating system's CSPRNG, base64url without padding.
pub(crate) fn random_token(n: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; n];
    // The OS CSPRNG failing is not something a caller can recover from; every platform
    // we build for provides one.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Is this host a loopback address or `localhost` (RFC 8252 §7.3, RFC 6761)?
pub(crate) fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Is this URL on a loopback host?
pub(crate) fn is_loopback_url(url: &url::Url) -> bool {
    url.host().as_ref().is_some_and(is_loopback_host)
}

pub(crate) use crate::error::error_chain;

/// The environment variable naming a PEM file of CA certificates trusted in addition to
/// the system's (see [`crate::http::tls_config`]).
pub const EXTRA_CA_CERTS_ENV: &str = "MCP_OAUTH_EXTRA_CA_CERTS";

pub(crate) use crate::wire::{excerpt, first_byte};

/// Splits a space-separated scope string into its scopes, dropping empties.
pub(crate) fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Union of scope lists, order of first appearance kept.
pub(crate) fn union_scopes<'a>(lists: impl IntoIterator<Item = &'a str>) -> String {
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for s in split_scopes(list) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out.join(" ")
}

/// Reads a JSON object into `T`. OAuth and MCP documents are JSON objects (RFC 6749 §5.1,
/// RFC 7591 §3.2.1, RFC 8414 §3.2, RFC 9728 §3.2); serde's derive would also read a JSON
/// array into a struct, by position: `["x"]` was a token response with the access token
/// "x" (found by the `token_response` fuzz target). Anything but an object is refused
/// with serde's error type, so callers report it like any other malformed document.
pub(crate) fn from_json_object<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> serde_json::Result<T> {
    if first_byte(body) != Some(b'{') {
        // Not JSON at all keeps serde's syntax error; other JSON is a data error.
        serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
        return Err(<serde_json::Error as serde::de::Error>::custom(
            "expected a JSON object",
        ));
    }
    serde_json::from_slice(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_union_keeps_order_and_dedups() {
        assert_eq!(union_scopes(["a b", "b c", ""]), "a b c");
        assert_eq!(union_scopes(["  x  y "]), "x y");
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://localhost:1/x", true),
            ("http://127.0.0.1/", true),
            ("http://127.9.9.9/", true),
            ("http://[::1]:80/", true),
            ("http://app.localhost/", true),
            ("https://example.com/", false),
            ("http://10.0.0.1/", false),
        ] {
            assert_eq!(is_loopback_url(&url::Url::parse(u).unwrap()), want, "{u}");
        }
    }

    #[test]
    fn random_tokens_differ() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }

    #[derive(serde::Deserialize, Debug)]
    struct Doc {
        #[allow(dead_code)]
        a: Option<String>,
    }

    #[test]
    fn only_json_objects_are_read() {
        assert!(from_json_object::<Doc>(b" \n{\"a\": \"x\"}").is_ok());
        for bad in [&b"[\"x\"]"[..], b"\"x\"", b"null", b"1"] {
            let e = from_json_object::<Doc>(bad).unwrap_err();
            assert!(e.to_string().contains("expected a JSON object"), "{e}");
            assert!(e.is_data(), "{e}");
        }
        for not_json in [&b""[..], b"<html>", b"[1,"] {
            let e = from_json_object::<Doc>(not_json).unwrap_err();
            assert!(e.is_syntax() || e.is_eof(), "{e}");
        }
        // Without the check, serde reads the array by position.
        assert!(serde_json::from_slice::<Doc>(b"[\"x\"]").is_ok());
    }
}
