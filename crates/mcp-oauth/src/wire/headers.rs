//! Request metadata headers of the 2026-07-28 Streamable HTTP transport: `Mcp-Name`
//! value encoding and the `x-mcp-header` tool-parameter mirroring (`Mcp-Param-{Name}`).

use base64::Engine;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

/// How deep a tool's `inputSchema` is walked looking for `x-mcp-header` (serde_json
/// already stops parsing at 128 levels; this keeps the walk well inside the stack).
const MAX_SCHEMA_DEPTH: usize = 64;

/// A header value per "Value Encoding": as-is when it is plain visible ASCII (inner
/// spaces allowed), otherwise `=?base64?{base64 of the UTF-8}?=`. Values that look like
/// the sentinel themselves are encoded too.
pub fn encode_header_value(value: &str) -> HeaderValue {
    let visible = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let sentinel = value.starts_with("=?base64?") && value.ends_with("?=");
    let plain = visible && !padded && !sentinel;
    let text = if plain {
        value.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
        )
    };
    // Both forms are visible ASCII and spaces only, so this cannot fail; fall back to an
    // empty value rather than panicking.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Mcp-Name` source for methods that require it: `params.name` for `tools/call` and
/// `prompts/get`, `params.uri` for `resources/read`.
pub fn mcp_name<'a>(method: &str, params: &'a Value) -> Option<&'a str> {
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params.get(field).and_then(Value::as_str)
}

/// One `x-mcp-header` annotation of a tool: the header to send and where its value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// The header: `Mcp-Param-` and the annotation's name.
    pub name: HeaderName,
    /// The chain of `properties` keys from the schema root to the annotated property.
    pub path: Vec<String>,
}

/// Validates every `x-mcp-header` annotation of a tool definition. `Ok` holds the
/// headers to mirror (possibly none); `Err` says why the tool must be excluded.
pub fn tool_param_headers(tool: &Value) -> Result<Vec<ParamHeader>, String> {
    let Some(schema) = tool.get("inputSchema") else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    walk(schema, true, &mut Vec::new(), 0, &mut found)?;
    let mut seen: Vec<String> = Vec::new();
    for h in &found {
        let lower = h.name.as_str().to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(format!(
                "x-mcp-header names must be unique (case-insensitively); {:?} repeats",
                h.name.as_str().trim_start_matches("mcp-param-")
            ));
        }
        seen.push(lower);
    }
    Ok(found)
}

