//! Building a handler's answer.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::Full;

/// What a handler answers.
pub type Reply = http::Response<Full<Bytes>>;

/// `status` with `body` of type `content_type`.
pub fn text(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut reply = http::Response::new(Full::new(body.into()));
    *reply.status_mut() = status_code(status);
    with_header(reply, "content-type", content_type)
}

/// `status` with a JSON body.
pub fn json(status: u16, value: serde_json::Value) -> Reply {
    text(status, "application/json", value.to_string())
}

/// `302 Found` to `location`.
pub fn redirect(location: &str) -> Reply {
    let mut reply = http::Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::FOUND;
    with_header(reply, "location", location)
}

/// `404` with a plain-text body.
pub fn not_found() -> Reply {
    text(404, "text/plain", "not found")
}

/// `status` with no body and no content type.
pub fn empty(status: u16) -> Reply {
    let mut reply = http::Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = status_code(status);
    reply
}

/// `reply` with the header `name: value` added.
pub fn with_header(mut reply: Reply, name: &str, value: &str) -> Reply {
    let name = HeaderName::from_bytes(name.as_bytes())
        .unwrap_or_else(|e| panic!("{name:?} is not a header name: {e}"));
    let value = HeaderValue::from_str(value)
        .unwrap_or_else(|e| panic!("{value:?} is not a header value: {e}"));
    reply.headers_mut().append(name, value);
    reply
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or_else(|e| panic!("{status} is not a status: {e}"))
}
