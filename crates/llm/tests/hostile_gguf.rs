//! GGUFs found by the `gguf` fuzz target (`scripts/fuzz`): the tiny llama seed with one
//! hyperparameter changed. candle's builder allocated a 420 GB layer vector for the first,
//! divided by the head count of the second, and built gigabytes of rotary tables for the
//! third; each is now refused by `Model::load` before candle sees it.

use percept_llm::{GgufFile, LlmError, LoadOptions, Model};
use std::path::Path;

#[test]
fn fuzzed_hyperparameters_are_refused_before_the_model_is_built() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    for (name, field) in [
        ("block_count_603979777.gguf", "llama.block_count"),
        ("head_count_0.gguf", "llama.attention.head_count"),
        ("rope_dimension_131076.gguf", "llama.rope.dimension_count"),
    ] {
        let gg = GgufFile::open(&dir.join(name)).expect("the header itself is well formed");
        match Model::load(gg, &LoadOptions::default()) {
            Err(LlmError::Metadata { field: f, message }) => {
                assert_eq!(f, field, "{name}: {message}")
            }
            Err(e) => panic!("{name}: {e}"),
            Ok(_) => panic!("{name} loaded"),
        }
    }
}
