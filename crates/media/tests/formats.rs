//! The containers and codecs of phone voice notes, browser recordings and memos (issue 15):
//! Ogg/Opus, WebM/Opus, Matroska/Opus and AAC in M4A, MP4 and MOV, each encoded at test time
//! by Debian's `opusenc` and `ffmpeg` from one known signal, decode through the same path as
//! WAV: the same length, the tone where it was, at its pitch and level.

mod common;

use common::wav;
use percept_media::{decode_file, decode_file_with, AudioLimits, OPUS_ENABLED, SPEECH_RATE};
use std::path::{Path, PathBuf};
use std::process::Command;

/// 0.5 s of silence, 1 s of a 440 Hz tone at half scale, 0.5 s of silence.
const LEAD_S: f64 = 0.5;
const TONE_S: f64 = 1.0;
const TOTAL_S: f64 = 2.0;
const TONE_HZ: f64 = 440.0;

fn signal_wav(path: &Path, rate: u32, channels: u16) {
    let n = (TOTAL_S * f64::from(rate)) as usize;
    let mut data = Vec::with_capacity(n * usize::from(channels) * 2);
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let v = if (LEAD_S..LEAD_S + TONE_S).contains(&t) {
            0.5 * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin()
        } else {
            0.0
        };
        for _ in 0..channels {
            data.extend_from_slice(&((v * 32767.0) as i16).to_le_bytes());
        }
    }
    std::fs::write(path, wav(rate, channels, 16, &data)).expect("write wav");
}

/// Runs an encoder; a missing one fails with the command that installs it.
fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run `{program}` ({e}): run ./scripts/setup --test to install it")
        });
    assert!(status.success(), "{program} {args:?} failed");
}

fn ffmpeg(input: &Path, codec_args: &[&str], out: &Path) {
    let mut args = vec!["-nostdin", "-loglevel", "error", "-y", "-i"];
    args.push(input.to_str().expect("utf8"));
    args.extend_from_slice(codec_args);
    args.push(out.to_str().expect("utf8"));
    run("ffmpeg", &args);
}

/// What a decoded clip says about the signal.
#[derive(Debug)]
struct Measured {
    duration_s: f64,
    onset_s: f64,
    tone_rms: f64,
    tone_hz: f64,
}

fn measure(samples: &[f32]) -> Measured {
    let rate = f64::from(SPEECH_RATE);
    let onset = samples
        .iter()
        .position(|s| s.abs() > 0.1)
        .expect("the tone is there");
    // The middle of the tone, away from its edges.
    let from = ((LEAD_S + 0.25) * rate) as usize;
    let to = ((LEAD_S + TONE_S - 0.25) * rate) as usize;
    let mid = &samples[from..to];
    let rms = (mid.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / mid.len() as f64).sqrt();
    let crossings = mid
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    Measured {
        duration_s: samples.len() as f64 / rate,
        onset_s: onset as f64 / rate,
        tone_rms: rms,
        tone_hz: crossings as f64 / 2.0 / (mid.len() as f64 / rate),
    }
}

