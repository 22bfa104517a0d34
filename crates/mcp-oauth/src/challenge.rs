//! `WWW-Authenticate` parsing (RFC 9110 §11.6.1) and the typed `Bearer` view (RFC 6750 §3,
//! RFC 9728 §5.1).
//!
//! An MCP server answers an unauthenticated request with `401` and a challenge such as
//!
//! ```text
//! WWW-Authenticate: Bearer error="invalid_token",
//!     resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
//! ```
//!
//! and everything the client does next (where it fetches Protected Resource Metadata, which
//! scope it asks for on a `403 insufficient_scope`) hangs on reading that header *exactly*.
//! Hence a real parser of the RFC grammar, not substring or regex matching: a parameter
//! name that merely appears inside another parameter's quoted value (for example
//! `error_description="see resource_metadata=\"http://evil\""`) is text, never a parameter.
//!
//! # Grammar (RFC 9110 §11.6.1, §5.6)
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-scheme      = token
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! #element         = [ element ] *( OWS "," OWS [ element ] )      ; empty elements allowed
//! quoted-string    = DQUOTE *( qdtext / quoted-pair ) DQUOTE
//! quoted-pair      = "\" ( HTAB / SP / VCHAR / obs-text )
//! ```
//!
//! The comma is overloaded: it separates the auth-params of one challenge *and* the
//! challenges of the list. The parser therefore reads the header as a flat list of
//! comma-separated elements and decides what each element is from how it starts:
//!
//! - `token BWS "="` is an auth-param of the current challenge (a token68 cannot start with
//!   `=`, so this is unambiguous);
//! - any other `token` starts a new challenge; after `1*SP` comes either a token68 (token68
//!   characters, optional `=` padding, then the end of the element) or its first auth-param.
//!   So `Basic dXNlcjpwYXNz=` is a token68, while `Bearer realm="x"` is a parameter.
//!
//! Scheme and parameter names are case-insensitive: the scheme is kept as sent (compare
//! with [`Challenge::is`]), parameter names are stored lowercased. Values are stored
//! unquoted and unescaped.
//!
//! Several header fields are parsed independently, one after the other: a malformed field
//! (say, an unterminated quoted-string) cannot swallow the next one, and a challenge never
//! continues into the next field (a field starting with an auth-param is an error). Error
//! offsets are nonetheless given in the fields' RFC 9110 §5.3 combination
//! `fields.join(", ")`, so that one number locates a problem; for a single field that is
//! simply the offset in the field.
//!
//! # Leniencies (what real servers send), and what is deliberately *not* accepted
//!
//! - **Unquoted non-token values**, e.g. `resource_metadata=https://x/y?a=b`: strictly a value
//!   is a `token` (no `/`, `:`, `?`, `=`) or a quoted-string, but servers do emit bare URLs.
//!   An unquoted value runs up to the next `,`, whitespace, `"` or control character and may
//!   not start with `=`. A URL containing a comma must be quoted; there is no way to tell
//!   such a comma from a list separator.
//! - **Horizontal tab** is accepted where the grammar wants `1*SP` after the scheme, as it is
//!   everywhere else (OWS/BWS).
//! - **Non-ASCII** (`obs-text`) is accepted in quoted-strings and unquoted values.
//! - **Duplicate parameters**: RFC 9110 says each name MUST occur once per challenge. The
//!   first occurrence wins, later ones are dropped and reported as an error (so the strict
//!   [`parse_challenges`] rejects them, and a trace shows them). First-wins means a value
//!   appended later cannot override `resource_metadata`.
//! - **Missing space after a comma** (`a="1",b="2"`) is not a leniency: the grammar's OWS
//!   allows it. Empty list elements (`,,`, leading or trailing commas) are allowed by `#`.
//! - **Single quotes are not quotes.** `'` is a `tchar`, so `realm='x'` is a valid token whose
//!   value is `'x'`, quotes included; stripping them would change a well-formed value. A
//!   single-quoted value containing spaces is malformed and reported.
//! - **A missing comma between parameters** (`realm="x" error="y"`) is *not* accepted:
//!   reading on would turn a server's escaping bug (`error_description="a "b="c"`) into a
//!   parameter injection. The element is reported and dropped.
//! - **Empty unquoted values** are not accepted (`realm=` followed by `,` reads as a token68,
//!   exactly as the grammar says; `realm = ,` is an error). Servers send `realm=""`.
//! - Control characters (other than HTAB) inside a quoted-string are rejected.
//!
//! # Errors and recovery
//!
//! An error spoils one list element only: the parser reports it (with the byte offset),
//! skips to the next comma outside a quoted-string and goes on, so one bad parameter does
//! not lose the well-formed challenges around it. A parameter that follows a challenge
//! whose scheme was malformed (`Evil@ x=y`) is reported rather than credited to the
//! challenge before it. [`parse_challenges_lenient`] returns what it could parse together
//! with every error (discovery uses it and records the errors in its trace);
//! [`parse_challenges`] is the strict form and returns the first error.
//!
//! The parser never panics and does linear work: it only ever slices the input at ASCII
//! delimiters (UTF-8 continuation bytes are never ASCII, so those are char boundaries) and
//! each byte is looked at a bounded number of times.

use std::collections::HashSet;
use std::fmt;

/// One challenge: an auth scheme with either a token68 or auth-params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (compare case-insensitively, e.g. with [`Challenge::is`]).
    pub scheme: String,
    /// The token68 form (`Basic dXNlcjpwYXNz=`), `=` padding included. A parsed challenge
    /// has a token68 or params, never both.
    pub token68: Option<String>,
    /// Parameters in order; names lowercased, values unquoted. No name occurs twice in a
    /// parsed challenge (the first occurrence wins).
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Whether this challenge is for `scheme` (auth-schemes are case-insensitive).
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The value of the first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Challenge {
    /// Same as [`format_challenge`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_challenge(self))
    }
}

/// The parameters of a `Bearer` (or `DPoP`) challenge that MCP clients act on.
///
/// RFC 6750 §3 defines `realm`, `scope`, `error`, `error_description` (and `error_uri`);
/// RFC 9728 §5.1 adds `resource_metadata`. RFC 9449 §7.1 gives `DPoP` challenges the same
/// parameters (plus `algs`, read with [`Challenge::param`]), hence [`for_scheme`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    pub realm: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Space-delimited scopes, as sent (on `403 insufficient_scope`: the scopes needed).
    pub scope: Option<String>,
    /// The Protected Resource Metadata URL (RFC 9728). May be relative or even hostile:
    /// validating it is discovery's job, not the parser's.
    pub resource_metadata: Option<String>,
}

