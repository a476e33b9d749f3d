//! Named pipeline definitions (`pipelines/*.toml`): models, devices, decoding and sampling
//! parameters, the system prompt, probing, channel capacities and threads.
//!
//! Every section but the four model lines is optional; a key the schema does not know is an
//! error that names it (`deny_unknown_fields`), so a typo never silently does nothing.
//! Command-line flags reach a definition only through [`Overrides`], so "an explicit flag
//! wins" is decided here once for every command and the server.

use crate::device::DeviceSpec;
use crate::error::{PipelineError, Result};
use percept_llm::{GenParams, SamplingParams};
use percept_media::AudioLimits;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    pub description: String,
    /// Whisper: a store id or a model directory.
    pub whisper: String,
    /// The LLM: a store id, a directory holding one .gguf file, or a .gguf file.
    pub llm: String,
    /// CLIP: a store id or a model directory (optional at run time: facts only without it).
    pub clip: String,
    /// System message for the LLM (default: the model template's own).
    #[serde(default)]
    pub system: Option<String>,
    /// Device of every stage unless `[devices]` names another: cpu, cuda:N or metal.
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub devices: Devices,
    /// Re-encode Q4_1/Q5_x blocks as Q8_0 at load and run candle's decoder (may flip near-ties).
    #[serde(default)]
    pub convert_q8: bool,
    #[serde(default)]
    pub sampling: Sampling,
    #[serde(default)]
    pub speech: Speech,
    #[serde(default)]
    pub vision: Vision,
    #[serde(default)]
    pub probe: Probe,
    #[serde(default)]
    pub runtime: Runtime,
}

/// Per-stage devices; a stage left out takes the pipeline's `device` (default cpu).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Devices {
    pub speech: Option<String>,
    pub vision: Option<String>,
    pub llm: Option<String>,
}

/// The three model stages, for device lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    Speech,
    Vision,
    Llm,
}

/// What command-line flags (or a server's config) change in a definition; `None` keeps the
/// pipeline's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub whisper: Option<String>,
    pub llm: Option<String>,
    pub clip: Option<String>,
    pub system: Option<String>,
    /// Every stage's device.
    pub device: Option<String>,
    pub sampling: Sampling,
    pub tags: Option<usize>,
    pub convert_q8: bool,
    pub max_audio_s: Option<u32>,
    pub max_video_s: Option<u32>,
}
/// LLM sampling; a key left out takes percept-llm's default (greedy, 512 tokens).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    /// The repetition guard: 1 = off.
    pub repeat_penalty: Option<f32>,
    /// How many recent tokens the guard looks at.
    pub repeat_last_n: Option<usize>,
    pub seed: Option<u64>,
    pub max_tokens: Option<usize>,
    /// No run of this many tokens twice in an answer (0 = off, the default).
    pub no_repeat_ngram: Option<usize>,
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
    /// The decoder's weights on the CPU: `"int8"` (Q8_0, the default) or `"float32"`.
    pub precision: Option<percept_whisper::Precision>,
}

/// The vision stage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vision {
    /// CLIP tags per image (default 5).
    pub tags: Option<usize>,
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
    /// Longest audio decoded per file, in seconds (default: 4 h on the command line, 1 h in
    /// the server).
    #[serde(default)]
    pub max_audio_s: Option<u32>,
    /// Longest video decoded, in seconds (default: `max_audio_s` when set, else 4 h on the
    /// command line and 1 h in the server).
    #[serde(default)]
    pub max_video_s: Option<u32>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            channel_capacity: 4,
            threads: None,
            max_audio_s: None,
            max_video_s: None,
        }
    }
}

