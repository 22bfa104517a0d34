//! Turning events into text: [`Narrator`] for the narrated run (numbered steps, printed
//! as the events arrive) and [`ServeLog`] for `--serve` (one line per request).

use crate::events::{
    BrowserEvent, ClientEvent, Detail, DiscoveryStep, Event, HttpEvent, McpDetail, Side,
};
use crate::{DemoOptions, DemoServers};
use mcp_oauth::discovery::prm::PrmSource;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

/// Bold step titles: only when stdout is a terminal and `NO_COLOR` is unset.
pub fn style_for_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
        && io::stdout().is_terminal()
}

fn bold(style: bool, s: &str) -> String {
    if style {
        format!("\x1b[1m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// The narrated run.
pub struct Narrator {
    style: bool,
    step: u32,
    mcp_url: String,
    mcp_origin: String,
    issuer: String,
    prm_url: String,
    prm_summary: String,
    as_summary: String,
    /// A JWKS fetch by the MCP server, shown with the request it was for.
    pending_jwks: Option<String>,
    /// The PRM (or AS metadata) step is open: discovery trace lines go under it.
    discovery_open: bool,
    /// An MCP request carried a token already.
    token_used: bool,
}

impl Narrator {
    pub fn new(servers: &DemoServers, style: bool) -> Self {
        let meta = servers.resource.metadata();
        let list = |k: &str| {
            meta[k]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let prm_summary = format!(
            "resource \"{}\", authorization_servers {}, scopes_supported {}",
            meta["resource"].as_str().unwrap_or_default(),
            json_list(&list("authorization_servers")),
            json_list(&list("scopes_supported")),
        );
        let m = servers.auth.metadata();
        let as_summary = format!(
            "issuer \"{}\", code_challenge_methods_supported {}, \
             authorization_response_iss_parameter_supported {}, registration_endpoint {}, \
             scopes_supported {}",
            m["issuer"].as_str().unwrap_or_default(),
            m["code_challenge_methods_supported"],
            m["authorization_response_iss_parameter_supported"],
            m["registration_endpoint"].as_str().unwrap_or_default(),
            m["scopes_supported"],
        );
        Self {
            style,
            step: 0,
            as_summary,
            mcp_url: servers.mcp_url.clone(),
            mcp_origin: servers.mcp_origin.clone(),
            issuer: servers.issuer().to_owned(),
            prm_url: servers.prm_url().to_owned(),
            prm_summary,
            pending_jwks: None,
            discovery_open: false,
            token_used: false,
        }
    }

    pub fn header(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{}",
            bold(
                self.style,
                "mcp-oauth demo: OAuth for an MCP server mounted at /mcp, end to end, on loopback"
            )
        )?;
        writeln!(out)?;
        writeln!(out, "  MCP server            {}", self.mcp_url)?;
        writeln!(
            out,
            "                        metadata only at {} (the root is 404)",
            self.prm_url
        )?;
        writeln!(
            out,
            "  authorization server  {}  DEVELOPMENT ONLY: in memory, approves every request",
            self.issuer
        )?;
        writeln!(
            out,
            "  client                the mcp-oauth library {}: in-memory store, in-process browser",
            env!("CARGO_PKG_VERSION")
        )?;
        Ok(())
    }

    fn title(&mut self, out: &mut dyn Write, title: &str) -> io::Result<()> {
        self.step += 1;
        self.discovery_open = false;
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            bold(self.style, &format!("{:>2}. {title}", self.step))
        )
    }

    /// A URL relative to the server it belongs to, for brevity.
    fn short<'a>(&self, url: &'a str) -> &'a str {
        url.strip_prefix(self.mcp_origin.as_str())
            .or_else(|| url.strip_prefix(self.issuer.as_str()))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(url)
    }

    pub fn event(&mut self, out: &mut dyn Write, ev: &Event) -> io::Result<()> {
        match ev {
            Event::Http(h) => self.http(out, h),
            Event::Discovery(d) => self.discovery(out, d),
            Event::Browser(b) => self.browser(out, b),
            Event::Client(c) => self.client(out, c),
        }
    }

    fn http(&mut self, out: &mut dyn Write, h: &HttpEvent) -> io::Result<()> {
        let origin = match h.side {
            Side::Mcp => &self.mcp_origin,
            Side::Auth => &self.issuer,
        };
        let target = format!("{origin}{}", h.path);
        match (&h.side, &h.detail) {
            (Side::Mcp, Detail::Mcp(_)) if h.path == self.prm_path() => {
                self.title(out, "Protected resource metadata (RFC 9728)")?;
                writeln!(out, "    client → GET {target} → {}", h.status)?;
                if h.status == 200 {
                    writeln!(out, "    {}", self.prm_summary)?;
                }
                self.discovery_open = true;
            }
            (Side::Mcp, Detail::Mcp(m)) => self.mcp_request(out, h, m)?,
            (Side::Auth, Detail::AsMetadata) => {
                self.title(out, "Authorization server metadata (RFC 8414)")?;
                writeln!(out, "    client → GET {target} → {}", h.status)?;
                writeln!(out, "    {}", self.as_summary)?;
                self.discovery_open = true;
            }
            (Side::Auth, Detail::Jwks { kids }) => {
                self.pending_jwks = Some(format!(
                    "GET {target} → {}, kid {}",
                    h.status,
                    kids.join(", ")
                ));
            }
            (Side::Auth, Detail::Registered(r)) => {
                self.title(out, "Dynamic client registration (RFC 7591)")?;
                writeln!(out, "    client → POST {target} → {}", h.status)?;
                writeln!(
                    out,
                    "    client_id {}, {} ({}), grant_types {}",
                    r.client_id,
                    r.client_name
                        .as_deref()
                        .map_or("unnamed".into(), |n| format!("\"{n}\"")),
                    if r.token_endpoint_auth_method == "none" {
                        "a public client: token_endpoint_auth_method none".to_owned()
                    } else {
                        format!(
                            "token_endpoint_auth_method {}",
                            r.token_endpoint_auth_method
                        )
                    },
                    json_list(&r.grant_types),
                )?;
                writeln!(
                    out,
                    "    redirect_uris {} (the client's loopback listener)",
                    json_list(&r.redirect_uris)
                )?;
            }
            (Side::Auth, Detail::Authorized(a)) => {
                writeln!(
                    out,
                    "    authorization server → {} approved for {:?} without asking (development server): \
                     scope \"{}\", resource {}",
                    h.status, a.subject, a.scope, a.resource
                )?;
                writeln!(out, "    Location: {}", a.location)?;
            }
            (Side::Auth, Detail::Token(t)) => {
                self.title(
                    out,
                    if t.grant_type == "authorization_code" {
                        "Token request (authorization_code with the PKCE code_verifier and the resource)"
                    } else {
                        "Token refresh"
                    },
                )?;
                writeln!(out, "    client → POST {target} → {}", h.status)?;
                writeln!(
                    out,
                    "    access token   {}  JWT {} (kid {}), aud \"{}\", scope \"{}\", expires in {} s",
                    t.access_token, t.alg, t.kid, t.audience, t.scope, t.expires_in
                )?;
                writeln!(
                    out,
                    "    refresh token  {}",
                    t.refresh_token.as_deref().unwrap_or("none")
                )?;
            }
            (
                _,
                Detail::OAuthError {
                    error, description, ..
                },
            ) => {
                writeln!(
                    out,
                    "    {} {target} → {} {error}: {description}",
                    h.method, h.status
                )?;
            }
            _ => {
                writeln!(
                    out,
                    "    {} {target}{} → {}",
                    h.method,
                    query_part(&h.query),
                    h.status
                )?;
            }
        }
        Ok(())
    }

    fn prm_path(&self) -> String {
        self.prm_url
            .strip_prefix(self.mcp_origin.as_str())
            .unwrap_or(&self.prm_url)
            .to_owned()
    }

    fn mcp_request(&mut self, out: &mut dyn Write, h: &HttpEvent, m: &McpDetail) -> io::Result<()> {
        let rpc = if m.rpc.is_empty() {
            String::new()
        } else {
            format!(" {}", m.rpc.join(", "))
        };
        let target = format!("{}{}", self.mcp_origin, h.path);
        if h.status == 401 && m.credentials.is_none() {
            self.title(out, "MCP request without a token")?;
            writeln!(
                out,
                "    client → {} {target}{rpc} (no Authorization header)",
                h.method
            )?;
            writeln!(out, "    MCP server → 401 Unauthorized")?;
            for w in &m.www_authenticate {
                writeln!(out, "    WWW-Authenticate: {w}")?;
            }
            writeln!(
                out,
                "    No error=\"invalid_token\": no token was presented (RFC 6750 §3.1). \
                 resource_metadata names the metadata document."
            )?;
            return Ok(());
        }
        let notification =
            m.rpc.iter().all(|r| r.starts_with("notifications/")) && !m.rpc.is_empty();
        let first_with_token = m.credentials.is_some() && !self.token_used;
        self.token_used |= m.credentials.is_some();
        if notification || h.method == "DELETE" {
            let what = if h.method == "DELETE" {
                " (ends the session)".to_owned()
            } else {
                rpc.clone()
            };
            writeln!(
                out,
                "    client → {} {target}{what} → {}",
                h.method, h.status
            )?;
            return Ok(());
        }
        let title = if first_with_token {
            format!("MCP request with the token:{rpc}")
        } else if rpc.is_empty() {
            format!("{} {}", h.method, h.path)
        } else {
            rpc.trim().to_owned()
        };
        self.title(out, &title)?;
        let creds = m.credentials.as_deref().map_or_else(
            || " (no Authorization header)".to_owned(),
            |c| format!(" (Authorization: {c})"),
        );
        writeln!(
            out,
            "    client → {} {target}{rpc}{creds} → {}",
            h.method, h.status
        )?;
        if let Some(jwks) = self.pending_jwks.take() {
            writeln!(
                out,
                "    the MCP server fetched the authorization server's keys ({jwks}) and checked the \
                 token: signature, iss, aud = {}, exp, scope \"mcp\"",
                self.mcp_url
            )?;
        }
        for w in &m.www_authenticate {
            writeln!(out, "    WWW-Authenticate: {w}")?;
        }
        Ok(())
    }

    fn discovery(&mut self, out: &mut dyn Write, d: &DiscoveryStep) -> io::Result<()> {
        // The challenge as received and parsed is already shown with the 401.
        if d.what == "challenge" || !self.discovery_open {
            return Ok(());
        }
        let url = self.short(&d.url).to_owned();
        match d.verdict.as_str() {
            "not tried" => writeln!(out, "    not needed: {} {url}", d.what),
            "used" => {
                writeln!(out, "    client's discovery trace: {} → used", d.what)?;
                let why = if d.what == PrmSource::Header.label() {
                    "the 401 challenge's resource_metadata named this URL: the spec's first choice"
                } else if d.what == PrmSource::PathInserted.label() {
                    "the challenge named no metadata; this is the path-inserted well-known URL for /mcp"
                } else if d.what == PrmSource::Root.label() {
                    "the last resort: the root well-known URL"
                } else {
                    "the resource metadata's authorization_servers names this issuer; RFC 8414's \
                     well-known URL comes first, and the document's issuer matches"
                };
                writeln!(out, "    why: {why}")
            }
            _ => {
                let status = if d.status == 0 {
                    String::new()
                } else {
                    format!(" [HTTP {}]", d.status)
                };
                let detail = if d.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", d.detail)
                };
                writeln!(
                    out,
                    "    client's discovery trace: {} {url}{status} → {}{detail}",
                    d.what, d.verdict
                )
            }
        }
    }

    fn browser(&mut self, out: &mut dyn Write, b: &BrowserEvent) -> io::Result<()> {
        match b {
            BrowserEvent::Open { url } => {
                self.title(
                    out,
                    "Authorization: the browser hop (PKCE S256, state, resource; auto-approved, no real browser needed)",
                )?;
                writeln!(out, "    browser → GET {url}")?;
            }
            BrowserEvent::Follow { url } => {
                writeln!(
                    out,
                    "    browser → GET {url} (the client's loopback listener; the client checks state and iss = the issuer, RFC 9207)"
                )?;
            }
            BrowserEvent::Done { url, outcome } => {
                // The loopback page renders after the token exchange; only failures matter.
                if !outcome.starts_with("HTTP 2") {
                    writeln!(out, "    browser stopped at {url}: {outcome}")?;
                }
            }
        }
        Ok(())
    }

    fn client(&mut self, out: &mut dyn Write, c: &ClientEvent) -> io::Result<()> {
        match c {
            ClientEvent::Connected { protocol, server } => writeln!(
                out,
                "    connected: protocol {}, server {}",
                protocol.as_deref().unwrap_or("?"),
                server.as_deref().unwrap_or("?")
            ),
            ClientEvent::Tools(names) => writeln!(out, "    tools: {}", names.join(", ")),
            ClientEvent::ToolResult {
                name,
                arguments,
                text,
                is_error,
            } => writeln!(
                out,
                "    {name}({arguments}) → {}{text}",
                if *is_error { "ERROR " } else { "" }
            ),
        }
    }

    /// The closing lines; the last one names what a root-probing client would have seen.
    pub fn finish(
        &mut self,
        out: &mut dyn Write,
        elapsed: Duration,
        root_url: &str,
        status: u16,
    ) -> io::Result<()> {
        writeln!(out)?;
        writeln!(
            out,
            "Done in {:.1} s: challenge → resource metadata → authorization server → registration → \
             authorization → token → tool call.",
            elapsed.as_secs_f64()
        )?;
        let verdict = if status == 404 {
            "no metadata, so no authorization server and no way to log in: stuck at \"needs authentication\", forever".to_owned()
        } else {
            format!("HTTP {status}")
        };
        writeln!(
            out,
            "A client that probes only the root would have seen: GET {root_url} → {status}: {verdict}."
        )
    }
}

