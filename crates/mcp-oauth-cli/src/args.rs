//! Checks of argument values, run by clap while it parses the command line: a bad value
//! is a usage error (exit 2, with `--help` named), said in the user's words, before any
//! network traffic, instead of an HTTP library's words from deep inside a request.
//!
//! `#[arg(value_parser = Check(server_url))]`: the check's message is the whole error
//! line (clap's own "invalid value '…' for '…'" would say the value twice).

use clap::error::ErrorKind;

/// A check of one argument value; its `Err` is the message.
#[derive(Clone, Copy)]
pub struct Check<T>(pub fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Check<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let Some(text) = value.to_str() else {
            return Err(clap::Error::new(ErrorKind::InvalidUtf8).with_cmd(cmd));
        };
        (self.0)(text).map_err(|m| {
            clap::Error::raw(ErrorKind::ValueValidation, format!("{m}\n")).with_cmd(cmd)
        })
    }
}

/// An MCP server: its URL ([`server_url`]), or the name the configuration file gives it
/// (letters, digits, `-`, `_`, `.`), which the command looks up once it knows which file
/// to read ([`crate::settings::server_url_of`]).
pub fn server(value: &str) -> Result<String, String> {
    if crate::config_file::is_name(value) {
        return Ok(value.to_string());
    }
    server_url(value)
}

/// An MCP server URL: absolute, `https` or `http`, with a host. Returned as typed
/// (requests go to it; the store keys its credential by its canonical form).
pub fn server_url(value: &str) -> Result<String, String> {
    const RULE: &str = "an MCP server URL starts with https:// (or http:// for loopback)";
    let parsed = match url::Url::parse(value) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            // `example.com/mcp`: the scheme was left out.
            let guess = format!("https://{value}");
            let hint = match url::Url::parse(&guess) {
                Ok(u)
                    if u.host_str()
                        .is_some_and(|h| h.contains('.') || h == "localhost") =>
                {
                    format!(" (did you mean {guess}?)")
                }
                _ => String::new(),
            };
            return Err(format!("{value} is not a URL: {RULE}{hint}"));
        }
        Err(e) => return Err(format!("{value} is not a URL ({e}): {RULE}")),
    };
    match parsed.scheme() {
        "https" | "http" => {}
        other => {
            return Err(format!(
                "{value} is not an MCP server URL: its scheme is {other}, and {RULE}"
            ));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{value} has no host: {RULE}"));
    }
    Ok(value.to_string())
}

/// A profile name: not empty. An empty one would name a credential of its own that
/// `status` cannot tell from the default one (and the vault refuses to store).
pub fn profile(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err(
            "--profile (or MCP_OAUTH_PROFILE) is empty: give the profile a name, or leave it out \
             for the default credential"
                .into(),
        );
    }
    Ok(value.to_string())
}

/// A JSON object given inline or as `@FILE` (mcp-remote's convention for its JSON flags).
fn inline_or_file(
    flag: &str,
    value: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match value.strip_prefix('@') {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{flag} {value}: cannot read {path}: {e}"))?;
            // The file may hold a secret: its content is never quoted.
            match serde_json::from_str(&text) {
                Ok(serde_json::Value::Object(map)) => Ok(map),
                _ => Err(format!(
                    "{flag} {value}: the file {path} is not a JSON object"
                )),
            }
        }
        None => match serde_json::from_str(value) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            _ => Err(format!(
                "{flag}: the value is not a JSON object (nor @FILE)"
            )),
        },
    }
}

