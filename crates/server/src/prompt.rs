//! Chat inputs plus what the media stages produced, turned into percept's `Prompt`.
//! Transcripts and image descriptions enter only as `Untrusted` parts (fenced as data by the
//! LLM's prompt builder), the same rule `percept ask` follows.

use crate::chat_input::ChatInputs;
use percept_core::{Prompt, Transcript, Untrusted, VisionContext};

pub fn build(
    inputs: &ChatInputs,
    transcripts: &[Transcript],
    images: &[VisionContext],
    default_system: Option<&str>,
) -> Prompt {
    let spoken: Vec<Untrusted> = transcripts
        .iter()
        .map(|t| Untrusted {
            label: format!("spoken question (transcript of {})", t.source),
            text: t.text.trim().to_string(),
        })
        .collect();
    let typed = inputs.question.as_ref().map(|q| Untrusted {
        label: "question".to_string(),
        text: q.clone(),
    });
    // A typed question stays the question; speech alone becomes it.
    let (question, mut context) = match typed {
        Some(q) => (Some(q), spoken),
        None => {
            let mut it = spoken.into_iter();
            let first = it.next();
            (first, it.collect())
        }
    };
    context.extend(images.iter().map(describe_image));
    Prompt {
        system: inputs
            .system
            .clone()
            .or_else(|| default_system.map(str::to_string)),
        history: inputs.history.clone(),
        question,
        context,
    }
}

/// Facts and CLIP tags of one image as a data part.
pub fn describe_image(ctx: &VisionContext) -> Untrusted {
    let label = if ctx.source.starts_with("image ") {
        ctx.source.clone()
    } else {
        format!("image {}", ctx.source)
    };
    Untrusted {
        label,
        text: ctx.describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_alone_becomes_the_question() {
        let inputs = ChatInputs::default();
        let t = Transcript {
            source: "audio 1".into(),
            text: " What time is it?".into(),
            ..Transcript::default()
        };
        let p = build(&inputs, &[t], &[], None);
        assert_eq!(p.question.unwrap().text, "What time is it?");
        assert!(p.context.is_empty());
    }
}
