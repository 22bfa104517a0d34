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
    /// The protection space (RFC 9110 §11.5).
    pub realm: Option<String>,
    /// The error code: `invalid_token`, `insufficient_scope`, `invalid_request`, …
    pub error: Option<String>,
    /// The server's words for the error, for people.
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
mod tests;
