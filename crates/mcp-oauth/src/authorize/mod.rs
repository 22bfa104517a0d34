//! The authorization code flow with PKCE S256 (RFC 7636), `state`, RFC 8707 `resource`
//! and RFC 9207 `iss` validation, and the user agent that carries it: a loopback
//! redirect listener ([`loopback`]) and a browser opener ([`browser`]).

pub mod browser;
pub mod device;
pub mod loopback;
pub mod paste;

use crate::error::{Error, Result, Rule, Step};
use crate::secret::{AuthorizationCode, PkceVerifier};
use crate::util::random_token;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The secret verifier, sent with the token request (RFC 7636 §4.5).
    pub verifier: PkceVerifier,
    /// Its S256 challenge, sent with the authorization request (RFC 7636 §4.2).
    pub challenge: String,
}

impl Pkce {
    /// 32 random bytes give a 43-character verifier, the minimum length RFC 7636 §4.1
    /// allows with 256 bits of entropy.
    pub fn new() -> Self {
        Self::from_verifier(PkceVerifier::new(random_token(32)))
    }

    /// The PKCE pair of `verifier`.
    pub fn from_verifier(verifier: PkceVerifier) -> Self {
        let digest = Sha256::digest(verifier.expose().as_bytes());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything needed to build an authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    /// The authorization endpoint URL, from the authorization server metadata.
    pub authorization_endpoint: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// Where the authorization server sends the browser back to.
    pub redirect_uri: &'a str,
    /// The space-separated scopes to request, if any.
    pub scope: Option<&'a str>,
    /// The RFC 8707 `resource` indicator, if one is sent.
    pub resource: Option<&'a str>,
    /// The `state` value the redirect must carry back (CSRF protection).
    pub state: &'a str,
    /// The PKCE S256 challenge (RFC 7636 §4.2).
    pub code_challenge: &'a str,
    /// Extra parameters (from the configuration); they never replace the flow's own.
    pub extra: &'a [(String, String)],
}

/// Parameters that carry the flow's security (PKCE, `state`, the client and where the
/// code goes): an authorization endpoint that already holds one of them in its query is
/// refused, since either copy would be ambiguous to the authorization server.
const PROTOCOL_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
];

impl AuthorizationRequest<'_> {
    /// The URL to send the browser to. Parameters already in the endpoint's query are
    /// kept as they are (RFC 6749 §3.1: the query "MUST be retained", and no parameter
    /// may appear twice): one of ours that the endpoint already carries (a hosted server
    /// publishing `…/authorize?resource=…`, say) is not added again. The endpoint may not
    /// carry the flow's own protocol parameters (`response_type`, `client_id`,
    /// `redirect_uri`, `state`, `code_challenge`, `code_challenge_method`).
    pub fn url(&self) -> Result<String> {
        let mut url = url::Url::parse(self.authorization_endpoint).map_err(|e| {
            Error::rule(
                Step::Authorization,
                self.authorization_endpoint,
                format!("authorization_endpoint is not a URL: {e}"),
            )
        })?;
        let existing: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        if let Some((name, _)) = existing
            .iter()
            .find(|(k, _)| PROTOCOL_PARAMS.contains(&k.as_str()))
        {
            return Err(Error::rule(
                Step::Authorization,
                self.authorization_endpoint,
                format!(
                    "the authorization_endpoint already carries the {name:?} parameter, which \
                     the client must set itself; fix the authorization server's metadata"
                ),
            ));
        }
        let ours = self.parameters();
        let mut q = url.query_pairs_mut();
        for (k, v) in &ours {
            match existing.iter().find(|(ek, _)| ek == k) {
                Some((_, ev)) if ev != v => tracing::warn!(
                    parameter = %k,
                    endpoint_value = %ev,
                    "the authorization_endpoint already sets this parameter; its value is kept"
                ),
                Some(_) => {}
                None => {
                    q.append_pair(k, v);
                }
            }
        }
        drop(q);
        Ok(url.into())
    }

    /// Our parameters, in order; of an `extra` parameter given twice, the first counts.
    fn parameters(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", self.redirect_uri),
            ("state", self.state),
            ("code_challenge", self.code_challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(s) = self.scope {
            out.push(("scope", s));
        }
        if let Some(r) = self.resource {
            out.push(("resource", r));
        }
        for (k, v) in self.extra {
            if !out.iter().any(|(o, _)| o == k) {
                out.push((k, v));
            }
        }
        out
    }
}

