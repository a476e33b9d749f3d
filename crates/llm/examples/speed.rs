//! Quick speed probe without the CLI:
//! `cargo run --release -p percept-llm --example speed -- MODEL [noconv]`
//! (prefill 128 tokens, decode 128 tokens, greedy; `percept bench llm` is the full tool).
use percept_llm::{Engine, LoadOptions};
use std::time::Instant;

fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let model = a
        .get(1)
        .cloned()
        .unwrap_or_else(|| "smollm2-135m-instruct".into());
    let opts = LoadOptions {
        convert_to_q8: a.get(2).map(|s| s != "noconv").unwrap_or(true),
        ..LoadOptions::default()
    };
    let t = Instant::now();
    let mut e = Engine::load(&model, &opts)?;
    let load = t.elapsed().as_secs_f64();
    let unit = e.tokenizer.encode_untrusted(
        "The history of natural language processing generally started in the 1950s. ",
    )?;
    let prompt: Vec<u32> = unit.iter().cycle().take(128).copied().collect();
    for _ in 0..2 {
        e.reset();
        let t = Instant::now();
        let (l, _) = e.prefill(&prompt)?;
        let pf = 128.0 / t.elapsed().as_secs_f64();
        let mut tok = argmax(&l);
        let t = Instant::now();
        for _ in 0..128 {
            tok = argmax(&e.step(tok)?);
        }
        let dc = 128.0 / t.elapsed().as_secs_f64();
        println!(
            "load {load:.2}s prefill {pf:.1} tok/s decode {dc:.1} tok/s (converted {})",
            e.model.converted_tensors
        );
    }
    Ok(())
}
