//! Named pipeline definitions (`pipelines/*.toml`): which model each stage uses.

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    pub description: String,
    pub whisper: String,
    pub llm: String,
    pub clip: String,
}

const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../../pipelines/default.toml")),
    ("quality", include_str!("../../../pipelines/quality.toml")),
];

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
    toml::from_str(&text).with_context(|| format!("pipeline `{name}`"))
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
    }
}