/// mcp-remote's `--static-oauth-client-info '{"client_id": …}'` (or `@FILE`): the
/// client id, as `--client-id`. A client secret is not taken from there (it would sit in
/// argv, which every user of the machine can read, or in a file of mcp-remote's format):
/// the error names the flags that take it from where secrets belong.
pub fn static_client_info(value: &str) -> Result<String, String> {
    const FLAG: &str = "--static-oauth-client-info";
    let info = inline_or_file(FLAG, value)?;
    let id = match info.get("client_id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(format!("{FLAG} has no client_id: use --client-id ID")),
    };
    if info.contains_key("client_secret") {
        return Err(format!(
            "{FLAG} holds a client_secret, which mcp-oauth takes only from an environment \
             variable or a file of its own (never the command line, which other users can \
             read): use --client-id {id} --client-secret-env VAR (VAR holding the secret), or \
             --client-secret-file FILE; or client_id and client_secret_env in the \
             configuration file"
        ));
    }
    Ok(id)
}

/// mcp-remote's `--static-oauth-client-metadata`: no equivalent (mcp-oauth registers with
/// metadata of its own); the error names what to use for what it is used for.
pub fn static_client_metadata(value: &str) -> Result<String, String> {
    const FLAG: &str = "--static-oauth-client-metadata";
    let metadata = inline_or_file(FLAG, value)?;
    let scope = match metadata.get("scope").and_then(|s| s.as_str()) {
        Some(s) => format!("--scope '{s}'"),
        None => "--scope 'SCOPES'".into(),
    };
    Err(format!(
        "{FLAG} is not supported: mcp-oauth registers its client with metadata of its own. \
         For the scopes to ask for use {scope}; for a client registered beforehand, --client-id \
         (with --client-secret-env when it has a secret)"
    ))
}

/// mcp-remote's positional callback port (`mcp-remote URL 9696`).
pub fn callback_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "{value} is not a callback port: after the URL, a port number (1-65535) for the \
             loopback redirect URI, as mcp-remote takes it (the same as --redirect-port)"
        )),
    }
}

/// mcp-remote's `--ignore-tool`: no equivalent; the error says what to do instead.
pub fn ignore_tool(value: &str) -> Result<String, String> {
    Err(format!(
        "--ignore-tool {value}: mcp-oauth proxy relays the server's tools as the server lists \
         them and has no tool filter; turn the tools off in the MCP host instead (most hosts \
         can disable a server's tools one by one)"
    ))
}

/// `call --args`: the tool's arguments, a JSON object given inline, as `@FILE` (curl's
/// convention) or as `-` (standard input). JSON text never starts with `@` or is `-`.
pub fn tool_args(value: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if value == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
            .map_err(|e| format!("--args -: cannot read standard input: {e}"))?;
        if text.trim().is_empty() {
            return Err(
                "--args -: standard input was empty; pipe a JSON object into the command".into(),
            );
        }
        return json_object(&text, "--args - (standard input)");
    }
    if let Some(path) = value.strip_prefix('@') {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("--args {value}: there is no file {path}"),
            _ => format!("--args {value}: cannot read {path}: {e}"),
        })?;
        return json_object(&text, &format!("--args {value} (the file {path})"));
    }
    json_object(value, &format!("--args {value}"))
}

/// `text` as a JSON object; `what` names it in the error.
fn json_object(
    text: &str,
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    const EXAMPLE: &str = r#"--args '{"text":"hi"}'"#;
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "{what} is JSON but not an object ({}): a tool's arguments are a JSON object, e.g. {EXAMPLE}",
            kind(&other)
        )),
        Err(e) => Err(format!(
            "{what} is not JSON ({e}): a tool's arguments are a JSON object, e.g. {EXAMPLE}"
        )),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            server_url("https://h.example/mcp").as_deref(),
            Ok("https://h.example/mcp")
        );
        assert!(server_url("http://127.0.0.1:9/mcp").is_ok());
        assert_eq!(
            server_url("notaurl").unwrap_err(),
            "notaurl is not a URL: an MCP server URL starts with https:// (or http:// for loopback)"
        );
        assert!(
            server_url("example.com/mcp")
                .unwrap_err()
                .ends_with("(did you mean https://example.com/mcp?)")
        );
        assert!(
            server_url("ftp://h.example/x")
                .unwrap_err()
                .contains("scheme is ftp")
        );
        assert!(server_url("https://").is_err());
    }
}
