//! The loaded model bundle and its file/clip entry points.

use crate::filters::LogitRules;
use crate::mel::MelSpec;
use crate::model::{Precision, Whisper as Model};
use crate::tokens::WhisperTokenizer;
use crate::transcribe::{Options, SliceSource, Timings};
use crate::weights::Weights;
use candle_core::Device;
use percept_core::{AudioClip, Transcript};
use percept_media::{AudioError, AudioStream, SPEECH_RATE};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    #[error("{path}: bad Whisper model: {reason}")]
    Model { path: String, reason: String },
    #[error("{path}: bad tokenizer: {reason}")]
    Tokenizer { path: String, reason: String },
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("invalid option: {0}")]
    Options(String),
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// A ready-to-run Whisper: weights, tokenizer, logit rules and the mel front end.
pub struct Whisper {
    pub(crate) model: Model,
    pub(crate) tokenizer: WhisperTokenizer,
    pub(crate) rules: LogitRules,
    pub(crate) mel: MelSpec,
}

impl Whisper {
    /// Loads a model directory (CTranslate2 or Hugging Face layout) on `device`, with the
    /// decoder in Q8_0 on the CPU ([`Precision::Int8`]).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, WhisperError> {
        Self::load_with(dir, device, Precision::default())
    }

    /// [`Whisper::load`] with the decoder's weights held as `precision` says.
    pub fn load_with(
        dir: &Path,
        device: &Device,
        precision: Precision,
    ) -> Result<Self, WhisperError> {
        let weights = Weights::load(dir, device)?;
        let dims = weights.dims.clone();
        let tokenizer = WhisperTokenizer::load(dir, dims.n_vocab)?;
        let model = Model::new(weights, precision).map_err(|e| WhisperError::Model {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let sp = tokenizer.sp.clone();
        let mut suppress = tokenizer.non_speech_tokens();
        suppress.extend([
            sp.transcribe,
            sp.translate,
            sp.sot,
            sp.sot_prev,
            sp.sot_lm,
            sp.no_speech,
        ]);
        suppress.sort_unstable();
        suppress.dedup();
        let mut blank = tokenizer.encode(" ");
        blank.push(sp.eot);
        let rules = LogitRules {
            suppress,
            blank,
            sp,
            timestamps: true,
            max_initial_timestamp: 50,
        };
        Ok(Whisper {
            mel: MelSpec::new(dims.n_mels),
            model,
            tokenizer,
            rules,
        })
    }

    pub fn dims(&self) -> &crate::weights::Dims {
        &self.model.dims
    }

    pub fn is_multilingual(&self) -> bool {
        self.tokenizer.multilingual
    }

    /// Decodes and transcribes an audio file, streaming it from disk.
    pub fn transcribe_file(&self, path: &Path, opts: &Options) -> Result<Transcript, WhisperError> {
        self.transcribe_file_timed(path, opts, &mut Timings::default())
    }

    pub fn transcribe_file_timed(
        &self,
        path: &Path,
        opts: &Options,
        timings: &mut Timings,
    ) -> Result<Transcript, WhisperError> {
        let mut stream = AudioStream::open_with(path, SPEECH_RATE, &opts.audio_limits)?;
        let name = stream.path().to_string();
        self.transcribe_stream(&mut stream, &name, opts, timings)
    }

    /// Transcribes an in-memory clip at any sample rate.
    pub fn transcribe_clip(
        &self,
        clip: &AudioClip,
        opts: &Options,
    ) -> Result<Transcript, WhisperError> {
        let clip16;
        let clip = if clip.sample_rate == SPEECH_RATE {
            clip
        } else {
            clip16 = percept_media::resample_clip(clip, SPEECH_RATE)?;
            &clip16
        };
        let mut src = SliceSource(Some(&clip.samples));
        self.transcribe_stream(&mut src, &clip.source, opts, &mut Timings::default())
    }
}
