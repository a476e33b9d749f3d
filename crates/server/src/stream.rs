//! Server-sent events in OpenAI's `chat.completion.chunk` format. The stream owns the
//! request's cancel guard: when the client disconnects, hyper drops the stream, the guard
//! sets the cancel flag and the LLM stage stops before its next token.

use crate::chat::{finish_reason, usage, Queued};
use crate::error::ApiError;
use crate::state::CancelGuard;
use crate::workers::recv;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use percept_core::AnswerEvent;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

enum Phase {
    First,
    Body,
    Usage(Value),
    Done,
    End,
}

struct State {
    q: Queued,
    guard: CancelGuard,
    deadline: Instant,
    timeout_s: u64,
    phase: Phase,
}

pub fn respond(q: Queued, guard: CancelGuard, deadline: Instant, timeout_s: u64) -> Response {
    let state = State {
        q,
        guard,
        deadline,
        timeout_s,
        phase: Phase::First,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        let ev = s.next().await?;
        Some((Ok::<Event, Infallible>(ev), s))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

impl State {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.q.id,
            "object": "chat.completion.chunk",
            "created": self.q.created,
            "model": self.q.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    async fn next(&mut self) -> Option<Event> {
        match std::mem::replace(&mut self.phase, Phase::End) {
            Phase::First => {
                let mut c = self.chunk(json!({"role": "assistant", "content": ""}), None);
                c["percept"] = self.q.extension.clone();
                self.phase = Phase::Body;
                Some(data(&c))
            }
            Phase::Body => self.body().await,
            Phase::Usage(u) => {
                let mut c = self.chunk(json!({}), None);
                c["choices"] = json!([]);
                c["usage"] = u;
                self.phase = Phase::Done;
                Some(data(&c))
            }
            Phase::Done => Some(Event::default().data("[DONE]")),
            Phase::End => None,
        }
    }

    async fn body(&mut self) -> Option<Event> {
        match tokio::time::timeout_at(self.deadline, self.q.events.recv()).await {
            Err(_) => {
                self.guard.flag.store(true, Ordering::SeqCst);
                self.phase = Phase::Done;
                Some(error(&ApiError::timeout(self.timeout_s)))
            }
            Ok(Some(AnswerEvent::Delta { text })) => {
                self.phase = Phase::Body;
                Some(data(&self.chunk(json!({"content": text}), None)))
            }
            Ok(Some(AnswerEvent::Done {
                finish,
                prompt_tokens,
                completion_tokens,
            })) => {
                // The reply follows `Done` once the stage has freed the queue place; waiting
                // for it means a client that saw [DONE] can send its next request at once.
                let (_, dead) = tokio::sync::oneshot::channel();
                let reply = std::mem::replace(&mut self.q.reply, dead);
                if let Ok(Err(e)) = tokio::time::timeout_at(self.deadline, recv(reply, "llm")).await
                {
                    self.phase = Phase::Done;
                    return Some(error(&e));
                }
                let u = usage(prompt_tokens, completion_tokens);
                let mut c = self.chunk(json!({}), Some(finish_reason(finish)));
                c["usage"] = u.clone();
                self.phase = if self.q.include_usage {
                    Phase::Usage(u)
                } else {
                    Phase::Done
                };
                Some(data(&c))
            }
            Ok(None) => {
                // The stage ended without `Done`: the reply says why.
                let (_, dead) = tokio::sync::oneshot::channel();
                let reply = std::mem::replace(&mut self.q.reply, dead);
                self.phase = Phase::Done;
                match recv(reply, "llm").await {
                    Err(e) => Some(error(&e)),
                    Ok(_) => {
                        self.phase = Phase::End;
                        Some(Event::default().data("[DONE]"))
                    }
                }
            }
        }
    }
}

fn data(v: &Value) -> Event {
    Event::default().data(v.to_string())
}

fn error(e: &ApiError) -> Event {
    Event::default().data(e.body().to_string())
}
