//! Whisper's tokenizer: BPE text from tokenizer.json, special ids located by name, and the
//! timestamp tokens derived as Whisper's own tokenizer does (they follow `<|notimestamps|>`,
//! one per 20 ms), because some tokenizer.json files do not list them.

use crate::WhisperError;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Specials {
    pub eot: u32,
    pub sot: u32,
    pub translate: u32,
    pub transcribe: u32,
    pub sot_lm: u32,
    pub sot_prev: u32,
    pub no_speech: u32,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
    /// Language codes and their token ids, in Whisper's order.
    pub languages: Vec<(String, u32)>,
}

pub struct WhisperTokenizer {
    tok: tokenizers::Tokenizer,
    pub sp: Specials,
    pub multilingual: bool,
}

impl WhisperTokenizer {
    pub fn load(dir: &Path, n_vocab: usize) -> Result<Self, WhisperError> {
        let path = dir.join("tokenizer.json");
        let name = path.display().to_string();
        let tok = tokenizers::Tokenizer::from_file(&path).map_err(|e| WhisperError::Tokenizer {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        let id = |t: &str| tok.token_to_id(t);
        let need = |t: &str| {
            id(t).ok_or_else(|| WhisperError::Tokenizer {
                path: name.clone(),
                reason: format!("special token {t} not found"),
            })
        };
        let eot = need("<|endoftext|>")?;
        let sot = need("<|startoftranscript|>")?;
        let translate = need("<|translate|>")?;
        let no_timestamps = need("<|notimestamps|>")?;
        let no_speech = id("<|nospeech|>")
            .or_else(|| id("<|nocaptions|>"))
            .ok_or_else(|| WhisperError::Tokenizer {
                path: name.clone(),
                reason: "special token <|nospeech|> not found".into(),
            })?;
        let languages = (sot + 1..translate)
            .filter_map(|i| {
                let t = tok.id_to_token(i)?;
                let code = t.strip_prefix("<|")?.strip_suffix("|>")?.to_string();
                Some((code, i))
            })
            .collect();
        let sp = Specials {
            eot,
            sot,
            translate,
            transcribe: need("<|transcribe|>")?,
            sot_lm: need("<|startoflm|>")?,
            sot_prev: need("<|startofprev|>")?,
            no_speech,
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
            languages,
        };
        if sp.timestamp_begin as usize + 1501 > n_vocab {
            return Err(WhisperError::Tokenizer {
                path: name,
                reason: format!(
                    "vocabulary of {n_vocab} has no room for 1501 timestamp tokens after id {}",
                    sp.timestamp_begin
                ),
            });
        }
        // Whisper's rule: the multilingual vocabulary is the one with 51865+ entries.
        let multilingual = n_vocab >= 51865;
        Ok(WhisperTokenizer {
            tok,
            sp,
            multilingual,
        })
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tok
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    /// Text of the tokens below `<|endoftext|>` (timestamps and specials are skipped).
    pub fn decode(&self, tokens: &[u32]) -> String {
        let text: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|&t| t < self.sp.eot)
            .collect();
        self.tok.decode(&text, false).unwrap_or_default()
    }

    pub fn language_token(&self, code: &str) -> Option<u32> {
        self.sp
            .languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|&(_, id)| id)
    }

    pub fn language_code(&self, token: u32) -> Option<&str> {
        self.sp
            .languages
            .iter()
            .find(|&&(_, id)| id == token)
            .map(|(c, _)| c.as_str())
    }

    /// Tokens that start speaker tags or sound annotations ("[", "(", "♪", ...), which Whisper
    /// suppresses so that no words are invented for music or noise.
    pub fn non_speech_tokens(&self) -> Vec<u32> {
        let mut symbols: Vec<String> = "\"#()*+/:;<=>@[\\]^_`{|}~「」『』"
            .chars()
            .map(String::from)
            .collect();
        symbols.extend(
            "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪"
                .split(' ')
                .map(String::from),
        );
        let misc: Vec<String> = "♩♪♫♬♭♮♯".chars().map(String::from).collect();
        let mut out = Vec::new();
        for s in [" -", " '"] {
            out.extend(self.encode(s).first().copied());
        }
        for s in symbols.iter().chain(misc.iter()) {
            let is_misc = misc.contains(s);
            for t in [self.encode(s), self.encode(&format!(" {s}"))] {
                if t.len() == 1 || (is_misc && !t.is_empty()) {
                    out.push(t[0]);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
