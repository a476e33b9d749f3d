//! A `tokenizers::Tokenizer` built from GGUF metadata, the way llama.cpp reads the same fields.
//!
//! Two views of one vocabulary: [`TextTokenizer::encode_trusted`] parses control tokens
//! (`<|im_start|>` becomes one id) and is used only for text we wrote (the rendered chat
//! template); [`TextTokenizer::encode_untrusted`] never does, so control-token strings inside
//! transcripts or file names become plain text pieces.

use crate::error::{LlmError, Result};
use crate::gguf::Meta;
use crate::spm;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// GPT-2's split pattern (what `ByteLevel` with `use_regex` applies).
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types (llama.cpp `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

pub struct TextTokenizer {
    /// One tokenizer for both views, switched per call under the lock: a second copy held
    /// its vocabulary twice (Qwen2.5's peak RSS fell by 32 MiB without it). Prompts are
    /// encoded once per request, so the lock is never hot.
    tok: Mutex<Tokenizer>,
    /// Ids that only trusted text may produce (GGUF token types 3 and 4).
    special_ids: BTreeSet<u32>,
    pub bos: Option<(u32, String)>,
    pub eos: Option<(u32, String)>,
    /// Extra ids that end a turn (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`...).
    pub eot_ids: BTreeSet<u32>,
    pub add_bos: bool,
}

fn tok_err(e: impl std::fmt::Display) -> LlmError {
    LlmError::Tokenizer(e.to_string())
}

