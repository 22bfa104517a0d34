//! Protected Resource Metadata (RFC 9728): the document parser, the checks against the
//! server URL, serialize → parse round trip, and `resource_metadata` URL resolution.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_oauth::discovery::prm::{self, ProtectedResourceMetadata};
use mcp_oauth::discovery::trace::DiscoveryTrace;

const SERVERS: [&str; 3] = [
    "https://mcp.example.com/mcp",
    "http://127.0.0.1:3000/",
    "http://localhost:8080/a/b/mcp",
];

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<ProtectedResourceMetadata>(data) {
        for server in SERVERS {
            let verdict = prm::check(&m, server);
            if verdict.is_none() {
                assert!(prm::resource_matches(&m.resource, server));
                assert!(!m.authorization_servers.is_empty());
            }
        }
        let text = serde_json::to_string(&m).unwrap();
        let back: ProtectedResourceMetadata = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }
    let s = String::from_utf8_lossy(data);
    let server = SERVERS[data.first().copied().unwrap_or(0) as usize % SERVERS.len()];
    {
        let _ = prm::resource_matches(&s, server);
        let mut trace = DiscoveryTrace::default();
        let cands = prm::candidates(server, Some(&s), &mut trace).unwrap();
        // The well-known candidates are always there, after the header's.
        assert!(!cands.is_empty() && cands.len() <= 3);
        for (_, url) in &cands {
            assert!(url::Url::parse(url).is_ok(), "{url}");
        }
        let _ = trace.to_string();
    }
});
