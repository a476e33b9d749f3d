//! One module per subcommand; each owns its `Args` and `run`.

pub mod ask;
pub mod batch;
pub mod bench;
pub mod bench_clip;
pub mod bench_listen;
pub mod bench_llm;
pub mod bench_pipeline;
pub mod bench_whisper;
pub mod chat;
pub mod common;
pub mod demo;
pub mod devices;
pub mod embed;
pub mod fleet;
pub mod listen;
pub mod models;
pub mod search;
pub mod serve;
pub mod tag;
pub mod transcribe;
