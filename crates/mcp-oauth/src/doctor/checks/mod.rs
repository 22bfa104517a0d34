//! The doctor's checks, one module per step of the chain, in the order [`super::diagnose`]
//! runs them. Each adds its findings to the report ([`super::DoctorReport::checks`]).

pub(super) mod auth_server;
pub(super) mod challenge;
pub(super) mod machine;
pub(super) mod prm;
pub(super) mod registration;
pub(super) mod scope;

/// "no document" rather than "HTTP 404" next to "[HTTP 404]".
fn no_document(status: Option<u16>, why: String) -> String {
    match status {
        Some(s) if why == format!("HTTP {s}") => "no document".into(),
        _ => why,
    }
}
