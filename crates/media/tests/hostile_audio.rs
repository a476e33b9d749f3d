//! Hostile audio headers (issue 13, F1): each is refused with a typed error before the
//! decoder or resampler is sized from it. A counting allocator measures the peak heap use of
//! the decoding thread, so a regression shows up as a failed bound, not as a slow test or an
//! abort.

mod common;

use common::wav;
use percept_media::{decode_file_with, AudioError, AudioLimits, AudioStream, SPEECH_RATE};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // try_with: the thread may be tearing its locals down.
    let _ = LIVE.try_with(|l| {
        let now = l.get() + delta;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // A moving realloc briefly holds both blocks; count the larger for the peak.
            track(new_size as isize);
            track(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes this thread held above its level at the start of `f`.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - base).max(0) as usize)
}

const MB: usize = 1 << 20;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

fn decode_err(p: &Path, limits: &AudioLimits) -> (AudioError, usize) {
    let (r, peak) = peak_during(|| decode_file_with(p, SPEECH_RATE, limits));
    match r {
        Ok(c) => panic!("{} decoded to {} samples", p.display(), c.samples.len()),
        Err(e) => (e, peak),
    }
}

#[test]
fn absurd_sample_rates_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [u32::MAX, 1, 999, 384_001, 0] {
        let bytes = wav(rate, 1, 16, &[0; 64]);
        assert_eq!(bytes.len(), 108);
        let p = write(dir.path(), &format!("rate{rate}.wav"), &bytes);
        let (e, peak) = decode_err(&p, &AudioLimits::default());
        assert!(
            matches!(e, AudioError::SampleRate { rate: r, .. } if r == rate),
            "{rate} Hz: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&p.display().to_string()) && msg.contains(&format!("{rate} Hz")),
            "{msg}"
        );
        assert!(peak < 4 * MB, "{rate} Hz: {peak} bytes held while refusing");
    }
}

#[test]
fn rates_at_the_limits_decode() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [1_000u32, 384_000] {
        let p = write(
            dir.path(),
            "edge.wav",
            &wav(rate, 1, 16, &vec![0; rate as usize]),
        );
        let (r, peak) = peak_during(|| decode_file_with(&p, SPEECH_RATE, &AudioLimits::SERVER));
        let clip = r.unwrap_or_else(|e| panic!("{rate} Hz: {e}"));
        assert_eq!(clip.samples.len(), 8_000, "{rate} Hz: half a second");
        assert!(peak < 64 * MB, "{rate} Hz: {peak} bytes");
    }
}

#[test]
fn channel_counts_outside_the_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "c33.wav", &wav(16_000, 33, 16, &[0; 66 * 4]));
    let (e, _) = decode_err(&p, &AudioLimits::default());
    assert!(
        matches!(e, AudioError::TooManyChannels { channels: 33, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("c33.wav: 33 channels"), "{e}");
    let p = write(dir.path(), "c0.wav", &wav(16_000, 0, 16, &[0; 64]));
    let (e, _) = decode_err(&p, &AudioLimits::default());
    assert!(
        e.to_string()
            .contains("c0.wav: invalid audio stream: 0 channels"),
        "{e}"
    );
}

/// 8-bit 1 kHz mono keeps an hour-long file at 3.6 MB.
fn long_quiet_wav(dir: &Path, secs: usize) -> PathBuf {
    write(dir, "long.wav", &wav(1_000, 1, 8, &vec![128; 1_000 * secs]))
}

#[test]
fn duration_over_the_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = long_quiet_wav(dir.path(), 3);
    let (e, _) = decode_err(&p, &AudioLimits::default().with_max_seconds(2));
    assert!(
        matches!(e, AudioError::TooLong { max_seconds: 2, .. }),
        "{e}"
    );
    assert!(e
        .to_string()
        .contains("long.wav: audio is longer than the limit of 2 s"));
    let ok = decode_file_with(&p, SPEECH_RATE, &AudioLimits::default().with_max_seconds(3));
    assert_eq!(ok.unwrap().samples.len(), 48_000);
}

#[test]
fn server_preset_refuses_what_the_cli_default_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let secs = AudioLimits::SERVER.max_seconds as usize + 1;
    let p = long_quiet_wav(dir.path(), secs);
    let mut s = AudioStream::open_with(&p, 1_000, &AudioLimits::server()).unwrap();
    let mut out = Vec::new();
    let e = loop {
        match s.read_into(&mut out) {
            Ok(true) => {}
            Ok(false) => panic!("decoded {} samples past the cap", out.len()),
            Err(e) => break e,
        }
    };
    assert!(matches!(e, AudioError::TooLong { .. }), "{e}");
    assert!(out.len() <= AudioLimits::SERVER.max_seconds as usize * 1_000);
    let clip = decode_file_with(&p, 1_000, &AudioLimits::default()).unwrap();
    assert_eq!(clip.samples.len(), secs * 1_000);
}

#[test]
fn target_rate_outside_the_limits_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ok.wav", &wav(16_000, 1, 16, &[0; 640]));
    let e = AudioStream::open_with(&p, 1, &AudioLimits::default())
        .err()
        .unwrap();
    assert!(matches!(e, AudioError::SampleRate { rate: 1, .. }), "{e}");
}

#[test]
fn decoding_holds_about_one_copy_of_the_output() {
    let dir = tempfile::tempdir().unwrap();
    // 60 s of 44.1 kHz stereo (10.6 MB on disk) becomes 3.84 MB of 16 kHz f32.
    let frames = 44_100 * 60;
    let data: Vec<u8> = (0..frames * 2)
        .flat_map(|i| (((i as f32 * 0.01).sin() * 8_000.0) as i16).to_le_bytes())
        .collect();
    let p = write(dir.path(), "big.wav", &wav(44_100, 2, 16, &data));
    drop(data);
    let (clip, peak) = peak_during(|| decode_file_with(&p, SPEECH_RATE, &AudioLimits::SERVER));
    let out_bytes = clip.unwrap().samples.len() * 4;
    assert_eq!(out_bytes, 16_000 * 60 * 4);
    // A growing vector may briefly hold its old and new buffers (up to 3x its length);
    // holding the file at its source rate (21 MB of f32 here) would break the bound.
    assert!(
        peak < 3 * out_bytes + 4 * MB,
        "peak {peak} bytes for {out_bytes} bytes of output"
    );
}

/// MP4s found by the `audio` fuzz target (`scripts/fuzz`): sample tables declaring up to
/// 2^32 entries, and a `hdlr` atom larger than the file. symphonia sized its buffers from
/// those declarations before reading an entry (66 GB for the first; the allocation failed
/// and aborted the process, CLI and server alike); each is refused before symphonia opens it.
#[test]
fn mp4_sizes_past_the_file_are_refused_before_symphonia_allocates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    for name in [
        "stsc_66gb.m4a",
        "stts_34gb.m4a",
        "stts_1gb.m4a",
        "hdlr_1_6gb.m4a",
    ] {
        let (e, peak) = decode_err(&dir.join(name), &AudioLimits::SERVER);
        assert!(peak < 4 * MB, "{name}: peak {peak} bytes");
        match e {
            AudioError::Invalid { reason, .. } => {
                assert!(reason.contains("table declares"), "{name}: {reason}")
            }
            AudioError::Truncated { .. } => {}
            e => panic!("{name}: {e}"),
        }
    }
}
