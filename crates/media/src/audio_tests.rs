use super::*;
use std::fs::File;
use std::io::Write;

/// Builds a RIFF/WAVE file; `fmt_tag` 1 = PCM, 3 = float.
fn wav_bytes(
    rate: u32,
    channels: u16,
    bits: u16,
    fmt_tag: u16,
    data: &[u8],
    claim: u32,
) -> Vec<u8> {
    let block = channels as u32 * bits as u32 / 8;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + claim).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&fmt_tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * block).to_le_bytes());
    v.extend_from_slice(&(block as u16).to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&claim.to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn pcm16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s * 32767.0) as i16).to_le_bytes())
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    let mut f = File::create(&p).unwrap();
    f.write_all(bytes).unwrap();
    p
}

fn tone(rate: u32, secs: f32, hz: f32) -> Vec<f32> {
    let n = (rate as f32 * secs) as usize;
    (0..n)
        .map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
        .collect()
}

fn err_of(p: &Path) -> String {
    match decode_file(p, SPEECH_RATE) {
        Ok(c) => panic!("{} decoded to {} samples", p.display(), c.samples.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn jfk_wav_and_mp3_decode_to_11_seconds() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/audio");
    for name in ["jfk.wav", "jfk.mp3"] {
        let clip = decode_file(&assets.join(name), SPEECH_RATE).unwrap();
        assert_eq!(clip.sample_rate, 16_000);
        let d = clip.duration_secs();
        assert!((d - 11.0).abs() < 0.1, "{name}: {d} s");
        let peak = clip.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.1, "{name}: peak {peak}");
    }
}

#[test]
fn stereo_44k_is_averaged_and_resampled() {
    let dir = tempfile::tempdir().unwrap();
    let left = tone(44_100, 1.0, 440.0);
    let data: Vec<f32> = left.iter().flat_map(|&l| [l, 0.0]).collect();
    let p = write(
        dir.path(),
        "s.wav",
        &wav_bytes(44_100, 2, 16, 1, &pcm16(&data), (data.len() * 2) as u32),
    );
    let clip = decode_file(&p, SPEECH_RATE).unwrap();
    assert_eq!(clip.samples.len(), 16_000);
    let peak = clip.samples[1000..15_000]
        .iter()
        .fold(0f32, |m, s| m.max(s.abs()));
    assert!(
        (peak - 0.25).abs() < 0.02,
        "averaging halves the one-sided tone: {peak}"
    );
}

#[test]
fn float_and_8_bit_wavs_decode() {
    let dir = tempfile::tempdir().unwrap();
    let x = tone(8000, 0.5, 300.0);
    let f32_bytes: Vec<u8> = x.iter().flat_map(|s| s.to_le_bytes()).collect();
    let p = write(
        dir.path(),
        "f.wav",
        &wav_bytes(8000, 1, 32, 3, &f32_bytes, f32_bytes.len() as u32),
    );
    assert_eq!(decode_file(&p, SPEECH_RATE).unwrap().samples.len(), 8000);
    let u8_bytes: Vec<u8> = x.iter().map(|s| ((s * 127.0) + 128.0) as u8).collect();
    let p = write(
        dir.path(),
        "u.wav",
        &wav_bytes(8000, 1, 8, 1, &u8_bytes, u8_bytes.len() as u32),
    );
    assert_eq!(decode_file(&p, SPEECH_RATE).unwrap().samples.len(), 8000);
}

#[test]
fn streaming_chunks_equal_whole_decode() {
    let dir = tempfile::tempdir().unwrap();
    let x = tone(22_050, 3.0, 200.0);
    let p = write(
        dir.path(),
        "t.wav",
        &wav_bytes(22_050, 1, 16, 1, &pcm16(&x), (x.len() * 2) as u32),
    );
    let whole = decode_file(&p, SPEECH_RATE).unwrap().samples;
    let mut s = AudioStream::open(&p, SPEECH_RATE).unwrap();
    let mut chunks = 0;
    let mut joined = Vec::new();
    while let Some(c) = s.next_chunk().unwrap() {
        chunks += 1;
        joined.extend(c);
    }
    assert!(chunks > 1);
    assert_eq!(joined, whole);
    assert_eq!(s.source_rate(), 22_050);
}

#[test]
fn header_claiming_more_data_keeps_the_usable_part() {
    let dir = tempfile::tempdir().unwrap();
    let x = tone(16_000, 1.0, 300.0);
    let p = write(
        dir.path(),
        "long.wav",
        &wav_bytes(16_000, 1, 16, 1, &pcm16(&x), 10 * 32_000),
    );
    let clip = decode_file(&p, SPEECH_RATE).unwrap();
    assert!(
        (clip.duration_secs() - 1.0).abs() < 0.05,
        "{}",
        clip.duration_secs()
    );
}

#[test]
fn bad_inputs_give_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (write(d, "empty.wav", b""), "empty"),
        (
            write(d, "text.wav", b"hello, this is not audio at all\n"),
            "not a recognised",
        ),
        (
            write(
                d,
                "random.wav",
                &(0..4096u32)
                    .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                    .collect::<Vec<_>>(),
            ),
            "",
        ),
        (
            write(d, "trunc.wav", &wav_bytes(16_000, 1, 16, 1, &[], 0)[..20]),
            "",
        ),
        (
            write(
                d,
                "rate0.wav",
                &wav_bytes(0, 1, 16, 1, &pcm16(&[0.1; 100]), 200),
            ),
            "",
        ),
        (
            write(
                d,
                "chan0.wav",
                &wav_bytes(16_000, 0, 16, 1, &pcm16(&[0.1; 100]), 200),
            ),
            "",
        ),
        (
            write(d, "nodata.wav", &wav_bytes(16_000, 1, 16, 1, &[], 0)),
            "",
        ),
        (d.join("missing.wav"), "cannot open"),
    ];
    for (p, want) in cases {
        let e = err_of(&p);
        assert!(
            e.contains(&p.display().to_string()),
            "error must name the file: {e}"
        );
        assert!(e.contains(want), "{e}");
    }
    let folder = d.join("x.wav");
    std::fs::create_dir(&folder).unwrap();
    assert!(err_of(&folder).contains("is a directory"));
}

#[test]
fn resample_clip_converts_48k() {
    let clip = AudioClip {
        source: "mic".into(),
        sample_rate: 48_000,
        samples: tone(48_000, 1.0, 500.0),
    };
    let out = resample_clip(&clip, SPEECH_RATE).unwrap();
    assert_eq!(out.samples.len(), 16_000);
    let bad = AudioClip {
        sample_rate: 0,
        ..clip
    };
    assert!(resample_clip(&bad, SPEECH_RATE)
        .unwrap_err()
        .to_string()
        .contains("mic"));
}
