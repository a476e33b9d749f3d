//! The models' side of `percept listen`: the speech stage with its tentative-copy cache, and
//! the warm-up before listening.

use percept_core::{AudioClip, FnStage, Prompt, Stage, StageError, Transcript, Untrusted};
use percept_listen::Utterance;
use percept_llm::{Engine, Generation, LlmRequest, LlmStage};
use percept_whisper::{Options, Whisper};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One tiny run of each model before listening, so page faults on the weights and first-use
/// allocations are not paid by the first utterance. Failures here surface on real input.
pub(super) fn warm_up(whisper: &Whisper, engine: &mut percept_llm::Engine) {
    let silence = AudioClip {
        source: "warm-up".into(),
        sample_rate: percept_media::SPEECH_RATE,
        samples: vec![0.0; percept_media::SPEECH_RATE as usize],
    };
    let _ = whisper.transcribe_clip(&silence, &utterance_options());
    let prompt = Prompt {
        question: Some(Untrusted {
            label: "warm-up".into(),
            text: "Hello".into(),
        }),
        ..Prompt::default()
    };
    let params = percept_llm::GenParams {
        max_tokens: 1,
        ..Default::default()
    };
    let never = AtomicBool::new(false);
    let _ = percept_llm::answer(engine, &prompt, &params, &never, &mut |_| {});
    engine.reset();
}

/// Spoken turns are a few seconds long: encoding their own length instead of a 30 s
/// window takes the encoder from about 0.8 s to under 0.1 s of the answer's latency.
fn utterance_options() -> Options {
    Options {
        trim_short_window: true,
        ..Options::default()
    }
}

/// A transcript and when it was ready; `None` for a tentative copy (kept for its final).
pub(super) type Heard = Option<(Transcript, Instant)>;

/// Whisper over utterances. A tentative copy is transcribed while the hangover runs out and
/// kept; its final (same index, start and end point: no speech since) reuses the transcript.
pub(super) fn speech_stage(
    whisper: Whisper,
    compute: Compute,
) -> FnStage<Utterance, Heard, impl FnMut(Utterance) -> Result<Heard, StageError>> {
    let options = utterance_options();
    let mut early: Option<((u64, u64, u64), Transcript)> = None;
    FnStage::new("speech", move |u: Utterance| {
        let key = (u.index, u.start_s.to_bits(), u.end_s.to_bits());
        if !u.tentative {
            if let Some((k, t)) = early.take() {
                if k == key {
                    return Ok(Some((t, Instant::now())));
                }
            }
        }
        let t = {
            let _turn = compute.lock().unwrap_or_else(|p| p.into_inner());
            whisper.transcribe_clip(&u.to_clip(), &options)
        }
        .map_err(|e| StageError::new(e.to_string()))?;
        if u.tentative {
            early = Some((key, t));
            return Ok(None);
        }
        Ok(Some((t, Instant::now())))
    })
}

/// Held while a model computes. Both models spread each operation over every core; run at the
/// same time on a small machine their thread pools fight and each runs several times slower,
/// so the next transcription waits for the answer being written instead.
pub(super) type Compute = Arc<Mutex<()>>;

/// The LLM stage, taking turns with Whisper for the cores.
pub(super) fn llm_stage(
    engine: Engine,
    compute: Compute,
) -> FnStage<LlmRequest, Generation, impl FnMut(LlmRequest) -> Result<Generation, StageError>> {
    let mut stage = LlmStage::new(engine);
    FnStage::new("llm", move |req: LlmRequest| {
        let _turn = compute.lock().unwrap_or_else(|p| p.into_inner());
        stage.process(req)
    })
}