impl BearerChallenge {
    /// The typed view of any challenge's parameters (the scheme is not checked, so that
    /// `Bearer` and `DPoP` challenges read alike). A token68 challenge has none of them.
    pub fn from_challenge(challenge: &Challenge) -> Self {
        let get = |name: &str| challenge.param(name).map(str::to_owned);
        BearerChallenge {
            realm: get("realm"),
            error: get("error"),
            error_description: get("error_description"),
            scope: get("scope"),
            resource_metadata: get("resource_metadata"),
        }
    }
}

/// The parameters that came, as `name="value"` pairs (`resource_metadata="…", scope="mcp"`),
/// or "no parameters": discovery traces show it to users, who should not read a Rust
/// struct. The values are quoted with JSON escapes, so a control character a server sent
/// shows as `\u001b` and never reaches a terminal.
impl fmt::Display for BearerChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = [
            ("resource_metadata", &self.resource_metadata),
            ("scope", &self.scope),
            ("error", &self.error),
            ("error_description", &self.error_description),
            ("realm", &self.realm),
        ];
        let mut any = false;
        for (name, value) in params {
            let Some(value) = value else { continue };
            if any {
                f.write_str(", ")?;
            }
            any = true;
            write!(f, "{name}={}", serde_json::Value::from(value.as_str()))?;
        }
        if !any {
            f.write_str("no parameters")?;
        }
        Ok(())
    }
}

/// A parse failure, with the byte offset in the header field value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed WWW-Authenticate at byte {offset}: {message}")]
pub struct ChallengeParseError {
    /// Byte offset of the problem (always a char boundary). When several fields were
    /// parsed, the offset is in their RFC 9110 §5.3 combination `fields.join(", ")`.
    pub offset: usize,
    /// What was wrong, for humans (and discovery traces).
    pub message: String,
}

/// Parses every challenge of every `WWW-Authenticate` field value given, strictly: any
/// error (including a duplicate parameter) fails the whole input with the first error.
///
/// The documented leniencies (see the module docs) are accepted here too; "strict" is
/// about not silently dropping anything. Use [`parse_challenges_lenient`] to keep what
/// could be parsed. An empty slice, or fields that are empty or only commas, give `Ok`
/// with no challenges.
pub fn parse_challenges<S: AsRef<str>>(
    fields: &[S],
) -> Result<Vec<Challenge>, ChallengeParseError> {
    let (challenges, errors) = parse_challenges_lenient(fields);
    match errors.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(challenges),
    }
}

/// Parses every challenge of every `WWW-Authenticate` field value given, keeping the
/// well-formed ones and returning every error next to them (in input order).
///
/// A malformed list element is reported and skipped (up to the next comma outside a
/// quoted-string); the challenge it belonged to keeps its other parameters, and the other
/// challenges and fields are unaffected. Discovery uses this form and puts the errors in
/// its trace.
pub fn parse_challenges_lenient<S: AsRef<str>>(
    fields: &[S],
) -> (Vec<Challenge>, Vec<ChallengeParseError>) {
    let mut challenges = Vec::new();
    let mut errors = Vec::new();
    let mut base = 0usize;
    for field in fields {
        let field = field.as_ref();
        FieldParser {
            s: field,
            b: field.as_bytes(),
            base,
            cur: None,
            seen: HashSet::new(),
            out: &mut challenges,
            errors: &mut errors,
        }
        .run();
        // Offsets continue as in `fields.join(", ")`.
        base = base.saturating_add(field.len()).saturating_add(2);
    }
    (challenges, errors)
}

/// The first challenge for `scheme` (case-insensitive), typed. Used with `"Bearer"` by
/// [`bearer`] and with `"DPoP"` by [`dpop`].
pub fn for_scheme(challenges: &[Challenge], scheme: &str) -> Option<BearerChallenge> {
    challenges
        .iter()
        .find(|c| c.is(scheme))
        .map(BearerChallenge::from_challenge)
}

/// The first `Bearer` challenge, typed.
pub fn bearer(challenges: &[Challenge]) -> Option<BearerChallenge> {
    for_scheme(challenges, "Bearer")
}

/// The first `DPoP` challenge (RFC 9449 §7.1), typed; its `algs` is in
/// [`Challenge::param`].
pub fn dpop(challenges: &[Challenge]) -> Option<BearerChallenge> {
    for_scheme(challenges, "DPoP")
}