fn split(pattern: &str) -> Result<PreTokenizerWrapper> {
    Ok(Split::new(
        SplitPattern::Regex(pattern.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(tok_err)?
    .into())
}

/// The BPE pre-tokenizer llama.cpp would use for `tokenizer.ggml.pre`.
fn gpt2_pre_tokenizer(pre: &str) -> Result<(Option<NFC>, PreTokenizerWrapper)> {
    let byte_level_regex = ByteLevel::new(false, false, true);
    let byte_level_plain = ByteLevel::new(false, false, false);
    Ok(match pre {
        "smollm" => (
            None,
            Sequence::new(vec![split(r"\p{N}")?, byte_level_regex.into()]).into(),
        ),
        "qwen2" | "deepseek-r1-qwen" => (
            Some(NFC),
            Sequence::new(vec![split(QWEN2_PATTERN)?, byte_level_plain.into()]).into(),
        ),
        "llama3" | "llama-v3" | "llama-bpe" | "smaug-bpe" => (
            None,
            Sequence::new(vec![split(LLAMA3_PATTERN)?, byte_level_plain.into()]).into(),
        ),
        // "default", "gpt-2" and unknown names: GPT-2's own split.
        _ => (None, byte_level_regex.into()),
    })
}

fn build_gpt2(meta: &Meta, tokens: &[&str]) -> Result<Tokenizer> {
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let merges = meta
        .strings("tokenizer.ggml.merges")?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| LlmError::Metadata {
                    field: "tokenizer.ggml.merges".into(),
                    message: format!("item {i} `{m}` is not two space-separated pieces"),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(tok_err)?;
    let pre = meta.opt_string("tokenizer.ggml.pre").unwrap_or("default");
    let (normalizer, pre_tokenizer) = gpt2_pre_tokenizer(pre)?;
    let mut tk = Tokenizer::new(bpe);
    tk.with_normalizer(normalizer)
        .with_pre_tokenizer(Some(pre_tokenizer))
        .with_decoder(Some(ByteLevel::default()));
    Ok(tk)
}

impl TextTokenizer {
    /// Builds the tokenizer for a GGUF model; `tokenizer.json` in `model_dir` wins if present.
    pub fn from_gguf(meta: &Meta, model_dir: Option<&Path>) -> Result<Self> {
        let tokens = meta.strings("tokenizer.ggml.tokens")?;
        let types = meta.opt_i32s("tokenizer.ggml.token_type")?;
        let json = model_dir.map(|d| d.join("tokenizer.json"));
        let base = match json.filter(|p| p.is_file()) {
            Some(p) => Tokenizer::from_file(&p)
                .map_err(|e| LlmError::Tokenizer(format!("{}: {e}", p.display())))?,
            None => {
                let model = meta.string("tokenizer.ggml.model")?;
                match model {
                    "gpt2" => build_gpt2(meta, &tokens)?,
                    "llama" => spm::build(meta, &tokens, types.as_deref())?,
                    other => {
                        return Err(LlmError::Metadata {
                            field: "tokenizer.ggml.model".into(),
                            message: format!("tokenizer kind `{other}` is not supported"),
                        })
                    }
                }
            }
        };
        let mut special_ids = BTreeSet::new();
        let (mut specials, mut spaces) = (Vec::new(), Vec::new());
        if let Some(types) = &types {
            for (id, (t, ty)) in tokens.iter().zip(types).enumerate() {
                let user = *ty == TOKEN_TYPE_USER_DEFINED;
                if user && !t.is_empty() && t.chars().all(char::is_whitespace) {
                    // Gemma's runs of spaces, tabs and newlines: text, matched in any text
                    // as llama.cpp matches user-defined tokens (they cannot steer the model).
                    spaces.push(AddedToken::from(t.to_string(), false).normalized(false));
                } else if user || *ty == TOKEN_TYPE_CONTROL {
                    special_ids.insert(id as u32);
                    specials.push(AddedToken::from(t.to_string(), true));
                }
            }
        }
        let mut trusted = base;
        trusted.add_special_tokens(&specials);
        trusted.add_tokens(&spaces);

        let token_of = |field: &str| -> Option<(u32, String)> {
            let id = meta.opt_u32(field)?;
            tokens.get(id as usize).map(|t| (id, t.to_string()))
        };
        let bos = token_of("tokenizer.ggml.bos_token_id");
        let eos = token_of("tokenizer.ggml.eos_token_id");
        let mut eot_ids: BTreeSet<u32> = eos.iter().map(|(id, _)| *id).collect();
        if let Some((id, _)) = token_of("tokenizer.ggml.eot_token_id") {
            eot_ids.insert(id);
        }
        // Chat templates end turns with these even where the GGUF names another eos.
        for name in [
            "<|im_end|>",
            "<|eot_id|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "</s>",
        ] {
            if let Some(id) = tokens.iter().position(|t| *t == name) {
                if special_ids.contains(&(id as u32)) {
                    eot_ids.insert(id as u32);
                }
            }
        }
        let add_bos = meta
            .opt_bool("tokenizer.ggml.add_bos_token")
            .unwrap_or(meta.opt_string("tokenizer.ggml.model") == Some("llama"));
        Ok(TextTokenizer {
            tok: Mutex::new(trusted),
            special_ids,
            bos,
            eos,
            eot_ids,
            add_bos,
        })
    }

    /// The tokenizer, parsing control-token strings (the trusted view). A poisoned lock is
    /// taken over and the view set again, so a panic inside an untrusted call cannot leave it.
    pub fn inner(&self) -> MutexGuard<'_, Tokenizer> {
        let mut tok = self.tok.lock().unwrap_or_else(|e| e.into_inner());
        tok.set_encode_special_tokens(false);
        tok
    }

    /// Text we wrote ourselves: control-token strings become control ids.
    pub fn encode_trusted(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner().encode(text, false).map_err(tok_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text from users, media or files: never yields a control id.
    pub fn encode_untrusted(&self, text: &str) -> Result<Vec<u32>> {
        let enc = {
            let mut tok = self.inner();
            tok.set_encode_special_tokens(true);
            tok.encode(text, false).map_err(tok_err)?
        };
        let ids = enc.get_ids().to_vec();
        // Belt and braces: a tokenizer.json could declare pieces we did not mark special.
        if let Some(id) = ids.iter().find(|id| self.special_ids.contains(id)) {
            return Err(LlmError::Tokenizer(format!(
                "untrusted text produced control token id {id}"
            )));
        }
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner().decode(ids, skip_special).map_err(tok_err)
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    pub fn special_ids(&self) -> &BTreeSet<u32> {
        &self.special_ids
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner().token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner().get_vocab_size(true)
    }
}
