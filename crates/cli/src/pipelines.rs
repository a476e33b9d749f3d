//! Named pipeline definitions (`pipelines/*.toml`): models, decoding and sampling parameters,
//! the system prompt, probing, channel capacities and threads.
//!
//! Every section but the four model lines is optional; a key the schema does not know is an
//! error that names it (`deny_unknown_fields`), so a typo never silently does nothing.

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    pub description: String,
    pub whisper: String,
    pub llm: String,
    pub clip: String,
    /// System message for the LLM (default: the model template's own).
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub sampling: Sampling,
    #[serde(default)]
    pub speech: Speech,
    #[serde(default)]
    pub probe: Probe,
    #[serde(default)]
    pub runtime: Runtime,
}

/// LLM sampling; a key left out keeps the command-line value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub seed: Option<u64>,
    pub max_tokens: Option<usize>,
}

/// Whisper decoding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speech {
    /// 1 = greedy.
    pub beam: Option<usize>,
    pub language: Option<String>,
    /// Encode a clip shorter than 30 s at its own length (see `transcribe --short-window`).
    pub short_window: Option<bool>,
}

/// Question-guided probing: the LLM proposes candidates, CLIP scores them against each image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "four")]
    pub candidates: usize,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            enabled: true,
            candidates: 4,
        }
    }
}

/// How the stages are wired.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Capacity of every bounded channel between stages.
    #[serde(default = "four")]
    pub channel_capacity: usize,
    /// Compute threads for the model stages (default: all cores).
    #[serde(default)]
    pub threads: Option<usize>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            channel_capacity: 4,
            threads: None,
        }
    }
}

impl Runtime {
    /// Caps the compute threads; must run before the first model loads, since candle's
    /// thread pool reads the variable once. An explicit RAYON_NUM_THREADS wins.
    pub fn apply_threads(&self) {
        if let (Some(n), None) = (self.threads, std::env::var_os("RAYON_NUM_THREADS")) {
            std::env::set_var("RAYON_NUM_THREADS", n.max(1).to_string());
        }
    }
}

fn yes() -> bool {
    true
}

fn four() -> usize {
    4
}

const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../../pipelines/default.toml")),
    ("quality", include_str!("../../../pipelines/quality.toml")),
];

/// The pipeline a command runs: `name` or `default`, announced on stderr when named. Model
/// choices still at their command-line defaults take the pipeline's, as do sampling and
/// threads; explicit flags win.
pub fn resolve(
    name: Option<&str>,
    llm: &mut crate::cmd::ask::LlmArgs,
    whisper: &mut String,
    clip_dir: &mut Option<std::path::PathBuf>,
) -> anyhow::Result<PipelineDef> {
    let def = load(name.unwrap_or("default"))?;
    if let Some(name) = name {
        eprintln!("pipeline {name}: {}", def.description);
    }
    if clip_dir.is_none() {
        *clip_dir = percept_models::locate(&def.clip).ok();
    }
    if whisper == crate::cmd::ask_media::DEFAULT_WHISPER {
        *whisper = def.whisper.clone();
    }
    llm.apply_pipeline(&def);
    def.runtime.apply_threads();
    Ok(def)
}

/// A built-in pipeline by name, or a TOML file by path.
pub fn load(name: &str) -> anyhow::Result<PipelineDef> {
    let text = match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => text.to_string(),
        None => std::fs::read_to_string(name).with_context(|| {
            let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown pipeline `{name}` (built in: {}; or a .toml path)",
                known.join(", ")
            )
        })?,
    };
    let def: PipelineDef = toml::from_str(&text).with_context(|| format!("pipeline `{name}`"))?;
    if def.runtime.channel_capacity == 0 {
        anyhow::bail!("pipeline `{name}`: runtime.channel_capacity must be at least 1");
    }
    Ok(def)
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_pipelines_parse_and_name_store_models() {
        let store = percept_models::Manifest::parse(percept_models::BUILTIN).expect("manifest");
        for (name, _) in super::BUILTIN {
            let p = super::load(name).expect("parses");
            for id in [&p.whisper, &p.llm, &p.clip] {
                assert!(
                    store.get(id).is_some(),
                    "{name}: {id} is not in the manifest"
                );
            }
        }
        assert!(super::load("nope").is_err());
        // The fast pipeline trims short clips; the quality one keeps full windows.
        assert_eq!(
            super::load("default").expect("default").speech.short_window,
            Some(true)
        );
        assert_eq!(
            super::load("quality").expect("quality").speech.short_window,
            Some(false)
        );
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.toml");
        let base = "description = \"x\"\nwhisper = \"a\"\nllm = \"b\"\nclip = \"c\"\n";
        std::fs::write(&path, format!("{base}[sampling]\ntemprature = 0.5\n")).expect("write");
        let err = format!(
            "{:#}",
            super::load(path.to_str().expect("utf-8")).unwrap_err()
        );
        assert!(err.contains("temprature"), "{err}");

        std::fs::write(&path, format!("{base}[sampling]\ntemperature = \"hot\"\n")).expect("write");
        let err = format!(
            "{:#}",
            super::load(path.to_str().expect("utf-8")).unwrap_err()
        );
        assert!(err.contains("temperature"), "{err}");

        std::fs::write(&path, format!("{base}[probe]\ncandidates = 6\n")).expect("write");
        let def = super::load(path.to_str().expect("utf-8")).expect("parses");
        assert!(def.probe.enabled);
        assert_eq!(def.probe.candidates, 6);
        assert_eq!(def.runtime.channel_capacity, 4);
    }
}
