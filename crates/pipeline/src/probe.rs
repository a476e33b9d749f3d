//! Question-guided probing: the LLM proposes short candidate answers to the question, CLIP
//! scores each against each image, and the scored candidates enter the final prompt.
//!
//! CLIP alone only knows its fixed label list; the LLM alone cannot see. Letting the LLM
//! guess and CLIP judge gives the final answer evidence about the question actually asked.

use crate::error::Result;
use percept_clip::labels::softmax;
use percept_clip::Clip;
use percept_core::{Prompt, Untrusted, VisionContext};
use serde::Serialize;

/// Candidates longer than this are sentences, not descriptions; CLIP's text tower reads 77
/// tokens at most anyway.
const MAX_CANDIDATE_CHARS: usize = 80;

/// One candidate and CLIP's probability for it among the candidates, for one image.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub text: String,
    pub score: f32,
}

/// The probe result for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageProbe {
    pub source: String,
    pub candidates: Vec<Scored>,
}

/// The prompt that asks the LLM for candidates. The question and image descriptions stay
/// untrusted data, as in the final prompt.
pub fn candidates_prompt(question: &Untrusted, context: &[Untrusted], n: usize) -> Prompt {
    let system = format!(
        "You help a vision model look at an image. Propose {n} different short candidate answers \
         to the user's question about the image, each a plain description of at most eight words \
         that could be checked by looking at the image. Write one per line, with no numbering \
         and nothing else."
    );
    Prompt {
        system: Some(system),
        history: Vec::new(),
        question: Some(question.clone()),
        context: context.to_vec(),
    }
}

/// Candidate lines from the LLM's reply: list markers and quotes stripped, duplicates and
/// empty or overlong lines dropped, at most `n`.
pub fn parse_candidates(reply: &str, n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in reply.lines() {
        let t = line
            .trim()
            .trim_start_matches(|c: char| {
                c.is_ascii_digit() || matches!(c, '-' | '*' | '•' | '.' | ')' | ':')
            })
            .trim()
            .trim_matches(|c: char| matches!(c, '"' | '\'' | '`'))
            .trim_end_matches('.')
            .trim();
        if t.is_empty() || t.chars().count() > MAX_CANDIDATE_CHARS {
            continue;
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_string());
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// CLIP's zero-shot probabilities of `candidates` for one unit image embedding, best first.
pub fn score(clip: &Clip, image: &[f32], candidates: &[String]) -> Result<Vec<Scored>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let emb = clip.embed_texts(&texts, true)?;
    let scale = clip.model.logit_scale;
    let logits: Vec<f32> = emb
        .iter()
        .map(|t| scale * t.iter().zip(image).map(|(a, b)| a * b).sum::<f32>())
        .collect();
    let mut scored: Vec<Scored> = softmax(&logits)
        .into_iter()
        .zip(candidates)
        .map(|(score, text)| Scored {
            text: text.clone(),
            score,
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(scored)
}

/// Probes for every image that has an embedding.
pub fn probe_images(
    clip: &Clip,
    images: &[VisionContext],
    candidates: &[String],
) -> Result<Vec<ImageProbe>> {
    images
        .iter()
        .filter_map(|ctx| ctx.embedding.as_ref().map(|e| (ctx, e)))
        .map(|(ctx, emb)| {
            Ok(ImageProbe {
                source: ctx.source.clone(),
                candidates: score(clip, emb, candidates)?,
            })
        })
        .collect()
}

/// The prompt part for one image's probe. The candidates came from a model that read
/// untrusted text, so they are untrusted too.
/// `n` numbers the image as the prompt's image parts do (`None` for a single image).
pub fn describe(probe: &ImageProbe, n: Option<usize>) -> Untrusted {
    let lines: Vec<String> = probe
        .candidates
        .iter()
        .map(|c| format!("{} ({:.0}%)", c.text, c.score * 100.0))
        .collect();
    Untrusted {
        label: format!(
            "candidate answers for {}, scored by CLIP against the image",
            crate::prompt::image_label(n)
        ),
        text: lines.join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_cleaned_deduplicated_and_capped() {
        let reply = "1. A cat on a sofa.\n- a cat on a sofa\n\n\"A dog\"\n* a red car\n\
                     This line is far too long to be a short candidate answer for CLIP to score well at all\n\
                     a bird\na fish";
        let c = parse_candidates(reply, 3);
        assert_eq!(c, vec!["A cat on a sofa", "A dog", "a red car"]);
        assert!(parse_candidates("", 4).is_empty());
    }

    #[test]
    fn the_candidate_matching_the_image_scores_best() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip/tiny");
        let clip = Clip::load(&dir, &percept_clip::default_device()).expect("tiny clip fixture");
        let cands: Vec<String> = ["a red car", "a cat on a sofa", "a bowl of soup"]
            .map(String::from)
            .to_vec();
        // Stand in for an image whose embedding is exactly the second caption's.
        let img = clip
            .embed_texts(&["a cat on a sofa"], true)
            .expect("embed")
            .remove(0);
        let s = score(&clip, &img, &cands).expect("scores");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].text, "a cat on a sofa");
        let sum: f32 = s.iter().map(|c| c.score).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        assert!(s.windows(2).all(|w| w[0].score >= w[1].score));
    }
}
