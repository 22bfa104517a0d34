//! [`ScopePolicy`]: which scopes an MCP operation needs, per JSON-RPC method and per
//! tool (prompt, resource) name, with scope hierarchies.

use crate::config::is_scope_token;
use std::collections::{HashMap, HashSet};

/// The scopes each MCP operation needs, on top of the resource's
/// [`required_scopes`](crate::ProtectedResourceBuilder::required_scopes).
///
/// An operation needs the union of: the resource's required scopes, the scopes of its
/// JSON-RPC method, and the scopes of its target (`params.name` of `tools/call` and
/// `prompts/get`, `params.uri` of `resources/read`). A token that lacks any of them gets
/// `403 insufficient_scope` naming *all* of them, so one re-authorization suffices.
///
/// ```
/// use mcp_oauth_server::ScopePolicy;
///
/// let policy = ScopePolicy::new()
///     .method("tools/call", ["mcp:tools"])
///     .tool("delete_file", ["files:write"])
///     .implies("files:write", ["files:read"])
///     .implies("admin", ["files:write", "mcp:tools"]);
/// assert!(policy.satisfied_by(&["admin".to_string()], &["files:read".to_string()]));
/// ```
///
/// Scopes are checked when added: the methods panic on a string that is not an RFC 6749
/// scope token (empty, spaces, quotes, backslashes, non-ASCII), as these come from code,
/// not from requests.
#[derive(Debug, Clone, Default)]
pub struct ScopePolicy {
    methods: HashMap<String, Vec<String>>,
    named: HashMap<(String, String), Vec<String>>,
    /// narrower scope -> every scope that implies it (transitively).
    implied_by: HashMap<String, HashSet<String>>,
    /// broader -> narrower, as declared.
    implies: HashMap<String, HashSet<String>>,
}

impl ScopePolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scopes needed by every request with this JSON-RPC `method` (e.g. `tools/call`).
    ///
    /// # Panics
    /// On an invalid scope string.
    pub fn method<I, S>(mut self, method: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        add(self.methods.entry(method.into()).or_default(), scopes);
        self
    }

    /// Scopes needed to call the tool `name` (`tools/call` with `params.name`).
    ///
    /// # Panics
    /// On an invalid scope string.
    pub fn tool<I, S>(self, name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named("tools/call", name, scopes)
    }

    /// Scopes needed to get the prompt `name` (`prompts/get` with `params.name`).
    ///
    /// # Panics
    /// On an invalid scope string.
    pub fn prompt<I, S>(self, name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named("prompts/get", name, scopes)
    }

    /// Scopes needed to read the resource `uri` (`resources/read` with `params.uri`).
    ///
    /// # Panics
    /// On an invalid scope string.
    pub fn resource<I, S>(self, uri: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.named("resources/read", uri, scopes)
    }

    /// Scopes needed by `method` when its target (`params.name`, or `params.uri` for
    /// `resources/read`) is `name`.
    ///
    /// # Panics
    /// On an invalid scope string.
    pub fn named<I, S>(
        mut self,
        method: impl Into<String>,
        name: impl Into<String>,
        scopes: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        add(
            self.named.entry((method.into(), name.into())).or_default(),
            scopes,
        );
        self
    }

    /// Declares that `broader` implies each of `narrower` (transitively): a token with
    /// `broader` satisfies a requirement for any of them. The MCP spec asks servers to
    /// account for such hierarchies.
    ///
    /// # Panics
    /// On an invalid scope string.
    pub fn implies<I, S>(mut self, broader: impl Into<String>, narrower: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let broader = broader.into();
        assert_scope(&broader);
        let entry = self.implies.entry(broader).or_default();
        for n in narrower {
            let n = n.into();
            assert_scope(&n);
            entry.insert(n);
        }
        self.recompute_closure();
        self
    }

    /// Whether the policy depends on the request's method or target, so that the layer
    /// has to look at the JSON-RPC body. With no method or target rules the body is never
    /// touched.
    pub fn needs_request_info(&self) -> bool {
        !(self.methods.is_empty() && self.named.is_empty())
    }

    /// Adds the scopes `method` (and its target `name`) needs to `out`, without duplicates.
    pub fn required_for(&self, method: &str, name: Option<&str>, out: &mut Vec<String>) {
        let mut push = |scopes: &Vec<String>| {
            for s in scopes {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        };
        if let Some(s) = self.methods.get(method) {
            push(s);
        }
        if let Some(name) = name
            && let Some(s) = self.named.get(&(method.to_owned(), name.to_owned()))
        {
            push(s);
        }
    }

    /// Whether `granted` covers every scope in `required`, directly or through
    /// [`implies`](Self::implies).
    pub fn satisfied_by(&self, granted: &[String], required: &[String]) -> bool {
        required.iter().all(|r| {
            granted.iter().any(|g| g == r)
                || self
                    .implied_by
                    .get(r)
                    .is_some_and(|b| granted.iter().any(|g| b.contains(g)))
        })
    }

    fn recompute_closure(&mut self) {
        let mut implied_by: HashMap<String, HashSet<String>> = HashMap::new();
        for broader in self.implies.keys() {
            // Everything reachable from `broader`.
            let mut stack: Vec<&String> = vec![broader];
            let mut seen: HashSet<&String> = HashSet::new();
            while let Some(s) = stack.pop() {
                for n in self.implies.get(s).into_iter().flatten() {
                    if n != broader && seen.insert(n) {
                        stack.push(n);
                    }
                }
            }
            for n in seen {
                implied_by
                    .entry(n.clone())
                    .or_default()
                    .insert(broader.clone());
            }
        }
        self.implied_by = implied_by;
    }
}

