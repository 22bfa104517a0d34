//! Extra HTTP headers for MCP requests: `--header 'Name: value'`, `--header-file`, and the
//! configuration file's `headers` table. Values may name environment variables
//! (`${VAR}`), so that secrets stay out of argv and out of the configuration file.

use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeMap;

/// Reads the process environment (the tests pass their own).
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// "Name: value", with `${VAR}` in the value replaced by `env(VAR)`.
pub fn parse_header(
    spec: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let Some((name, value)) = spec.split_once(':') else {
        anyhow::bail!("expected \"Name: value\"");
    };
    header(name, value, env)
}

/// One header from its name and (unexpanded) value.
pub fn header(
    name: &str,
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| anyhow::anyhow!("{:?} is not a valid header name", name.trim()))?;
    let value = expand_env(value.trim(), env)?;
    let mut v = HeaderValue::from_str(&value)
        .map_err(|_| anyhow::anyhow!("the value of {name} is not a valid header value"))?;
    // Redacted in logs and Debug output: credentials, and anything that looks like one.
    let lower = name.as_str();
    if lower == "authorization"
        || lower == "cookie"
        || lower.contains("key")
        || lower.contains("token")
        || lower.contains("secret")
    {
        v.set_sensitive(true);
    }
    Ok((name, v))
}

/// The configuration file's `headers` table as a header map; errors name the key.
pub fn from_table(
    table: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in table {
        let (n, v) = header(name, value, env)
            .map_err(|e| anyhow::anyhow!("headers.{name:?} in the configuration file: {e}"))?;
        map.insert(n, v);
    }
    Ok(map)
}

fn expand_env(value: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            anyhow::bail!("unterminated ${{ in the header value");
        };
        let var = &after[..end];
        let val =
            env(var).ok_or_else(|| anyhow::anyhow!("the environment variable {var} is not set"))?;
        out.push_str(&val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &str) -> Option<String> {
        match v {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn headers_with_environment_variables() {
        let (n, v) = parse_header("X-Api-Key: ${TOKEN}", &env).unwrap();
        assert_eq!(n, "x-api-key");
        assert_eq!(v, "s3cret");
        assert!(v.is_sensitive());
        let (_, v) = parse_header("Authorization:Bearer ${TOKEN}", &env).unwrap();
        assert_eq!(v, "Bearer s3cret");
        let (_, v) = parse_header("X-Plain:  a:b ${EMPTY}c ", &env).unwrap();
        assert_eq!(v, "a:b c");
        assert!(!v.is_sensitive());
        assert!(parse_header("no colon", &env).is_err());
        assert!(parse_header("Bad Name: x", &env).is_err());
        assert!(parse_header("X: ${MISSING}", &env).is_err());
        assert!(parse_header("X: ${TOKEN", &env).is_err());
        assert!(parse_header("X: a\u{7}b", &env).is_err());
    }

    #[test]
    fn a_configuration_table_becomes_a_header_map_and_errors_name_the_key() {
        let table = BTreeMap::from([
            ("X-Tenant".to_string(), "acme".to_string()),
            ("X-Client-Secret".to_string(), "${TOKEN}".to_string()),
        ]);
        let map = from_table(&table, &env).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["x-tenant"], "acme");
        assert_eq!(map["x-client-secret"], "s3cret");
        assert!(map["x-client-secret"].is_sensitive());

        let bad = BTreeMap::from([("X-Api-Key".to_string(), "${NOPE}".to_string())]);
        let e = from_table(&bad, &env).unwrap_err().to_string();
        assert!(
            e.contains("headers.\"X-Api-Key\"") && e.contains("NOPE"),
            "{e}"
        );
        let bad = BTreeMap::from([("Bad Name".to_string(), "x".to_string())]);
        let e = from_table(&bad, &env).unwrap_err().to_string();
        assert!(e.contains("not a valid header name"), "{e}");
    }
}
