//! Chat request JSON -> prompt: any bytes as a `/v1/chat/completions` body, parsed as the
//! server parses it (JSON, sampling fields, messages and content parts, data: and file://
//! media under an --allow-dir), then turned into the LLM's token ids by the prompt rule and
//! builder every front end uses, with a tiny byte-level tokenizer and SmolLM2's template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percept_llm::{build_prompt, ChatTemplate, GgufFile, TextTokenizer};
use std::path::PathBuf;
use std::sync::OnceLock;

struct Llm {
    tok: TextTokenizer,
    template: ChatTemplate,
    allow_dir: PathBuf,
}

fn llm() -> &'static Llm {
    static LLM: OnceLock<Llm> = OnceLock::new();
    LLM.get_or_init(|| {
        let gguf = include_bytes!("../corpus/gguf/tiny_llama.gguf");
        let path = percept_fuzz::scratch_file("chat.gguf", gguf);
        let gg = GgufFile::open(&path).expect("the fixture opens");
        let meta = gg.meta();
        let tok = TextTokenizer::from_gguf(&meta, None).expect("the fixture's tokenizer");
        let bos = tok.bos.as_ref().map(|b| b.1.clone()).unwrap_or_default();
        let eos = tok.eos.as_ref().map(|b| b.1.clone()).unwrap_or_default();
        let template = ChatTemplate::new(meta.opt_string("tokenizer.chat_template"), &bos, &eos);
        assert!(template.warning.is_none(), "the fixture's template parses");
        let allow_dir = percept_fuzz::scratch_dir().join("allowed");
        std::fs::create_dir_all(&allow_dir).expect("allowed dir");
        std::fs::write(allow_dir.join("a.png"), b"\x89PNG\r\n\x1a\n").expect("allowed file");
        let allow_dir = allow_dir.canonicalize().expect("canonical allowed dir");
        Llm {
            tok,
            template,
            allow_dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let llm = llm();
    let Ok(text) =
        percept_server::fuzzing::chat_request(data, Some(llm.allow_dir.clone()), 1 << 20)
    else {
        return;
    };
    assert!(text.question.is_some() || text.images > 0 || text.audio > 0);
    let prompt = percept_pipeline::question_prompt(
        text.system,
        text.history,
        text.question.as_deref(),
        &[],
        &[],
    );
    if let Ok(built) = build_prompt(&llm.tok, &llm.template, &prompt, 4096) {
        assert!(built.ids.len() <= 4096);
        for span in &built.untrusted_spans {
            assert!(span.start <= span.end && span.end <= built.ids.len());
        }
    }
});
