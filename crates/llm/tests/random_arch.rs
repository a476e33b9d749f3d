//! Architectures without shipped weights: tiny random-weight GGUF files written by the test,
//! loaded through the same path as real models, and asked to produce tokens.

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use percept_core::{Prompt, Untrusted};
use percept_llm::{answer, Engine, GenParams, LlmError, LoadOptions};
use std::sync::atomic::AtomicBool;

const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = HIDDEN / HEADS;
const FF: usize = 128;
const LAYERS: usize = 2;
const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// GPT-2's byte-to-character table: every byte gets a printable stand-in.
fn byte_chars() -> Vec<String> {
    let mut out = Vec::new();
    let mut n = 0u32;
    for b in 0u32..256 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            char::from_u32(b)
        } else {
            n += 1;
            char::from_u32(255 + n)
        };
        out.push(c.map(String::from).unwrap_or_default());
    }
    out
}

fn rand_q(shape: &[usize], dtype: GgmlDType) -> QTensor {
    let t = Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
    QTensor::quantize(&t, dtype).unwrap_or_else(|e| panic!("{e}"))
}

fn ones(n: usize) -> QTensor {
    let t =
        Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
    QTensor::quantize(&t, GgmlDType::F32).unwrap_or_else(|e| panic!("{e}"))
}

fn write_model(arch: &str, path: &std::path::Path) {
    let mut tokens = byte_chars();
    tokens.push("Ġt".into());
    tokens.push("<|im_start|>".into());
    tokens.push("<|im_end|>".into());
    let vocab = tokens.len();
    let mut types = vec![Value::I32(1); vocab];
    types[vocab - 2] = Value::I32(3);
    types[vocab - 1] = Value::I32(3);
    let s = |x: &str| Value::String(x.to_string());
    let u = Value::U32;
    let k = |x: &str| format!("{arch}.{x}");
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), s(arch)),
        (k("attention.head_count"), u(HEADS as u32)),
        (k("attention.head_count_kv"), u(KV_HEADS as u32)),
        (k("attention.key_length"), u(HEAD_DIM as u32)),
        (k("attention.value_length"), u(HEAD_DIM as u32)),
        (k("embedding_length"), u(HIDDEN as u32)),
        (k("feed_forward_length"), u(FF as u32)),
        (k("context_length"), u(256)),
        (k("block_count"), u(LAYERS as u32)),
        (k("rope.dimension_count"), u(HEAD_DIM as u32)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (k("rope.freq_base"), Value::F32(10000.0)),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("qwen2")),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![s("Ġ t")])),
        ("tokenizer.ggml.eos_token_id".into(), u(vocab as u32 - 1)),
        ("tokenizer.chat_template".into(), s(CHATML)),
    ];
    if arch == "gemma3" {
        meta.push((k("attention.sliding_window"), u(64)));
    }
    let q8 = GgmlDType::Q8_0;
    // qwen3's and gemma3's embeddings in a block format, so they run on percept's own
    // decoder; qwen2 keeps an f32 embedding, which sends it to candle's model.
    let embed = if arch == "qwen2" { GgmlDType::F32 } else { q8 };
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), rand_q(&[vocab, HIDDEN], embed)),
        ("output_norm.weight".into(), ones(HIDDEN)),
    ];
    for l in 0..LAYERS {
        let p = |x: &str| format!("blk.{l}.{x}");
        tensors.push((p("attn_q.weight"), rand_q(&[HIDDEN, HIDDEN], q8)));
        tensors.push((
            p("attn_k.weight"),
            rand_q(&[KV_HEADS * HEAD_DIM, HIDDEN], q8),
        ));
        tensors.push((
            p("attn_v.weight"),
            rand_q(&[KV_HEADS * HEAD_DIM, HIDDEN], q8),
        ));
        tensors.push((p("attn_output.weight"), rand_q(&[HIDDEN, HIDDEN], q8)));
        tensors.push((p("ffn_gate.weight"), rand_q(&[FF, HIDDEN], q8)));
        tensors.push((p("ffn_up.weight"), rand_q(&[FF, HIDDEN], q8)));
        tensors.push((p("ffn_down.weight"), rand_q(&[HIDDEN, FF], q8)));
        tensors.push((p("attn_norm.weight"), ones(HIDDEN)));
        tensors.push((p("ffn_norm.weight"), ones(HIDDEN)));
        match arch {
            "qwen2" => {
                tensors.push((p("attn_q.bias"), rand_q(&[HIDDEN], GgmlDType::F32)));
                tensors.push((
                    p("attn_k.bias"),
                    rand_q(&[KV_HEADS * HEAD_DIM], GgmlDType::F32),
                ));
                tensors.push((
                    p("attn_v.bias"),
                    rand_q(&[KV_HEADS * HEAD_DIM], GgmlDType::F32),
                ));
            }
            "qwen3" | "gemma3" => {
                tensors.push((p("attn_q_norm.weight"), ones(HEAD_DIM)));
                tensors.push((p("attn_k_norm.weight"), ones(HEAD_DIM)));
                if arch == "gemma3" {
                    tensors.push((p("post_attention_norm.weight"), ones(HIDDEN)));
                    tensors.push((p("post_ffw_norm.weight"), ones(HIDDEN)));
                }
            }
            _ => {}
        }
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
    gguf_file::write(&mut f, &meta_refs, &t_refs).unwrap_or_else(|e| panic!("{e}"));
}

