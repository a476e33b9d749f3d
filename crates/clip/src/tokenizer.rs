//! CLIP's byte-level BPE tokenizer, built from OpenAI's `bpe_simple_vocab_16e6.txt.gz`
//! (bundled, so text embeddings work offline). Ids equal transformers' `CLIPTokenizer`
//! for the same text; `tests/fixtures/clip/tokens.json` proves it.

use crate::ClipError;
use regex::Regex;
use std::collections::HashMap;
use std::io::Read;
use unicode_normalization::UnicodeNormalization;

/// The vocabulary file OpenAI ships with CLIP (49152 lines of merges).
static BUNDLED_BPE_GZ: &[u8] = include_bytes!("../../../assets/bpe_simple_vocab_16e6.txt.gz");

/// CLIP's text context: start token, up to 75 BPE tokens, end token.
pub const CONTEXT_LENGTH: usize = 77;
const NUM_MERGES: usize = 49152 - 256 - 2;
const SOT: &str = "<|startoftext|>";
const EOT: &str = "<|endoftext|>";

pub struct ClipTokenizer {
    encoder: HashMap<String, u32>,
    ranks: HashMap<(String, String), u32>,
    byte_encoder: [char; 256],
    pattern: Regex,
    pub sot: u32,
    pub eot: u32,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClipTokenizer({} tokens)", self.encoder.len())
    }
}

