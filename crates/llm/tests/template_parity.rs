//! The models' own chat templates render exactly as jinja2 renders them (Hugging Face's
//! settings); fixture from scripts/fixtures/llm_templates.py.

use percept_llm::{ChatTemplate, GgufFile, Message};
use serde_json::Value;

fn template_parity(model: &str) {
    let path = format!(
        "{}/../../tests/fixtures/llm/templates.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fx: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let spec = percept_models::locate(model).unwrap_or_else(|e| {
        panic!("model `{model}` is missing ({e}); run `percept models fetch {model}`")
    });
    let file =
        percept_llm::resolve_model(&spec.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    let gg = GgufFile::open(&file).unwrap_or_else(|e| panic!("{e}"));
    let meta = gg.meta();
    let tokens = meta
        .strings("tokenizer.ggml.tokens")
        .unwrap_or_else(|e| panic!("{e}"));
    let tok = |field: &str| {
        meta.opt_u32(field)
            .and_then(|i| tokens.get(i as usize))
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    let template = ChatTemplate::new(
        meta.opt_string("tokenizer.chat_template"),
        &tok("tokenizer.ggml.bos_token_id"),
        &tok("tokenizer.ggml.eos_token_id"),
    );
    assert!(template.warning.is_none(), "{:?}", template.warning);
    let cases = fx[model].as_object().cloned().unwrap_or_default();
    assert!(!cases.is_empty(), "no fixture cases for {model}");
    for (name, case) in cases {
        let msgs: Vec<Message> = case["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                Message::new(
                    m["role"].as_str().unwrap_or_default(),
                    m["content"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        for (key, gen) in [
            ("with_generation_prompt", true),
            ("without_generation_prompt", false),
        ] {
            let got = template
                .render(&msgs, gen)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                got,
                case[key].as_str().unwrap_or_default(),
                "{model} {name} {key}"
            );
        }
    }
}

#[test]
fn smollm2_chat_template_matches_jinja2() {
    template_parity("smollm2-135m-instruct");
}

#[test]
fn qwen25_chat_template_matches_jinja2() {
    template_parity("qwen2.5-coder-0.5b-instruct");
}
