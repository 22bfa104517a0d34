//! What the mock server records of each request, and the log a test reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One request as the server received it, before its handler ran.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: http::Method,
    pub path: String,
    /// The query string without `?`; empty when there is none.
    pub query: String,
    pub headers: http::HeaderMap,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

impl RecordedRequest {
    /// A header's value, when it is present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query's parameters (a repeated name: the last value).
    pub fn query_map(&self) -> HashMap<String, String> {
        query_map(&self.query)
    }

    /// The body's parameters, for a form-encoded body.
    pub fn form(&self) -> HashMap<String, String> {
        query_map(&self.body)
    }

    /// The body as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A form-encoded string (a query or a form body) as a map; a repeated name keeps its
/// last value.
pub fn query_map(encoded: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(encoded.as_bytes())
        .into_owned()
        .collect()
}

/// Form-encodes `s` for a query or a form body.
pub fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every request a server received, in order; shared by the server and the test (clones
/// are handles on the same log). It outlives a stop and a restart.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<RecordedRequest>>>);

impl RequestLog {
    pub(crate) fn push(&self, request: RecordedRequest) {
        self.entries().push(request);
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<RecordedRequest> {
        self.entries().clone()
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// The path of every request so far.
    pub fn paths(&self) -> Vec<String> {
        self.entries().iter().map(|r| r.path.clone()).collect()
    }

    /// The requests to `path` so far.
    pub fn to(&self, path: &str) -> Vec<RecordedRequest> {
        self.entries()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Every request, once there are at least `count` (for a client in another process
    /// or task); `None` when there are fewer after `limit`.
    pub fn wait_for(&self, count: usize, limit: Duration) -> Option<Vec<RecordedRequest>> {
        let started = Instant::now();
        loop {
            let all = self.all();
            if all.len() >= count {
                return Some(all);
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The log stays usable when a handler panicked while the server recorded.
    fn entries(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
