//! The question set (tests/fixtures/questions/general.toml), typed and spoken, through
//! `percept serve` with each built-in pipeline. Its scores chose the pipelines' system prompt
//! and repetition guard and are quoted in the README; the floors below keep them from sliding.
//! Run with `--nocapture` to see every answer.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::Mutex;
use support::{normalise, speak, Server};

/// Two servers at once would share two cores; the scores do not depend on it, the time does.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MAX_TOKENS: u32 = 48;

struct Question {
    text: String,
    any: Vec<String>,
}

fn questions() -> Vec<Question> {
    let path = support::root().join("tests/fixtures/questions/general.toml");
    let text = std::fs::read_to_string(&path).expect("read the question set");
    let set: toml::Value = toml::from_str(&text).expect("question set parses");
    let list = set["q"].as_array().expect("[[q]] entries");
    list.iter()
        .map(|q| Question {
            text: q["text"].as_str().expect("text").to_string(),
            any: q["any"]
                .as_array()
                .expect("any")
                .iter()
                .map(|k| normalise(k.as_str().expect("keyword")))
                .collect(),
        })
        .collect()
}

/// Whether `answer` holds one of the keywords as whole words.
fn hit(answer: &str, any: &[String]) -> bool {
    let words = format!(" {} ", normalise(answer));
    any.iter().any(|k| words.contains(&format!(" {k} ")))
}

fn chat(client: &reqwest::blocking::Client, url: &str, content: Value) -> String {
    let body = json!({
        "messages": [{"role": "user", "content": content}],
        "max_tokens": MAX_TOKENS,
    });
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .expect("request");
    let status = r.status();
    let v: Value = r.json().expect("JSON reply");
    assert!(status.is_success(), "{status}: {v}");
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A chat content list holding only `wav` as audio: the person's spoken question.
fn spoken_content(wav: &std::path::Path) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(std::fs::read(wav).expect("wav"));
    json!([{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}])
}

/// (typed hits, spoken hits, questions) for one pipeline.
fn score(pipeline: &str) -> (usize, usize, usize) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let qs = questions();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::spawn(&["--pipeline", pipeline]);
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .expect("client");
    let (mut typed, mut spoken) = (0, 0);
    for (i, q) in qs.iter().enumerate() {
        let a = chat(&client, &server.url, json!(q.text));
        let wav = dir.path().join(format!("q{i}.wav"));
        speak(&q.text, &wav);
        let b = chat(&client, &server.url, spoken_content(&wav));
        let (ta, sa) = (hit(&a, &q.any), hit(&b, &q.any));
        typed += usize::from(ta);
        spoken += usize::from(sa);
        println!(
            "{pipeline} | {} | typed {} {:?} | spoken {} {:?}",
            q.text,
            if ta { "ok" } else { "MISS" },
            a.trim(),
            if sa { "ok" } else { "MISS" },
            b.trim()
        );
    }
    println!(
        "{pipeline}: typed {typed}/{n}, spoken {spoken}/{n}",
        n = qs.len()
    );
    (typed, spoken, qs.len())
}

#[test]
fn the_default_pipeline_answers_the_question_set() {
    let (typed, spoken, n) = score("default");
    assert!(n >= 30);
    assert!(typed * 100 >= n * DEFAULT_FLOOR, "typed {typed}/{n}");
    assert!(spoken * 100 >= n * DEFAULT_FLOOR, "spoken {spoken}/{n}");
}

/// A simple question over HTTP, typed and spoken, with both built-in pipelines (the quality
/// pipeline's whole set is too slow for every run; this keeps its server path tested). The
/// default pipeline gets a question without a near-tie at its first answer token (see
/// `both_pipelines_answer_typed_and_spoken` in ask_cli.rs).
#[test]
fn the_server_answers_typed_and_spoken_with_both_pipelines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::blocking::Client::new();
    for (pipeline, q, expected) in [
        ("default", "How many hours are there in a day?", "24"),
        ("quality", "What is the capital of France?", "paris"),
    ] {
        let wav = dir.path().join(format!("{pipeline}.wav"));
        speak(q, &wav);
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let server = Server::spawn(&["--pipeline", pipeline]);
        let typed = chat(&client, &server.url, json!(q));
        let heard = chat(&client, &server.url, spoken_content(&wav));
        for (how, answer) in [("typed", typed), ("spoken", heard)] {
            assert!(
                hit(&answer, &[expected.to_string()]),
                "{pipeline}, {how}: {answer:?}"
            );
        }
    }
}

/// About twice the default's time (Whisper base with beam 5, a 0.5B LLM): run it with
/// `cargo test --release --test question_set -- --ignored` or benches/question_set.py.
#[test]
#[ignore = "slow on 2 cores; run with --ignored (scores in the README)"]
fn the_quality_pipeline_answers_the_question_set() {
    let (typed, spoken, n) = score("quality");
    assert!(typed * 100 >= n * QUALITY_FLOOR, "typed {typed}/{n}");
    assert!(spoken * 100 >= n * QUALITY_FLOOR, "spoken {spoken}/{n}");
}

/// Percent of the set, from measurement (README: default 22 typed / 20 spoken of 32, quality
/// 22 / 23), with room for two near-ties.
const DEFAULT_FLOOR: usize = 55;
const QUALITY_FLOOR: usize = 60;
