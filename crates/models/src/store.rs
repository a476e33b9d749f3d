use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("model `{id}` is not in the store; run `percept models fetch {id}`")]
    Missing { id: String },
}

pub struct Store;

/// Resolves a `--model` argument: an existing directory or file is used as is, otherwise
/// it is a model id looked up in the store.
pub fn locate(spec: &str) -> Result<PathBuf, StoreError> {
    let p = PathBuf::from(spec);
    if p.exists() {
        return Ok(p);
    }
    Err(StoreError::Missing {
        id: spec.to_string(),
    })
}
