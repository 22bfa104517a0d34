//! What the proxy reads of a JSON-RPC message, and the messages it writes itself.
//!
//! A message is relayed as the bytes it arrived as. To route it the proxy needs only a
//! few members: `id`, `method`, the presence of `result`/`error`, and for the request
//! metadata headers `params.name`, `params.uri`, `params.requestId` and
//! `params._meta["io.modelcontextprotocol/protocolVersion"]`. [`Envelope::parse`] reads
//! exactly those in one pass over the bytes (which also validates the whole message as
//! JSON) and skips everything else without building it; members of an unexpected type
//! are treated as absent, never as an error, so that unknown methods with their own
//! `params` shapes pass unchanged.

use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};
use std::fmt;

pub(crate) use mcp_oauth::wire::error_code::{
    HEADER_MISMATCH, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND,
    MISSING_CAPABILITY, PARSE_ERROR, REQUEST_TIMEOUT, UNSUPPORTED_VERSION,
};
pub(crate) use mcp_oauth::wire::{
    META_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL, META_SERVER_INFO, META_VERSION,
};

/// The kind of a JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Notification,
    Response,
}

/// The routing view of one message.
#[derive(Debug, Default, Clone)]
pub(crate) struct Envelope {
    /// `Some(Value::Null)` for `"id": null`, `None` when there is no `id` member.
    pub id: Option<Value>,
    pub method: Option<String>,
    pub has_result: bool,
    pub has_error: bool,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, when a string.
    pub version: Option<String>,
    /// `params.name`, when a string.
    pub name: Option<String>,
    /// `params.uri`, when a string.
    pub uri: Option<String>,
    /// `params.requestId` (of `notifications/cancelled`).
    pub request_id: Option<Value>,
}

/// Why a line could not be read as a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Not JSON (or not UTF-8): `-32700`.
    Parse(String),
    /// JSON, but not a JSON-RPC message: `-32600`, with the id when one could be read.
    Request(String, Option<Value>),
}

impl Envelope {
    /// Reads the routing members of one message (a JSON object).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Envelope, Invalid> {
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(Invalid::Parse(format!(
                "the message is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            )));
        }
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                Invalid::Request(format!("not a JSON-RPC message: {e}"), None)
            }
            _ => Invalid::Parse(format!("invalid JSON: {e}")),
        })?;
        if env.kind().is_none() {
            return Err(Invalid::Request(
                "not a JSON-RPC message: it has neither a method nor an id with a result or error"
                    .into(),
                env.id.filter(|id| id.is_string() || id.is_number()),
            ));
        }
        Ok(env)
    }

    /// Request, notification or response; `None` when it is none of them.
    pub(crate) fn kind(&self) -> Option<Kind> {
        match (&self.method, &self.id) {
            (Some(_), Some(id)) if !id.is_null() => Some(Kind::Request),
            (Some(_), None) => Some(Kind::Notification),
            (None, Some(_)) if self.has_result || self.has_error => Some(Kind::Response),
            (None, None) if self.has_error => Some(Kind::Response),
            _ => None,
        }
    }

    pub(crate) fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// Is this the response (result or error) to request `id`?
    pub(crate) fn answers(&self, id: &Value) -> bool {
        self.method.is_none()
            && (self.has_result || self.has_error)
            && self.id.as_ref().is_some_and(|v| v == id)
    }

    /// The value of the `Mcp-Name` header for this request, when the method has one.
    pub(crate) fn mcp_name(&self) -> Option<&str> {
        match self.method() {
            "tools/call" | "prompts/get" => self.name.as_deref(),
            "resources/read" => self.uri.as_deref(),
            _ => None,
        }
    }
}

/// The key of an id in maps of pending requests (its JSON text).
pub(crate) fn id_key(id: &Value) -> String {
    id.to_string()
}

/// The position of the first `needle` in `hay`, eight bytes at a time (an iterator's
/// `position` goes byte by byte: six times slower on a 100 KB message).
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut i = 0;
    for chunk in hay.chunks_exact(16) {
        let (a, b) = chunk.split_at(8);
        let a = u64::from_ne_bytes(a.try_into().unwrap_or_default()) ^ pattern;
        let b = u64::from_ne_bytes(b.try_into().unwrap_or_default()) ^ pattern;
        // A zero byte in `a` or `b` is a match (the classic "has zero byte" test).
        if ((a.wrapping_sub(LO) & !a) | (b.wrapping_sub(LO) & !b)) & HI != 0 {
            break;
        }
        i += 16;
    }
    hay[i..].iter().position(|&c| c == needle).map(|p| p + i)
}

