//! Parity with the reference implementations, from fixtures written by
//! scripts/fixtures/llm_reference.py (llama-cpp-python 0.3.36, tokens and logits).
//! Chat templates are checked against jinja2 in template_parity.rs.
//!
//! The models load with the default options: the file's own blocks, no Q8_0 re-encoding
//! (which flips two near-tie steps on SmolLM2; see `LoadOptions::convert_to_q8`).
//!
//! Logit tolerance: percept (like candle before it) quantises activations and accumulates in
//! a different order than llama.cpp, so first-step logits differ by up to `LOGIT_TOL`
//! (absolute) on llama.cpp's top-64 entries, whose own spread is 5 to 14. Measured with
//! candle's models: at most 0.40 on every prompt but SmolLM2 on the 4-token "The quick brown
//! fox" (1.14); with percept's decoder at most 0.63 (SmolLM2: 0.59, 0.27, 0.63; Qwen2.5: 0.20,
//! 0.27, 0.32); since the f16 KV cache and the vectorised quantiser (ties to even) at most 0.95
//! (AVX-512 prompt kernel: SmolLM2 0.32, 0.25, 0.95; Qwen2.5 0.21, 0.28, 0.27; AVX2 tiles:
//! 0.41, 0.41, 0.87; 0.30, 0.23, 0.26), the largest again on the 4-token fox prompt.
//!
//! Top-1 must match at every teacher-forced step except where llama.cpp's own top-2 gap is
//! below `TIE_GAP`. Gaps that small are inside the rounding of the activations themselves.
//! Three correct roundings of the same activations, measured on the 192 steps: ggml's
//! reference quantiser (f16 scales, half away from zero) changes the top-1 at one step (gap
//! 0.28), its AVX2 quantiser (half to even) at two (0.295 and 0.003), and percept's final
//! decoder (f32 scales, closest to the unquantised product) at four, all on SmolLM2 (gaps
//! 0.054, 0.152, 0.187 and 0.279; none on Qwen2.5). candle's models changed none. Now: three
//! with the AVX-512 prompt kernel (gaps 0.295, 0.152, 0.054), one with the AVX2 tiles (0.295);
//! the test prints them.
//! A broken kernel moves logits by far more than `LOGIT_TOL` and flips most steps.

use percept_llm::{argmax, Engine, LoadOptions};
use serde_json::Value;

const LOGIT_TOL: f32 = 1.25;
const TIE_GAP: f32 = 0.3;
/// Gemma 3's GELU gate: llama.cpp reads it from a table of f16 values (input and output
/// rounded to f16), percept computes it in f32. First-step errors 1.32 / 0.75 / 0.79 / 0.31
/// on the fox, code, Eiffel and long prompts; with llama.cpp's table emulated the fox read
/// 1.13. Without the sliding window (every layer attending to all 795 positions of the long
/// prompt) the long prompt's read 8.2: the test sees the window.
const GEMMA3_LOGIT_TOL: f32 = 1.5;

fn fixture(model: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/llm/{model}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture section that must hold at least one case: a missing or empty section would let
/// the parity test pass without checking anything.
fn cases<'a>(fx: &'a Value, section: &str, model: &str) -> &'a Vec<Value> {
    let list = fx[section]
        .as_array()
        .unwrap_or_else(|| panic!("{model}: fixture section `{section}` is missing"));
    assert!(
        !list.is_empty(),
        "{model}: fixture section `{section}` is empty"
    );
    list
}

fn engine(model: &str) -> Engine {
    let dir = percept_models::locate(model).unwrap_or_else(|e| {
        panic!("model `{model}` is missing ({e}); run `percept models fetch {model}`")
    });
    Engine::load(&dir.display().to_string(), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {model}: {e}"))
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap_or(u64::MAX) as u32)
        .collect()
}

