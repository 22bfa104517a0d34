//! One server, one key: the canonical form of a server URL, and credentials stored under
//! the URL as typed (before keys were canonical) found and moved.

use super::*;

#[test]
fn spellings_of_one_server_share_a_key() {
    let key = |u: &str| CredentialKey::new(u).server_url;
    assert_eq!(
        key("HTTP://127.0.0.1:8888/mcp"),
        "http://127.0.0.1:8888/mcp"
    );
    assert_eq!(
        key("https://MCP.Example.com:443/mcp#tools"),
        "https://mcp.example.com/mcp"
    );
    assert_eq!(key("http://localhost:80/mcp"), "http://localhost/mcp");
    // The path and the query are kept: they may name another server.
    assert_eq!(key("https://h.example/mcp/"), "https://h.example/mcp/");
    assert_eq!(
        key("https://h.example/mcp?Tenant=A"),
        "https://h.example/mcp?Tenant=A"
    );
    assert_ne!(key("https://h.example/MCP"), key("https://h.example/mcp"));
    // Not a URL: as it is.
    assert_eq!(key("not a url"), "not a url");
    assert!(same_server(
        "HTTP://h.example:80/mcp",
        "http://h.example/mcp#x"
    ));
    assert!(!same_server(
        "http://h.example/mcp",
        "https://h.example/mcp"
    ));
}

fn record(server_url: &str) -> CredentialRecord {
    serde_json::from_value(serde_json::json!({
        "server_url": server_url,
        "resource": "http://127.0.0.1:8888/mcp",
        "issuer": "http://127.0.0.1:8889",
        "token_endpoint": "http://127.0.0.1:8889/token",
        "client": {
            "issuer": "http://127.0.0.1:8889",
            "redirect_uri": "http://127.0.0.1:3000/callback",
            "client_id": "c",
            "token_endpoint_auth_method": "none",
            "kind": "dynamic",
            "registered_at": 0
        },
        "tokens": {"access_token": "at", "token_type": "Bearer", "obtained_at": 0}
    }))
    .unwrap()
}

#[test]
fn a_credential_stored_as_typed_is_found_and_moved() {
    let store = MemoryStore::new();
    let typed = "HTTP://127.0.0.1:8888/mcp";
    let old = CredentialKey {
        server_url: typed.into(),
        profile: None,
    };
    store.save(&old, &record(typed)).unwrap();
    let key = CredentialKey::new(typed);
    assert!(store.load(&key).unwrap().is_none());
    // Typed the same way as before.
    let found = find_legacy(&store, &key, typed).unwrap().expect("found");
    assert_eq!(found.server_url, typed);
    assert!(
        store.load(&key).unwrap().is_some(),
        "moved to the canonical key"
    );
    assert!(store.load(&old).unwrap().is_none(), "the old entry is gone");
    assert!(find_legacy(&store, &key, typed).unwrap().is_none());

    // Typed another way: found by the scan.
    let store = MemoryStore::new();
    let old = CredentialKey {
        server_url: "http://127.0.0.1:8888/mcp#a".into(),
        profile: Some("work".into()),
    };
    store.save(&old, &record(&old.server_url)).unwrap();
    let key = CredentialKey::new("http://127.0.0.1:8888/mcp").with_profile(Some("work".into()));
    assert!(
        find_legacy(
            &store,
            &CredentialKey::new("http://127.0.0.1:8888/mcp"),
            "x"
        )
        .unwrap()
        .is_none(),
        "another profile"
    );
    assert!(
        find_legacy(&store, &key, "http://127.0.0.1:8888/mcp")
            .unwrap()
            .is_some()
    );
    assert_eq!(store.list().unwrap().len(), 1);
}
