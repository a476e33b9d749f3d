//! `percept chat`: an interactive conversation with the text LLM.
//!
//! History lives here; each turn goes through the same safe prompt builder as `ask`, and the
//! engine reuses the cached prefix so a turn only feeds its new tokens. `/reset` clears the
//! history, `/exit` or Ctrl-D leaves, Ctrl-C stops the answer being written (or leaves when
//! no answer is running).

use super::common::{resolve, show_notices, DeviceArg, LlmArgs, PipelineArgs};
use percept_core::{AnswerEvent, FinishReason, Turn, TurnRole};
use percept_llm::answer;
use percept_pipeline::{load_llm, question_prompt};
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
    let llm = load_llm(&def)?;
    let mut engine = llm.engine;
    if let Some(w) = &engine.template.warning {
        show_notices(&[format!("warning: {w}")]);
    }
    let params = args.llm.gen_params(&def);
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
    let mut history: Vec<Turn> = Vec::new();
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
                history.clear();
                engine.reset();
                eprintln!("(history cleared)");
                continue;
            }
            _ => {}
        }
        let prompt = question_prompt(def.system.clone(), history.clone(), Some(line), &[], &[]);
        cancel.store(false, Ordering::SeqCst);
        busy.store(true, Ordering::SeqCst);
        let mut out = std::io::stdout().lock();
        let mut print = |ev: AnswerEvent| {
            if let AnswerEvent::Delta { text } = ev {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        };
        let result = answer(&mut engine, &prompt, &params, &cancel, &mut print);
        busy.store(false, Ordering::SeqCst);
        println!();
        match result {
            Ok(gen) => {
                if gen.finish == FinishReason::Cancelled {
                    eprintln!("(stopped)");
                }
                history.push(Turn {
                    role: TurnRole::User,
                    text: line.to_string(),
                });
                history.push(Turn {
                    role: TurnRole::Assistant,
                    text: gen.text,
                });
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}
