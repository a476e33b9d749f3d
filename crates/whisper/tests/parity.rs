//! Synthetic speech (espeak-ng clips in several voices, rates and formats) and parity with
//! faster-whisper's greedy transcripts (tests/fixtures/whisper/faster_whisper.json, written
//! by scripts/fixtures/whisper_reference.py from the same model.bin files): the float32
//! decoder word for word with faster-whisper float32, the default Q8_0 decoder (and the
//! opt-in Q8_0 encoder) held to faster-whisper int8's word error rate (int8 rounding
//! differs between the two, so the words may differ where the models are unsure; the error
//! rate may not grow).

mod common;

use common::*;
use percept_whisper::{Options, Precision, Whisper};
use std::sync::OnceLock;

fn sentences() -> Vec<(String, String)> {
    let tsv = std::fs::read_to_string(root().join("tests/fixtures/whisper/speech/sentences.tsv"))
        .expect("sentences.tsv");
    tsv.lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t'))
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

#[test]
fn espeak_sentences_word_error_rate_at_most_10_percent() {
    let (mut errors, mut words) = (0, 0);
    let mut report = String::new();
    for (file, text) in sentences() {
        let p = root().join("tests/fixtures/whisper/speech").join(&file);
        let t = tiny().transcribe_file(&p, &Options::default()).unwrap();
        let (e, n) = word_errors(&text, &t.text);
        report += &format!("{file}: {e}/{n} {:?}\n", t.text);
        assert!(e * 3 <= n, "{file}: too many errors\n{report}");
        errors += e;
        words += n;
    }
    assert!(words > 50);
    assert!(errors * 10 <= words, "WER {errors}/{words}\n{report}");
}

fn fixture() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/whisper/faster_whisper.json"))
            .unwrap(),
    )
    .unwrap()
}

fn float32(model_id: &str) -> &'static Whisper {
    static TINY: OnceLock<Whisper> = OnceLock::new();
    static BASE: OnceLock<Whisper> = OnceLock::new();
    let cell = if model_id == "whisper-base" {
        &BASE
    } else {
        &TINY
    };
    cell.get_or_init(|| load_with(model_id, Precision::Float32))
}

fn check_parity(model_id: &str) {
    let fixture = fixture();
    let clips = fixture["models"][model_id]
        .as_object()
        .expect("model in fixture");
    let model = float32(model_id);
    let mut mismatches = Vec::new();
    for (clip, want) in clips {
        let t = model
            .transcribe_file(&root().join(clip), &Options::default())
            .unwrap();
        let want = want["text"].as_str().unwrap_or_default();
        if normalise(&t.text) != normalise(want) {
            mismatches.push(format!(
                "{clip}:\n  percept:        {:?}\n  faster-whisper: {want:?}",
                t.text
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{model_id}:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn parity_with_faster_whisper_tiny_en() {
    check_parity("whisper-tiny.en");
}

#[test]
fn parity_with_faster_whisper_base() {
    check_parity("whisper-base");
}

/// What each fixture clip says: jfk's speech, or its line in sentences.tsv.
fn truth(clip: &str) -> String {
    if clip.starts_with("assets/audio/jfk") {
        return JFK.to_string();
    }
    let name = clip.rsplit('/').next().unwrap_or(clip);
    sentences()
        .into_iter()
        .find(|(f, _)| f == name)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("{clip}: not in sentences.tsv"))
}

/// The default (Q8_0) decoder's word error rate over the fixture clips is at most faster-whisper
/// int8's plus 0.02, the margin the issue allows against float32.
fn check_int8(model_id: &str) {
    let model = if model_id == "whisper-base" {
        base()
    } else {
        tiny()
    };
    check_int8_with(model_id, model);
}

fn check_int8_with(model_id: &str, model: &Whisper) {
    let fixture = fixture();
    let clips = fixture["int8"][model_id]
        .as_object()
        .expect("int8 texts in fixture");
    let (mut ours, mut theirs, mut words) = (0, 0, 0);
    let mut report = String::new();
    for (clip, want) in clips {
        let truth = truth(clip);
        let t = model
            .transcribe_file(&root().join(clip), &Options::default())
            .unwrap();
        let want = want.as_str().unwrap_or_default();
        let ((e, n), (f, _)) = (word_errors(&truth, &t.text), word_errors(&truth, want));
        report += &format!(
            "{clip}: percept {e}/{n} {:?}, int8 {f}/{n} {want:?}\n",
            t.text
        );
        ours += e;
        theirs += f;
        words += n;
    }
    eprintln!("{model_id}: percept {ours}/{words}, faster-whisper int8 {theirs}/{words}\n{report}");
    assert!(words > 80);
    assert!(
        ours * 50 <= theirs * 50 + words,
        "{model_id}: WER {ours}/{words} against int8's {theirs}/{words}\n{report}"
    );
}

#[test]
fn int8_word_error_rate_held_to_faster_whisper_int8_tiny_en() {
    check_int8("whisper-tiny.en");
}

#[test]
fn int8_word_error_rate_held_to_faster_whisper_int8_base() {
    check_int8("whisper-base");
}

#[test]
fn int8_encoder_word_error_rate_held_to_faster_whisper_int8_tiny_en() {
    // faster-whisper int8 quantises the encoder too: this is the same work as its own.
    let model = load_with("whisper-tiny.en", Precision::Int8All);
    check_int8_with("whisper-tiny.en", &model);
}

#[test]
fn word_error_rate_counts_edits() {
    assert_eq!(word_errors("the cat sat", "The cat, sat!"), (0, 3));
    assert_eq!(word_errors("the cat sat", "a cat sat down"), (2, 3));
}

/// `trim_short_window` (encode the clip's length plus 2 s, not 30 s) keeps the word error
/// rate of the full window on the same clips, and on jfk.
#[test]
fn trimmed_window_keeps_the_word_error_rate() {
    let trimmed = Options {
        trim_short_window: true,
        ..Options::default()
    };
    let (mut full_errors, mut trim_errors, mut words) = (0, 0, 0);
    let mut report = String::new();
    for (file, text) in sentences() {
        let p = root().join("tests/fixtures/whisper/speech").join(&file);
        let a = tiny().transcribe_file(&p, &Options::default()).unwrap();
        let b = tiny().transcribe_file(&p, &trimmed).unwrap();
        let (ea, n) = word_errors(&text, &a.text);
        let (eb, _) = word_errors(&text, &b.text);
        report += &format!(
            "{file}: full {ea}/{n} {:?} trimmed {eb}/{n} {:?}\n",
            a.text, b.text
        );
        full_errors += ea;
        trim_errors += eb;
        words += n;
    }
    eprintln!("{report}");
    assert!(
        trim_errors * 10 <= words && trim_errors <= full_errors + words / 50,
        "trimmed WER {trim_errors}/{words}, full {full_errors}/{words}\n{report}"
    );
    let t = tiny()
        .transcribe_file(&root().join("assets/audio/jfk.wav"), &trimmed)
        .unwrap();
    assert_eq!(normalise(&t.text), normalise(JFK), "{:?}", t.text);
}
