//! Chat inputs plus what the media stages produced, turned into percept's `Prompt` by the
//! pipeline's one rule (`percept_pipeline::question_prompt`): the person's words, typed or,
//! with nothing typed, spoken, are the user turn; everything else from media is fenced data.

use crate::chat_input::ChatInputs;
use percept_core::{Prompt, Transcript, VisionContext};

pub fn build(
    inputs: &ChatInputs,
    transcripts: &[Transcript],
    images: &[VisionContext],
    default_system: Option<&str>,
) -> Prompt {
    let system = inputs
        .system
        .clone()
        .or_else(|| default_system.map(str::to_string));
    percept_pipeline::question_prompt(
        system,
        inputs.history.clone(),
        inputs.question.as_deref(),
        transcripts,
        images,
    )
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
