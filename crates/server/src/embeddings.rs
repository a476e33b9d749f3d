//! `POST /v1/embeddings`: CLIP embeddings of texts and of images sent as data: URLs. Text and
//! image vectors share CLIP's space, so a text can be compared with images.

use crate::chat_input::data_url;
use crate::error::ApiError;
use crate::json;
use crate::state::AppState;
use crate::vision::ImageInput;
use crate::workers::EmbedItem;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
struct EmbeddingsRequest {
    input: Value,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    encoding_format: Option<String>,
}

/// The 503 for embeddings without CLIP weights, with how to get them.
pub fn no_clip() -> ApiError {
    let how = percept_clip::ClipError::MissingWeights {
        dir: "the server found none at start".into(),
    };
    ApiError::not_loaded(format!(
        "embeddings need the CLIP model, which is not loaded: {how}"
    ))
}

pub async fn embeddings(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let secs = st.config.timeout.as_secs();
    match tokio::time::timeout(st.config.timeout, handle(&st, req)).await {
        Err(_) => ApiError::timeout(secs).into_response(),
        Ok(Err(e)) => e.into_response(),
        Ok(Ok(v)) => axum::Json(v).into_response(),
    }
}

async fn handle(st: &Arc<AppState>, req: Request) -> Result<Value, ApiError> {
    let workers = st.workers()?;
    let Some(clip_id) = workers.clip_id.clone() else {
        return Err(no_clip());
    };
    let bytes = json::read(req, st.config.max_body_bytes, st.config.body_timeout).await?;
    let req: EmbeddingsRequest = json::parse(&bytes)?;
    if let Some(m) = &req.model {
        if m != &clip_id {
            return Err(ApiError::unknown_model("model", m, &[clip_id]));
        }
    }
    let base64_out = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("`{other}` is not one of float, base64"),
            ))
        }
    };
    let inputs = parse_inputs(req.input)?;
    let permit = st.admit()?;
    let vectors = workers.embed(inputs, permit).await?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64_out {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": clip_id,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }))
}

fn parse_inputs(input: Value) -> Result<Vec<EmbedItem>, ApiError> {
    let items: Vec<(String, String)> = match input {
        Value::String(s) => vec![("input".to_string(), s)],
        Value::Array(a) if a.is_empty() => {
            return Err(ApiError::invalid("input", "the list is empty"));
        }
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok((format!("input[{i}]"), s)),
                _ => Err(ApiError::invalid(
                    format!("input[{i}]"),
                    "expected a string (text, or an image as a data:image/...;base64 URL); token arrays are not supported",
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::invalid(
                "input",
                "expected a string or an array of strings",
            ))
        }
    };
    items
        .into_iter()
        .map(|(param, s)| {
            if s.starts_with("data:") {
                let bytes = data_url(&s, &param)?;
                Ok(EmbedItem::Image(ImageInput {
                    name: param.clone(),
                    param,
                    bytes,
                }))
            } else if s.is_empty() {
                Err(ApiError::invalid(param, "empty text"))
            } else {
                Ok(EmbedItem::Text(s))
            }
        })
        .collect()
}