/// Whether RAYON_NUM_THREADS holds [`pin_thread_count`]'s default rather than the person's
/// own value.
static PINNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets RAYON_NUM_THREADS to candle's thread count unless it is set: candle asks for the
/// count on every matmul and, without the variable, answers by reading /proc/cpuinfo (about
/// 4% of a transcription's time). Call once at start, before any thread starts.
pub fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        PINNED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Runtime {
    /// Caps the compute threads; must run before the first model loads, since candle's
    /// thread pool reads the variable once. The person's own RAYON_NUM_THREADS wins; the
    /// default [`pin_thread_count`] set does not.
    pub fn apply_threads(&self) {
        let ours = std::env::var_os("RAYON_NUM_THREADS").is_none()
            || PINNED.load(std::sync::atomic::Ordering::Relaxed);
        if let (Some(n), true) = (self.threads, ours) {
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

/// A built-in pipeline by name, or a TOML file by path.
pub fn load(name: &str) -> Result<PipelineDef> {
    let text = match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => text.to_string(),
        None => std::fs::read_to_string(name).map_err(|e| {
            let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            PipelineError::invalid(format!(
                "unknown pipeline `{name}` (built in: {}; or a .toml path: {e})",
                known.join(", ")
            ))
        })?,
    };
    let def: PipelineDef = toml::from_str(&text).map_err(|e| PipelineError::Definition {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    let bad = |message: String| PipelineError::Definition {
        name: name.to_string(),
        message,
    };
    if def.runtime.channel_capacity == 0 {
        return Err(bad("runtime.channel_capacity must be at least 1".into()));
    }
    for stage in [StageKind::Speech, StageKind::Vision, StageKind::Llm] {
        def.device_spec(stage).map_err(|e| bad(e.to_string()))?;
    }
    Ok(def)
}

/// The default pipeline with Whisper `spec` (a model id or directory) and, when given, every
/// stage on `device`: for the commands that name their one Whisper model by flag.
pub fn whisper_def(spec: &str, device: Option<&str>) -> Result<PipelineDef> {
    let mut def = load("default")?;
    def.apply(&Overrides {
        whisper: Some(spec.to_string()),
        device: device.map(str::to_string),
        ..Overrides::default()
    });
    Ok(def)
}

impl PipelineDef {
    /// Applies flags; each one given replaces the pipeline's value.
    pub fn apply(&mut self, o: &Overrides) {
        fn set<T: Clone>(field: &mut T, from: &Option<T>) {
            if let Some(v) = from {
                *field = v.clone();
            }
        }
        set(&mut self.whisper, &o.whisper);
        set(&mut self.llm, &o.llm);
        set(&mut self.clip, &o.clip);
        if o.system.is_some() {
            self.system = o.system.clone();
        }
        if let Some(d) = &o.device {
            self.device = Some(d.clone());
            self.devices = Devices::default();
        }
        let (s, f) = (&mut self.sampling, &o.sampling);
        fn opt<T: Copy>(field: &mut Option<T>, from: Option<T>) {
            if from.is_some() {
                *field = from;
            }
        }
        opt(&mut s.temperature, f.temperature);
        opt(&mut s.top_k, f.top_k);
        opt(&mut s.top_p, f.top_p);
        opt(&mut s.min_p, f.min_p);
        opt(&mut s.repeat_penalty, f.repeat_penalty);
        opt(&mut s.repeat_last_n, f.repeat_last_n);
        opt(&mut s.no_repeat_ngram, f.no_repeat_ngram);
        opt(&mut s.seed, f.seed);
        opt(&mut s.max_tokens, f.max_tokens);
        opt(&mut self.vision.tags, o.tags);
        opt(&mut self.runtime.max_audio_s, o.max_audio_s);
        opt(&mut self.runtime.max_video_s, o.max_video_s);
        self.convert_q8 |= o.convert_q8;
    }

    /// Sampling for the LLM stage: the pipeline's values over percept-llm's defaults.
    pub fn gen_params(&self) -> GenParams {
        let d = GenParams::default();
        let ds = &d.sampling;
        let s = &self.sampling;
        GenParams {
            sampling: SamplingParams {
                temperature: s.temperature.unwrap_or(ds.temperature),
                top_k: s.top_k.unwrap_or(ds.top_k),
                top_p: s.top_p.unwrap_or(ds.top_p),
                min_p: s.min_p.unwrap_or(ds.min_p),
                repeat_penalty: s.repeat_penalty.unwrap_or(ds.repeat_penalty),
                repeat_last_n: s.repeat_last_n.unwrap_or(ds.repeat_last_n),
                seed: s.seed.unwrap_or(ds.seed),
            },
            max_tokens: s.max_tokens.unwrap_or(d.max_tokens),
            stop: Vec::new(),
            no_repeat_ngram: s.no_repeat_ngram.unwrap_or(d.no_repeat_ngram),
        }
    }

    /// Audio decoding limits: `runtime.max_audio_s` over `base` (the command line's or the
    /// server's preset).
    pub fn audio_limits(&self, base: AudioLimits) -> AudioLimits {
        match self.runtime.max_audio_s {
            Some(s) => base.with_max_seconds(s),
            None => base,
        }
    }

    /// Whisper decoding for files and spoken questions (command-line audio limits).
    pub fn whisper_options(&self) -> percept_whisper::Options {
        percept_whisper::Options {
            beam_size: self.speech.beam.unwrap_or(1).max(1),
            language: self.speech.language.clone(),
            trim_short_window: self.speech.short_window.unwrap_or(false),
            audio_limits: self.audio_limits(AudioLimits::CLI),
            ..percept_whisper::Options::default()
        }
    }

    /// CLIP tags per image.
    pub fn tags(&self) -> usize {
        self.vision.tags.unwrap_or(5)
    }

    /// Whether question-guided probing runs.
    pub fn probing(&self) -> bool {
        self.probe.enabled && self.probe.candidates > 0
    }

    /// The device a stage runs on.
    pub fn device_spec(&self, stage: StageKind) -> Result<DeviceSpec> {
        let per_stage = match stage {
            StageKind::Speech => &self.devices.speech,
            StageKind::Vision => &self.devices.vision,
            StageKind::Llm => &self.devices.llm,
        };
        match per_stage.as_ref().or(self.device.as_ref()) {
            Some(s) => s.parse(),
            None => Ok(DeviceSpec::Cpu),
        }
    }
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
        // Spoken questions on the trimmed window decode in f32 (see pipelines/default.toml).
        assert_eq!(
            super::load("default").expect("default").speech.precision,
            Some(percept_whisper::Precision::Float32)
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

        use percept_whisper::Precision;
        std::fs::write(&path, format!("{base}[speech]\nprecision = \"float32\"\n")).expect("write");
        let def = super::load(path.to_str().expect("utf-8")).expect("parses");
        assert_eq!(def.speech.precision, Some(Precision::Float32));
        std::fs::write(&path, format!("{base}[speech]\nprecision = \"int8-all\"\n"))
            .expect("write");
        let def = super::load(path.to_str().expect("utf-8")).expect("parses");
        assert_eq!(def.speech.precision, Some(Precision::Int8All));
        std::fs::write(&path, format!("{base}[speech]\nprecision = \"fp8\"\n")).expect("write");
        let err = format!(
            "{:#}",
            super::load(path.to_str().expect("utf-8")).unwrap_err()
        );
        assert!(err.contains("precision") || err.contains("fp8"), "{err}");
    }

    #[test]
    fn devices_come_per_stage_and_flags_win() {
        use super::{Overrides, StageKind};
        use crate::device::DeviceSpec;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.toml");
        let base = "description = \"x\"\nwhisper = \"a\"\nllm = \"b\"\nclip = \"c\"\n";
        let text = format!("{base}device = \"cuda:1\"\n[devices]\nspeech = \"cpu\"\n");
        std::fs::write(&path, text).expect("write");
        let mut def = super::load(path.to_str().expect("utf-8")).expect("parses");
        assert_eq!(
            def.device_spec(StageKind::Speech).ok(),
            Some(DeviceSpec::Cpu)
        );
        assert_eq!(
            def.device_spec(StageKind::Llm).ok(),
            Some(DeviceSpec::Cuda(1))
        );
        def.apply(&Overrides {
            device: Some("cpu".into()),
            llm: Some("other".into()),
            ..Overrides::default()
        });
        assert_eq!(
            def.device_spec(StageKind::Vision).ok(),
            Some(DeviceSpec::Cpu)
        );
        assert_eq!(def.llm, "other");
        assert_eq!(def.whisper, "a");

        std::fs::write(&path, format!("{base}[devices]\nllm = \"tpu\"\n")).expect("write");
        let err = super::load(path.to_str().expect("utf-8")).expect_err("bad device");
        assert!(err.to_string().contains("tpu"), "{err}");
    }

    #[test]
    fn flags_given_replace_sampling_and_the_rest_stays() {
        let mut def = super::load("default").expect("default");
        let before = def.gen_params();
        let mut o = super::Overrides::default();
        o.sampling.temperature = Some(0.7);
        def.apply(&o);
        let after = def.gen_params();
        assert_eq!(after.sampling.temperature, 0.7);
        assert_eq!(after.max_tokens, before.max_tokens);
        assert_eq!(
            after.sampling.repeat_penalty,
            before.sampling.repeat_penalty
        );
    }
}
