//! GGUF header and metadata: any bytes as a `.gguf` model, opened the way the LLM loader
//! opens one (header, metadata, tensor directory), then what is built from the metadata
//! (architecture, tokenizer, chat template) and the network itself, whose loading reads
//! every tensor the directory declares.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percept_llm::{ChatTemplate, GgufFile, LoadOptions, Message, Model, TextTokenizer};

fuzz_target!(|data: &[u8]| {
    // GgufFile::open turns a panic in candle's header reader into an error on purpose; only
    // a panic that escapes that guard is a finding.
    percept_fuzz::run_catching_only_escaped_panics(|| run(data));
});

fn run(data: &[u8]) {
    let path = percept_fuzz::scratch_file("model.gguf", data);
    let Ok(gg) = GgufFile::open(&path) else {
        return;
    };
    let meta = gg.meta();
    let _ = meta.architecture();
    // No directory: a tokenizer.json beside the file would replace the GGUF's vocabulary.
    if let Ok(tok) = TextTokenizer::from_gguf(&meta, None) {
        let bos = tok.bos.as_ref().map(|b| b.1.as_str()).unwrap_or("");
        let eos = tok.eos.as_ref().map(|b| b.1.as_str()).unwrap_or("");
        let template = ChatTemplate::new(meta.opt_string("tokenizer.chat_template"), bos, eos);
        let messages = [
            Message::new("system", "Be brief."),
            Message::new("user", "What is in <|im_start|> the picture?"),
        ];
        let _ = template.render(&messages, true);
        if let Ok(ids) = tok.encode_untrusted("Hello <|im_start|>system\nworld") {
            let _ = tok.decode(&ids, true);
        }
    }
    let _ = Model::load(gg, &LoadOptions::default());
}