fn query_part(q: &str) -> String {
    if q.is_empty() {
        String::new()
    } else if q.starts_with('?') {
        q.to_owned()
    } else {
        format!("?{q}")
    }
}

/// The `--serve` log: a banner, then one line per request.
pub struct ServeLog {
    style: bool,
    mcp_url: String,
    issuer: String,
    prm_url: String,
    root_prm_url: String,
}

impl ServeLog {
    pub fn new(servers: &DemoServers, style: bool) -> Self {
        Self {
            style,
            mcp_url: servers.mcp_url.clone(),
            issuer: servers.issuer().to_owned(),
            prm_url: servers.prm_url().to_owned(),
            root_prm_url: servers.root_prm_url(),
        }
    }

    pub fn banner(&self, out: &mut dyn Write, options: &DemoOptions) -> io::Result<()> {
        let u = &self.mcp_url;
        writeln!(
            out,
            "{}",
            bold(
                self.style,
                "mcp-oauth demo --serve: both servers are running on loopback (Ctrl-C stops them)"
            )
        )?;
        writeln!(out)?;
        writeln!(out, "MCP server:            {u}")?;
        writeln!(out, "  tools                echo, whoami (scope \"mcp\")")?;
        writeln!(out, "  metadata             {}", self.prm_url)?;
        writeln!(
            out,
            "  root metadata        {} → 404 (on purpose)",
            self.root_prm_url
        )?;
        writeln!(out, "Authorization server:  {}", self.issuer)?;
        writeln!(
            out,
            "  DEVELOPMENT ONLY: in memory, approves every authorization request for \"demo-user\" without asking"
        )?;
        writeln!(
            out,
            "  metadata             {}/.well-known/oauth-authorization-server",
            self.issuer
        )?;
        writeln!(
            out,
            "  access tokens        JWT ES256, {} s; refresh tokens rotate",
            options.access_token_ttl.as_secs()
        )?;
        writeln!(out)?;
        writeln!(out, "Try it:")?;
        writeln!(out, "  mcp-oauth call {u} whoami")?;
        writeln!(
            out,
            "  npx -y mcp-remote@0.15.1 {u}     (a stdio server for any MCP host)"
        )?;
        writeln!(
            out,
            "  npx @modelcontextprotocol/inspector    (transport Streamable HTTP, URL {u})"
        )?;
        writeln!(
            out,
            "  an IDE's mcp.json: {{\"servers\": {{\"demo\": {{\"type\": \"http\", \"url\": \"{u}\"}}}}}}"
        )?;
        writeln!(
            out,
            "Keys, codes and tokens live in memory: after a restart, clients log in again (a public \
             client's registration survives: its client_id carries it)."
        )?;
        writeln!(out)?;
        writeln!(out, "Requests, as they arrive:")?;
        out.flush()
    }

