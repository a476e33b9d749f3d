//! llama/SentencePiece vocabularies (`tokenizer.ggml.model = llama`): tokens with scores.
//!
//! Rebuilt as a BPE with byte fallback, merges derived from the scores the way Hugging Face
//! converts SentencePiece models: a merge `a b` exists when `a`, `b` and `ab` are all
//! normal pieces, ranked by the score of `ab`.

use crate::error::{LlmError, Result};
use crate::gguf::Meta;
use std::collections::HashMap;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormSequence};
use tokenizers::{DecoderWrapper, NormalizerWrapper, Tokenizer};

const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_BYTE: i32 = 6;

fn tok_err(e: impl std::fmt::Display) -> LlmError {
    LlmError::Tokenizer(e.to_string())
}

pub fn build(meta: &Meta, tokens: &[&str], types: Option<&[i32]>) -> Result<Tokenizer> {
    let scores = meta
        .opt_f32s("tokenizer.ggml.scores")?
        .ok_or_else(|| LlmError::Metadata {
            field: "tokenizer.ggml.scores".into(),
            message: "missing (needed for a llama/SentencePiece vocabulary)".into(),
        })?;
    let ty = |i: usize| {
        types
            .and_then(|t| t.get(i).copied())
            .unwrap_or(TOKEN_TYPE_NORMAL)
    };
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let normal: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| ty(*i) == TOKEN_TYPE_NORMAL)
        .map(|(i, t)| (*t, i))
        .collect();
    let mut ranked: Vec<(f32, usize, usize, String, String)> = Vec::new();
    for (&piece, &id) in &normal {
        for (split, _) in piece.char_indices().skip(1) {
            let (a, b) = piece.split_at(split);
            if let (Some(&ia), Some(&ib)) = (normal.get(a), normal.get(b)) {
                let score = scores.get(id).copied().unwrap_or(0.0);
                ranked.push((score, ia, ib, a.to_string(), b.to_string()));
            }
        }
    }
    // Higher score merges first; ties broken by the pieces' ids for a stable order.
    ranked.sort_by(|x, y| {
        y.0.partial_cmp(&x.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(x.1.cmp(&y.1))
            .then(x.2.cmp(&y.2))
    });
    let merges = ranked.into_iter().map(|(_, _, _, a, b)| (a, b)).collect();
    let has_bytes = (0..tokens.len()).any(|i| ty(i) == TOKEN_TYPE_BYTE);
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(has_bytes);
    if let Some(unk) = meta
        .opt_u32("tokenizer.ggml.unknown_token_id")
        .and_then(|id| tokens.get(id as usize))
    {
        builder = builder.unk_token(unk.to_string());
    }
    let bpe = builder.build().map_err(tok_err)?;
    let add_space = meta
        .opt_bool("tokenizer.ggml.add_space_prefix")
        .unwrap_or(true);
    let mut norms: Vec<NormalizerWrapper> = Vec::new();
    if add_space {
        norms.push(Prepend::new("▁".into()).into());
    }
    norms.push(Replace::new(" ", "▁").map_err(tok_err)?.into());
    let mut decs: Vec<DecoderWrapper> = vec![
        Replace::new("▁", " ").map_err(tok_err)?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_space {
        decs.push(Strip::new(' ', 1, 0).into());
    }
    let mut tk = Tokenizer::new(bpe);
    tk.with_normalizer(Some(NormSequence::new(norms)))
        .with_decoder(Some(DecoderSequence::new(decs)));
    Ok(tk)
}
