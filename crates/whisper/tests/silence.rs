//! Silence and noise give no words (issue 13, F7): the energy gate skips digital silence
//! without running the model, and Whisper's no-speech rule (no_speech_prob > 0.6 with
//! avg_logprob <= -1.0) drops the windows the gate lets through.

mod common;

use common::*;
use percept_core::AudioClip;
use percept_whisper::{AudioLimits, Options, SliceSource, Timings, WhisperError};
use std::time::Instant;

fn clip(samples: Vec<f32>) -> AudioClip {
    AudioClip {
        source: "synthetic".into(),
        sample_rate: 16_000,
        samples,
    }
}

fn transcribe_timed(samples: &[f32], opts: &Options) -> (percept_core::Transcript, Timings) {
    let mut tm = Timings::default();
    let t = tiny()
        .transcribe_stream(&mut SliceSource(Some(samples)), "synthetic", opts, &mut tm)
        .unwrap();
    (t, tm)
}

/// Uniform white noise in [-amplitude, amplitude) from a fixed xorshift seed.
fn white_noise(n: usize, amplitude: f32, mut state: u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * amplitude
        })
        .collect()
}

#[test]
fn an_hour_of_digital_silence_is_empty_and_fast() {
    let hour = vec![0.0f32; 16_000 * 3600];
    let start = Instant::now();
    let (t, tm) = transcribe_timed(&hour, &Options::default());
    let took = start.elapsed();
    assert!(t.text.is_empty(), "{:?}", t.text);
    assert!(t.segments.is_empty(), "{} segments", t.segments.len());
    assert_eq!((tm.windows, tm.silent_windows), (0, 120));
    eprintln!("an hour of silence took {took:?}");
    assert!(took.as_secs_f64() < 20.0, "took {took:?}");
    // The clip entry point too (it resamples nothing at 16 kHz).
    let t = tiny()
        .transcribe_clip(&clip(hour), &Options::default())
        .unwrap();
    assert!(t.segments.is_empty(), "{:?}", t.text);
}

#[test]
fn ten_seconds_of_white_noise_is_empty() {
    for (amplitude, seed) in [(0.1, 0x2545_F491_4F6C_DD1D), (0.5, 42)] {
        let noise = white_noise(16_000 * 10, amplitude, seed);
        let (t, tm) = transcribe_timed(&noise, &Options::default());
        assert_eq!(
            tm.silent_windows, 0,
            "noise is loud enough to reach the model"
        );
        assert!(
            normalise(&t.text).is_empty(),
            "noise at {amplitude} produced words: {:?}",
            t.text
        );
    }
}

/// Loud noise passes the gate; the no-speech rule is what keeps its invented words out
/// (tiny.en hears "Trooper" in it, with no_speech_prob 0.93 and avg_logprob -5.8).
#[test]
fn noise_is_dropped_by_the_no_speech_rule() {
    let noise = white_noise(16_000 * 10, 0.5, 42);
    let rule_off = Options {
        no_speech_threshold: 1.0,
        ..Options::default()
    };
    let (t, _) = transcribe_timed(&noise, &rule_off);
    assert!(!normalise(&t.text).is_empty(), "the model invents words");
    let s = &t.segments[0];
    assert!(Options::default().is_no_speech(s.no_speech_prob, s.avg_logprob));
    let (t, tm) = transcribe_timed(&noise, &Options::default());
    assert_eq!((tm.windows, tm.silent_windows), (1, 0));
    assert!(t.segments.is_empty(), "{:?}", t.text);
}

#[test]
fn quiet_speech_reaches_the_model() {
    let jfk = percept_media::decode_file(&root().join("assets/audio/jfk.wav"), 16_000).unwrap();
    // 40 dB down: a faint talker, far above the gate.
    let quiet: Vec<f32> = jfk.samples.iter().map(|s| s * 0.01).collect();
    let (_, tm) = transcribe_timed(&quiet, &Options::default());
    assert_eq!((tm.windows, tm.silent_windows), (1, 0));
}

#[test]
fn speech_after_a_silent_window_keeps_its_time() {
    let jfk = percept_media::decode_file(&root().join("assets/audio/jfk.wav"), 16_000).unwrap();
    let mut s = vec![0.0f32; 16_000 * 30];
    s.extend_from_slice(&jfk.samples);
    let (t, tm) = transcribe_timed(&s, &Options::default());
    assert_eq!(tm.silent_windows, 1);
    assert_eq!(normalise(&t.text), normalise(JFK));
    let first = &t.segments[0];
    assert!(first.start >= 30.0 && first.start < 31.0, "{}", first.start);
}

#[test]
fn audio_limits_apply_to_transcribed_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("three_seconds.wav");
    write_wav_f32(&p, 16_000, 1, &vec![0.0; 48_000]);
    let opts = Options {
        audio_limits: AudioLimits::default().with_max_seconds(2),
        ..Options::default()
    };
    let e = tiny().transcribe_file(&p, &opts).unwrap_err();
    assert!(matches!(e, WhisperError::Audio(_)), "{e}");
    assert!(
        e.to_string().contains("longer than the limit of 2 s"),
        "{e}"
    );
}

#[test]
fn jfk_transcript_is_identical_with_and_without_the_gate() {
    let p = root().join("assets/audio/jfk.wav");
    let gated = tiny().transcribe_file(&p, &Options::default()).unwrap();
    let ungated = Options {
        silence_gate_dbfs: None,
        ..Options::default()
    };
    assert_eq!(gated, tiny().transcribe_file(&p, &ungated).unwrap());
    assert_eq!(normalise(&gated.text), normalise(JFK));
}