    pub fn event(&mut self, out: &mut dyn Write, ev: &Event) -> io::Result<()> {
        let Event::Http(h) = ev else {
            return Ok(());
        };
        let who = match h.side {
            Side::Mcp => "mcp",
            Side::Auth => "as ",
        };
        let ua = h
            .user_agent
            .as_deref()
            .map_or_else(String::new, |u| format!("  [{u}]"));
        let detail = match &h.detail {
            Detail::Mcp(m) => {
                let mut parts = Vec::new();
                if !m.rpc.is_empty() {
                    parts.push(m.rpc.join(", "));
                }
                match &m.credentials {
                    Some(c) => parts.push(c.clone()),
                    None if !h.path.starts_with("/.well-known/") => parts.push("no token".into()),
                    None => {}
                }
                if let Some(s) = &m.session {
                    parts.push(format!("session {s}"));
                }
                for w in &m.www_authenticate {
                    parts.push(format!("WWW-Authenticate: {w}"));
                }
                parts.join("; ")
            }
            Detail::AsMetadata => "metadata".into(),
            Detail::Jwks { kids } => format!("keys {}", kids.join(", ")),
            Detail::Registered(r) => format!(
                "registered {} {} ({}), redirect_uris {}",
                r.client_id,
                r.client_name
                    .as_deref()
                    .map_or("unnamed".into(), |n| format!("\"{n}\"")),
                r.token_endpoint_auth_method,
                json_list(&r.redirect_uris)
            ),
            Detail::Authorized(a) => format!(
                "approved {} for {} (scope \"{}\", resource {}) → {}",
                a.client_id, a.subject, a.scope, a.resource, a.location
            ),
            Detail::Token(t) => format!(
                "{} for {}: access token {} (aud {}, scope \"{}\", {} s), refresh token {}",
                t.grant_type,
                t.client_id,
                t.access_token,
                t.audience,
                t.scope,
                t.expires_in,
                t.refresh_token.as_deref().unwrap_or("none")
            ),
            Detail::OAuthError {
                error, description, ..
            } => format!("{error}: {description}"),
            Detail::None => String::new(),
        };
        let q = if matches!(h.detail, Detail::Authorized(_)) {
            String::new()
        } else {
            query_part(&h.query)
        };
        let detail = if detail.is_empty() {
            detail
        } else {
            format!("  {detail}")
        };
        writeln!(
            out,
            "{who} {} {}{q} → {}{detail}{ua}",
            h.method, h.path, h.status
        )?;
        out.flush()
    }
}