fn add<I, S>(into: &mut Vec<String>, scopes: I)
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    for s in scopes {
        let s = s.into();
        assert_scope(&s);
        if !into.contains(&s) {
            into.push(s);
        }
    }
}

fn assert_scope(s: &str) {
    assert!(
        is_scope_token(s),
        "invalid scope {s:?}: a scope is 1*( %x21 / %x23-5B / %x5D-7E ) (RFC 6749 §3.3)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn union_of_method_and_target() {
        let p = ScopePolicy::new()
            .method("tools/call", ["mcp:tools"])
            .tool("rm", ["files:write", "mcp:tools"])
            .prompt("p", ["prompts"])
            .resource("file:///x", ["files:read"]);
        assert!(p.needs_request_info());
        let mut out = v(&["mcp:read"]);
        p.required_for("tools/call", Some("rm"), &mut out);
        assert_eq!(out, v(&["mcp:read", "mcp:tools", "files:write"]));
        let mut out = vec![];
        p.required_for("tools/call", Some("echo"), &mut out);
        assert_eq!(out, v(&["mcp:tools"]));
        let mut out = vec![];
        p.required_for("prompts/get", Some("p"), &mut out);
        p.required_for("resources/read", Some("file:///x"), &mut out);
        p.required_for("tools/list", None, &mut out);
        assert_eq!(out, v(&["prompts", "files:read"]));
        assert!(!ScopePolicy::new().implies("a", ["b"]).needs_request_info());
    }

    #[test]
    fn hierarchy_is_transitive() {
        let p = ScopePolicy::new()
            .implies("admin", ["write"])
            .implies("write", ["read"])
            .implies("read", ["admin"]); // a cycle does not loop
        assert!(p.satisfied_by(&v(&["admin"]), &v(&["read", "write"])));
        assert!(p.satisfied_by(&v(&["write"]), &v(&["read"])));
        assert!(p.satisfied_by(&v(&["read"]), &v(&["write"])));
        assert!(!p.satisfied_by(&v(&["other"]), &v(&["read"])));
        assert!(p.satisfied_by(&v(&[]), &v(&[])));
        let p = ScopePolicy::new().implies("write", ["read"]);
        assert!(!p.satisfied_by(&v(&["read"]), &v(&["write"])));
        assert!(p.satisfied_by(&v(&["x", "write"]), &v(&["read", "x"])));
    }

    #[test]
    #[should_panic(expected = "invalid scope")]
    fn invalid_scope_panics() {
        let _ = ScopePolicy::new().tool("t", ["has space"]);
    }
}
