//! `POST /v1/audio/transcriptions` and `/v1/audio/translations` (multipart form).

use crate::error::ApiError;
use crate::speech::{render, AudioInput, Format};
use crate::state::AppState;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use percept_whisper::{Options, Task};
use std::sync::Arc;

/// Model names the audio endpoints accept besides the loaded Whisper's id, because OpenAI
/// clients send it by default.
const OPENAI_ALIAS: &str = "whisper-1";

pub async fn transcriptions(
    State(st): State<Arc<AppState>>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    respond(st, form, Task::Transcribe).await
}

pub async fn translations(
    State(st): State<Arc<AppState>>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    respond(st, form, Task::Translate).await
}

async fn respond(
    st: Arc<AppState>,
    form: Result<Multipart, MultipartRejection>,
    task: Task,
) -> Response {
    let secs = st.config.timeout.as_secs();
    match tokio::time::timeout(st.config.timeout, handle(&st, form, task)).await {
        Err(_) => ApiError::timeout(secs).into_response(),
        Ok(Err(e)) => e.into_response(),
        Ok(Ok(r)) => r,
    }
}

#[derive(Default)]
struct Form {
    file: Option<AudioInput>,
    model: Option<String>,
    language: Option<String>,
    prompt: Option<String>,
    response_format: Option<String>,
}

async fn read_form(
    st: &AppState,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Form, ApiError> {
    let limit = st.config.max_body_bytes;
    let mut mp = form.map_err(|e| {
        ApiError::invalid(
            "",
            format!("expected a multipart/form-data body with a `file` field: {e}"),
        )
    })?;
    let mut out = Form::default();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("upload").to_string();
            let ext = std::path::Path::new(&file_name)
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase());
            let bytes = field.bytes().await.map_err(|e| multipart_error(e, limit))?;
            out.file = Some(AudioInput {
                name: file_name,
                param: "file".into(),
                bytes: bytes.to_vec(),
                ext,
            });
            continue;
        }
        let text = field.text().await.map_err(|e| multipart_error(e, limit))?;
        match name.as_str() {
            "model" => out.model = Some(text),
            "language" => out.language = Some(text).filter(|s| !s.is_empty()),
            "prompt" => out.prompt = Some(text).filter(|s| !s.is_empty()),
            "response_format" => out.response_format = Some(text),
            // temperature, timestamp_granularities[]...: accepted, decoding uses Whisper's own schedule.
            _ => {}
        }
    }
    Ok(out)
}

async fn handle(
    st: &Arc<AppState>,
    form: Result<Multipart, MultipartRejection>,
    task: Task,
) -> Result<Response, ApiError> {
    let workers = st.workers()?;
    let deadline = st.config.body_timeout;
    let form = tokio::time::timeout(deadline, read_form(st, form))
        .await
        .map_err(|_| ApiError::body_timeout(deadline.as_secs()))??;
    let Some(whisper_id) = workers.whisper_id.clone() else {
        return Err(ApiError::not_loaded(
            "no Whisper model is loaded (start the server with --whisper ID)",
        ));
    };
    if let Some(m) = &form.model {
        if m != &whisper_id && m != OPENAI_ALIAS {
            return Err(ApiError::unknown_model(
                "model",
                m,
                &[whisper_id, OPENAI_ALIAS.into()],
            ));
        }
    }
    let format = Format::parse(form.response_format.as_deref().unwrap_or("json"))?;
    let file = form.file.ok_or_else(|| {
        ApiError::invalid(
            "file",
            "missing; send the audio as the multipart field `file`",
        )
    })?;
    let options = Options {
        language: form.language,
        task,
        initial_prompt: form.prompt,
        audio_limits: st.config.speech.audio_limits,
        ..Options::default()
    };
    let permit = st.admit()?;
    let t = workers
        .transcribe(vec![file], options, permit)
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("the speech stage returned no transcript"))?;
    let duration = t.segments.last().map(|s| s.end).unwrap_or(0.0);
    let task_name = match task {
        Task::Transcribe => "transcribe",
        Task::Translate => "translate",
    };
    let body = render(&t, format, task_name, duration);
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else {
        ApiError::invalid("", format!("malformed multipart body: {}", e.body_text()))
    }
}
