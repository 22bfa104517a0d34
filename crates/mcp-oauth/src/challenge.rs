//! `WWW-Authenticate` parsing. (Being written; see the module docs once done.)

/// One challenge: an auth scheme with either a token68 or auth-params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (compare case-insensitively, e.g. with [`Challenge::is`]).
    pub scheme: String,
    pub token68: Option<String>,
    /// Parameters in order; names lowercased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The parameters of a `Bearer` (or `DPoP`) challenge that MCP clients act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    pub realm: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub scope: Option<String>,
    pub resource_metadata: Option<String>,
}

/// A parse failure, with the byte offset in the header field value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed WWW-Authenticate at byte {offset}: {message}")]
pub struct ChallengeParseError {
    pub offset: usize,
    pub message: String,
}

/// Parses every challenge of every `WWW-Authenticate` field value given.
pub fn parse_challenges<S: AsRef<str>>(fields: &[S]) -> Result<Vec<Challenge>, ChallengeParseError> {
    let _ = fields;
    Ok(Vec::new())
}

/// The first `Bearer` challenge, typed.
pub fn bearer(challenges: &[Challenge]) -> Option<BearerChallenge> {
    let _ = challenges;
    None
}
