//! End-to-end tests of `percept serve`'s HTTP API: the real binary on a free loopback port
//! with the small models (smollm2-135m-instruct, whisper-tiny.en), driven with reqwest.
//! Each test starts one server and covers a group of endpoints, to keep model loads few.

mod support;

use base64::Engine as _;
use reqwest::blocking::{multipart, Client};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};
use support::Server;

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("reqwest client")
}

fn asset(path: &str) -> Vec<u8> {
    std::fs::read(support::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn post(c: &Client, s: &Server, path: &str, body: &Value) -> (u16, Value) {
    let r = c
        .post(format!("{}{path}", s.url))
        .json(body)
        .send()
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

fn ask(text: &str, max_tokens: u32) -> Value {
    json!({"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens})
}

/// Asserts OpenAI's error shape and returns (message, param, code).
fn error_of(status: u16, v: &Value, want: u16) -> (String, Value, Value) {
    assert_eq!(status, want, "expected {want}, got {status}: {v}");
    let e = &v["error"];
    let message = e["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message: {v}"));
    assert!(e["type"].is_string(), "no error.type: {v}");
    (message.to_string(), e["param"].clone(), e["code"].clone())
}

/// Reads an SSE response to the end: the JSON payloads and whether `[DONE]` closed it.
fn read_sse(r: reqwest::blocking::Response) -> (Vec<Value>, bool) {
    let mut chunks = Vec::new();
    let mut done = false;
    for line in BufReader::new(r).lines() {
        let line = line.expect("sse line");
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            break;
        }
        chunks.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("chunk {data}: {e}")));
    }
    (chunks, done)
}

/// One metric's value; /metrics is behind the key when one is set (these tests use "sekrit").
fn metric(s: &Server, c: &Client, name: &str) -> f64 {
    let text = c
        .get(format!("{}/metrics", s.url))
        .bearer_auth("sekrit")
        .send()
        .and_then(|r| r.text())
        .expect("metrics");
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn chat_stream_transcription_models_and_health() {
    let s = Server::start(&["--max-tokens", "8"]);
    let c = client();

    let health: Value = c
        .get(format!("{}/health", s.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    let models: Value = c
        .get(format!("{}/v1/models", s.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&support::LLM) && ids.contains(&support::WHISPER),
        "{models}"
    );

    let one: Value = c
        .get(format!("{}/v1/models/{}", s.url, support::WHISPER))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(one["percept"]["kind"], "speech", "{one}");

    // Non-streaming answer with usage and the percept extension.
    let (status, v) = post(&c, &s, "/v1/chat/completions", &ask("Name a colour.", 3));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], support::LLM);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
    let u = &v["usage"];
    let (p, k, t) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        u["total_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && k > 0 && k <= 3 && t == p + k, "{u}");
    assert!(
        v["percept"]["transcript"].is_null() && v["percept"]["images"] == json!([]),
        "{v}"
    );

    // Streaming: role first (with the extension), content deltas, a finish reason, [DONE].
    let mut body = ask("Say hello.", 4);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = c
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (chunks, done) = read_sse(r);
    assert!(done, "stream did not end with [DONE]");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks[0]["percept"].is_object(),
        "first chunk lacks percept: {}",
        chunks[0]
    );
    let finish = &chunks[chunks.len() - 2];
    assert!(
        finish["choices"][0]["finish_reason"].is_string(),
        "{finish}"
    );
    let text: String = chunks[1..chunks.len() - 2]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!text.is_empty(), "no content deltas: {chunks:?}");
    // stream_options.include_usage: a last chunk with no choices and the usage.
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]), "{usage_chunk}");
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() <= 4);

    // Spoken question and an image in one message: transcript and facts come back.
    let msg = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is said, and what is in the picture?"},
        {"type": "input_audio", "input_audio": {"data": b64(&asset("assets/audio/jfk.wav")), "format": "wav"}},
        {"type": "image_url", "image_url": {"url": format!("data:image/jpeg;base64,{}", b64(&asset("assets/images/rocket.jpg")))}},
    ]}], "max_tokens": 2});
    let (status, v) = post(&c, &s, "/v1/chat/completions", &msg);
    assert_eq!(status, 200, "{v}");
    let transcript = v["percept"]["transcript"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        transcript
            .to_lowercase()
            .contains("ask not what your country"),
        "{transcript}"
    );
    let img = &v["percept"]["images"][0];
    assert!(
        img["facts"]["width"].as_u64().unwrap() > 0 && img["facts"]["format"] == "jpeg",
        "{img}"
    );

    // Transcription endpoint in several formats.
    let transcribe = |format: &str| {
        let form = multipart::Form::new()
            .part(
                "file",
                multipart::Part::bytes(asset("assets/audio/jfk.wav")).file_name("jfk.wav"),
            )
            .text("model", "whisper-1")
            .text("response_format", format.to_string());
        let r = c
            .post(format!("{}/v1/audio/transcriptions", s.url))
            .multipart(form)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, text) = transcribe("json");
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("ask not what your country"),
        "{v}"
    );
    let (status, srt) = transcribe("srt");
    assert_eq!(status, 200, "{srt}");
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    let (_, vtt) = transcribe("vtt");
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    let (_, verbose) = transcribe("verbose_json");
    let v: Value = serde_json::from_str(&verbose).unwrap();
    assert!(
        v["segments"].as_array().is_some_and(|a| !a.is_empty())
            && v["duration"].as_f64().unwrap() > 5.0,
        "{v}"
    );

    let form = multipart::Form::new()
        .part(
            "file",
            multipart::Part::bytes(asset("assets/audio/jfk.mp3")).file_name("jfk.mp3"),
        )
        .text("response_format", "text");
    let r = c
        .post(format!("{}/v1/audio/translations", s.url))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(r.text().unwrap().to_lowercase().contains("your country"));

    // The web page is served without auth and with the right types.
    for (path, ty) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let r = c.get(format!("{}{path}", s.url)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ty),
            "{path}"
        );
    }

    // Metrics count the requests above and time the stages.
    assert!(
        metric(
            &s,
            &c,
            "percept_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}"
        ) >= 3.0
    );
    assert!(metric(&s, &c, "percept_stage_seconds_count{stage=\"llm\"}") >= 3.0);
    assert!(metric(&s, &c, "percept_stage_seconds_count{stage=\"speech\"}") >= 2.0);
    assert!(metric(&s, &c, "percept_llm_tokens_total{kind=\"completion\"}") > 0.0);
}

