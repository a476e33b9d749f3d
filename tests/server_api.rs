//! End-to-end tests of `percept serve`'s HTTP API: the real binary on a free loopback port
//! with the small models (smollm2-135m-instruct, whisper-tiny.en), driven with reqwest.
//! Each test starts one server and covers a group of endpoints, to keep model loads few.

mod server_support;

use base64::Engine as _;
use reqwest::blocking::{multipart, Client};
use serde_json::{json, Value};
use server_support::Server;
use std::io::{BufRead, BufReader};
use std::time::Duration;

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("reqwest client")
}

fn asset(path: &str) -> Vec<u8> {
    std::fs::read(server_support::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
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

fn metric(s: &Server, c: &Client, name: &str) -> f64 {
    let text = c
        .get(format!("{}/metrics", s.url))
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
        ids.contains(&server_support::LLM) && ids.contains(&server_support::WHISPER),
        "{models}"
    );

    // Non-streaming answer with usage and the percept extension.
    let (status, v) = post(&c, &s, "/v1/chat/completions", &ask("Name a colour.", 3));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], server_support::LLM);
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
    let last = chunks.last().unwrap();
    assert!(last["choices"][0]["finish_reason"].is_string(), "{last}");
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() <= 4);

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
