//! An endpoint of an authorization server: a URL that parsed and passed the https rule,
//! kept as the string the server published.
//!
//! The string is what goes on the wire and into stored records: `url::Url` would
//! re-serialize `http://h:p` as `http://h:p/` (and normalise case, ports, escapes), and
//! servers compare some of these strings byte for byte (`aud` of a client assertion,
//! `htu` of a DPoP proof).

use std::fmt;
use url::Url;

/// An authorization server endpoint: `https`, or `http` on a loopback host (development
/// servers, RFC 8252 §8.3's loopback exception). Made by [`Endpoint::parse`] only.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    published: String,
    url: Url,
}

impl Endpoint {
    /// `value`, the metadata field `name`, as an endpoint. The error is the rule it broke,
    /// naming the field and the value.
    pub fn parse(name: &str, value: &str) -> Result<Endpoint, String> {
        let url = Url::parse(value).map_err(|e| format!("{name} {value:?} is not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if crate::util::is_loopback_url(&url) => {}
            other => {
                return Err(format!(
                    "{name} {value:?} uses {other}: authorization server endpoints must use \
                     https (plain http is accepted only on loopback)"
                ));
            }
        }
        Ok(Endpoint {
            published: value.to_string(),
            url,
        })
    }

    /// The endpoint as published: the string to send requests to and to store.
    pub fn as_str(&self) -> &str {
        &self.published
    }

    /// The endpoint parsed (its serialization may differ from [`as_str`](Self::as_str)).
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl AsRef<str> for Endpoint {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string is kept as published: `url::Url` adds a `/` to a bare origin.
    #[test]
    fn an_endpoint_keeps_the_published_string() {
        let e = Endpoint::parse("token_endpoint", "http://127.0.0.1:9").unwrap();
        assert_eq!(e.as_str(), "http://127.0.0.1:9");
        assert_eq!(e.url().as_str(), "http://127.0.0.1:9/");
        assert_eq!(e.to_string(), "http://127.0.0.1:9");
        let e = Endpoint::parse("token_endpoint", "HTTPS://AS.example:443/t?x=1").unwrap();
        assert_eq!(e.as_str(), "HTTPS://AS.example:443/t?x=1");
    }

    #[test]
    fn https_or_loopback_http_only() {
        assert!(Endpoint::parse("e", "http://localhost:8/a").is_ok());
        assert_eq!(
            Endpoint::parse("token_endpoint", "http://as.example/t").unwrap_err(),
            "token_endpoint \"http://as.example/t\" uses http: authorization server endpoints \
             must use https (plain http is accepted only on loopback)"
        );
        assert_eq!(
            Endpoint::parse("e", "/relative").unwrap_err(),
            "e \"/relative\" is not a URL: relative URL without a base"
        );
    }
}
