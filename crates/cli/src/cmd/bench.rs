//! `percept bench STAGE`: one stage's speed on this machine (peers run in `benches/`).

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    stage: Stage,
}

#[derive(Debug, clap::Subcommand)]
enum Stage {
    /// Whisper: load, mel, encoder per window, decode ms/token, real-time factor, peak RSS.
    Whisper(super::bench_whisper::Args),
    /// LLM: load, prefill and decode tokens/s, peak RSS.
    Llm(super::bench_llm::Args),
    /// CLIP image tower: images/s, ms per image, preprocessing share, peak RSS.
    Clip(super::bench_clip::Args),
    /// A batch pipelined and strictly sequential in one run: ratio, busy time, CPU use.
    Pipeline(super::bench_pipeline::Args),
    /// Live path: time from the end of an utterance to the first answer token.
    Listen(super::bench_listen::Args),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.stage {
        Stage::Whisper(a) => super::bench_whisper::run(a),
        Stage::Llm(a) => super::bench_llm::run(a),
        Stage::Clip(a) => super::bench_clip::run(a),
        Stage::Pipeline(a) => super::bench_pipeline::run(a),
        Stage::Listen(a) => super::bench_listen::run(a),
    }
}