/// GPT-2's reversible byte -> printable character map.
fn bytes_to_unicode() -> (Vec<u8>, [char; 256]) {
    let mut bs: Vec<u8> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs: Vec<u32> = bs.iter().map(|&b| u32::from(b)).collect();
    let mut n = 0;
    for b in 0..=255u8 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut map = ['\0'; 256];
    for (&b, &c) in bs.iter().zip(&cs) {
        map[b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    (bs, map)
}

impl ClipTokenizer {
    /// The tokenizer of every OpenAI CLIP checkpoint, from the bundled vocabulary.
    pub fn bundled() -> Result<Self, ClipError> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(BUNDLED_BPE_GZ)
            .read_to_string(&mut text)
            .map_err(|e| ClipError::Tokenizer(format!("bundled vocabulary: {e}")))?;
        Self::from_merges(&text)
    }

    /// From merges text: a header line, then "a b" pairs (the `.txt.gz` content, or
    /// transformers' `merges.txt`, which has the same layout).
    pub fn from_merges(text: &str) -> Result<Self, ClipError> {
        let merges: Vec<(String, String)> = text
            .split('\n')
            .skip(1)
            .take(NUM_MERGES)
            .map(|line| {
                let mut it = line.split_whitespace();
                match (it.next(), it.next()) {
                    (Some(a), Some(b)) => Ok((a.to_string(), b.to_string())),
                    _ => Err(ClipError::Tokenizer(format!("bad merge line {line:?}"))),
                }
            })
            .collect::<Result<_, _>>()?;
        if merges.len() != NUM_MERGES {
            return Err(ClipError::Tokenizer(format!(
                "expected {NUM_MERGES} merges, found {}",
                merges.len()
            )));
        }
        let (bs, byte_encoder) = bytes_to_unicode();
        let mut vocab: Vec<String> = bs
            .iter()
            .map(|&b| byte_encoder[b as usize].to_string())
            .collect();
        let with_suffix: Vec<String> = vocab.iter().map(|v| format!("{v}</w>")).collect();
        vocab.extend(with_suffix);
        vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push(SOT.to_string());
        vocab.push(EOT.to_string());
        let encoder: HashMap<String, u32> = vocab
            .into_iter()
            .enumerate()
            .map(|(i, v)| (v, i as u32))
            .collect();
        let ranks = merges
            .into_iter()
            .enumerate()
            .map(|(i, m)| (m, i as u32))
            .collect();
        let pattern = Regex::new(
            r"(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+",
        )
        .map_err(|e| ClipError::Tokenizer(e.to_string()))?;
        let sot = encoder[SOT];
        let eot = encoder[EOT];
        Ok(ClipTokenizer {
            encoder,
            ranks,
            byte_encoder,
            pattern,
            sot,
            eot,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.encoder.len()
    }

    /// BPE ids of `text` without start/end tokens.
    pub fn encode_raw(&self, text: &str) -> Vec<u32> {
        let clean = clean_text(text);
        let mut ids = Vec::new();
        for m in self.pattern.find_iter(&clean) {
            let piece = m.as_str();
            if piece == SOT || piece == EOT {
                ids.push(self.encoder[piece]);
                continue;
            }
            let mapped: Vec<String> = piece
                .bytes()
                .map(|b| self.byte_encoder[b as usize].to_string())
                .collect();
            for tok in self.bpe(mapped) {
                // Every BPE result is in the vocabulary by construction.
                if let Some(&id) = self.encoder.get(&tok) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// `<|startoftext|> ... <|endoftext|>`, truncated to [`CONTEXT_LENGTH`] with the end
    /// token kept last (as transformers does with `truncation=True`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encode_raw(text);
        ids.truncate(CONTEXT_LENGTH - 2);
        let mut out = Vec::with_capacity(ids.len() + 2);
        out.push(self.sot);
        out.extend(ids);
        out.push(self.eot);
        out
    }

    /// [`encode`](Self::encode) padded with the end token to [`CONTEXT_LENGTH`].
    pub fn encode_padded(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encode(text);
        ids.resize(CONTEXT_LENGTH, self.eot);
        ids
    }

    fn bpe(&self, mut word: Vec<String>) -> Vec<String> {
        if let Some(last) = word.last_mut() {
            last.push_str("</w>");
        }
        while word.len() > 1 {
            let best = word
                .windows(2)
                .enumerate()
                .filter_map(|(i, p)| {
                    self.ranks
                        .get(&(p[0].clone(), p[1].clone()))
                        .map(|&r| (r, i))
                })
                .min();
            let Some((_, at)) = best else { break };
            let (first, second) = (word[at].clone(), word[at + 1].clone());
            // Merge every occurrence of the pair, left to right, like the reference.
            let mut merged = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == first && word[i + 1] == second {
                    merged.push(format!("{first}{second}"));
                    i += 2;
                } else {
                    merged.push(std::mem::take(&mut word[i]));
                    i += 1;
                }
            }
            word = merged;
        }
        word
    }
}

/// NFC, control characters removed, whitespace runs collapsed, trimmed, lowercased:
/// what transformers' CLIP tokenizers do before the split regex.
fn clean_text(text: &str) -> String {
    let cleaned: String = text
        .nfc()
        .filter(|&c| c != '\0' && c != '\u{FFFD}')
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    cleaned
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_vocabulary_has_clip_size_and_specials() {
        let t = ClipTokenizer::bundled().unwrap();
        assert_eq!(t.vocab_size(), 49408);
        assert_eq!((t.sot, t.eot), (49406, 49407));
    }

    #[test]
    fn known_ids() {
        let t = ClipTokenizer::bundled().unwrap();
        // "a photo of a cat." with OpenAI's tokenizer.
        assert_eq!(
            t.encode("a photo of a cat."),
            vec![49406, 320, 1125, 539, 320, 2368, 269, 49407]
        );
        assert_eq!(
            t.encode("  A   Photo\tOF a CAT. "),
            t.encode("a photo of a cat.")
        );
    }

    #[test]
    fn long_text_is_truncated_keeping_the_end_token() {
        let t = ClipTokenizer::bundled().unwrap();
        let ids = t.encode(&"word ".repeat(200));
        assert_eq!(ids.len(), CONTEXT_LENGTH);
        assert_eq!(ids[CONTEXT_LENGTH - 1], t.eot);
        assert_eq!(t.encode_padded("hi").len(), CONTEXT_LENGTH);
    }
}
