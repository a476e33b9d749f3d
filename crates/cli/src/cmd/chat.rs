//! `percept chat`: an interactive conversation with the text LLM.
//!
//! History lives here; each turn goes through the same safe prompt builder as `ask`, and the
//! engine reuses the cached prefix so a turn only feeds its new tokens. `/reset` clears the
//! history, `/exit` or Ctrl-D leaves, Ctrl-C stops the answer being written (or leaves when
//! no answer is running).

use super::ask::LlmArgs;
use percept_core::{AnswerEvent, FinishReason, Prompt, Turn, TurnRole, Untrusted};
use percept_llm::answer;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub llm: LlmArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut engine = args.llm.load()?;
    let params = args.llm.gen_params();
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
        let prompt = Prompt {
            system: args.llm.system.clone(),
            history: history.clone(),
            question: Some(Untrusted {
                label: "user".into(),
                text: line.to_string(),
            }),
            context: Vec::new(),
        };
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
