mod common;

use common::*;
use percept_core::AudioClip;
use percept_whisper::{Options, Task};

fn jfk_ok(model: &percept_whisper::Whisper, file: &str, opts: &Options) {
    let t = model
        .transcribe_file(&root().join("assets/audio").join(file), opts)
        .unwrap();
    assert_eq!(normalise(&t.text), normalise(JFK), "{file}: {:?}", t.text);
    assert!(!t.segments.is_empty());
    let last = t.segments.last().unwrap();
    assert!(
        last.end > 9.0 && last.end <= 13.0,
        "segment end {}",
        last.end
    );
}

#[test]
fn jfk_wav_and_mp3_with_tiny_en() {
    for f in ["jfk.wav", "jfk.mp3"] {
        jfk_ok(tiny(), f, &Options::default());
    }
}

#[test]
fn jfk_wav_and_mp3_with_base_detects_english() {
    for f in ["jfk.wav", "jfk.mp3"] {
        jfk_ok(base(), f, &Options::default());
    }
    let t = base()
        .transcribe_file(&root().join("assets/audio/jfk.wav"), &Options::default())
        .unwrap();
    assert_eq!(t.language.as_deref(), Some("en"));
}

#[test]
fn jfk_with_beam_search() {
    let opts = Options {
        beam_size: 5,
        ..Options::default()
    };
    jfk_ok(tiny(), "jfk.wav", &opts);
}

#[test]
fn jfk_translate_task_on_multilingual_model_stays_english() {
    let opts = Options {
        task: Task::Translate,
        language: Some("en".into()),
        ..Options::default()
    };
    let t = base()
        .transcribe_file(&root().join("assets/audio/jfk.wav"), &opts)
        .unwrap();
    let (err, n) = word_errors(JFK, &t.text);
    assert!(err * 5 <= n, "{:?}", t.text);
}

fn clip(samples: Vec<f32>) -> AudioClip {
    AudioClip {
        source: "synthetic".into(),
        sample_rate: 16_000,
        samples,
    }
}

#[test]
fn silence_noise_and_tone_give_no_words() {
    let n = 16_000 * 12;
    let mut state = 0x2545F4914F6CDD1Du64;
    let noise: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect();
    let tone: Vec<f32> = (0..n)
        .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin())
        .collect();
    // tiny.en is left out on the tone: faster-whisper's own greedy tiny.en writes words on
    // it too (" You're the best." with int8, " ." with float32: the no-speech probability
    // sits at 0.47, just under the 0.6 threshold), so which words come out hangs on rounding.
    let cases = [
        ("silence", vec![0.0; n], vec![tiny(), base()]),
        ("noise", noise, vec![tiny(), base()]),
        ("tone", tone, vec![base()]),
    ];
    for (name, s, models) in cases {
        for m in models {
            let t = m
                .transcribe_clip(&clip(s.clone()), &Options::default())
                .unwrap();
            assert!(
                normalise(&t.text).is_empty(),
                "{name} produced words: {:?}",
                t.text
            );
        }
    }
}

#[test]
fn trailing_second_of_silence_adds_nothing() {
    let jfk = percept_media::decode_file(&root().join("assets/audio/jfk.wav"), 16_000).unwrap();
    let mut s = jfk.samples.clone();
    // 11 s of speech and 20 s of silence: the last window holds about 1 s of silence.
    s.extend(std::iter::repeat_n(0.0, 16_000 * 20));
    let t = tiny()
        .transcribe_clip(&clip(s), &Options::default())
        .unwrap();
    assert_eq!(normalise(&t.text), normalise(JFK));
}

#[test]
fn stereo_44k_equals_mono_16k() {
    let jfk = percept_media::decode_file(&root().join("assets/audio/jfk.wav"), 16_000).unwrap();
    let mut rs = percept_media::MonoResampler::new(16_000, 44_100).unwrap();
    let mut up = Vec::new();
    rs.push(&jfk.samples, &mut up).unwrap();
    rs.finish(&mut up).unwrap();
    let stereo: Vec<f32> = up.iter().flat_map(|&x| [x, x]).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("jfk_44k_stereo.wav");
    write_wav_f32(&p, 44_100, 2, &stereo);
    let a = tiny().transcribe_file(&p, &Options::default()).unwrap();
    let b = tiny()
        .transcribe_file(&root().join("assets/audio/jfk.wav"), &Options::default())
        .unwrap();
    assert_eq!(normalise(&a.text), normalise(&b.text));
}

#[test]
fn initial_prompt_is_accepted() {
    let opts = Options {
        initial_prompt: Some("President Kennedy's inaugural address.".into()),
        ..Options::default()
    };
    jfk_ok(tiny(), "jfk.wav", &opts);
}
