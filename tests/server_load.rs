//! A bounded load on loopback at 4x the queue capacity: `--queue 2` and 8 clients sending
//! 2 short chats each at once. The server must stay up, answer every request with 200 (done) or
//! 429 (queue full, try later) and nothing else, still be healthy afterwards, and keep its
//! peak RSS (VmHWM) under PEAK_RSS_MIB and its resident memory within GROWTH_MIB of what it
//! was before the load (requests must not leave memory behind).

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::Server;

const QUEUE: usize = 2;
const CLIENTS: usize = 4 * QUEUE;
const PER_CLIENT: usize = 2;
/// Measured on x86-64: loading whisper-tiny.en (fp16 widened to f32) and SmolLM2-135M (the
/// file's own Q4_1 blocks, as loaded by default) peaks at about 420 MiB before any request;
/// this load (two requests in the stages at once) adds little. The bound leaves ~2x room.
const PEAK_RSS_MIB: f64 = 1024.0;
const GROWTH_MIB: f64 = 200.0;

fn chat(client: &reqwest::blocking::Client, url: &str, i: usize) -> Result<u16, String> {
    let body = serde_json::json!({
        "messages": [{"role": "user", "content": format!("Say a number bigger than {i}.")}],
        "max_tokens": 4,
    });
    let resp = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .map_err(|e| format!("request {i}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().map_err(|e| format!("request {i} body: {e}"))?;
    if status == 200 {
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("request {i}: {e}: {text}"))?;
        if v["choices"][0]["message"]["content"].as_str().is_none() {
            return Err(format!("request {i}: 200 without an answer: {text}"));
        }
    }
    Ok(status)
}

#[test]
fn four_times_the_queue_gets_200_or_429_and_the_server_stays_up() {
    let mut server = Server::start(&["--queue", &QUEUE.to_string()]);
    let rss_before = server.rss_mib();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");
    let start = Arc::new(Barrier::new(CLIENTS));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, url, start) = (client.clone(), server.url.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..PER_CLIENT)
                    .map(|k| chat(&client, &url, c * PER_CLIENT + k))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Result<u16, String>> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();

    assert!(
        server.alive(),
        "the server died under load:\n{}",
        server.stderr()
    );
    let statuses: Vec<u16> = results
        .iter()
        .map(|r| match r {
            Ok(s) => *s,
            Err(e) => panic!("{e}\nserver stderr:\n{}", server.stderr()),
        })
        .collect();
    assert_eq!(statuses.len(), CLIENTS * PER_CLIENT);
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let busy = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(
        ok + busy,
        statuses.len(),
        "statuses other than 200/429: {statuses:?}"
    );
    assert!(ok >= 1, "no request was answered: {statuses:?}");
    assert!(
        busy >= 1,
        "{CLIENTS} at once never filled a queue of {QUEUE}: {statuses:?}"
    );

    assert_eq!(
        server.get_status("/health"),
        Some(200),
        "unhealthy after the load"
    );
    assert_eq!(
        chat(&client, &server.url, 999),
        Ok(200),
        "not answering after the load"
    );

    let (peak, rss_after) = (server.peak_rss_mib(), server.rss_mib());
    eprintln!(
        "load: {ok} answered, {busy} refused with 429; peak RSS {peak:.0} MiB, \
         RSS {rss_before:.0} MiB before and {rss_after:.0} MiB after"
    );
    assert!(
        peak < PEAK_RSS_MIB,
        "peak RSS {peak:.0} MiB over {PEAK_RSS_MIB} MiB"
    );
    assert!(
        rss_after - rss_before < GROWTH_MIB,
        "RSS grew from {rss_before:.0} to {rss_after:.0} MiB under the load"
    );
}