/// One message per line: CR and LF can only be insignificant whitespace in valid JSON
/// (inside strings they are escaped), so they are replaced by spaces. Copies only when
/// there is something to replace.
pub(crate) fn one_line(bytes: Bytes) -> Bytes {
    // `contains` on bytes is a memchr.
    if !bytes.contains(&b'\n') && !bytes.contains(&b'\r') {
        return bytes;
    }
    let v: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect();
    Bytes::from(v)
}

/// A JSON-RPC error response.
pub(crate) fn error_response(
    id: Option<&Value>,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Bytes {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    let msg = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error});
    Bytes::from(msg.to_string())
}

/// A JSON-RPC error response carrying an error object the server produced.
pub(crate) fn error_response_with(id: Option<&Value>, error: Value) -> Bytes {
    let msg = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error});
    Bytes::from(msg.to_string())
}

/// A JSON-RPC result response.
pub(crate) fn result_response(id: &Value, result: Value) -> Bytes {
    Bytes::from(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
}

// -------------------------------------------------------------------------------------
// Deserialization: one pass, lenient about member types.
// -------------------------------------------------------------------------------------

impl<'de> serde::Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut env = Envelope::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => env.id = Some(map.next_value::<Value>()?),
                Key::Method => env.method = map.next_value::<MaybeStr>()?.0,
                Key::Result => {
                    map.next_value::<IgnoredAny>()?;
                    env.has_result = true;
                }
                Key::Error => {
                    map.next_value::<IgnoredAny>()?;
                    env.has_error = true;
                }
                Key::Params => {
                    let p = map.next_value::<ParamsView>()?;
                    env.version = p.version;
                    env.name = p.name;
                    env.uri = p.uri;
                    env.request_id = p.request_id;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(env)
    }
}

/// A map key: only the names the proxy looks at are told apart (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Id,
    Method,
    Result,
    Error,
    Params,
    Name,
    Uri,
    RequestId,
    Meta,
    Version,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "id" => Key::Id,
                    "method" => Key::Method,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    "params" => Key::Params,
                    "name" => Key::Name,
                    "uri" => Key::Uri,
                    "requestId" => Key::RequestId,
                    "_meta" => Key::Meta,
                    META_VERSION => Key::Version,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A string when the value is one; any other value is skipped and reads as `None`.
#[derive(Default)]
struct MaybeStr(Option<String>);

impl<'de> serde::Deserialize<'de> for MaybeStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MaybeStrVisitor)
    }
}

struct MaybeStrVisitor;

macro_rules! ignore_scalar {
    ($($name:ident: $t:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $t) -> Result<Self::Value, E> { Ok(Default::default()) })*
    };
}

