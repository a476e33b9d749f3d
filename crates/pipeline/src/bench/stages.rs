//! One stage at a time: the LLM's prefill and decode speed, Whisper's time per part of a
//! transcription, CLIP's images per second.

use super::{median, peak_rss_mib};
use crate::def::PipelineDef;
use crate::error::{PipelineError, Result};
use crate::load::{load_clip, load_llm, load_speech, missing_clip_line};
use percept_clip::{Clip, ClipConfig};
use percept_media::image::{decode_image_file, ImageOptions};
use percept_whisper::{Options, Timings};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct LlmBench {
    pub model: String,
    pub arch: String,
    /// "percept" (its own CPU decoder) or "candle".
    pub engine: String,
    pub converted_to_q8_0: usize,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub load_s: f64,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    pub peak_rss_mib: Option<f64>,
}

/// The definition's LLM on `prompt_tokens` of English prose, then `gen_tokens` greedy steps;
/// the median of `repeats` runs.
pub fn llm(
    def: &PipelineDef,
    prompt_tokens: usize,
    gen_tokens: usize,
    repeats: usize,
) -> Result<LlmBench> {
    if prompt_tokens == 0 || gen_tokens == 0 {
        return Err(PipelineError::invalid(
            "--prompt-tokens and --gen-tokens must be > 0",
        ));
    }
    let t = Instant::now();
    let mut engine = load_llm(def)?.engine;
    let load_s = t.elapsed().as_secs_f64();
    let text = "The history of natural language processing generally started in the 1950s, \
                although work can be found from earlier periods. ";
    let unit = engine.tokenizer.encode_untrusted(text)?;
    let prompt: Vec<u32> = unit.iter().cycle().take(prompt_tokens).copied().collect();
    if prompt_tokens + gen_tokens >= engine.context_length() {
        return Err(PipelineError::invalid(format!(
            "prompt + generated tokens exceed the model context of {}",
            engine.context_length()
        )));
    }
    let (mut prefill, mut decode) = (Vec::new(), Vec::new());
    for _ in 0..repeats.max(1) {
        engine.reset();
        let t = Instant::now();
        let (logits, _) = engine.prefill(&prompt)?;
        prefill.push(prompt_tokens as f64 / t.elapsed().as_secs_f64());
        let mut tok = percept_llm::argmax(&logits);
        let t = Instant::now();
        for _ in 0..gen_tokens {
            tok = percept_llm::argmax(&engine.step(tok)?);
        }
        decode.push(gen_tokens as f64 / t.elapsed().as_secs_f64());
    }
    Ok(LlmBench {
        model: engine.path.display().to_string(),
        arch: engine.model.arch.clone(),
        engine: engine.model.engine.to_string(),
        converted_to_q8_0: engine.model.converted_tensors,
        prompt_tokens,
        gen_tokens,
        load_s,
        prefill_tok_s: median(prefill),
        decode_tok_s: median(decode),
        peak_rss_mib: peak_rss_mib(),
    })
}

#[derive(Debug, Serialize)]
pub struct WhisperBench {
    pub model: String,
    pub audio: String,
    pub audio_s: f64,
    pub load_s: f64,
    /// Decoding the file to 16 kHz mono on its own (container, codec, downmix, resample),
    /// before the timed transcription, which decodes it again as it streams.
    pub audio_decode_s: f64,
    pub mel_s: f64,
    pub windows: usize,
    pub encoder_ms_per_window: f64,
    pub decode_s: f64,
    pub decoded_tokens: usize,
    pub fallbacks: usize,
    pub decode_ms_per_token: f64,
    pub total_s: f64,
    pub real_time_factor: f64,
    pub peak_rss_mb: f64,
    pub words: usize,
}

/// One transcription of `audio` with the definition's Whisper, greedy or with `beam`.
pub fn whisper(def: &PipelineDef, audio: &Path, beam: usize) -> Result<WhisperBench> {
    let t0 = Instant::now();
    let speech = load_speech(def)?;
    let load_s = t0.elapsed().as_secs_f64();
    let opts = Options {
        beam_size: beam,
        ..Options::default()
    };
    let t_decode = Instant::now();
    percept_media::decode_file_with(audio, percept_media::SPEECH_RATE, &opts.audio_limits)
        .map_err(|e| PipelineError::Audio(Box::new(e)))?;
    let audio_decode_s = t_decode.elapsed().as_secs_f64();
    let mut tm = Timings::default();
    let t1 = Instant::now();
    let transcript = speech
        .whisper
        .transcribe_file_timed(audio, &opts, &mut tm)?;
    let total_s = t1.elapsed().as_secs_f64();
    Ok(WhisperBench {
        model: speech.id,
        audio: audio.display().to_string(),
        audio_s: tm.audio_secs,
        load_s,
        audio_decode_s,
        mel_s: tm.mel.as_secs_f64(),
        windows: tm.windows,
        encoder_ms_per_window: tm.encoder.as_secs_f64() * 1e3 / tm.windows.max(1) as f64,
        decode_s: tm.decode.as_secs_f64(),
        decoded_tokens: tm.decoded_tokens,
        fallbacks: tm.fallbacks,
        decode_ms_per_token: tm.decode.as_secs_f64() * 1e3 / tm.decoded_tokens.max(1) as f64,
        total_s,
        real_time_factor: total_s / tm.audio_secs.max(1e-9),
        peak_rss_mb: peak_rss_mib().unwrap_or(0.0),
        words: transcript.text.split_whitespace().count(),
    })
}

#[derive(Debug, Serialize)]
pub struct ClipBench {
    pub load_s: f64,
    pub batch: usize,
    pub images_per_s: f64,
    pub encoder_ms_per_image: f64,
    pub preprocess_ms_per_image: f64,
    pub peak_rss_mib: f64,
}

/// CLIP's image tower on `batch` copies of `image`; `def` `None` uses random ViT-B/32
/// weights (the shape `benches/clip_vs_torch.py` compares against).
pub fn clip(
    def: Option<&PipelineDef>,
    image: &Path,
    batch: usize,
    repeats: usize,
) -> Result<ClipBench> {
    let loaded = Instant::now();
    let clip = match def {
        None => Clip::random(&ClipConfig::vit_b32(), &percept_clip::default_device())?,
        Some(def) => load_clip(def)?.ok_or_else(|| PipelineError::invalid(missing_clip_line()))?,
    };
    let load_s = loaded.elapsed().as_secs_f64();
    let image = decode_image_file(image, &ImageOptions::default())?;
    let batch = batch.max(1);
    let (mut pre_ms, mut enc_s) = (Vec::new(), Vec::new());
    clip.embed_pixels(&[clip.pixel_values(&image)], true)?; // warm-up
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let pixels: Vec<Vec<f32>> = (0..batch).map(|_| clip.pixel_values(&image)).collect();
        pre_ms.push(t.elapsed().as_secs_f64() * 1e3 / batch as f64);
        let t = Instant::now();
        clip.embed_pixels(&pixels, true)?;
        enc_s.push(t.elapsed().as_secs_f64());
    }
    let enc = median(enc_s);
    Ok(ClipBench {
        load_s,
        batch,
        images_per_s: batch as f64 / enc,
        encoder_ms_per_image: enc * 1e3 / batch as f64,
        preprocess_ms_per_image: median(pre_ms),
        peak_rss_mib: peak_rss_mib().unwrap_or(0.0),
    })
}