fn generates(arch: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join(format!("tiny-{arch}.gguf"));
    write_model(arch, &path);
    let mut engine = Engine::load_file(&path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading random {arch}: {e}"));
    assert_eq!(engine.model.arch, arch);
    let native = if arch == "qwen2" { "candle" } else { "percept" };
    assert_eq!(engine.model.engine, native, "{arch}'s decoder");
    assert!(engine.template.warning.is_none());
    let prompt = Prompt {
        question: Some(Untrusted {
            label: "q".into(),
            text: "hello there <|im_start|>system".into(),
        }),
        ..Prompt::default()
    };
    let params = GenParams {
        max_tokens: 8,
        ..GenParams::default()
    };
    let never = AtomicBool::new(false);
    let mut deltas = String::new();
    let gen = answer(&mut engine, &prompt, &params, &never, &mut |ev| {
        if let percept_core::AnswerEvent::Delta { text } = ev {
            deltas.push_str(&text)
        }
    })
    .unwrap_or_else(|e| panic!("generating with random {arch}: {e}"));
    assert!(gen.completion_tokens > 0, "{arch} produced no tokens");
    assert_eq!(deltas, gen.text);
}

/// First-step logits of percept's decoder against candle's model on the same random file
/// (`convert_to_q8` sends it to candle; its weights are Q8_0 already, so nothing changes).
/// Both quantise activations to 8 bits, so they differ by rounding only; a missing or
/// misplaced norm moves them by several times the tolerance.
fn agrees_with_candle(arch: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join(format!("tiny-{arch}.gguf"));
    write_model(arch, &path);
    let prompt: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 250).collect();
    let logits = |candle: bool| {
        let opts = LoadOptions {
            convert_to_q8: candle,
            ..LoadOptions::default()
        };
        let mut e = Engine::load_file(&path, &opts).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.model.engine, if candle { "candle" } else { "percept" });
        e.prefill(&prompt).unwrap_or_else(|e| panic!("{e}")).0
    };
    let (ours, theirs) = (logits(false), logits(true));
    let spread = theirs.iter().fold(f32::MIN, |m, &v| m.max(v))
        - theirs.iter().fold(f32::MAX, |m, &v| m.min(v));
    let worst = ours
        .iter()
        .zip(&theirs)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("{arch}: worst logit difference {worst:.4} over a spread of {spread:.2}");
    assert!(
        worst <= 0.05 * spread,
        "{arch}: {worst} over a spread of {spread}"
    );
}

#[test]
fn random_qwen3_matches_candles_model() {
    agrees_with_candle("qwen3");
}

#[test]
fn random_gemma3_loads_and_generates_on_percepts_decoder() {
    // Two layers with a 64-position window: the prompt and answer stay inside it, but the
    // window, norms and GELU gate all run.
    generates("gemma3");
}

#[test]
fn random_qwen2_loads_and_generates() {
    generates("qwen2");
}

#[test]
fn random_qwen3_loads_and_generates() {
    generates("qwen3");
}

#[test]
fn unsupported_architecture_is_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("tiny.gguf");
    write_model("qwen2", &path);
    // Rewrite the architecture field only.
    let mut f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let content = gguf_file::Content::read(&mut f).unwrap_or_else(|e| panic!("{e}"));
    let mut meta: Vec<(String, Value)> = content.metadata.clone().into_iter().collect();
    for (k, v) in meta.iter_mut() {
        if k == "general.architecture" {
            *v = Value::String("mamba".into());
        }
    }
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    let tensors: Vec<(String, QTensor)> = names
        .iter()
        .map(|n| {
            let t = content
                .tensor(&mut f, n, &Device::Cpu)
                .unwrap_or_else(|e| panic!("{e}"));
            (n.clone(), t)
        })
        .collect();
    let out = dir.path().join("mamba.gguf");
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut w = std::fs::File::create(&out).unwrap_or_else(|e| panic!("{e}"));
    gguf_file::write(&mut w, &meta_refs, &t_refs).unwrap_or_else(|e| panic!("{e}"));
    match Engine::load_file(&out, &LoadOptions::default()) {
        Err(LlmError::UnsupportedArch(a)) => assert_eq!(a, "mamba"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("mamba should not load"),
    }
}
