//! Regression tests for the hardening findings against `percept serve` (issue 13): stalled
//! clients (F2, F6), browser pages and foreign Host names (F4), an overlong message (F5),
//! and `/metrics` behind the key. Each talks raw TCP where a polite client could not misbehave.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::Server;

fn addr(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Whether the server closes `conn` within `within` (EOF or a reset), reading what it sends.
fn closed_within(conn: &mut TcpStream, within: Duration) -> (bool, String) {
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let end = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match conn.read(&mut buf) {
            Ok(0) => return (true, String::from_utf8_lossy(&got).into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (true, String::from_utf8_lossy(&got).into()),
        }
    }
    (false, String::from_utf8_lossy(&got).into())
}

fn chat_body() -> String {
    json!({"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2}).to_string()
}

#[test]
fn stalled_uploads_hold_no_queue_place_and_are_cut_off() {
    let server = Server::start(&["--queue", "2", "--body-timeout-s", "2"]);
    let a = addr(&server);
    // F2: four clients (twice the queue) send headers and part of a body, then stall.
    let mut stalled: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = TcpStream::connect(&a).expect("connect");
            write!(
                c,
                "POST /v1/chat/completions HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"messages\""
            )
            .expect("write");
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .header("content-type", "application/json")
        .body(chat_body())
        .send()
        .expect("chat");
    assert_eq!(r.status().as_u16(), 200, "a complete request is served");
    for c in &mut stalled {
        let (closed, reply) = closed_within(c, Duration::from_secs(8));
        assert!(closed, "a stalled body is cut off at its deadline");
        assert!(reply.contains(" 408 "), "told why: {reply:?}");
    }
}

#[test]
fn half_sent_headers_are_closed_and_connections_are_capped() {
    let server = Server::start(&[
        "--header-timeout-s",
        "2",
        "--max-connections-per-ip",
        "3",
        "--api-key",
        "k",
    ]);
    let a = addr(&server);
    // F6: part of a request line and headers, then nothing.
    let mut half = TcpStream::connect(&a).expect("connect");
    write!(half, "POST /v1/chat/completions HTTP/1.1\r\nHost: {a}\r\n").expect("write");
    let (closed, _) = closed_within(&mut half, Duration::from_secs(8));
    assert!(closed, "half-sent headers must not hold a connection");

    // Three idle connections fill this address's places; a fourth is closed at once.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&a).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fourth = TcpStream::connect(&a).expect("connect");
    let (closed, _) = closed_within(&mut fourth, Duration::from_secs(1));
    assert!(closed, "over the per-address cap");
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));

    // /metrics is behind the key, and shows the caps and the refusal.
    let c = reqwest::blocking::Client::new();
    let m = c
        .get(format!("{}/metrics", server.url))
        .send()
        .expect("metrics");
    assert_eq!(m.status().as_u16(), 401);
    let m = c
        .get(format!("{}/metrics", server.url))
        .bearer_auth("k")
        .send()
        .expect("metrics");
    assert_eq!(m.status().as_u16(), 200);
    let text = m.text().expect("text");
    assert!(
        text.contains("percept_connections_per_ip_capacity 3"),
        "{text}"
    );
    let rejected = text
        .lines()
        .find_map(|l| l.strip_prefix("percept_connections_rejected_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(rejected >= 1.0, "{text}");
}

#[test]
fn web_pages_and_foreign_host_names_cannot_use_the_api() {
    let server = Server::start(&["--cors-origin", "http://app.example"]);
    let url = |p: &str| format!("{}{p}", server.url);
    let c = reqwest::blocking::Client::new();
    // F4: a page's "simple" cross-origin POST (text/plain, no preflight) runs nothing.
    let r = c
        .post(url("/v1/chat/completions"))
        .header("content-type", "text/plain")
        .body(chat_body())
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 415);
    let r = c
        .post(url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("origin", "http://evil.example")
        .body(chat_body())
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().expect("json");
    assert_eq!(v["error"]["code"], "origin_not_allowed");
    // DNS rebinding: a name that is not this server's.
    let r = c
        .get(url("/v1/models"))
        .header("host", "evil.example:8080")
        .send()
        .expect("get");
    assert_eq!(r.status().as_u16(), 403);
    // The listed origin gets CORS: a preflight, then its answer.
    let r = c
        .request(reqwest::Method::OPTIONS, url("/v1/chat/completions"))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .expect("preflight");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let r = c
        .post(url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("origin", "http://app.example")
        .body(chat_body())
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    // The server's own page (same origin) still works.
    let own = server.url.clone();
    let r = c
        .post(url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("origin", own)
        .body(chat_body())
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn an_overlong_message_is_refused_before_tokenizing() {
    let server = Server::start(&[]);
    // F5: 20 MB of text, under the 25 MB body limit.
    let text = "lorem ipsum ".repeat(20 << 20 >> 4);
    let body = json!({"messages": [{"role": "user", "content": text}], "max_tokens": 1});
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&body)
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().expect("json");
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("bytes of text cannot fit"),
        "refused by the size check, not after tokenizing: {v}"
    );
}