#[test]
fn errors_auth_and_local_files() {
    let s = Server::start(&[
        "--max-body-mb",
        "1",
        "--allow-dir",
        "assets/images",
        "--api-key",
        "sekrit",
    ]);
    let c = client();
    let url = |p: &str| format!("{}{p}", s.url);

    // The API key guards /v1 only.
    let r = c.get(url("/v1/models")).send().unwrap();
    let (status, v) = (r.status().as_u16(), r.json::<Value>().unwrap());
    let (msg, _, code) = error_of(status, &v, 401);
    assert!(msg.contains("Authorization: Bearer"), "{msg}");
    assert_eq!(code, "invalid_api_key");
    let r = c
        .get(url("/v1/models"))
        .bearer_auth("wrong")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        c.get(url("/v1/models"))
            .bearer_auth("sekrit")
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(c.get(url("/health")).send().unwrap().status().as_u16(), 200);
    assert_eq!(c.get(url("/")).send().unwrap().status().as_u16(), 200);

    let send = |path: &str, body: Vec<u8>| {
        let r = c
            .post(url(path))
            .bearer_auth("sekrit")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let chat = |body: Value| send("/v1/chat/completions", body.to_string().into_bytes());
    let user = |content: Value| json!({"messages": [{"role": "user", "content": content}], "max_tokens": 1});
    let image = |u: String| {
        user(
            json!([{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": u}}]),
        )
    };

    let (st, v) = send("/v1/chat/completions", b"{\"messages\": [".to_vec());
    let (msg, _, code) = error_of(st, &v, 400);
    assert!(msg.contains("malformed JSON"), "{msg}");
    assert_eq!(code, "invalid_json");

    let (st, v) = chat(json!({"messages": "hi"}));
    assert_eq!(error_of(st, &v, 400).1, "messages");
    let (st, v) = chat(json!({"messages": [{"role": "robot", "content": "hi"}]}));
    assert_eq!(error_of(st, &v, 400).1, "messages[0].role");
    let (st, v) =
        chat(json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}));
    let (msg, param, _) = error_of(st, &v, 400);
    assert_eq!(param, "max_tokens", "{msg}");

    let (st, v) = chat(image("data:image/png;base64,%%%".into()));
    let (_, param, code) = error_of(st, &v, 400);
    assert_eq!(
        (param, code),
        (
            json!("messages[0].content[1].image_url.url"),
            json!("invalid_base64")
        )
    );
    let (st, v) = chat(image(format!(
        "data:image/png;base64,{}",
        b64(b"not an image at all")
    )));
    let (msg, _, code) = error_of(st, &v, 400);
    assert_eq!(code, "invalid_image", "{msg}");
    let audio = user(
        json!([{"type": "input_audio", "input_audio": {"data": b64(b"RIFF....not audio"), "format": "wav"}}]),
    );
    let (st, v) = chat(audio);
    let (msg, param, code) = error_of(st, &v, 400);
    assert_eq!(
        (param, code),
        (
            json!("messages[0].content[0].input_audio.data"),
            json!("invalid_audio")
        ),
        "{msg}"
    );

    let mut other = user(json!("hi"));
    other["model"] = json!("gpt-4o");
    let (st, v) = chat(other);
    let (msg, _, code) = error_of(st, &v, 404);
    assert!(msg.contains(support::LLM), "{msg}");
    assert_eq!(code, "model_not_found");

    let (st, v) = chat(image("https://example.invalid/cat.png".into()));
    assert_eq!(error_of(st, &v, 400).2, "remote_url_refused");

    // file:// inside --allow-dir works; `..` cannot climb out of it.
    let dir = support::root().join("assets/images");
    let (st, v) = chat(image(format!("file://{}", dir.join("horse.png").display())));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["percept"]["images"][0]["source"], "horse.png", "{v}");
    assert_eq!(v["percept"]["images"][0]["facts"]["format"], "png");
    let (st, v) = chat(image(format!("file://{}/../../Cargo.toml", dir.display())));
    assert!(error_of(st, &v, 400).0.contains("outside"), "{v}");
    // RFC 8089: localhost is this machine; another host is refused.
    let (st, v) = chat(image(format!(
        "file://localhost{}",
        dir.join("horse.png").display()
    )));
    assert_eq!(st, 200, "{v}");
    let (st, v) = chat(image("file://fileserver/srv/horse.png".into()));
    assert!(error_of(st, &v, 400).0.contains("this machine"), "{v}");
    // Outside --allow-dir, an existing file and a missing one get the same answer.
    let probe = |path: &str| {
        let (st, v) = chat(image(format!("file://{path}")));
        let (msg, _, code) = error_of(st, &v, 400);
        (msg.replace(path, "PATH"), code)
    };
    let existing = support::root().join("Cargo.toml");
    let missing = support::root().join("no-such-file.toml");
    let a = probe(existing.to_str().expect("utf8"));
    let b = probe(missing.to_str().expect("utf8"));
    assert_eq!(a, b);
    assert_eq!(a.1, "path_not_allowed", "{a:?}");

    // Over --max-body-mb 1.
    let big = format!("data:image/png;base64,{}", "A".repeat(1_200_000));
    let (st, v) = chat(image(big));
    assert_eq!(error_of(st, &v, 413).2, "request_too_large");

    // Audio endpoint without a file; unknown route.
    let form = multipart::Form::new().text("model", "whisper-1");
    let r = c
        .post(url("/v1/audio/transcriptions"))
        .bearer_auth("sekrit")
        .multipart(form)
        .send()
        .unwrap();
    let (st, v) = (r.status().as_u16(), r.json::<Value>().unwrap());
    assert_eq!(error_of(st, &v, 400).1, "file");
    let r = c
        .get(url("/v1/nothing"))
        .bearer_auth("sekrit")
        .send()
        .unwrap();
    let (st, v) = (r.status().as_u16(), r.json::<Value>().unwrap());
    error_of(st, &v, 404);

    // Embeddings: CLIP text vectors when its weights are present, else a clear 503.
    let has_clip = c
        .get(url("/v1/models"))
        .bearer_auth("sekrit")
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["percept"]["kind"] == "vision");
    let (st, v) = send(
        "/v1/embeddings",
        json!({"input": ["a photo of a horse"]})
            .to_string()
            .into_bytes(),
    );
    if has_clip {
        assert_eq!(st, 200, "{v}");
        assert!(v["data"][0]["embedding"].as_array().unwrap().len() >= 512);
    } else {
        let (msg, _, code) = error_of(st, &v, 503);
        assert!(msg.contains("percept models fetch"), "{msg}");
        assert_eq!(code, "model_not_loaded");
    }
    assert!(metric(&s, &c, "percept_errors_total{status=\"400\"}") >= 8.0);
}

