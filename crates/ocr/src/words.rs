//! From Tesseract's word table to text, or to nothing: photos make Tesseract see letters in
//! fur and foliage, so words count only on a line Tesseract is sure of, and a page counts
//! only with a few real letters or digits on it.

use crate::OcrText;

/// A line is kept when its words' mean confidence (0–100) reaches this.
pub const MIN_LINE_CONFIDENCE: f32 = 60.0;
/// Within a kept line, words below this are dropped.
pub const MIN_WORD_CONFIDENCE: f32 = 40.0;
/// Fewer letters and digits than this in all kept words is no text.
pub const MIN_CHARS: usize = 3;
/// The longest text returned, in characters; longer text is cut at a word and ends in `…`.
pub const MAX_CHARS: usize = 4000;

/// One word row of Tesseract's TSV output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Word {
    /// Block, paragraph and line number.
    pub line: (u32, u32, u32),
    pub confidence: f32,
    pub text: String,
}

/// The word rows (level 5) of a TSV page; other rows and malformed lines are skipped.
pub(crate) fn parse_tsv(tsv: &str) -> Vec<Word> {
    tsv.lines()
        .filter_map(|row| {
            let f: Vec<&str> = row.split('\t').collect();
            if f.len() < 12 || f[0] != "5" {
                return None;
            }
            let num = |i: usize| f[i].trim().parse::<u32>().ok();
            let text = f[11..].join(" ");
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            Some(Word {
                line: (num(2)?, num(3)?, num(4)?),
                confidence: f[10].trim().parse().ok()?,
                text: text.to_string(),
            })
        })
        .collect()
}

/// The text the rule keeps, or `None` when the picture holds no text worth reading.
pub(crate) fn select(words: &[Word]) -> Option<OcrText> {
    let mut kept: Vec<&Word> = Vec::new();
    for line in words.chunk_by(|a, b| a.line == b.line) {
        let mean = line.iter().map(|w| w.confidence).sum::<f32>() / line.len() as f32;
        if mean >= MIN_LINE_CONFIDENCE {
            kept.extend(line.iter().filter(|w| w.confidence >= MIN_WORD_CONFIDENCE));
        }
    }
    let chars: usize = kept
        .iter()
        .map(|w| w.text.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    if chars < MIN_CHARS {
        return None;
    }
    let confidence = kept.iter().map(|w| w.confidence).sum::<f32>() / kept.len() as f32 / 100.0;
    let text = bounded(kept.iter().flat_map(|w| w.text.split_whitespace()));
    Some(OcrText {
        text,
        confidence,
        words: kept.len(),
    })
}

/// Words joined by single spaces, at most [`MAX_CHARS`] characters.
fn bounded<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut len = 0;
    for word in words {
        let n = word.chars().count();
        let sep = usize::from(!out.is_empty());
        if len + sep + n > MAX_CHARS - 1 {
            out.push('…');
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        len += sep + n;
    }
    out
}

#[cfg(test)]
#[path = "words_tests.rs"]
mod tests;
