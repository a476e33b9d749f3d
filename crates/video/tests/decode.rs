//! Videos made at test time with Debian's `ffmpeg` from the bundled images: two scenes of
//! 4 s each (a cat, then an espresso) with a tone as the audio track, in MP4 (H.264 + AAC)
//! and MKV (VP9 + Opus), and a truncated MP4.

#![cfg(feature = "video")]

use percept_video::{decode_file, VideoError, VideoLimits};
use std::path::{Path, PathBuf};
use std::process::Command;

fn images() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/images");
    (root.join("chelsea.png"), root.join("coffee.png"))
}

/// Two 4 s scenes and an 8 s tone; `None` when `ffmpeg` is missing (the test says so).
fn make(dir: &Path, name: &str, codecs: &[&str]) -> Option<PathBuf> {
    let (a, b) = images();
    let out = dir.join(name);
    let mut args: Vec<String> = [
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-loop",
        "1",
        "-t",
        "4",
        "-i",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(a.display().to_string());
    args.extend(["-loop", "1", "-t", "4", "-i"].map(String::from));
    args.push(b.display().to_string());
    args.extend(
        [
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=8:sample_rate=44100",
            "-filter_complex",
            "[0:v]scale=320:240,setsar=1,fps=25[a];[1:v]scale=320:240,setsar=1,fps=25[b];\
             [a][b]concat=n=2:v=1:a=0,format=yuv420p[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-ac",
            "2",
        ]
        .map(String::from),
    );
    args.extend(codecs.iter().map(|s| s.to_string()));
    args.push(out.display().to_string());
    match Command::new("ffmpeg").args(&args).status() {
        Ok(s) if s.success() => Some(out),
        Ok(s) => panic!("ffmpeg failed ({s}) making {name}"),
        Err(_) => {
            eprintln!("SKIP: ffmpeg is not installed (apt-get install ffmpeg)");
            None
        }
    }
}

fn check_scenes(path: &Path) {
    let v = decode_file(path, &VideoLimits::CLI).expect("decodes");
    assert!((v.duration_s - 8.0).abs() < 0.5, "{}", v.duration_s);
    assert_eq!((v.width, v.height), (320, 240));
    let audio = v.audio.expect("an audio track");
    assert_eq!(audio.sample_rate, 16_000);
    assert!(
        (audio.duration_secs() - 8.0).abs() < 0.3,
        "{}",
        audio.duration_secs()
    );
    let rms =
        (audio.samples.iter().map(|s| s * s).sum::<f32>() / audio.samples.len() as f32).sqrt();
    assert!(rms > 0.05, "the tone is there: {rms}");
    let times: Vec<f64> = v.frames.iter().map(|f| f.time_s).collect();
    assert!(times.len() >= 3 && times.len() <= 16, "{times:?}");
    assert_eq!(times[0], 0.0);
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    // The cut at 4 s is seen: a frame in the second scene that differs from the first.
    let scene = v
        .frames
        .iter()
        .find(|f| f.time_s >= 3.9)
        .expect("a frame after the cut");
    assert!(scene.time_s < 4.6, "{times:?}");
    let first = &v.frames[0].image;
    assert_eq!(first.source, "frame at 0.0 s");
    assert_eq!(first.rgb.len(), 320 * 240 * 3);
    let diff: u64 = first
        .rgb
        .iter()
        .zip(&scene.image.rgb)
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    assert!(diff / first.rgb.len() as u64 > 20, "the scenes differ");
    // Few frames asked for: the step widens to cover the whole video.
    let few = decode_file(
        path,
        &VideoLimits {
            max_frames: 2,
            ..VideoLimits::CLI
        },
    )
    .unwrap();
    assert_eq!(few.frames.len(), 2);
    assert!(few.frames[1].time_s >= 3.9);
    let short = decode_file(path, &VideoLimits::CLI.with_max_seconds(5)).unwrap_err();
    assert!(matches!(short, VideoError::TooLong { .. }), "{short}");
}

#[test]
fn mp4_h264_aac() {
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = make(
        dir.path(),
        "scenes.mp4",
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    ) else {
        return;
    };
    check_scenes(&p);
}

#[test]
fn mkv_vp9_opus() {
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = make(
        dir.path(),
        "scenes.mkv",
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "200k",
            "-c:a",
            "libopus",
        ],
    ) else {
        return;
    };
    check_scenes(&p);
}

#[test]
fn truncated_and_hostile_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = make(
        dir.path(),
        "whole.mp4",
        &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    ) else {
        return;
    };
    let bytes = std::fs::read(&p).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = decode_file(&cut, &VideoLimits::CLI)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&cut.display().to_string()), "{err}");
    // Bytes flipped all through the file: an error or a (partial) video, never a panic.
    let mut rng = 0x2545_f491_u64;
    for round in 0..8 {
        let mut bad = bytes.clone();
        for _ in 0..64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = (rng % bad.len() as u64) as usize;
            bad[i] ^= (rng >> 32) as u8 | 1;
        }
        let f = dir.path().join(format!("bad{round}.mp4"));
        std::fs::write(&f, &bad).unwrap();
        let _ = decode_file(&f, &VideoLimits::CLI);
    }
    let err = decode_file(&dir.path().join("missing.mp4"), &VideoLimits::CLI).unwrap_err();
    assert!(err.to_string().contains("missing.mp4"), "{err}");
}
