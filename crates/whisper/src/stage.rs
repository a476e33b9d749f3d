//! The speech stage for the pipeline: AudioClip in, Transcript out.

use crate::{Options, Whisper};
use percept_core::{AudioClip, Stage, StageError, Transcript};

pub struct SpeechStage {
    pub whisper: Whisper,
    pub options: Options,
}

impl Stage for SpeechStage {
    type Input = AudioClip;
    type Output = Transcript;

    fn name(&self) -> &str {
        "speech"
    }

    fn process(&mut self, input: AudioClip) -> Result<Transcript, StageError> {
        self.whisper
            .transcribe_clip(&input, &self.options)
            .map_err(|e| StageError::new(e.to_string()))
    }
}
