//! The video demuxer and decoders: any bytes as an upload, decoded the way `ask --video`,
//! batch and the server do (FFmpeg's probe, the declared-size and duration limits, the
//! audio track to 16 kHz mono, frames scaled and sampled by time and scene change).
//! Only percept's Rust side is instrumented, so coverage guides the fuzzer less here than
//! in the other targets; FFmpeg's own C code is fuzzed upstream (OSS-Fuzz).
#![no_main]

use libfuzzer_sys::fuzz_target;
use percept_video::{decode_bytes, VideoLimits};

fuzz_target!(|data: &[u8]| {
    // A short cap keeps one execution short; the cap itself is what is checked.
    let limits = VideoLimits {
        max_frames: 4,
        frame_side: 64,
        ..VideoLimits::SERVER.with_max_seconds(10)
    };
    // percept-video turns a panic inside the bindings into an error on purpose; only a
    // panic that escapes that guard is a finding.
    percept_fuzz::run_catching_only_escaped_panics(|| {
        if let Ok(video) = decode_bytes("upload", data, None, &limits) {
            assert!(video.frames.len() <= limits.max_frames);
            for f in &video.frames {
                assert!(f.image.width.max(f.image.height) <= limits.frame_side);
            }
            if let Some(clip) = &video.audio {
                assert!(clip.samples.len() <= 11 * clip.sample_rate as usize);
            }
        }
    });
});