/// The parameters of the redirect back to us (RFC 6749 §4.1.2 / §4.1.2.1, RFC 9207).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    /// The authorization code, on success.
    pub code: Option<AuthorizationCode>,
    /// The `state` the request was sent with, as the server returned it.
    pub state: Option<String>,
    /// The issuer, when the server sends it (RFC 9207).
    pub iss: Option<String>,
    /// The OAuth error code, when the server refused (RFC 6749 §4.1.2.1).
    pub error: Option<String>,
    /// The server's explanation of the error, if any.
    pub error_description: Option<String>,
    /// A page about the error, if the server named one.
    pub error_uri: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &crate::secret::redacted(&self.code))
            .field("state", &self.state.as_ref().map(|_| "[present]"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish()
    }
}

impl CallbackParams {
    /// Parses a query string (`a=b&c=d`, form-encoded). The first occurrence of a
    /// parameter wins; RFC 6749 §3.1 forbids repeating them, and we refuse a repeated
    /// `code`, `state` or `iss` rather than guess.
    pub fn from_query(query: &str) -> std::result::Result<Self, String> {
        let mut seen: HashMap<String, String> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if seen.contains_key(k.as_ref()) {
                if matches!(k.as_ref(), "code" | "state" | "iss") {
                    return Err(format!("the redirect repeats the {k:?} parameter"));
                }
                continue;
            }
            seen.insert(k.into_owned(), v.into_owned());
        }
        Ok(Self {
            code: seen.remove("code").map(AuthorizationCode::new),
            state: seen.remove("state"),
            iss: seen.remove("iss"),
            error: seen.remove("error"),
            error_description: seen.remove("error_description"),
            error_uri: seen.remove("error_uri"),
        })
    }

    /// Parses a pasted redirect URL, a bare query, or a bare code.
    pub fn from_pasted(input: &str) -> std::result::Result<Self, String> {
        let input = input.trim();
        if let Ok(url) = url::Url::parse(input) {
            return Self::from_query(url.query().unwrap_or_default());
        }
        if input.contains('=') {
            return Self::from_query(input.trim_start_matches('?'));
        }
        if input.is_empty() {
            return Err("nothing was pasted".into());
        }
        Ok(Self {
            code: Some(AuthorizationCode::new(input)),
            ..Default::default()
        })
    }
}

/// What the callback is checked against: recorded before the browser is opened.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    /// The `state` the request was sent with.
    pub state: String,
    /// The issuer from validated metadata (RFC 9207 compares against it).
    pub expected_issuer: String,
    /// Whether that issuer came from validated metadata; without metadata (2025-03-26
    /// fallback) there is nothing authentic to compare `iss` with.
    pub issuer_validated: bool,
    /// `authorization_response_iss_parameter_supported` of the metadata.
    pub iss_supported: bool,
    /// Accept a bare code without `state` (paste mode, where the user pasted only a code).
    pub allow_missing_state: bool,
}

