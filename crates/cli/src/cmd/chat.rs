//! `percept chat`: an interactive conversation with the text LLM (the history and the turns
//! are `percept_pipeline::chat`'s). `/reset` clears the history, `/exit` or Ctrl-D leaves,
//! Ctrl-C stops the answer being written (or leaves when no answer is running).

use super::common::{resolve, show_notices, DeviceArg, LlmArgs, PipelineArgs};
use percept_core::FinishReason;
use percept_pipeline::chat::Chat;
use percept_pipeline::load_llm;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Named pipeline (`default`, `quality`) or a pipeline .toml: the model, system prompt and
    /// sampling, as `ask` and `serve` use them; explicit flags win.
    #[arg(long)]
    pub pipeline: Option<String>,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub llm: LlmArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let pipeline = PipelineArgs {
        pipeline: args.pipeline.clone(),
        ..PipelineArgs::default()
    };
    let def = resolve(&pipeline, args.device.device.as_deref(), Some(&args.llm))?;
    let engine = load_llm(&def)?.engine;
    if let Some(w) = &engine.template.warning {
        show_notices(&[format!("warning: {w}")]);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicBool::new(false));
    {
        let (cancel, busy) = (cancel.clone(), busy.clone());
        ctrlc::set_handler(move || {
            if busy.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            } else {
                std::process::exit(130);
            }
        })?;
    }
    eprintln!(
        "percept chat with {} ({}). /reset clears history, /exit or Ctrl-D leaves, Ctrl-C stops an answer.",
        engine.path.display(),
        engine.model.arch
    );
    let mut chat = Chat::new(engine, def.system.clone(), args.llm.gen_params(&def));
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if lines.read_line(&mut line)? == 0 {
            eprintln!();
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                chat.reset();
                eprintln!("(history cleared)");
                continue;
            }
            _ => {}
        }
        cancel.store(false, Ordering::SeqCst);
        busy.store(true, Ordering::SeqCst);
        let mut out = std::io::stdout().lock();
        let result = chat.say(line, &cancel, &mut |text| {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        });
        busy.store(false, Ordering::SeqCst);
        println!();
        match result {
            Ok(gen) if gen.finish == FinishReason::Cancelled => eprintln!("(stopped)"),
            Ok(_) => {}
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}
