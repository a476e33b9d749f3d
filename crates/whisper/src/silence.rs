//! The energy gate in front of the encoder: a 30 s window whose loudest 20 ms frame is far
//! below any speech level is skipped without running the model.
//!
//! The log-mel is clamped 80 dB below its own maximum, so to the model a window of digital
//! silence or faint hiss fills the same range as speech, and it answers with stock phrases
//! at high confidence. Whisper's no-speech rule keeps those, because it also asks for a low
//! average log-probability: tiny.en says " you" to 30 s of zeros with no_speech_prob 0.95
//! and avg_logprob -0.69, which is how an hour of silence became 199 segments of "you".
//! Speech, even quiet speech, has frames tens of dB above the gate, and the loudest frame
//! (not the window's mean) decides, so one short word in a silent window still reaches the
//! decoder.

/// Samples per gate frame: 20 ms at 16 kHz.
const FRAME: usize = 320;

/// Default gate level in dB relative to full scale. Speech in an ordinary recording peaks
/// around -20 dBFS and a quiet, distant talker around -45 dBFS; -60 dBFS is about the
/// noise floor of a quiet room through a consumer microphone.
pub const DEFAULT_SILENCE_GATE_DBFS: f32 = -60.0;

/// RMS level of the loudest 20 ms frame of `samples`, in dBFS (`-inf` for digital silence
/// or an empty slice).
pub fn peak_frame_dbfs(samples: &[f32]) -> f32 {
    let loudest = samples
        .chunks(FRAME)
        .map(|f| f.iter().map(|&s| s * s).sum::<f32>() / f.len() as f32)
        // f32::max would drop NaN; keep it so a broken window is never taken for silence.
        .fold(0f32, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        });
    10.0 * loudest.log10()
}

/// True when no frame of `samples` reaches `gate_dbfs`.
pub fn is_silent(samples: &[f32], gate_dbfs: f32) -> bool {
    // NaN compares false, so a window with NaN samples goes to the decoder.
    peak_frame_dbfs(samples) < gate_dbfs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_minus_infinity_and_silent() {
        assert_eq!(peak_frame_dbfs(&[0.0; 16_000]), f32::NEG_INFINITY);
        assert!(is_silent(&[0.0; 16_000], DEFAULT_SILENCE_GATE_DBFS));
        assert!(is_silent(&[], DEFAULT_SILENCE_GATE_DBFS));
    }

    #[test]
    fn full_scale_square_is_zero_dbfs() {
        let x: Vec<f32> = (0..1600)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert!(peak_frame_dbfs(&x).abs() < 1e-4);
    }

    #[test]
    fn one_short_loud_frame_keeps_a_window() {
        let mut x = vec![0.0f32; 16_000 * 30];
        // 40 ms at -40 dBFS in 30 s of silence.
        for s in &mut x[100_000..100_640] {
            *s = 0.01;
        }
        assert!(!is_silent(&x, DEFAULT_SILENCE_GATE_DBFS));
        // A hiss at -70 dBFS is gated.
        let hiss: Vec<f32> = (0..16_000)
            .map(|i| if i % 2 == 0 { 3e-4 } else { -3e-4 })
            .collect();
        assert!(is_silent(&hiss, DEFAULT_SILENCE_GATE_DBFS));
    }

    #[test]
    fn nan_is_not_silence() {
        assert!(!is_silent(&[f32::NAN; 400], DEFAULT_SILENCE_GATE_DBFS));
    }
}
