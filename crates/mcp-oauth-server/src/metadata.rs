//! Serving the Protected Resource Metadata document (RFC 9728 §3) at the well-known
//! paths, with CORS for browser-based clients.

use crate::config::ProtectedResource;
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use std::sync::Arc;

/// The response to a request for the metadata document: `GET`/`HEAD` get the JSON,
/// `OPTIONS` is a CORS preflight, anything else `405`.
pub(crate) fn respond(
    resource: &ProtectedResource,
    method: &Method,
    request_headers: &HeaderMap,
) -> Response<Body> {
    let mut resp = match *method {
        Method::GET | Method::HEAD => {
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(resource.metadata_json().clone())
            };
            let mut r = Response::new(body);
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(resource.metadata_json().len()),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        }
        Method::OPTIONS => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            if resource.cors() {
                let h = r.headers_mut();
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, HEAD, OPTIONS"),
                );
                // Whatever the browser asks to send (e.g. MCP-Protocol-Version) is fine:
                // the document is public.
                if let Some(req) = request_headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, req.clone());
                }
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("86400"),
                );
            }
            r
        }
        _ => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            r
        }
    };
    if resource.cors() {
        resp.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    resp
}

/// An axum `Router` serving the metadata at [`ProtectedResource::metadata_paths`]. Merge
/// it into the application *outside* the auth layer (the layer answers these paths too,
/// but only for requests that reach it).
pub fn metadata_router<S>(resource: &ProtectedResource) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let resource = Arc::new(resource.clone());
    let mut router = Router::new();
    for path in resource.metadata_paths() {
        let r = resource.clone();
        router = router.route(
            &escape_route(path),
            any(move |method: Method, headers: HeaderMap| {
                let r = r.clone();
                async move { respond(&r, &method, &headers) }
            }),
        );
    }
    router
}

/// axum route syntax treats `{` and `}` specially; `{{`/`}}` are the literal braces.
fn escape_route(path: &str) -> String {
    path.replace('{', "{{").replace('}', "}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let r = ProtectedResource::builder("https://h/mcp")
            .authorization_server("https://as")
            .build()
            .unwrap();
        let h = HeaderMap::new();
        let get = respond(&r, &Method::GET, &h);
        assert_eq!(get.status(), 200);
        assert_eq!(get.headers()["access-control-allow-origin"], "*");
        assert_eq!(get.headers()["content-type"], "application/json");
        let head = respond(&r, &Method::HEAD, &h);
        assert_eq!(head.status(), 200);
        assert_eq!(
            head.headers()["content-length"],
            r.metadata_json().len().to_string().as_str()
        );
        let mut pre = HeaderMap::new();
        pre.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("mcp-protocol-version"),
        );
        let opt = respond(&r, &Method::OPTIONS, &pre);
        assert_eq!(opt.status(), 204);
        assert_eq!(
            opt.headers()["access-control-allow-headers"],
            "mcp-protocol-version"
        );
        assert_eq!(respond(&r, &Method::POST, &h).status(), 405);

        let no_cors = ProtectedResource::builder("https://h/mcp")
            .authorization_server("https://as")
            .cors(false)
            .build()
            .unwrap();
        assert!(
            respond(&no_cors, &Method::GET, &h)
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        assert_eq!(escape_route("/a/{x}"), "/a/{{x}}");
    }
}
