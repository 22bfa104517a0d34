//! No secret in any log line (issue #7): the library's flows (a healthy login and
//! refresh, and the whole fault matrix with its echoing error pages) run with every
//! `tracing` event at TRACE level, from this crate and from its dependencies (hyper,
//! reqwest, rustls, through the `log` bridge), captured and scanned for every token,
//! code, client secret and PKCE verifier the test servers issued or received.
//!
//! The flows are those of `faults.rs`, included here; the binary `mcp-oauth` is scanned
//! the same way by `crates/mcp-oauth-cli/tests/hardening.rs`.

#[path = "faults.rs"]
mod faults;

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn library_flows_log_no_secret_at_trace_level() {
    let captured = Captured(Arc::default());
    let w = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || w.clone())
        .try_init()
        .expect("the only subscriber of this test binary");

    faults::healthy_login_then_refresh();
    faults::fault_matrix();
    faults::refresh_lost_mid_rotation_is_retried_then_reports_invalid_grant();
    faults::token_endpoint_timing_out_after_the_code_was_sent();
    faults::device_interval_from_a_hostile_server_is_bounded();

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let verifier = faults::LAST_VERIFIER
        .lock()
        .unwrap()
        .clone()
        .expect("the healthy login ran");
    let basic = mcp_oauth::token::basic_auth_value("client-faults", "cs-SECRET-CLIENT-44b2aa17");
    let mut needles: Vec<String> = faults::SECRETS.iter().map(|s| s.to_string()).collect();
    needles.push(verifier);
    needles.push(basic.trim_start_matches("Basic ").to_string());
    needles.push("dc-SECRET-device-0b1c2d3e".into());
    let lines = log.lines().count();
    let trace_lines = log.lines().filter(|l| l.contains("TRACE")).count();
    let leaks: Vec<String> = log
        .lines()
        .filter(|l| needles.iter().any(|n| l.contains(n.as_str())))
        .map(|l| l.chars().take(400).collect())
        .collect();
    eprintln!(
        "[secrets-in-logs] {lines} log lines ({trace_lines} at TRACE) scanned for {} secrets: {} leaks",
        needles.len(),
        leaks.len()
    );
    assert!(trace_lines > 100, "trace logging was on");
    assert!(
        leaks.is_empty(),
        "secrets in log lines:\n{}",
        leaks.join("\n")
    );
}
