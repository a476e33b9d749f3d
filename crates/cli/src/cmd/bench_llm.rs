//! `percept bench llm`: load time, prefill and decode speed, peak memory of the text LLM.

use super::common::DeviceArg;
use percept_llm::DEFAULT_MODEL;
use percept_pipeline::{load_def, Overrides};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model id, directory or .gguf file.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    #[arg(long, default_value_t = 128)]
    pub prompt_tokens: usize,
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: usize,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Re-encode Q4_1/Q5_x blocks as Q8_0 at load, on candle's decoder (not bit-faithful to the file).
    #[arg(long)]
    pub convert_q8: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut def = load_def("default")?;
    def.apply(&Overrides {
        llm: Some(args.model.clone()),
        device: args.device.device.clone(),
        convert_q8: args.convert_q8,
        ..Overrides::default()
    });
    let b = percept_pipeline::bench::llm(&def, args.prompt_tokens, args.gen_tokens, args.repeats)?;
    if args.json {
        println!("{}", serde_json::to_string(&b)?);
        return Ok(());
    }
    println!("model        {}", b.model);
    println!(
        "arch         {} on {}'s decoder ({} tensors re-encoded as Q8_0)",
        b.arch, b.engine, b.converted_to_q8_0
    );
    println!("load         {:.2} s", b.load_s);
    let (p, d) = (b.prefill_tok_s, b.decode_tok_s);
    println!("prefill      {p:.1} tok/s ({} tokens)", b.prompt_tokens);
    println!("decode       {d:.1} tok/s ({} tokens)", b.gen_tokens);
    if let Some(r) = b.peak_rss_mib {
        println!("peak RSS     {r:.0} MiB");
    }
    Ok(())
}