fn tokenizer_parity(model: &str) {
    let fx = fixture(model);
    let e = engine(model);
    for case in cases(&fx, "tokenize", model) {
        let text = case["text"].as_str().unwrap_or_default();
        let want = ids(&case["special"]);
        let got = e
            .tokenizer
            .encode_trusted(text)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, want, "{model}: trusted ids of {text:?}");
        let plain = e
            .tokenizer
            .encode_untrusted(text)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain, ids(&case["plain"]), "{model}: plain ids of {text:?}");
        assert!(
            plain.iter().all(|&id| !e.tokenizer.is_special(id)),
            "{model}: untrusted {text:?} gave a control id: {plain:?}"
        );
        let back = e.tokenizer.decode(&plain, false).unwrap_or_default();
        assert_eq!(back, text, "{model}: round trip");
    }
}

fn model_parity(model: &str, logit_tol: f32) {
    let fx = fixture(model);
    let mut e = engine(model);
    let greedy = fx["greedy"]
        .as_object()
        .cloned()
        .unwrap_or_else(|| panic!("{model}: fixture section `greedy` is missing"));
    assert!(
        !greedy.is_empty(),
        "{model}: fixture section `greedy` is empty"
    );
    for (name, case) in greedy {
        let prompt = ids(&case["prompt_ids"]);
        e.reset();
        let (mut logits, _) = e.prefill(&prompt).unwrap_or_else(|e| panic!("{e}"));
        let mut worst = 0f32;
        for pair in cases(&case, "first_top64", &format!("{model} {name}")) {
            let id = pair[0].as_u64().unwrap_or(0) as usize;
            let want = pair[1].as_f64().unwrap_or(0.0) as f32;
            worst = worst.max((logits[id] - want).abs());
        }
        assert!(
            worst <= logit_tol,
            "{model} {name}: first-step logit error {worst}"
        );
        let steps = case["steps"].as_array().cloned().unwrap_or_default();
        assert_eq!(steps.len(), 32);
        let mut flips = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let want = step["token"].as_u64().unwrap_or(0) as u32;
            let top2 = &step["top2"];
            let gap =
                (top2[0][1].as_f64().unwrap_or(0.0) - top2[1][1].as_f64().unwrap_or(0.0)).abs();
            let got = argmax(&logits);
            if got != want {
                flips.push(format!("step {i} (gap {gap:.3})"));
            }
            if gap >= TIE_GAP as f64 {
                assert_eq!(
                    got, want,
                    "{model} {name}: step {i} top-1 (llama.cpp gap {gap})"
                );
            }
            // Teacher forcing: always continue with llama.cpp's token.
            logits = e.step(want).unwrap_or_else(|e| panic!("{e}"));
        }
        eprintln!("{model} {name}: first-step logit error {worst:.3}, top-1 differs at {flips:?}");
    }
}

#[test]
fn smollm2_tokenizer_matches_llama_cpp() {
    tokenizer_parity("smollm2-135m-instruct");
}

#[test]
fn qwen25_tokenizer_matches_llama_cpp() {
    tokenizer_parity("qwen2.5-coder-0.5b-instruct");
}

#[test]
fn smollm2_greedy_matches_llama_cpp() {
    model_parity("smollm2-135m-instruct", LOGIT_TOL);
}

#[test]
fn qwen25_greedy_matches_llama_cpp() {
    model_parity("qwen2.5-coder-0.5b-instruct", LOGIT_TOL);
}

/// Gemma's vocabulary has single and repeated spaces, tabs and newlines as user-defined
/// tokens, which llama.cpp matches in any text: untrusted text must tokenize the same.
#[test]
fn gemma3_tokenizer_matches_llama_cpp() {
    tokenizer_parity("gemma3-270m");
}

/// Gemma 3 on percept's decoder (sliding-window layers, per-head norms, GELU gate) against
/// llama.cpp: base-model prompts after BOS.
#[test]
fn gemma3_greedy_matches_llama_cpp() {
    model_parity("gemma3-270m", GEMMA3_LOGIT_TOL);
}