struct Fixtures {
    _dir: tempfile::TempDir,
    wav: PathBuf,
    encoded: Vec<(PathBuf, &'static str)>,
}

/// The signal as WAV and in each format (name, what it stands for).
fn fixtures() -> Fixtures {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let wav = d.join("signal.wav");
    signal_wav(&wav, 22_050, 1);
    let stereo = d.join("stereo48k.wav");
    signal_wav(&stereo, 48_000, 2);
    let mut encoded = Vec::new();
    let voice = d.join("voice-note.opus");
    run(
        "opusenc",
        &[
            "--quiet",
            wav.to_str().expect("utf8"),
            voice.to_str().expect("utf8"),
        ],
    );
    encoded.push((voice, "Ogg/Opus voice note (opusenc)"));
    let webm = d.join("recording.webm");
    ffmpeg(&stereo, &["-c:a", "libopus"], &webm);
    encoded.push((webm, "WebM/Opus stereo 48 kHz (a browser's MediaRecorder)"));
    // Written to a pipe, as a browser's recorder streams it: no SeekHead, no Cues, unknown
    // Segment and Cluster sizes.
    let streamed = d.join("streamed.webm");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(&stereo)
        .args(["-c:a", "libopus", "-f", "webm", "pipe:1"])
        .output()
        .expect("run ffmpeg: run ./scripts/setup --test to install it");
    assert!(out.status.success(), "ffmpeg to a pipe failed");
    std::fs::write(&streamed, out.stdout).expect("write");
    encoded.push((streamed, "WebM/Opus streamed (unknown sizes)"));
    let mkv = d.join("track.mkv");
    ffmpeg(&wav, &["-c:a", "libopus"], &mkv);
    encoded.push((mkv, "Matroska/Opus"));
    let ogg = d.join("ffmpeg.ogg");
    ffmpeg(&wav, &["-c:a", "libopus"], &ogg);
    encoded.push((ogg, "Ogg/Opus from ffmpeg"));
    for (name, what) in [
        ("memo.m4a", "M4A/AAC memo"),
        ("clip.mp4", "MP4/AAC"),
        ("clip.mov", "MOV/AAC"),
    ] {
        let p = d.join(name);
        ffmpeg(&wav, &["-c:a", "aac", "-b:a", "96k"], &p);
        encoded.push((p, what));
    }
    Fixtures {
        _dir: dir,
        wav,
        encoded,
    }
}

#[test]
fn every_format_decodes_to_the_same_signal_as_the_wav() {
    let fx = fixtures();
    let wav = measure(&decode_file(&fx.wav, SPEECH_RATE).expect("wav").samples);
    eprintln!("wav: {wav:?}");
    for (path, what) in &fx.encoded {
        let is_opus = what.contains("Opus");
        let clip = match decode_file(path, SPEECH_RATE) {
            Ok(c) => c,
            Err(e) if is_opus && !OPUS_ENABLED => {
                assert!(e.to_string().contains("without Opus"), "{e}");
                continue;
            }
            Err(e) => panic!("{what}: {e}"),
        };
        assert_eq!(clip.sample_rate, SPEECH_RATE);
        let m = measure(&clip.samples);
        eprintln!("{what}: {m:?}");
        // Opus's encoder pads the end to a whole frame (up to 20 ms, a few ms more with
        // priming); AAC keeps its 1024-sample priming, which symphonia 0.5 does not trim from
        // MP4 (46 ms at 22 kHz).
        assert!(
            (TOTAL_S - 0.005..TOTAL_S + 0.1).contains(&m.duration_s),
            "{what}: {m:?}"
        );
        // The pre-skip is dropped, so Opus starts where the WAV does (it would be 6.5 ms
        // late otherwise).
        let late = if is_opus { 0.002 } else { 0.05 };
        assert!(
            (m.onset_s - wav.onset_s).abs() < late,
            "{what}: onset {} s, the wav's {} s",
            m.onset_s,
            wav.onset_s
        );
        assert!(
            (m.tone_rms / wav.tone_rms - 1.0).abs() < 0.05,
            "{what}: {m:?}"
        );
        assert!((m.tone_hz / TONE_HZ - 1.0).abs() < 0.02, "{what}: {m:?}");
    }
}

/// Every cut of every format either decodes what is left or fails with an error that names
/// the file (Ogg always fails: its last page says where the stream ends); nothing panics,
/// hangs or allocates without bound.
#[test]
fn truncated_files_give_the_usable_part_or_an_error_naming_the_file() {
    let fx = fixtures();
    let dir = tempfile::tempdir().expect("tmp");
    for (path, what) in &fx.encoded {
        let bytes = std::fs::read(path).expect("read");
        let ext = path.extension().and_then(|e| e.to_str()).expect("ext");
        let mut cuts: Vec<usize> = (1..40).map(|i| bytes.len() * i / 40).collect();
        cuts.extend([1, 4, 16, 27, 28, 40, 64, 100, 200]);
        for cut in cuts {
            let p = dir.path().join(format!("cut-{cut}.{ext}"));
            std::fs::write(&p, &bytes[..cut]).expect("write");
            let result = decode_file(&p, SPEECH_RATE);
            // An Ogg stream must end with its end-of-stream page, so every cut shows.
            if bytes.starts_with(b"OggS") && cut >= 4 {
                let e = result.expect_err("a cut Ogg file is an error");
                assert!(e.to_string().contains("the file ends early"), "{what}: {e}");
                continue;
            }
            match result {
                Ok(clip) => assert!(
                    clip.samples.len() as f64 / f64::from(SPEECH_RATE) < TOTAL_S + 0.1,
                    "{what} cut at {cut}"
                ),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("cut-{cut}.{ext}")), "{what}: {msg}");
                }
            }
        }
    }
}

#[test]
fn an_ogg_opus_file_cut_inside_its_headers_is_a_clear_error() {
    let fx = fixtures();
    let (voice, _) = &fx.encoded[0];
    let bytes = std::fs::read(voice).expect("read");
    let dir = tempfile::tempdir().expect("tmp");
    let cut = dir.path().join("cut.opus");
    // The first page (OggS + OpusHead) is 47 bytes; 40 ends inside the OpusHead.
    std::fs::write(&cut, &bytes[..40]).expect("write");
    let e = decode_file(&cut, SPEECH_RATE).expect_err("a cut header is not audio");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: the file ends early (cut short, or still being written)",
            cut.display()
        )
    );
}

#[test]
fn opus_is_held_to_the_same_duration_limit() {
    if !OPUS_ENABLED {
        return;
    }
    let fx = fixtures();
    for (path, what) in &fx.encoded {
        let e = decode_file_with(path, SPEECH_RATE, &AudioLimits::CLI.with_max_seconds(1))
            .expect_err("2 s is over a 1 s cap");
        assert!(
            e.to_string().contains("longer than the limit of 1 s"),
            "{what}: {e}"
        );
    }
}

/// Batch tells a recording from a video by its tracks: every fixture here is audio only, and
/// the same containers with a picture track are not.
#[test]
fn audio_only_containers_are_told_from_videos() {
    let fx = fixtures();
    for (path, what) in &fx.encoded {
        assert!(percept_media::is_audio_only(path), "{what}");
    }
    let dir = tempfile::tempdir().expect("tmp");
    for (name, video) in [("v.mp4", "libx264"), ("v.webm", "libvpx-vp9")] {
        let p = dir.path().join(name);
        let mut args = vec!["-nostdin", "-loglevel", "error", "-y"];
        args.extend_from_slice(&["-f", "lavfi", "-i", "testsrc=size=64x64:rate=5:duration=1"]);
        args.extend_from_slice(&["-i", fx.wav.to_str().expect("utf8"), "-shortest"]);
        args.extend_from_slice(&["-c:v", video, p.to_str().expect("utf8")]);
        run("ffmpeg", &args);
        assert!(
            !percept_media::is_audio_only(&p),
            "{name} has a video track"
        );
    }
    assert!(!percept_media::is_audio_only(
        &dir.path().join("missing.webm")
    ));
}
