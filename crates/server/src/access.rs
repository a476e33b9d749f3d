//! Who may talk to the server from a browser. A web page can make a browser send requests to
//! a local port: `Host` names checked against the listen address stop DNS rebinding (a page
//! whose own name resolves here), and an `Origin` other than the server's own, unless given
//! with `--cors-origin`, is refused before any work, so no page can spend compute or read
//! answers. Clients that are not browsers send no `Origin` and are not affected.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

pub async fn check(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !host.is_empty() && !host_allowed(host, &st.config.allow_hosts) {
        return ApiError::forbidden(
            format!(
                "Host `{host}` is not this server's name; start it with --allow-host {} to \
                 accept it",
                host_name(host)
            ),
            "host_not_allowed",
        )
        .into_response();
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let Some(origin) = origin.map(str::to_string) else {
        return next.run(req).await;
    };
    let listed = st.config.cors_origins.iter().any(|o| o == &origin);
    if !listed && !same_origin(&origin, host) {
        return ApiError::forbidden(
            format!(
                "requests from the web page at {origin} are not allowed; start the server \
                 with --cors-origin {origin} to allow them"
            ),
            "origin_not_allowed",
        )
        .into_response();
    }
    if !listed {
        return next.run(req).await;
    }
    if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        cors_headers(r.headers_mut(), &origin);
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return r;
    }
    let mut r = next.run(req).await;
    cors_headers(r.headers_mut(), &origin);
    r
}

fn cors_headers(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// `host[:port]` without the port (an IPv6 literal keeps its brackets).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// IP literals and `localhost` always (rebinding needs a name); other names when listed.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// The server's own web page: the origin's authority is the `Host` it was served under.
fn same_origin(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    !host.is_empty() && authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ip_literals_localhost_and_listed_names() {
        let none: Vec<String> = Vec::new();
        assert!(host_allowed("127.0.0.1:8080", &none));
        assert!(host_allowed("[::1]:8080", &none));
        assert!(host_allowed("localhost:8080", &none));
        assert!(host_allowed("192.168.1.20", &none));
        assert!(!host_allowed("evil.example:8080", &none));
        assert!(host_allowed("box.lan:8080", &["box.lan".to_string()]));
    }

    #[test]
    fn same_origin_is_the_host_it_was_served_under() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:8080"));
        assert!(!same_origin("null", "127.0.0.1:8080"));
    }
}
