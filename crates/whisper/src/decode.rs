//! Decoding of one 30 s window: greedy, temperature sampling or beam search over the cached
//! decoder, with Whisper's logit rules, no-speech probability and average log-probability.

use crate::filters::{compression_ratio, log_softmax, LogitRules};
use crate::model::Whisper;
use crate::tokens::WhisperTokenizer;
use candle_core::{Result, Tensor};
use rand::{rngs::StdRng, Rng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Transcribe,
    Translate,
}

#[derive(Debug, Clone)]
pub struct WindowResult {
    /// Sampled tokens without `<|endoftext|>`.
    pub tokens: Vec<u32>,
    pub text: String,
    pub avg_logprob: f64,
    pub no_speech_prob: f64,
    pub temperature: f32,
    pub compression_ratio: f64,
}

pub struct WindowDecoder<'a> {
    pub model: &'a Whisper,
    pub tok: &'a WhisperTokenizer,
    pub rules: &'a LogitRules,
}

impl WindowDecoder<'_> {
    /// Start tokens: `<|startofprev|>` + prompt tail, then `<|startoftranscript|>` (plus
    /// language and task on multilingual models). Returns them and the index of sot.
    fn initial_tokens(
        &self,
        prompt: &[u32],
        language: Option<u32>,
        task: Task,
    ) -> (Vec<u32>, usize) {
        let sp = &self.tok.sp;
        let mut t = Vec::new();
        if !prompt.is_empty() {
            t.push(sp.sot_prev);
            let keep = self.model.dims.n_text_ctx / 2 - 1;
            t.extend_from_slice(&prompt[prompt.len().saturating_sub(keep)..]);
        }
        let sot_index = t.len();
        t.push(sp.sot);
        if self.tok.multilingual {
            if let Some(l) = language {
                t.push(l);
            }
            t.push(match task {
                Task::Transcribe => sp.transcribe,
                Task::Translate => sp.translate,
            });
        }
        if !self.rules.timestamps {
            t.push(sp.no_timestamps);
        }
        (t, sot_index)
    }

    fn rows(&self, hidden: &Tensor, positions: &[usize]) -> Result<Vec<Vec<f32>>> {
        // hidden: (b, s, d); take one position per batch row.
        let mut out = Vec::with_capacity(positions.len());
        for (b, &p) in positions.iter().enumerate() {
            let h = hidden.get(b)?.get(p)?.unsqueeze(0)?;
            out.push(self.model.logits(&h)?.squeeze(0)?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Most likely language of the window's audio features: (code token, probability).
    pub fn detect_language(&self, features: &Tensor) -> Result<(u32, f32)> {
        let mut cache = self.model.new_cache(features, 1)?;
        let sot = Tensor::new(&[[self.tok.sp.sot]], self.model.device())?;
        let h = self.model.decode(&sot, &mut cache)?;
        let logits = self.rows(&h, &[0])?.remove(0);
        let langs: Vec<u32> = self.tok.sp.languages.iter().map(|&(_, id)| id).collect();
        let lp = log_softmax(
            &langs
                .iter()
                .map(|&i| logits.get(i as usize).copied().unwrap_or(f32::NEG_INFINITY))
                .collect::<Vec<_>>(),
        );
        let (best, p) = lp
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, &p)| (langs[i], p.exp()))
            .unwrap_or((self.tok.sp.sot + 1, 0.0));
        Ok((best, p))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn decode(
        &self,
        features: &Tensor,
        prompt: &[u32],
        language: Option<u32>,
        task: Task,
        temperature: f32,
        beam: usize,
        rng: &mut StdRng,
    ) -> Result<WindowResult> {
        let (init, sot_index) = self.initial_tokens(prompt, language, task);
        let width = if temperature > 0.0 { 1 } else { beam.max(1) };
        let mut cache = self.model.new_cache(features, width)?;
        let rows: Vec<Vec<u32>> = vec![init.clone(); width];
        let h = self
            .model
            .decode(&Tensor::new(rows, self.model.device())?, &mut cache)?;
        let ns_logits = self.rows(&h, &[sot_index])?.remove(0);
        let no_speech_prob = log_softmax(&ns_logits)
            .get(self.tok.sp.no_speech as usize)
            .map(|l| l.exp() as f64)
            .unwrap_or(0.0);
        let last = vec![init.len() - 1; width];
        let first = self.rows(&h, &last)?;
        let sample_len = self.model.dims.n_text_ctx / 2;
        let (tokens, sum_lp) = if width == 1 {
            self.greedy(
                first.into_iter().next().unwrap_or_default(),
                &mut cache,
                temperature,
                sample_len,
                rng,
            )?
        } else {
            self.beam(first, &mut cache, width, sample_len)?
        };
        let text = self.tok.decode(&tokens);
        Ok(WindowResult {
            avg_logprob: sum_lp / (tokens.len() + 1) as f64,
            compression_ratio: compression_ratio(&text),
            tokens,
            text,
            no_speech_prob,
            temperature,
        })
    }

    fn greedy(
        &self,
        mut logits: Vec<f32>,
        cache: &mut crate::model::DecoderCache,
        temperature: f32,
        sample_len: usize,
        rng: &mut StdRng,
    ) -> Result<(Vec<u32>, f64)> {
        let eot = self.tok.sp.eot;
        let mut tokens = Vec::new();
        let mut sum = 0f64;
        for _ in 0..sample_len {
            self.rules.apply(&mut logits, &tokens);
            let lp = log_softmax(&logits);
            let next = if temperature > 0.0 {
                sample(&logits, temperature, rng)
            } else {
                argmax(&logits)
            };
            sum += lp[next as usize] as f64;
            if next == eot || cache.len() >= self.model.dims.n_text_ctx {
                break;
            }
            tokens.push(next);
            let h = self
                .model
                .decode(&Tensor::new(&[[next]], self.model.device())?, cache)?;
            logits = self.rows(&h, &[0])?.remove(0);
        }
        Ok((tokens, sum))
    }

    fn beam(
        &self,
        mut logits: Vec<Vec<f32>>,
        cache: &mut crate::model::DecoderCache,
        width: usize,
        sample_len: usize,
    ) -> Result<(Vec<u32>, f64)> {
        let eot = self.tok.sp.eot;
        let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); width];
        let mut sums = vec![0f64; width];
        let mut finished: Vec<(Vec<u32>, f64)> = Vec::new();
        for step in 0..sample_len {
            let mut cands: Vec<(f64, usize, u32)> = Vec::new();
            // At the first step all beams are identical; expand only one.
            let live = if step == 0 { 1 } else { width };
            for (i, row) in logits.iter_mut().enumerate().take(live) {
                self.rules.apply(row, &seqs[i]);
                let lp = log_softmax(row);
                for (t, l) in top_k(&lp, width + 1) {
                    cands.push((sums[i] + l as f64, i, t));
                }
            }
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut next: Vec<(f64, usize, u32)> = Vec::new();
            for c in cands {
                if c.2 == eot {
                    if finished.len() < width {
                        finished.push((seqs[c.1].clone(), c.0));
                    }
                } else {
                    next.push(c);
                    if next.len() == width {
                        break;
                    }
                }
            }
            if finished.len() >= width
                || next.is_empty()
                || cache.len() >= self.model.dims.n_text_ctx
            {
                break;
            }
            while next.len() < width {
                next.push(next[0]);
            }
            let src: Vec<u32> = next.iter().map(|c| c.1 as u32).collect();
            cache.reorder(&src)?;
            seqs = next
                .iter()
                .map(|c| {
                    let mut s = seqs[c.1].clone();
                    s.push(c.2);
                    s
                })
                .collect();
            sums = next.iter().map(|c| c.0).collect();
            let toks: Vec<Vec<u32>> = next.iter().map(|c| vec![c.2]).collect();
            let h = self
                .model
                .decode(&Tensor::new(toks, self.model.device())?, cache)?;
            logits = self.rows(&h, &vec![0; width])?;
        }
        if finished.len() < width {
            let mut order: Vec<usize> = (0..seqs.len()).collect();
            order.sort_by(|&a, &b| sums[b].total_cmp(&sums[a]));
            for i in order {
                if finished.len() >= width {
                    break;
                }
                finished.push((seqs[i].clone(), sums[i]));
            }
        }
        // Whisper's ranker without a length penalty: mean log-probability per token.
        let best = finished
            .into_iter()
            .max_by(|a, b| {
                let sa = a.1 / a.0.len().max(1) as f64;
                let sb = b.1 / b.0.len().max(1) as f64;
                sa.total_cmp(&sb)
            })
            .unwrap_or_default();
        Ok(best)
    }
}

fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u32)
        .unwrap_or(0)
}

fn top_k(v: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (i, &x) in v.iter().enumerate() {
        if x == f32::NEG_INFINITY || (best.len() == k && x <= best[k - 1].1) {
            continue;
        }
        let pos = best.partition_point(|b| b.1 >= x);
        best.insert(pos, (i as u32, x));
        best.truncate(k);
    }
    best
}

fn sample(logits: &[f32], temperature: f32, rng: &mut StdRng) -> u32 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f32> = logits
        .iter()
        .map(|&l| ((l - m) / temperature).exp())
        .collect();
    let total: f32 = w.iter().sum();
    let mut r = rng.random::<f32>() * total;
    for (i, &x) in w.iter().enumerate() {
        if r < x {
            return i as u32;
        }
        r -= x;
    }
    argmax(logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_best_first() {
        let v = [0.1, 3.0, f32::NEG_INFINITY, 2.0, 5.0];
        assert_eq!(top_k(&v, 2), vec![(4, 5.0), (1, 3.0)]);
        assert_eq!(argmax(&v), 4);
    }
}
