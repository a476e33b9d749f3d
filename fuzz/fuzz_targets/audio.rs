//! Audio decode + resample: any bytes as an audio file, decoded to 16 kHz mono the way
//! `percept transcribe`, batch and the server's `input_audio` do (probe, limits, symphonia
//! or libopus, downmix, rubato).
#![no_main]

use libfuzzer_sys::fuzz_target;
use percept_media::{decode_file_with, AudioLimits, SPEECH_RATE};

fuzz_target!(|data: &[u8]| {
    // No extension: the content decides the format, as for an upload with a wrong name.
    let path = percept_fuzz::scratch_file("input", data);
    // 10 s keeps one execution short; the cap itself is what is checked, not its size.
    let limits = AudioLimits::CLI.with_max_seconds(10);
    // percept-media turns panics inside symphonia into errors on purpose; only a panic
    // that escapes that guard is a finding.
    percept_fuzz::run_catching_only_escaped_panics(|| {
        if let Ok(clip) = decode_file_with(&path, SPEECH_RATE, &limits) {
            assert_eq!(clip.sample_rate, SPEECH_RATE);
            // Within the cap, plus the resampler's flush.
            assert!(clip.samples.len() <= 11 * SPEECH_RATE as usize);
        }
    });
});
