//! `POST /v1/chat/completions`: the pipeline's ask session over HTTP. Media goes through the
//! speech and vision stages (at the same time) and into the prompt by the pipeline's one
//! rule, then the LLM stage; one JSON answer or an SSE stream of chunks.

use crate::chat_input::{self, ChatRequest, Stop};
use crate::error::ApiError;
use crate::state::{AppState, CancelGuard};
use crate::workers::{recv, ChatMedia};
use crate::{json, stream};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use percept_core::{AnswerEvent, FinishReason};
use percept_llm::{GenParams, Generation};
use percept_pipeline::{Prepared, Question};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A generation that has been queued, with what the response needs around it.
pub struct Queued {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub include_usage: bool,
    /// The `percept` extension: transcript and image contexts.
    pub extension: Value,
    pub events: mpsc::UnboundedReceiver<AnswerEvent>,
    pub reply: oneshot::Receiver<Result<Generation, ApiError>>,
}

pub async fn completions(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let guard = st.track();
    let deadline = Instant::now() + st.config.timeout;
    let secs = st.config.timeout.as_secs();
    let queued = match tokio::time::timeout_at(deadline, queue(&st, req, &guard)).await {
        Err(_) => return ApiError::timeout(secs).into_response(),
        Ok(Err(e)) => return e.into_response(),
        Ok(Ok(q)) => q,
    };
    let (queued, streaming) = queued;
    if streaming {
        return stream::respond(queued, guard, deadline, secs);
    }
    let Queued {
        id,
        created,
        model,
        extension,
        reply,
        ..
    } = queued;
    let generation = match tokio::time::timeout_at(deadline, recv(reply, "llm")).await {
        Err(_) => return ApiError::timeout(secs).into_response(),
        Ok(Err(e)) => return e.into_response(),
        Ok(Ok(g)) => g,
    };
    drop(guard);
    axum::Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": generation.text},
            "logprobs": null,
            "finish_reason": finish_reason(generation.finish),
        }],
        "usage": usage(generation.prompt_tokens, generation.completion_tokens),
        "system_fingerprint": null,
        "percept": extension,
    }))
    .into_response()
}

/// Parses and checks the request, runs the media stages and queues the generation.
async fn queue(
    st: &Arc<AppState>,
    req: Request,
    guard: &CancelGuard,
) -> Result<(Queued, bool), ApiError> {
    let workers = st.workers()?;
    let bytes = json::read(req, st.config.max_body_bytes, st.config.body_timeout).await?;
    let req: ChatRequest = json::parse(&bytes)?;
    drop(bytes);
    if let Some(m) = &req.model {
        if m != &workers.llm_id {
            return Err(ApiError::unknown_model(
                "model",
                m,
                std::slice::from_ref(&workers.llm_id),
            ));
        }
    }
    let params = gen_params(&req, &st.config.defaults)?;
    let streaming = req.stream;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let inputs = chat_input::split(req.messages, &st.policy)?;
    let text_bytes = inputs.system.as_ref().map_or(0, String::len)
        + inputs.history.iter().map(|t| t.text.len()).sum::<usize>()
        + inputs.question.as_ref().map_or(0, String::len);
    if workers.loaded.surely_too_long(text_bytes) {
        return Err(ApiError::invalid(
            "messages",
            format!(
                "{text_bytes} bytes of text cannot fit the model's context of {} tokens",
                workers.loaded.context_length
            ),
        )
        .with_code("context_length_exceeded"));
    }
    // A queue place only for a request that is fully read and valid.
    let permit = st.admit()?;
    let media = ChatMedia {
        question: Question {
            system: inputs.system.or_else(|| st.config.system.clone()),
            history: inputs.history,
            typed: inputs.question,
            ..Question::default()
        },
        audio: inputs.audio,
        images: inputs.images,
        video_limits: st.config.video_limits,
        videos: inputs.videos,
    };
    let prepared = workers
        .prepare(media, st.config.speech.clone(), permit.clone())
        .await?;
    let Prepared {
        prompt,
        transcripts,
        images: contexts,
        ..
    } = prepared;
    if prompt
        .question
        .as_ref()
        .is_none_or(|q| q.text.trim().is_empty())
        && contexts.is_empty()
    {
        return Err(ApiError::invalid(
            "messages",
            "nothing to answer: the audio held no speech and there is no text",
        ));
    }

    let (tx, events) = mpsc::unbounded_channel();
    let reply = workers.generate(
        prompt,
        params,
        guard.flag.clone(),
        streaming.then_some(tx),
        permit,
    );
    let transcript = (!transcripts.is_empty()).then(|| {
        transcripts
            .iter()
            .map(|t| t.text.trim())
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok((
        Queued {
            id: next_id(),
            created: now(),
            model: workers.llm_id.clone(),
            include_usage,
            extension: json!({"transcript": transcript, "images": contexts}),
            events,
            reply,
        },
        streaming,
    ))
}

pub(crate) fn gen_params(req: &ChatRequest, defaults: &GenParams) -> Result<GenParams, ApiError> {
    let mut p = defaults.clone();
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::invalid("temperature", "must be between 0 and 2"));
        }
        p.sampling.temperature = t;
    }
    if let Some(t) = req.top_p {
        if !(t > 0.0 && t <= 1.0) {
            return Err(ApiError::invalid(
                "top_p",
                "must be greater than 0 and at most 1",
            ));
        }
        p.sampling.top_p = t;
    }
    let (field, max) = match (req.max_completion_tokens, req.max_tokens) {
        (Some(m), _) => ("max_completion_tokens", Some(m)),
        (None, m) => ("max_tokens", m),
    };
    if let Some(m) = max {
        if m == 0 {
            return Err(ApiError::invalid(field, "must be at least 1"));
        }
        p.max_tokens = m as usize;
    }
    if let Some(s) = req.seed {
        p.sampling.seed = s;
    }
    match &req.stop {
        None => {}
        Some(Stop::One(s)) => p.stop = vec![s.clone()],
        Some(Stop::Many(v)) if v.len() > 4 => {
            return Err(ApiError::invalid("stop", "at most 4 stop sequences"));
        }
        Some(Stop::Many(v)) => p.stop = v.clone(),
    }
    if req.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("n", "only n=1 is supported"));
    }
    Ok(p)
}

pub fn finish_reason(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::Cancelled => "cancelled",
    }
}

pub fn usage(prompt: usize, completion: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn next_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "chatcmpl-{nanos:x}{:04x}",
        N.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}