/// Formats one challenge as a `WWW-Authenticate` list element: `scheme`, then the token68
/// or `name="value"` pairs separated by `", "`. Every value is emitted as a quoted-string
/// (always valid, and what RFC 6750 uses), with `"` and `\` escaped.
///
/// The scheme, names and token68 are emitted as they are; for any challenge this module
/// parsed they are valid, and `parse(format(c)) == c`. A value containing a control
/// character other than HTAB cannot be sent in an HTTP field at all (the `http` crate
/// refuses such a header value), and a challenge with both a token68 and params is not
/// expressible in the grammar: the output then does not parse back.
pub fn format_challenge(challenge: &Challenge) -> String {
    let mut out = String::with_capacity(
        challenge.scheme.len()
            + challenge.token68.as_ref().map_or(0, |t| t.len() + 1)
            + challenge
                .params
                .iter()
                .map(|(n, v)| n.len() + v.len() + 6)
                .sum::<usize>(),
    );
    out.push_str(&challenge.scheme);
    let mut sep = " ";
    if let Some(token68) = &challenge.token68 {
        out.push(' ');
        out.push_str(token68);
        sep = ", ";
    }
    for (name, value) in &challenge.params {
        out.push_str(sep);
        sep = ", ";
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out
}

/// Formats several challenges as one `WWW-Authenticate` field value (joined by `", "`).
pub fn format_challenges(challenges: &[Challenge]) -> String {
    challenges
        .iter()
        .map(format_challenge)
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------
// The parser. Works on bytes; only slices the `&str` at positions next to ASCII bytes.

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The characters of a token68 before its `=` padding (RFC 9110 §11.2).
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// OWS / BWS / RWS whitespace.
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A byte of a (leniently accepted) unquoted value: anything but whitespace, `,`, `"` and
/// controls. Non-ASCII bytes are accepted, so a run always ends at an ASCII byte or the end.
fn is_unquoted_value_byte(b: u8) -> bool {
    !(is_ws(b) || b == b',' || b == b'"' || b.is_ascii_control())
}

fn scan(b: &[u8], mut i: usize, accept: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && accept(b[i]) {
        i += 1;
    }
    i
}

fn skip_ws(b: &[u8], i: usize) -> usize {
    scan(b, i, is_ws)
}

/// Whether `i` ends a list element: the end of the field or a comma.
fn at_element_end(b: &[u8], i: usize) -> bool {
    i >= b.len() || b[i] == b','
}

/// Skips OWS and commas: the `#` rule's separators, including empty elements.
fn skip_separators(b: &[u8], mut i: usize) -> usize {
    loop {
        i = skip_ws(b, i);
        if i < b.len() && b[i] == b',' {
            i += 1;
        } else {
            return i;
        }
    }
}

/// Error recovery: the next comma outside a quoted-string at or after `i`, or the end.
/// `i` must not be inside a quoted-string (it is an element start, the position after a
/// value, or an opening quote).
fn skip_element(b: &[u8], mut i: usize) -> usize {
    let mut quoted = false;
    while i < b.len() {
        match b[i] {
            b'"' => quoted = !quoted,
            // Skips the escaped byte; if that is the first byte of a multi-byte char, the
            // rest are continuation bytes, which match nothing here.
            b'\\' if quoted => i += 1,
            b',' if !quoted => return i,
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// A scheme or parameter name for a message, cut short: names are server-controlled
/// and end up in traces. (They are ASCII tokens, but `get` keeps this panic-free anyway.)
fn clip(name: &str) -> &str {
    name.get(..40).unwrap_or(name)
}

/// "found ..." text for messages; never slices inside a char.
fn describe(s: &str, i: usize) -> String {
    match s.get(i..).and_then(|rest| rest.chars().next()) {
        Some(c) => format!("{c:?}"),
        None => "the end of the field".to_owned(),
    }
}

/// How a list element starts.
enum Lead {
    /// `token BWS "="`: an auth-param; `name_end` ends the token, `eq` is the `=`.
    Param { name_end: usize, eq: usize },
    /// Any other token: an auth-scheme ending at `end`.
    Scheme { end: usize },
    /// Not a token at all.
    Other,
}

fn classify(b: &[u8], i: usize) -> Lead {
    let end = scan(b, i, is_tchar);
    if end == i {
        return Lead::Other;
    }
    let eq = skip_ws(b, end);
    if eq < b.len() && b[eq] == b'=' {
        Lead::Param { name_end: end, eq }
    } else {
        Lead::Scheme { end }
    }
}

/// A failed element: where, why, and where recovery (skipping to the next comma outside a
/// quoted-string) starts.
struct Fail {
    at: usize,
    message: String,
    resume: usize,
}

impl Fail {
    fn new(at: usize, message: impl Into<String>) -> Self {
        Fail {
            at,
            message: message.into(),
            resume: at,
        }
    }
}

/// Parses a quoted-string whose opening `"` is at `open`; returns the unescaped value and
/// the position after the closing `"`.
fn quoted_string(s: &str, open: usize) -> Result<(String, usize), Fail> {
    let b = s.as_bytes();
    let mut value = String::new();
    let mut i = open + 1;
    let mut run = i; // start of the literal run not yet copied
    while i < b.len() {
        match b[i] {
            b'"' => {
                value.push_str(&s[run..i]);
                return Ok((value, i + 1));
            }
            b'\\' => {
                value.push_str(&s[run..i]);
                // `i + 1` follows an ASCII byte, so it is a char boundary.
                match s[i + 1..].chars().next() {
                    None => break,
                    Some(c) if c != '\t' && c.is_ascii_control() => {
                        return Err(Fail {
                            at: i + 1,
                            message: format!("control character {c:?} in a quoted-pair"),
                            resume: open,
                        });
                    }
                    Some(c) => {
                        value.push(c);
                        i += 1 + c.len_utf8();
                        run = i;
                    }
                }
            }
            c if c != b'\t' && c.is_ascii_control() => {
                return Err(Fail {
                    at: i,
                    message: format!("control character {:?} in a quoted-string", char::from(c)),
                    resume: open,
                });
            }
            _ => i += 1,
        }
    }
    Err(Fail::new(open, "unterminated quoted-string"))
}

/// Parses an auth-param value starting at `i` (after `=` and BWS): a quoted-string or an
/// unquoted run (a token, leniently widened; see the module docs).
fn value(s: &str, i: usize) -> Result<(String, usize), Fail> {
    let b = s.as_bytes();
    if i < b.len() && b[i] == b'"' {
        return quoted_string(s, i);
    }
    let end = scan(b, i, is_unquoted_value_byte);
    if end == i || b[i] == b'=' {
        return Err(Fail::new(
            i,
            format!(
                "expected a value (token or quoted-string) after '=', found {}",
                describe(s, i)
            ),
        ));
    }
    Ok((s[i..end].to_owned(), end))
}

/// Parses the challenges of one field value.
struct FieldParser<'a, 'o> {
    s: &'a str,
    b: &'a [u8],
    /// Offset of this field in the combined value, for error offsets.
    base: usize,
    /// The challenge that auth-params attach to. `None` before the first challenge and
    /// after a challenge whose scheme was malformed.
    cur: Option<Challenge>,
    /// Parameter names of `cur`, for duplicate detection in constant time.
    seen: HashSet<String>,
    out: &'o mut Vec<Challenge>,
    errors: &'o mut Vec<ChallengeParseError>,
}

impl FieldParser<'_, '_> {
    fn run(mut self) {
        let mut pos = 0;
        loop {
            pos = skip_separators(self.b, pos);
            if pos >= self.b.len() {
                break;
            }
            // Every `Ok` is past `pos`, every recovery ends at a comma or the end: progress.
            pos = match self.element(pos) {
                Ok(next) => next,
                Err(fail) => {
                    self.report(fail.at, fail.message);
                    skip_element(self.b, fail.resume)
                }
            };
        }
        self.finish_challenge();
    }

    fn report(&mut self, at: usize, message: impl Into<String>) {
        self.errors.push(ChallengeParseError {
            offset: self.base.saturating_add(at),
            message: message.into(),
        });
    }

    fn finish_challenge(&mut self) {
        if let Some(challenge) = self.cur.take() {
            self.out.push(challenge);
        }
        self.seen.clear();
    }

    /// One list element at `pos` (not whitespace, not a comma). Returns the position of the
    /// comma or end that terminates it.
    fn element(&mut self, pos: usize) -> Result<usize, Fail> {
        match classify(self.b, pos) {
            Lead::Param { name_end, eq } => self.auth_param(pos, name_end, eq),
            Lead::Scheme { end } => self.challenge(pos, end),
            Lead::Other if self.b[pos] == b'=' => {
                Err(Fail::new(pos, "'=' without a parameter name"))
            }
            Lead::Other => Err(Fail::new(
                pos,
                format!(
                    "expected an auth-scheme or auth-param, found {}",
                    describe(self.s, pos)
                ),
            )),
        }
    }

    /// A new challenge whose scheme is `start..end`.
    fn challenge(&mut self, start: usize, end: usize) -> Result<usize, Fail> {
        let (s, b) = (self.s, self.b);
        self.finish_challenge();
        let mut challenge = Challenge {
            scheme: s[start..end].to_owned(),
            token68: None,
            params: Vec::new(),
        };
        let p = skip_ws(b, end);
        if at_element_end(b, p) {
            // A scheme alone (`Negotiate`); auth-params may still follow after a comma.
            self.cur = Some(challenge);
            return Ok(p);
        }
        if p == end {
            // `Bearer"x"`, `Evil@ x=y`: not a clean scheme. `cur` stays `None`, so the
            // auth-params that follow are reported instead of being credited to the
            // challenge before this one.
            return Err(Fail::new(
                end,
                format!(
                    "expected a space after the auth-scheme, found {}",
                    describe(s, end)
                ),
            ));
        }
        // token68: token68 characters, `=` padding, then the end of the element. Checked
        // before auth-param, which needs a value after its `=`.
        let t = scan(b, p, is_token68_char);
        if t > p {
            let padded = scan(b, t, |c| c == b'=');
            let next = skip_ws(b, padded);
            if at_element_end(b, next) {
                challenge.token68 = Some(s[p..padded].to_owned());
                self.cur = Some(challenge);
                return Ok(next);
            }
        }
        // Otherwise the first auth-param. The challenge stands even if that is malformed.
        self.cur = Some(challenge);
        match classify(b, p) {
            Lead::Param { name_end, eq } => self.auth_param(p, name_end, eq),
            Lead::Other if b[p] == b'=' => Err(Fail::new(p, "'=' without a parameter name")),
            _ => Err(Fail::new(
                p,
                format!(
                    "expected a token68 or auth-param after the auth-scheme, found {}",
                    describe(s, p)
                ),
            )),
        }
    }

    /// An auth-param whose name is `start..name_end` and whose `=` is at `eq`.
    fn auth_param(&mut self, start: usize, name_end: usize, eq: usize) -> Result<usize, Fail> {
        let (s, b) = (self.s, self.b);
        let (value, value_end) = value(s, skip_ws(b, eq + 1))?;
        let next = skip_ws(b, value_end);
        if !at_element_end(b, next) {
            // Includes a missing comma before the next parameter: see the module docs.
            return Err(Fail::new(
                next,
                format!(
                    "expected ',' after the value of {:?}, found {}",
                    clip(&s[start..name_end]),
                    describe(s, next)
                ),
            ));
        }
        let name = s[start..name_end].to_ascii_lowercase();
        let shown = clip(&name);
        let problem = match &mut self.cur {
            None => Some(format!(
                "auth-param {shown:?} has no well-formed auth-scheme before it; ignored"
            )),
            Some(challenge) if challenge.token68.is_some() => Some(format!(
                "auth-param {shown:?} after a token68 (a challenge has one or the other); ignored"
            )),
            Some(challenge) => {
                if self.seen.contains(&name) {
                    Some(format!(
                        "duplicate parameter {shown:?} in the {:?} challenge; the first one wins",
                        clip(&challenge.scheme)
                    ))
                } else {
                    self.seen.insert(name.clone());
                    challenge.params.push((name, value));
                    None
                }
            }
        };
        if let Some(message) = problem {
            self.report(start, message);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bearer_challenge_in_words() {
        let b = BearerChallenge {
            scope: Some("mcp".into()),
            resource_metadata: Some("https://h/.well-known/oauth-protected-resource".into()),
            ..Default::default()
        };
        assert_eq!(
            b.to_string(),
            r#"resource_metadata="https://h/.well-known/oauth-protected-resource", scope="mcp""#
        );
        assert_eq!(BearerChallenge::default().to_string(), "no parameters");
    }

    use super::*;
    use proptest::prelude::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.to_owned(),
            token68: None,
            params: params
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn t68(scheme: &str, token68: &str) -> Challenge {
        Challenge {
            scheme: scheme.to_owned(),
            token68: Some(token68.to_owned()),
            params: Vec::new(),
        }
    }

    fn parse1(field: &str) -> Result<Vec<Challenge>, ChallengeParseError> {
        parse_challenges(&[field])
    }

    fn lenient1(field: &str) -> (Vec<Challenge>, Vec<ChallengeParseError>) {
        parse_challenges_lenient(&[field])
    }

    fn offsets(errors: &[ChallengeParseError]) -> Vec<usize> {
        errors.iter().map(|e| e.offset).collect()
    }

    /// Well-formed headers, most of them as real servers send them.
    #[test]
    fn real_world_headers() {
        let cases: Vec<(&str, &str, Vec<Challenge>)> = vec![
            (
                "MCP seed server",
                r#"Bearer error="invalid_token", resource_metadata="http://localhost:8888/.well-known/oauth-protected-resource/mcp""#,
                vec![ch(
                    "Bearer",
                    &[
                        ("error", "invalid_token"),
                        (
                            "resource_metadata",
                            "http://localhost:8888/.well-known/oauth-protected-resource/mcp",
                        ),
                    ],
                )],
            ),
            (
                "MCP TypeScript SDK",
                r#"Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="http://localhost:3000/.well-known/oauth-protected-resource/mcp""#,
                vec![ch(
                    "Bearer",
                    &[
                        ("error", "invalid_token"),
                        ("error_description", "Missing Authorization header"),
                        (
                            "resource_metadata",
                            "http://localhost:3000/.well-known/oauth-protected-resource/mcp",
                        ),
                    ],
                )],
            ),
            (
                "GitHub",
                r#"Bearer realm="GitHub", error="invalid_token""#,
                vec![ch(
                    "Bearer",
                    &[("realm", "GitHub"), ("error", "invalid_token")],
                )],
            ),
            (
                "Microsoft (empty realm)",
                r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
                vec![ch(
                    "Bearer",
                    &[
                        ("realm", ""),
                        (
                            "authorization_uri",
                            "https://login.microsoftonline.com/common/oauth2/authorize",
                        ),
                        ("client_id", "00000003-0000-0000-c000-000000000000"),
                    ],
                )],
            ),
            (
                "Basic then Bearer",
                r#"Basic realm="x", Bearer scope="a b""#,
                vec![
                    ch("Basic", &[("realm", "x")]),
                    ch("Bearer", &[("scope", "a b")]),
                ],
            ),
            ("scheme alone", "Negotiate", vec![ch("Negotiate", &[])]),
            (
                "token68 with padding",
                "Basic dXNlcjpwYXNz=",
                vec![t68("Basic", "dXNlcjpwYXNz=")],
            ),
            (
                "token68 with / + and double padding, then another challenge",
                "Negotiate a+b/c==, Bearer",
                vec![t68("Negotiate", "a+b/c=="), ch("Bearer", &[])],
            ),
            (
                "DPoP then Bearer",
                r#"DPoP algs="ES256 PS256", Bearer resource_metadata="https://x/.well-known/oauth-protected-resource/mcp""#,
                vec![
                    ch("DPoP", &[("algs", "ES256 PS256")]),
                    ch(
                        "Bearer",
                        &[(
                            "resource_metadata",
                            "https://x/.well-known/oauth-protected-resource/mcp",
                        )],
                    ),
                ],
            ),
            (
                "relative resource_metadata",
                r#"Bearer resource_metadata="/.well-known/oauth-protected-resource/mcp""#,
                vec![ch(
                    "Bearer",
                    &[(
                        "resource_metadata",
                        "/.well-known/oauth-protected-resource/mcp",
                    )],
                )],
            ),
            (
                "uppercase names, BWS around '='",
                r#"BEARER RESOURCE_METADATA = "x""#,
                vec![ch("BEARER", &[("resource_metadata", "x")])],
            ),
            (
                "insufficient_scope (403)",
                r#"Bearer error="insufficient_scope", scope="files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error_description="Additional file write permission required""#,
                vec![ch(
                    "Bearer",
                    &[
                        ("error", "insufficient_scope"),
                        ("scope", "files:write"),
                        (
                            "resource_metadata",
                            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                        ),
                        (
                            "error_description",
                            "Additional file write permission required",
                        ),
                    ],
                )],
            ),
            (
                "RFC 9110 §11.6.1 example (token value, escapes)",
                r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
                vec![
                    ch(
                        "Newauth",
                        &[
                            ("realm", "apps"),
                            ("type", "1"),
                            ("title", r#"Login to "apps""#),
                        ],
                    ),
                    ch("Basic", &[("realm", "simple")]),
                ],
            ),
            (
                "RFC 7616 Digest (commas inside quoted values)",
                r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5"#,
                vec![
                    ch(
                        "Digest",
                        &[
                            ("realm", "http-auth@example.org"),
                            ("qop", "auth, auth-int"),
                            ("algorithm", "SHA-256"),
                            ("nonce", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"),
                            ("opaque", "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"),
                        ],
                    ),
                    ch(
                        "Digest",
                        &[
                            ("realm", "http-auth@example.org"),
                            ("qop", "auth, auth-int"),
                            ("algorithm", "MD5"),
                        ],
                    ),
                ],
            ),
            (
                "Keycloak",
                r#"Bearer realm="myrealm", error="invalid_token", error_description="Token verification failed""#,
                vec![ch(
                    "Bearer",
                    &[
                        ("realm", "myrealm"),
                        ("error", "invalid_token"),
                        ("error_description", "Token verification failed"),
                    ],
                )],
            ),
            (
                "no space after commas",
                r#"Bearer realm="x",error="invalid_token",Basic realm="y""#,
                vec![
                    ch("Bearer", &[("realm", "x"), ("error", "invalid_token")]),
                    ch("Basic", &[("realm", "y")]),
                ],
            ),
            (
                "empty list elements",
                r#" , ,Bearer realm="x",, error="e" ,, Basic ,"#,
                vec![
                    ch("Bearer", &[("realm", "x"), ("error", "e")]),
                    ch("Basic", &[]),
                ],
            ),
            (
                "tabs as OWS/BWS and after the scheme",
                "Bearer\trealm\t=\t\"x\"\t,\terror=\"y\"",
                vec![ch("Bearer", &[("realm", "x"), ("error", "y")])],
            ),
            (
                "param right after a bare scheme and comma",
                r#"Bearer, realm="x""#,
                vec![ch("Bearer", &[("realm", "x")])],
            ),
            (
                "escapes: \\\" \\\\ and an escaped ordinary char",
                r#"Bearer error_description="a \"quoted\" word, a back\\slash and \x""#,
                vec![ch(
                    "Bearer",
                    &[(
                        "error_description",
                        r#"a "quoted" word, a back\slash and x"#,
                    )],
                )],
            ),
            (
                "unquoted URL values (leniency)",
                "Bearer resource_metadata=https://x/y?a=b&c=d, error=invalid_token",
                vec![ch(
                    "Bearer",
                    &[
                        ("resource_metadata", "https://x/y?a=b&c=d"),
                        ("error", "invalid_token"),
                    ],
                )],
            ),
            (
                "unquoted IPv6 URL (leniency)",
                "Bearer resource_metadata=http://[::1]:8080/.well-known/oauth-protected-resource",
                vec![ch(
                    "Bearer",
                    &[(
                        "resource_metadata",
                        "http://[::1]:8080/.well-known/oauth-protected-resource",
                    )],
                )],
            ),
            (
                "single quotes are part of a token value",
                "Bearer realm='x'",
                vec![ch("Bearer", &[("realm", "'x'")])],
            ),
            (
                "non-ASCII in quoted and unquoted values",
                "Bearer error_description=\"café ☕ \\é\", realm=naïve",
                vec![ch(
                    "Bearer",
                    &[("error_description", "café ☕ é"), ("realm", "naïve")],
                )],
            ),
            (
                "whitespace in quoted value is kept; around elements it is not",
                "  Bearer   realm=\"  a  \"  ,  scope = \"x\"  ",
                vec![ch("Bearer", &[("realm", "  a  "), ("scope", "x")])],
            ),
            (
                "token68 with trailing whitespace",
                "Basic abc== , Bearer",
                vec![t68("Basic", "abc=="), ch("Bearer", &[])],
            ),
            (
                "a new challenge whose only content is a param named like a scheme",
                r#"Bearer realm="x", Basic =abc"#,
                // `token BWS "="` is always an auth-param, so `basic` is a param here.
                vec![ch("Bearer", &[("realm", "x"), ("basic", "abc")])],
            ),
        ];
        for (name, field, expected) in cases {
            let parsed = parse1(field).unwrap_or_else(|e| panic!("{name}: {field:?}: {e}"));
            assert_eq!(parsed, expected, "{name}: {field:?}");
            let (lenient, errors) = lenient1(field);
            assert_eq!(lenient, expected, "{name} (lenient)");
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
    }

    #[test]
    fn empty_inputs_give_no_challenges() {
        assert_eq!(parse_challenges::<&str>(&[]), Ok(vec![]));
        assert_eq!(parse1(""), Ok(vec![]));
        assert_eq!(parse1("  ,  ,, "), Ok(vec![]));
        assert_eq!(parse_challenges(&["", " "]), Ok(vec![]));
    }

    #[test]
    fn several_fields() {
        let fields = [
            r#"DPoP algs="ES256""#,
            r#"Bearer resource_metadata="https://x/.well-known/oauth-protected-resource""#,
            "Basic realm=\"b\", Negotiate",
        ];
        assert_eq!(
            parse_challenges(&fields),
            Ok(vec![
                ch("DPoP", &[("algs", "ES256")]),
                ch(
                    "Bearer",
                    &[(
                        "resource_metadata",
                        "https://x/.well-known/oauth-protected-resource"
                    )]
                ),
                ch("Basic", &[("realm", "b")]),
                ch("Negotiate", &[]),
            ])
        );
        // Owned strings work too.
        let owned: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(parse_challenges(&owned).unwrap().len(), 4);
    }

    #[test]
    fn param_name_inside_a_quoted_value_is_not_a_param() {
        let field = r#"Bearer error_description="see resource_metadata=\"http://evil\"""#;
        let parsed = parse1(field).unwrap();
        assert_eq!(
            parsed,
            vec![ch(
                "Bearer",
                &[(
                    "error_description",
                    r#"see resource_metadata="http://evil""#
                )]
            )]
        );
        let b = bearer(&parsed).unwrap();
        assert_eq!(b.resource_metadata, None);
        assert_eq!(
            b.error_description.as_deref(),
            Some(r#"see resource_metadata="http://evil""#)
        );

        // Also when the injected text looks like a whole list element.
        let field = r#"Bearer error_description="x\", resource_metadata=\"http://evil", realm="r""#;
        let b = bearer(&parse1(field).unwrap()).unwrap();
        assert_eq!(b.resource_metadata, None);
        assert_eq!(b.realm.as_deref(), Some("r"));
    }

    #[test]
    fn unescaped_quote_in_a_value_does_not_inject_a_param() {
        // A server that forgot to escape: the value ends at the inner quote, the rest is
        // junk glued to it (no comma), so the element is reported and dropped.
        let field = r#"Bearer error_description="bad "resource_metadata="http://evil", realm="r""#;
        let (parsed, errors) = lenient1(field);
        let b = bearer(&parsed).unwrap();
        assert_eq!(b.resource_metadata, None);
        assert_eq!(b.error_description, None);
        assert_eq!(b.realm.as_deref(), Some("r"));
        assert_eq!(
            offsets(&errors),
            vec![field.find("resource_metadata").unwrap()]
        );
        assert!(parse1(field).is_err());
    }

    #[test]
    fn missing_comma_between_params_is_an_error() {
        let field = r#"Bearer realm="x" error="y", scope="s""#;
        let (parsed, errors) = lenient1(field);
        assert_eq!(parsed, vec![ch("Bearer", &[("scope", "s")])]);
        assert_eq!(offsets(&errors), vec![17]);
        assert_eq!(parse1(field).unwrap_err().offset, 17);

        // An unquoted multi-word value is not split into params either.
        let field = "Bearer error_description=see resource_metadata=http://evil";
        let (parsed, errors) = lenient1(field);
        assert_eq!(parsed, vec![ch("Bearer", &[])]);
        assert_eq!(offsets(&errors), vec![29]);
    }

    #[test]
    fn duplicate_params_first_wins() {
        let field = r#"Bearer resource_metadata="https://good", RESOURCE_METADATA="https://evil", realm="r""#;
        let (parsed, errors) = lenient1(field);
        assert_eq!(
            parsed,
            vec![ch(
                "Bearer",
                &[("resource_metadata", "https://good"), ("realm", "r")]
            )]
        );
        assert_eq!(offsets(&errors), vec![41]);
        assert!(
            errors[0].message.contains("duplicate"),
            "{}",
            errors[0].message
        );
        assert_eq!(parse1(field).unwrap_err().offset, 41);
        // The same name in two different challenges is not a duplicate.
        assert!(parse1(r#"Basic realm="a", Bearer realm="b""#).is_ok());
    }

    #[test]
    fn malformed_inputs_give_offsets() {
        // (input, error offsets, challenges kept by the lenient parser)
        let cases: Vec<(&str, Vec<usize>, Vec<Challenge>)> = vec![
            (r#"Bearer realm="x"#, vec![13], vec![ch("Bearer", &[])]),
            (r#"Bearer realm="abc\"#, vec![13], vec![ch("Bearer", &[])]),
            // BWS makes this `token BWS "=" ...`: a param named `bearer`, with no scheme before it.
            (r#"Bearer ="x""#, vec![0], vec![]),
            (
                r#"Bearer realm="x", ="y""#,
                vec![18],
                vec![ch("Bearer", &[("realm", "x")])],
            ),
            ("\"", vec![0], vec![]),
            ("\"\"", vec![0], vec![]),
            ("=", vec![0], vec![]),
            ("@", vec![0], vec![]),
            (r#"Bearer"x""#, vec![6], vec![]),
            (r#"realm="x""#, vec![0], vec![]),
            (
                r#"Basic abc=, realm="x""#,
                vec![12],
                vec![t68("Basic", "abc=")],
            ),
            // `realm=` then a comma is a token68 (the grammar says so); then a param follows it.
            (
                r#"Bearer realm=, error="x""#,
                vec![15],
                vec![t68("Bearer", "realm=")],
            ),
            (
                r#"Bearer realm = , error="x""#,
                vec![15],
                vec![ch("Bearer", &[("error", "x")])],
            ),
            ("Bearer realm==x", vec![13], vec![ch("Bearer", &[])]),
            (
                "Bearer realm=\"a\u{1}b\", error=\"e\"",
                vec![15],
                vec![ch("Bearer", &[("error", "e")])],
            ),
            (
                "Bearer realm=\"a\\\u{0}\"",
                vec![16],
                vec![ch("Bearer", &[])],
            ),
            ("Bearer realm=a\u{7f}b", vec![14], vec![ch("Bearer", &[])]),
            ("Basic abc def", vec![6], vec![ch("Basic", &[])]),
            (r#"Bearer realm="a"b"#, vec![16], vec![ch("Bearer", &[])]),
            // Recovery skips `"b"` as a quoted-string and resumes at the comma.
            (
                "Bearer realm=a\"b\", x=\"y\"",
                vec![14],
                vec![ch("Bearer", &[("x", "y")])],
            ),
            ("Bearer é", vec![7], vec![ch("Bearer", &[])]),
            ("Béarer realm=\"x\"", vec![1], vec![]),
            // One bad element; the challenges around it survive.
            (
                r#"Basic realm="a", Bearer error_description=Missing Authorization header, resource_metadata="https://x/prm""#,
                vec![50], // "Authorization": the value was the unquoted `Missing`
                vec![
                    ch("Basic", &[("realm", "a")]),
                    ch("Bearer", &[("resource_metadata", "https://x/prm")]),
                ],
            ),
            (
                r#"Basic realm="a", Evil@ x="y", Bearer resource_metadata="z""#,
                vec![21],
                vec![
                    ch("Basic", &[("realm", "a")]),
                    ch("Bearer", &[("resource_metadata", "z")]),
                ],
            ),
            // A param after a malformed scheme is not credited to the challenge before it.
            (
                r#"Basic realm="a", Evil@, resource_metadata="http://evil", Bearer"#,
                vec![21, 24],
                vec![ch("Basic", &[("realm", "a")]), ch("Bearer", &[])],
            ),
            // A comma inside an unterminated quoted-string does not restart parsing.
            (
                r#"Bearer realm="x, scope=y"#,
                vec![13],
                vec![ch("Bearer", &[])],
            ),
            // Quotes pair up as the grammar says: the quoted-string is `"x, resource_metadata="`
            // and the URL after it is junk, not a parameter.
            (
                r#"Bearer realm="x, resource_metadata="http://evil""#,
                vec![36],
                vec![ch("Bearer", &[])],
            ),
        ];
        for (field, want_offsets, want) in cases {
            let (parsed, errors) = lenient1(field);
            assert_eq!(offsets(&errors), want_offsets, "{field:?}: {errors:?}");
            assert_eq!(parsed, want, "{field:?}");
            let strict = parse1(field).expect_err(field);
            assert_eq!(strict.offset, want_offsets[0], "{field:?}");
            for e in &errors {
                assert!(field.is_char_boundary(e.offset), "{field:?} {e:?}");
                assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn error_messages_and_display() {
        let e = parse1(r#"Bearer realm="x"#).unwrap_err();
        assert_eq!(e.message, "unterminated quoted-string");
        assert_eq!(
            e.to_string(),
            "malformed WWW-Authenticate at byte 13: unterminated quoted-string"
        );
        let e = parse1("Bearer ,=x").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (8, "'=' without a parameter name")
        );
        let e = parse1("Bearer é").unwrap_err();
        assert!(e.message.contains("'é'"), "{}", e.message);
    }

    #[test]
    fn token68_versus_param_at_the_end() {
        // `realm=` alone after the scheme is, by the grammar, a token68.
        assert_eq!(parse1("Bearer realm="), Ok(vec![t68("Bearer", "realm=")]));
        assert_eq!(
            parse1("Basic dXNlcjpwYXNz"),
            Ok(vec![t68("Basic", "dXNlcjpwYXNz")])
        );
        assert_eq!(
            parse1("Basic dXNlcjpwYXNz=, Basic realm=\"x\""),
            Ok(vec![
                t68("Basic", "dXNlcjpwYXNz="),
                ch("Basic", &[("realm", "x")])
            ])
        );
    }

    #[test]
    fn malformed_field_does_not_lose_other_fields() {
        let fields = [r#"Bearer realm="x"#, r#"DPoP algs="ES256""#, "Basic \"oops"];
        let (parsed, errors) = parse_challenges_lenient(&fields);
        assert_eq!(
            parsed,
            vec![
                ch("Bearer", &[]),
                ch("DPoP", &[("algs", "ES256")]),
                ch("Basic", &[])
            ]
        );
        // Offsets are in `fields.join(", ")`.
        let combined = fields.join(", ");
        assert_eq!(offsets(&errors), vec![13, combined.rfind('"').unwrap()]);
        assert_eq!(&combined[errors[1].offset..], "\"oops");
        assert_eq!(parse_challenges(&fields).unwrap_err().offset, 13);

        // A field never continues the previous field's challenge.
        let (parsed, errors) = parse_challenges_lenient(&["Bearer", r#"realm="x""#]);
        assert_eq!(parsed, vec![ch("Bearer", &[])]);
        assert_eq!(offsets(&errors), vec![8]);
    }

    #[test]
    fn typed_views() {
        let parsed = parse1(
            r#"Basic realm="b", DPoP algs="ES256", error="use_dpop_nonce", bearer realm="first", scope="a b", Bearer realm="second""#,
        )
        .unwrap();
        assert_eq!(
            bearer(&parsed),
            Some(BearerChallenge {
                realm: Some("first".into()),
                scope: Some("a b".into()),
                ..Default::default()
            })
        );
        let d = dpop(&parsed).unwrap();
        assert_eq!(d.error.as_deref(), Some("use_dpop_nonce"));
        assert_eq!(for_scheme(&parsed, "dpop"), Some(d));
        assert_eq!(parsed[1].param("ALGS"), Some("ES256"));
        assert!(parsed[1].is("DPOP"));
        assert_eq!(for_scheme(&parsed, "Negotiate"), None);
        assert_eq!(bearer(&parse1("Basic abc=").unwrap()), None);
        assert_eq!(bearer(&[]), None);

        // The MCP seed, as discovery reads it.
        let b = bearer(
            &parse1(r#"Bearer error="invalid_token", resource_metadata="http://localhost:8888/.well-known/oauth-protected-resource/mcp""#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(b.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            b.resource_metadata.as_deref(),
            Some("http://localhost:8888/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(b.realm, None);

        // Uppercase everything.
        let b = bearer(&parse1(r#"BEARER RESOURCE_METADATA = "x""#).unwrap()).unwrap();
        assert_eq!(b.resource_metadata.as_deref(), Some("x"));

        // A token68 Bearer challenge has no parameters.
        assert_eq!(
            bearer(&parse1("Bearer abc").unwrap()),
            Some(BearerChallenge::default())
        );
    }

    #[test]
    fn formatting() {
        let c = ch(
            "Bearer",
            &[
                ("error", "insufficient_scope"),
                ("error_description", r#"say "hi" \ bye"#),
                ("realm", ""),
            ],
        );
        let s = format_challenge(&c);
        assert_eq!(
            s,
            r#"Bearer error="insufficient_scope", error_description="say \"hi\" \\ bye", realm="""#
        );
        assert_eq!(c.to_string(), s);
        assert_eq!(parse1(&s), Ok(vec![c.clone()]));
        assert_eq!(format_challenge(&ch("Negotiate", &[])), "Negotiate");
        assert_eq!(
            format_challenge(&t68("Basic", "dXNlcjpwYXNz=")),
            "Basic dXNlcjpwYXNz="
        );
        let list = vec![
            ch("DPoP", &[("algs", "ES256")]),
            t68("Basic", "a=="),
            ch("Negotiate", &[]),
            c,
        ];
        let s = format_challenges(&list);
        assert!(
            s.starts_with(r#"DPoP algs="ES256", Basic a==, Negotiate, Bearer "#),
            "{s}"
        );
        assert_eq!(parse1(&s), Ok(list));
        assert_eq!(format_challenges(&[]), "");
    }

    #[test]
    fn adversarial_inputs_are_fast_and_do_not_panic() {
        let n = 20_000;
        let inputs = [
            "\"".repeat(n),
            ",".repeat(n),
            "=".repeat(n),
            "\\".repeat(n),
            "a".repeat(n),
            "a ".repeat(n),
            "a=".repeat(n),
            "a=\"".repeat(n),
            format!("Bearer {}", "a".repeat(n)),
            format!("Bearer {}", "=".repeat(n)),
            format!("Bearer realm=\"{}", "\\\"".repeat(n)),
            format!(
                "Bearer {}",
                (0..n).map(|i| format!("p{i}=\"v\", ")).collect::<String>()
            ),
            format!("Bearer {}", "x=\"v\", ".repeat(n)),
            "é\"".repeat(n),
        ];
        let start = std::time::Instant::now();
        for input in &inputs {
            let (parsed, errors) = lenient1(input);
            for e in &errors {
                assert!(input.is_char_boundary(e.offset));
            }
            let _ = (parsed, errors);
        }
        // Linear work: well under a second even in debug builds (generous bound for CI).
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        let many = format!(
            "Bearer {}",
            (0..n).map(|i| format!("p{i}=\"v\", ")).collect::<String>()
        );
        assert_eq!(parse1(&many).unwrap()[0].params.len(), n);
        let dups = format!("Bearer {}", "x=\"v\", ".repeat(n));
        let (parsed, errors) = lenient1(&dups);
        assert_eq!(parsed[0].params.len(), 1);
        assert_eq!(errors.len(), n - 1);
    }

    // ---- property tests ----

    fn scheme_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}"
    }

    fn challenge_strategy() -> impl Strategy<Value = Challenge> {
        let name = "[a-z0-9!#$%&'*+.^_`|~-]{1,10}";
        // Printable values: anything but controls (spaces, quotes, backslashes, commas,
        // '=' and non-ASCII all included).
        let value = prop_oneof!["\\PC{0,16}", "[ -~]{0,16}", "[\"\\\\, =a]{0,8}",];
        let params = prop::collection::vec((name, value), 0..6).prop_map(|ps| {
            let mut seen = HashSet::new();
            ps.into_iter()
                .filter(|(n, _)| seen.insert(n.clone()))
                .collect::<Vec<_>>()
        });
        let with_params = (scheme_strategy(), params).prop_map(|(scheme, params)| Challenge {
            scheme,
            token68: None,
            params,
        });
        let with_token68 =
            (scheme_strategy(), "[A-Za-z0-9._~+/-]{1,12}={0,2}").prop_map(|(scheme, token68)| {
                Challenge {
                    scheme,
                    token68: Some(token68),
                    params: Vec::new(),
                }
            });
        prop_oneof![3 => with_params, 1 => with_token68]
    }

    fn check_invariants(fields: &[String]) {
        let (parsed, errors) = parse_challenges_lenient(fields);
        let combined = fields.join(", ");
        for e in &errors {
            assert!(e.offset <= combined.len(), "{e:?}");
            assert!(combined.is_char_boundary(e.offset), "{e:?}");
        }
        for c in &parsed {
            assert!(!c.scheme.is_empty() && c.scheme.bytes().all(is_tchar));
            assert!(c.token68.is_none() || c.params.is_empty());
            let mut seen = HashSet::new();
            for (n, _) in &c.params {
                assert!(!n.is_empty() && n.bytes().all(is_tchar));
                assert_eq!(n, &n.to_ascii_lowercase());
                assert!(seen.insert(n), "duplicate {n}");
            }
        }
        match parse_challenges(fields) {
            Ok(strict) => {
                assert!(errors.is_empty());
                assert_eq!(strict, parsed);
            }
            Err(e) => assert_eq!(Some(&e), errors.first()),
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_strings(s in ".*") {
            check_invariants(&[s]);
        }

        #[test]
        fn never_panics_on_header_like_strings(
            fields in prop::collection::vec("[A-Za-z0-9 \t,=\"\\\\/+:;@'é\u{1}]{0,40}", 0..4)
        ) {
            check_invariants(&fields);
        }

        #[test]
        fn parse_format_round_trip(c in challenge_strategy()) {
            let formatted = format_challenge(&c);
            prop_assert_eq!(parse_challenges(&[&formatted]), Ok(vec![c]), "{}", formatted);
        }

        #[test]
        fn parse_format_round_trip_lists(
            list in prop::collection::vec(challenge_strategy(), 0..5),
            split in any::<bool>(),
        ) {
            // One field, or one field per challenge: same result.
            let fields = if split {
                list.iter().map(format_challenge).collect::<Vec<_>>()
            } else {
                vec![format_challenges(&list)]
            };
            prop_assert_eq!(parse_challenges(&fields), Ok(list));
        }
    }
}