/// Validates the redirect: `iss` first (RFC 9207 §2.4, before acting on anything else,
/// including an error), then `state`, then `error`, then the code.
pub fn validate_callback(
    params: &CallbackParams,
    pending: &PendingAuthorization,
) -> Result<AuthorizationCode> {
    let fail = |rule: Rule| Error::broke(Step::Authorization, "the authorization redirect", rule);
    if pending.issuer_validated {
        // The spec's table: advertised → required; present → compared, advertised or not.
        // Simple string comparison: no case folding, no trailing-slash or port normalisation.
        match (&params.iss, pending.iss_supported) {
            (Some(iss), _) if iss != &pending.expected_issuer => {
                return Err(fail(Rule::IssuerMismatch(format!(
                    "iss {iss:?} is not the issuer {:?} of the authorization server the request \
                     was sent to (RFC 9207: possible mix-up attack); the response was discarded",
                    pending.expected_issuer
                ))));
            }
            (None, true) => {
                return Err(fail(Rule::IssuerMismatch(format!(
                    "the authorization server {} advertises \
                     authorization_response_iss_parameter_supported but its response has no iss \
                     (RFC 9207 §2.4); the response was discarded",
                    pending.expected_issuer
                ))));
            }
            _ => {}
        }
    }
    match &params.state {
        Some(s) if s == &pending.state => {}
        Some(_) => {
            return Err(fail(Rule::StateMismatch(
                "state does not match the request (possible CSRF); the response was discarded"
                    .into(),
            )));
        }
        None if pending.allow_missing_state && params.code.is_some() && params.error.is_none() => {}
        None => {
            return Err(fail(Rule::StateMismatch(
                "the redirect has no state parameter; the response was discarded".into(),
            )));
        }
    }
    if let Some(error) = &params.error {
        return Err(Error::AuthorizationRefused {
            issuer: pending.expected_issuer.clone(),
            body: crate::error::OAuthErrorBody {
                error: error.clone(),
                error_description: params.error_description.clone(),
                error_uri: params.error_uri.clone(),
            },
            note: None,
        });
    }
    params
        .code
        .clone()
        .filter(|c| !c.expose().is_empty())
        .ok_or_else(|| {
            fail(Rule::Redirect(
                "the redirect has neither a code nor an error".into(),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let p = Pkce::from_verifier(PkceVerifier::new(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let fresh = Pkce::new();
        assert_eq!(fresh.verifier.expose().len(), 43);
    }

    #[test]
    fn authorization_url_carries_every_parameter() {
        let extra = vec![("access_type".to_string(), "offline".to_string())];
        let url = AuthorizationRequest {
            authorization_endpoint: "https://as.example/authorize?tenant=a",
            client_id: "c 1",
            redirect_uri: "http://127.0.0.1:5000/callback",
            scope: Some("mcp:read mcp:write"),
            resource: Some("http://localhost:3000"),
            state: "st",
            code_challenge: "ch",
            extra: &extra,
        }
        .url()
        .unwrap();
        let u = url::Url::parse(&url).unwrap();
        let q: HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "a");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "c 1");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "mcp:read mcp:write");
        // The resource string is sent exactly as published: no trailing slash added.
        assert_eq!(q["resource"], "http://localhost:3000");
        assert_eq!(q["access_type"], "offline");
    }

    fn request<'a>(endpoint: &'a str, extra: &'a [(String, String)]) -> AuthorizationRequest<'a> {
        AuthorizationRequest {
            authorization_endpoint: endpoint,
            client_id: "c",
            redirect_uri: "http://127.0.0.1:5000/callback",
            scope: Some("mcp"),
            resource: Some("https://mcp.example/mcp"),
            state: "st",
            code_challenge: "ch",
            extra,
        }
    }

    fn pairs(url: &str) -> Vec<(String, String)> {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    #[test]
    fn a_parameter_the_endpoint_carries_is_not_repeated() {
        // A hosted AS that publishes `?resource=` in its endpoint (and one that sets a
        // different value: the endpoint's is kept, never both).
        for published in ["https://mcp.example/mcp", "https://other.example/"] {
            let endpoint = format!(
                "https://as.example/authorize?resource={}&tenant=t",
                url::form_urlencoded::byte_serialize(published.as_bytes()).collect::<String>()
            );
            let extra = vec![("prompt".to_string(), "consent".to_string())];
            let url = request(&endpoint, &extra).url().unwrap();
            let p = pairs(&url);
            let resources: Vec<_> = p.iter().filter(|(k, _)| k == "resource").collect();
            assert_eq!(resources.len(), 1, "{url}");
            assert_eq!(resources[0].1, published);
            assert_eq!(p.iter().filter(|(k, _)| k == "tenant").count(), 1);
            assert_eq!(p.iter().filter(|(k, _)| k == "prompt").count(), 1);
            assert_eq!(p.iter().filter(|(k, _)| k == "scope").count(), 1);
        }
    }

    #[test]
    fn an_extra_parameter_never_duplicates_one_of_ours() {
        let extra = vec![
            ("scope".to_string(), "other".to_string()),
            ("prompt".to_string(), "consent".to_string()),
            ("prompt".to_string(), "login".to_string()),
        ];
        let url = request("https://as.example/authorize", &extra)
            .url()
            .unwrap();
        let p = pairs(&url);
        let scopes: Vec<_> = p.iter().filter(|(k, _)| k == "scope").collect();
        assert_eq!(scopes, [&("scope".to_string(), "mcp".to_string())]);
        let prompts: Vec<_> = p.iter().filter(|(k, _)| k == "prompt").collect();
        assert_eq!(prompts, [&("prompt".to_string(), "consent".to_string())]);
    }

    #[test]
    fn an_endpoint_carrying_a_protocol_parameter_is_refused() {
        let e = request("https://as.example/authorize?state=fixed", &[])
            .url()
            .unwrap_err();
        assert!(e.to_string().contains("\"state\""), "{e}");
        assert!(
            e.to_string()
                .contains("https://as.example/authorize?state=fixed"),
            "{e}"
        );
    }

    fn pending(iss_supported: bool) -> PendingAuthorization {
        PendingAuthorization {
            state: "s1".into(),
            expected_issuer: "http://localhost:9000".into(),
            issuer_validated: true,
            iss_supported,
            allow_missing_state: false,
        }
    }

    fn cb(q: &str) -> CallbackParams {
        CallbackParams::from_query(q).unwrap()
    }

    #[test]
    fn rfc9207_table() {
        let ok = "code=c&state=s1&iss=http%3A%2F%2Flocalhost%3A9000";
        assert!(validate_callback(&cb(ok), &pending(true)).is_ok());
        assert!(validate_callback(&cb(ok), &pending(false)).is_ok());
        // advertised, absent → reject
        assert!(validate_callback(&cb("code=c&state=s1"), &pending(true)).is_err());
        // not advertised, absent → proceed
        assert!(validate_callback(&cb("code=c&state=s1"), &pending(false)).is_ok());
        // wrong, advertised or not → reject
        for adv in [true, false] {
            let e = validate_callback(
                &cb("code=c&state=s1&iss=https%3A%2F%2Fevil.example.com"),
                &pending(adv),
            )
            .unwrap_err();
            assert!(e.to_string().contains("mix-up"), "{e}");
        }
        // trailing slash is a different issuer
        assert!(
            validate_callback(
                &cb("code=c&state=s1&iss=http%3A%2F%2Flocalhost%3A9000%2F"),
                &pending(false)
            )
            .is_err()
        );
    }

    #[test]
    fn iss_checked_before_error_is_shown() {
        let e = validate_callback(
            &cb("error=access_denied&error_description=phish&state=s1&iss=https%3A%2F%2Fevil"),
            &pending(false),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("phish"), "{e}");
    }

    #[test]
    fn state_rules() {
        assert!(validate_callback(&cb("code=c&state=other"), &pending(false)).is_err());
        assert!(validate_callback(&cb("code=c"), &pending(false)).is_err());
        let mut p = pending(false);
        p.allow_missing_state = true;
        assert!(validate_callback(&CallbackParams::from_pasted("abc").unwrap(), &p).is_ok());
    }

    #[test]
    fn error_response_is_reported() {
        let e = validate_callback(
            &cb("error=access_denied&error_description=no+way&state=s1"),
            &pending(false),
        )
        .unwrap_err();
        assert!(e.to_string().contains("access_denied: no way"), "{e}");
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(CallbackParams::from_query("code=a&code=b&state=s").is_err());
    }

    #[test]
    fn pasted_forms() {
        let p = CallbackParams::from_pasted("http://127.0.0.1:1/callback?code=x&state=y").unwrap();
        assert_eq!(p.code.unwrap().expose(), "x");
        assert_eq!(p.state.as_deref(), Some("y"));
        let p = CallbackParams::from_pasted("?code=x&state=y").unwrap();
        assert_eq!(p.state.as_deref(), Some("y"));
        assert_eq!(
            CallbackParams::from_pasted(" abc \n")
                .unwrap()
                .code
                .unwrap()
                .expose(),
            "abc"
        );
        assert!(CallbackParams::from_pasted("  ").is_err());
    }
}