impl<'de> Visitor<'de> for MaybeStrVisitor {
    type Value = MaybeStr;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeStr, E> {
        Ok(MaybeStr(Some(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<MaybeStr, E> {
        Ok(MaybeStr(Some(v)))
    }
    ignore_scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);
    fn visit_unit<E: de::Error>(self) -> Result<MaybeStr, E> {
        Ok(MaybeStr(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<MaybeStr, E> {
        Ok(MaybeStr(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeStr, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MaybeStr(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeStr, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(MaybeStr(None))
    }
}

/// The members of `params` the proxy reads.
#[derive(Default)]
struct ParamsView {
    version: Option<String>,
    name: Option<String>,
    uri: Option<String>,
    request_id: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for ParamsView {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParamsVisitor)
    }
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = ParamsView;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    ignore_scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: de::Error>(self) -> Result<ParamsView, E> {
        Ok(ParamsView::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParamsView, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ParamsView::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamsView, A::Error> {
        let mut p = ParamsView::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Name => p.name = map.next_value::<MaybeStr>()?.0,
                Key::Uri => p.uri = map.next_value::<MaybeStr>()?.0,
                Key::RequestId => p.request_id = Some(map.next_value::<Value>()?),
                Key::Meta => p.version = map.next_value::<MetaView>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(p)
    }
}

/// `_meta`: only the protocol version is read.
#[derive(Default)]
struct MetaView(Option<String>);

impl<'de> serde::Deserialize<'de> for MetaView {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MetaVisitor)
    }
}

struct MetaVisitor;

impl<'de> Visitor<'de> for MetaVisitor {
    type Value = MetaView;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    ignore_scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: de::Error>(self) -> Result<MetaView, E> {
        Ok(MetaView(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MetaView, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MetaView(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetaView, A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<Key>()? {
            if key == Key::Version {
                version = map.next_value::<MaybeStr>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(MetaView(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Envelope, Invalid> {
        Envelope::parse(s.as_bytes())
    }

    #[test]
    fn kinds() {
        let e = parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(e.kind(), Some(Kind::Request));
        assert_eq!(e.id, Some(json!(1)));
        let e = parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(e.kind(), Some(Kind::Notification));
        let e = parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(e.kind(), Some(Kind::Response));
        assert!(e.answers(&json!("a")));
        assert!(!e.answers(&json!(1)));
        let e = parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}"#).unwrap();
        assert_eq!(e.kind(), Some(Kind::Response));
        let e = parse(r#"{"jsonrpc":"2.0","result":null,"id":7}"#).unwrap();
        assert_eq!(e.kind(), Some(Kind::Response));
    }

    #[test]
    fn params_members_of_any_type_are_tolerated() {
        let e = parse(
            r#"{"id":2,"method":"x/custom","params":{"name":{"deep":[1,2]},"uri":5,"_meta":"no","extra":[{}]}}"#,
        )
        .unwrap();
        assert_eq!(e.kind(), Some(Kind::Request));
        assert_eq!(e.name, None);
        assert_eq!(e.uri, None);
        assert_eq!(e.version, None);
        let e = parse(r#"{"id":2,"method":"x","params":[1,2,3]}"#).unwrap();
        assert_eq!(e.method(), "x");
        let e = parse(r#"{"id":2,"method":"x","params":"str"}"#).unwrap();
        assert_eq!(e.method(), "x");
    }

    #[test]
    fn routing_members() {
        let e = parse(
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{"name":"inner"},"name":"get_weather","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","other":{"a":1}}}}"#,
        )
        .unwrap();
        assert_eq!(e.mcp_name(), Some("get_weather"));
        assert_eq!(e.version.as_deref(), Some("2026-07-28"));
        let e =
            parse(r#"{"id":4,"method":"resources/read","params":{"uri":"file:///x"}}"#).unwrap();
        assert_eq!(e.mcp_name(), Some("file:///x"));
        let e =
            parse(r#"{"method":"notifications/cancelled","params":{"requestId":"r-1"}}"#).unwrap();
        assert_eq!(e.request_id, Some(json!("r-1")));
    }

    #[test]
    fn invalid_messages() {
        assert!(matches!(parse("not json"), Err(Invalid::Parse(_))));
        assert!(matches!(
            parse(r#"{"id":1,"method":"x""#),
            Err(Invalid::Parse(_))
        ));
        assert!(matches!(parse("42"), Err(Invalid::Request(..))));
        assert!(matches!(parse(r#""str""#), Err(Invalid::Request(..))));
        assert!(matches!(parse(r#"{"id":1}"#), Err(Invalid::Request(..))));
        assert!(matches!(
            parse(r#"{"method":5,"id":1}"#),
            Err(Invalid::Request(..))
        ));
        assert!(matches!(
            Envelope::parse(b"{\"id\":1,\"method\":\"\xff\"}"),
            Err(Invalid::Parse(_))
        ));
    }

    #[test]
    fn find_byte_matches_position() {
        for len in 0..70 {
            for at in 0..len {
                let mut v = vec![b'a'; len];
                v[at] = b'\n';
                assert_eq!(find_byte(&v, b'\n'), Some(at), "len {len} at {at}");
                v[len - 1] = b'\n';
                assert_eq!(find_byte(&v, b'\n'), Some(at));
            }
            assert_eq!(find_byte(&vec![b'a'; len], b'\n'), None);
        }
        // Bytes next to the needle's value must not match (no false positives).
        let v: Vec<u8> = (0..=255u8).filter(|&b| b != b'\n').collect();
        assert_eq!(find_byte(&v, b'\n'), None);
        let v = [0x8a_u8; 64];
        assert_eq!(find_byte(&v, b'\n'), None);
    }

    #[test]
    fn one_line_replaces_only_line_breaks() {
        let b = one_line(Bytes::from_static(b"{\"a\":\r\n 1}"));
        assert_eq!(&b[..], b"{\"a\":   1}");
        let src = Bytes::from_static(b"{\"a\":\"x\\ny\"}");
        assert_eq!(one_line(src.clone()), src);
    }
}
