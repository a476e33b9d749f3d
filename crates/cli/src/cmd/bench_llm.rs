//! `percept bench llm`: load time, prefill and decode speed, peak memory of the text LLM.

use super::bench_util;
use super::common::DeviceArg;
use percept_llm::{argmax, DEFAULT_MODEL};
use percept_pipeline::{load_def, load_llm, Overrides};
use std::time::Instant;

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
    /// Re-encode Q4_1/Q5_x blocks as Q8_0 at load (faster prefill, not bit-faithful to the file).
    #[arg(long)]
    pub convert_q8: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.prompt_tokens > 0 && args.gen_tokens > 0,
        "--prompt-tokens and --gen-tokens must be > 0"
    );
    let mut def = load_def("default")?;
    def.apply(&Overrides {
        llm: Some(args.model.clone()),
        device: args.device.device.clone(),
        convert_q8: args.convert_q8,
        ..Overrides::default()
    });
    let t = Instant::now();
    let mut engine = load_llm(&def)?.engine;
    let load_s = t.elapsed().as_secs_f64();
    let text = "The history of natural language processing generally started in the 1950s, \
                although work can be found from earlier periods. ";
    let unit = engine.tokenizer.encode_untrusted(text)?;
    let prompt: Vec<u32> = unit
        .iter()
        .cycle()
        .take(args.prompt_tokens)
        .copied()
        .collect();
    anyhow::ensure!(
        args.prompt_tokens + args.gen_tokens < engine.context_length(),
        "prompt + generated tokens exceed the model context of {}",
        engine.context_length()
    );
    let (mut prefill, mut decode) = (Vec::new(), Vec::new());
    for _ in 0..args.repeats.max(1) {
        engine.reset();
        let t = Instant::now();
        let (logits, _) = engine.prefill(&prompt)?;
        prefill.push(args.prompt_tokens as f64 / t.elapsed().as_secs_f64());
        let mut tok = argmax(&logits);
        let t = Instant::now();
        for _ in 0..args.gen_tokens {
            tok = argmax(&engine.step(tok)?);
        }
        decode.push(args.gen_tokens as f64 / t.elapsed().as_secs_f64());
    }
    let (prefill, decode) = (bench_util::median(prefill), bench_util::median(decode));
    let rss = bench_util::peak_rss_mib();
    if args.json {
        let v = serde_json::json!({
            "model": engine.path.display().to_string(),
            "arch": engine.model.arch,
            "converted_to_q8_0": engine.model.converted_tensors,
            "prompt_tokens": args.prompt_tokens,
            "gen_tokens": args.gen_tokens,
            "load_s": load_s,
            "prefill_tok_s": prefill,
            "decode_tok_s": decode,
            "peak_rss_mib": rss,
        });
        println!("{v}");
    } else {
        println!("model        {}", engine.path.display());
        println!(
            "arch         {} ({} tensors re-encoded as Q8_0)",
            engine.model.arch, engine.model.converted_tensors
        );
        println!("load         {load_s:.2} s");
        println!(
            "prefill      {prefill:.1} tok/s ({} tokens)",
            args.prompt_tokens
        );
        println!(
            "decode       {decode:.1} tok/s ({} tokens)",
            args.gen_tokens
        );
        if let Some(r) = rss {
            println!("peak RSS     {r:.0} MiB");
        }
    }
    Ok(())
}
