//! Keeping the secrets we send out of the errors we report.
//!
//! An authorization server that fails may answer with a page that shows the request it
//! failed on (framework debug pages do), or with an `error_description` that quotes the
//! refresh token it refused. Our errors include an excerpt of such bodies, so without
//! care the code, the PKCE verifier, the refresh token or the client secret we just sent
//! would end up on the terminal and in logs. [`Sent`] remembers the secret values of one
//! request and scrubs them from the response of a failed one.

use crate::error::Error;

/// Form fields whose values are secrets.
const SECRET_FIELDS: &[&str] = &[
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "subject_token",
    "device_code",
    "token",
];

/// What replaces a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// The secret values of one request, in every form a server might echo them in.
#[derive(Default)]
pub(crate) struct Sent {
    values: Vec<String>,
}

impl Sent {
    /// The secrets of a form body, and the credentials of an `Authorization: Basic` value.
    pub(crate) fn from_form(form: &[(String, String)], basic: Option<&str>) -> Self {
        let mut s = Sent::default();
        for (k, v) in form {
            if SECRET_FIELDS.contains(&k.as_str()) {
                s.add(v);
            }
        }
        if let Some(b) = basic {
            s.add(b.trim_start_matches("Basic ").trim());
        }
        s
    }

    /// Also this value (e.g. a client secret sent in a header).
    pub(crate) fn with(mut self, v: Option<&str>) -> Self {
        if let Some(v) = v {
            self.add(v);
        }
        self
    }

    fn add(&mut self, v: &str) {
        // Very short values cannot be told from ordinary text; no real secret is that short.
        if v.len() < 6 {
            return;
        }
        let encoded: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
        for form in [v.to_string(), encoded] {
            if !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        // Longest first, so that a value containing another is replaced whole.
        self.values.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }

    pub(crate) fn scrub_str(&self, s: &str) -> String {
        let mut out = s.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    /// The body of a failed response, scrubbed (lossily decoded: it is only used for the
    /// error body and the excerpt).
    pub(crate) fn scrub_body(&self, body: &[u8]) -> Vec<u8> {
        if self.values.is_empty() {
            return body.to_vec();
        }
        self.scrub_str(&String::from_utf8_lossy(body)).into_bytes()
    }

    /// The error with every text that came from the server scrubbed.
    pub(crate) fn scrub(&self, e: Error) -> Error {
        if self.values.is_empty() {
            return e;
        }
        match e {
            Error::Status {
                step,
                url,
                status,
                body_excerpt,
            } => Error::Status {
                step,
                url,
                status,
                body_excerpt: self.scrub_str(&body_excerpt),
            },
            Error::OAuth {
                step,
                url,
                status,
                mut body,
            } => {
                body.error = self.scrub_str(&body.error);
                body.error_description = body.error_description.map(|d| self.scrub_str(&d));
                body.error_uri = body.error_uri.map(|u| self.scrub_str(&u));
                Error::OAuth {
                    step,
                    url,
                    status,
                    body,
                }
            }
            Error::Rule { step, url, rule } => Error::Rule {
                step,
                url,
                rule: rule.map_text(|t| self.scrub_str(t)),
            },
            Error::Transport {
                step,
                url,
                message,
                source,
            } => {
                // A source whose text held a secret goes with it.
                let scrubbed = self.scrub_str(&message);
                let source = source.filter(|_| scrubbed == message);
                Error::Transport {
                    step,
                    url,
                    message: scrubbed,
                    source,
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{OAuthErrorBody, Step};

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let form = vec![
            ("grant_type".to_string(), "refresh_token".to_string()),
            (
                "refresh_token".to_string(),
                "rt/with+special chars".to_string(),
            ),
            ("client_id".to_string(), "public-id".to_string()),
        ];
        let sent = Sent::from_form(&form, Some("Basic Y2xpZW50OnNlY3JldA=="));
        let e = sent.scrub(Error::Status {
            step: Step::Refresh,
            url: "u".into(),
            status: 500,
            body_excerpt:
                "form: refresh_token=rt%2Fwith%2Bspecial+chars raw: rt/with+special chars \
                           auth: Basic Y2xpZW50OnNlY3JldA== id: public-id"
                    .into(),
        });
        let s = e.to_string();
        assert!(
            !s.contains("rt/with") && !s.contains("rt%2F") && !s.contains("Y2xpZW50"),
            "{s}"
        );
        assert!(s.contains("public-id") && s.contains(REDACTED), "{s}");
        let e = sent.scrub(Error::OAuth {
            step: Step::Refresh,
            url: "u".into(),
            status: 400,
            body: OAuthErrorBody {
                error: "invalid_grant".into(),
                error_description: Some("unknown token rt/with+special chars".into()),
                error_uri: None,
            },
        });
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        assert!(!e.to_string().contains("rt/with"), "{e}");
    }
}