fn walk(
    node: &Value,
    reachable: bool,
    path: &mut Vec<String>,
    depth: usize,
    found: &mut Vec<ParamHeader>,
) -> Result<(), String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(
            "inputSchema is nested too deeply to check its x-mcp-header annotations".into(),
        );
    }
    match node {
        Value::Object(map) => {
            if let Some(annotation) = map.get("x-mcp-header") {
                found.push(check_annotation(map, annotation, reachable, path)?);
            }
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("x-mcp-header", _) => {}
                    ("properties", Value::Object(props)) => {
                        for (prop, schema) in props {
                            path.push(prop.clone());
                            let r = walk(schema, reachable, path, depth + 1, found);
                            path.pop();
                            r?;
                        }
                    }
                    _ => {
                        // Any other keyword (items, oneOf, $defs, if/then, ...) leaves the
                        // statically reachable part of the schema.
                        let mut detached = Vec::new();
                        walk(child, false, &mut detached, depth + 1, found)?;
                    }
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                walk(item, false, &mut Vec::new(), depth + 1, found)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_annotation(
    schema: &serde_json::Map<String, Value>,
    annotation: &Value,
    reachable: bool,
    path: &[String],
) -> Result<ParamHeader, String> {
    let Some(name) = annotation.as_str() else {
        return Err("an x-mcp-header value is not a string".into());
    };
    if !reachable || path.is_empty() {
        return Err(format!(
            "x-mcp-header {name:?} is not on a property reachable from the schema root \
             through `properties` only"
        ));
    }
    if name.is_empty() {
        return Err("an x-mcp-header value is empty".into());
    }
    if !name.bytes().all(is_tchar) {
        return Err(format!(
            "x-mcp-header {name:?} is not an HTTP field-name token"
        ));
    }
    // The spec allows integer, string and boolean. `number` is accepted as well: the
    // official conformance suite annotates `number` parameters and expects them
    // mirrored; rejecting them would drop tools that real servers publish.
    const PRIMITIVE: [&str; 4] = ["string", "integer", "boolean", "number"];
    let primitive = match schema.get("type") {
        Some(Value::String(t)) => PRIMITIVE.contains(&t.as_str()),
        Some(Value::Array(ts)) => {
            ts.iter().all(|t| {
                t.as_str()
                    .is_some_and(|t| t == "null" || PRIMITIVE.contains(&t))
            }) && ts
                .iter()
                .any(|t| t.as_str().is_some_and(|t| PRIMITIVE.contains(&t)))
        }
        _ => false,
    };
    if !primitive {
        return Err(format!(
            "x-mcp-header {name:?} is on a parameter that is not of a primitive type"
        ));
    }
    let header = HeaderName::from_bytes(format!("mcp-param-{name}").as_bytes())
        .map_err(|_| format!("x-mcp-header {name:?} does not make a valid header name"))?;
    Ok(ParamHeader {
        name: header,
        path: path.to_vec(),
    })
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The header value for one annotated parameter, or `None` when the arguments hold no
/// value there (absent or null) or a value that is not a primitive.
pub fn param_value(arguments: &Value, path: &[String]) -> Option<HeaderValue> {
    let mut v = arguments;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        Value::String(s) => Some(encode_header_value(s)),
        Value::Bool(b) => Some(HeaderValue::from_static(if *b { "true" } else { "false" })),
        Value::Number(n) => HeaderValue::from_str(&n.to_string()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn value_encoding_table() {
        for (input, expected) in [
            ("us-west1", "us-west1"),
            ("us west 1", "us west 1"),
            ("", ""),
            ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
            (" padded ", "=?base64?IHBhZGRlZCA=?="),
            ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
            ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
            ("\tindented", "=?base64?CWluZGVudGVk?="),
            (
                "file:///projects/myapp/config.json",
                "file:///projects/myapp/config.json",
            ),
        ] {
            assert_eq!(encode_header_value(input), expected, "{input:?}");
        }
    }

    #[test]
    fn mcp_name_sources() {
        let p = json!({"name": "get_weather", "uri": "file:///x"});
        assert_eq!(mcp_name("tools/call", &p), Some("get_weather"));
        assert_eq!(mcp_name("prompts/get", &p), Some("get_weather"));
        assert_eq!(mcp_name("resources/read", &p), Some("file:///x"));
        assert_eq!(mcp_name("tools/list", &p), None);
    }

    fn tool(props: Value) -> Value {
        json!({"name": "t", "inputSchema": {"type": "object", "properties": props}})
    }

    #[test]
    fn valid_annotations_are_collected() {
        let t = tool(json!({
            "region": {"type": "string", "x-mcp-header": "Region"},
            "query": {"type": "string"},
            "nested": {"type": "object", "properties": {
                "n": {"type": "integer", "x-mcp-header": "N"}
            }}
        }));
        let mut headers = tool_param_headers(&t).unwrap();
        headers.sort_by(|a, b| b.name.as_str().cmp(a.name.as_str()));
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].name, "mcp-param-region");
        assert_eq!(headers[0].path, vec!["region"]);
        assert_eq!(headers[1].name, "mcp-param-n");
        assert_eq!(headers[1].path, vec!["nested", "n"]);
        let args = json!({"region": "us-west1", "nested": {"n": 42}});
        assert_eq!(param_value(&args, &headers[0].path).unwrap(), "us-west1");
        assert_eq!(param_value(&args, &headers[1].path).unwrap(), "42");
        assert!(param_value(&json!({"region": null}), &headers[0].path).is_none());
        assert!(param_value(&json!({}), &headers[0].path).is_none());
        assert_eq!(
            param_value(&json!({"b": false}), &["b".to_string()]).unwrap(),
            "false"
        );
    }

    #[test]
    fn invalid_annotations_reject_the_tool() {
        let cases = [
            tool(json!({"v": {"type": "string", "x-mcp-header": ""}})),
            tool(json!({"v": {"type": "object", "x-mcp-header": "Data"}})),
            tool(json!({"v": {"type": "array", "items": {"type": "string"}, "x-mcp-header": "I"}})),
            tool(json!({"v": {"type": "null", "x-mcp-header": "Nil"}})),
            tool(json!({"a": {"type": "string", "x-mcp-header": "Region"},
                        "b": {"type": "string", "x-mcp-header": "Region"}})),
            tool(json!({"a": {"type": "string", "x-mcp-header": "MyField"},
                        "b": {"type": "string", "x-mcp-header": "myfield"}})),
            tool(json!({"v": {"type": "string", "x-mcp-header": "My Region"}})),
            tool(json!({"v": {"type": "string", "x-mcp-header": "Region:Primary"}})),
            tool(json!({"v": {"type": "string", "x-mcp-header": "Région"}})),
            tool(json!({"v": {"type": "string", "x-mcp-header": "Region\t1"}})),
            tool(json!({"v": {"type": "string", "x-mcp-header": 5}})),
            tool(json!({"v": {"type": "array", "items": {"type": "string", "x-mcp-header": "X"}}})),
            tool(json!({"v": {"oneOf": [{"type": "string", "x-mcp-header": "X"}]}})),
            json!({"name": "t", "inputSchema": {"$defs": {"a": {"type": "string", "x-mcp-header": "A"}}}}),
            json!({"name": "t", "inputSchema": {"type": "string", "x-mcp-header": "Root"}}),
        ];
        for (i, t) in cases.iter().enumerate() {
            assert!(
                tool_param_headers(t).is_err(),
                "case {i} should be rejected: {t}"
            );
        }
    }

    #[test]
    fn deep_schema_does_not_overflow() {
        let mut schema = json!({"type": "string"});
        for _ in 0..100 {
            schema = json!({"type": "object", "properties": {"a": schema}});
        }
        // Built directly, not parsed, so deeper than serde_json's parser would allow.
        let t = json!({"name": "t", "inputSchema": schema});
        assert!(tool_param_headers(&t).is_err());
    }
}