#[test]
fn queue_limit_cancellation_and_graceful_shutdown() {
    let mut s = Server::start(&["--queue", "1", "--grace-s", "60"]);
    let c = client();

    // Four at once with one queue place: some are refused with 429 + Retry-After, none hang.
    let results: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (c, url) = (c.clone(), s.url.clone());
                scope.spawn(move || {
                    let r = c
                        .post(format!("{url}/v1/chat/completions"))
                        .json(&ask(&format!("Count to {i}."), 12))
                        .send()
                        .unwrap();
                    let retry = r
                        .headers()
                        .get("retry-after")
                        .map(|h| h.to_str().unwrap().to_string());
                    (r.status().as_u16(), retry)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().any(|r| r.0 == 200), "{results:?}");
    assert!(
        results.iter().any(|r| r.0 == 429 && r.1.is_some()),
        "{results:?}"
    );
    assert!(
        results.iter().all(|r| r.0 == 200 || r.0 == 429),
        "{results:?}"
    );
    assert!(metric(&s, &c, "percept_queue_rejected_total") >= 1.0);

    // A client that disconnects mid-stream stops the generation.
    let before = metric(&s, &c, "percept_llm_tokens_total{kind=\"completion\"}");
    let mut body = ask("Count from 1 to 500, one number per line.", 400);
    body["stream"] = json!(true);
    let r = c
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut lines = BufReader::new(r).lines();
    let mut deltas = 0;
    while deltas < 3 {
        let line = lines.next().expect("stream ended early").unwrap();
        deltas += usize::from(line.contains("\"content\":\"") && !line.contains("\"role\""));
    }
    drop(lines);
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(
        &s,
        &c,
        "percept_llm_generations_total{reason=\"cancelled\"}",
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "generation was not cancelled; stderr:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let produced = metric(&s, &c, "percept_llm_tokens_total{kind=\"completion\"}") - before;
    assert!(
        produced < 400.0,
        "the cancelled generation ran to {produced} tokens"
    );

    // SIGTERM: the request in flight still gets its answer, then the server exits.
    while metric(&s, &c, "percept_queue_depth") > 0.0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (c2, url) = (c.clone(), s.url.clone());
    let inflight = std::thread::spawn(move || {
        c2.post(format!("{url}/v1/chat/completions"))
            .json(&ask("Say yes.", 4))
            .send()
            .map(|r| r.status().as_u16())
    });
    while metric(&s, &c, "percept_queue_depth") < 1.0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    support::signal(s.pid(), "-TERM");
    assert_eq!(
        inflight.join().unwrap().expect("in-flight request"),
        200,
        "stderr:\n{}",
        s.stderr()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.alive() {
        assert!(
            Instant::now() < deadline,
            "server still running after SIGTERM; stderr:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = s.stderr();
    assert!(
        log.contains("percept: stopping") && log.contains("percept: stopped"),
        "{log}"
    );
}

#[test]
fn shutdown_after_grace_cancels_a_running_stream() {
    let mut s = Server::start(&["--grace-s", "0"]);
    let c = client();
    let mut body = ask("Count from 1 to 500, one number per line.", 400);
    body["stream"] = json!(true);
    let r = c
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut lines = BufReader::new(r).lines();
    let mut deltas = 0;
    while deltas < 2 {
        let line = lines.next().expect("stream ended early").unwrap();
        deltas += usize::from(line.contains("\"content\":\"") && !line.contains("\"role\""));
    }
    support::signal(s.pid(), "-TERM");
    // The stream still ends properly: a finish reason of `cancelled`, then [DONE].
    let mut finish = None;
    let mut done = false;
    for line in lines {
        let line = line.expect("stream line");
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            break;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    assert!(done, "no [DONE]; stderr:\n{}", s.stderr());
    assert_eq!(
        finish.as_deref(),
        Some("cancelled"),
        "stderr:\n{}",
        s.stderr()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.alive() {
        assert!(
            Instant::now() < deadline,
            "still running; stderr:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.stderr().contains("grace period over"), "{}", s.stderr());
}
