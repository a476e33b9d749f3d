//! Debug aid: `cargo run --release -p percept-llm --example probe -- MODEL QUESTION [SYSTEM]`.
use percept_core::{Prompt, Untrusted};
use percept_llm::{answer, Engine, GenParams, LoadOptions};
use std::sync::atomic::AtomicBool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 3 {
        return Err("usage: probe MODEL QUESTION [SYSTEM]".into());
    }
    let mut e = Engine::load(&a[1], &LoadOptions::default())?;
    let p = Prompt {
        system: a.get(3).cloned(),
        question: Some(Untrusted {
            label: "q".into(),
            text: a[2].clone(),
        }),
        ..Prompt::default()
    };
    let params = GenParams {
        max_tokens: 40,
        ..Default::default()
    };
    let g = answer(&mut e, &p, &params, &AtomicBool::new(false), &mut |_| {})?;
    println!(
        "{:?} prefill {:?} decode {:?}",
        g.text, g.prefill_time, g.decode_time
    );
    Ok(())
}
