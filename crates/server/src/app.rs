//! Routes, the API-key check, request counting, and the small endpoints (health, models,
//! metrics, the web page).

use crate::error::ApiError;
use crate::state::AppState;
use crate::{access, audio, chat, embeddings};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

pub fn router(st: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/chat/completions", post(chat::completions))
        .route("/audio/transcriptions", post(audio::transcriptions))
        .route("/audio/translations", post(audio::translations))
        .route("/embeddings", post(embeddings::embeddings))
        .route("/models", get(models))
        .route("/models/{id}", get(model))
        .route_layer(middleware::from_fn_with_state(st.clone(), auth));
    Router::new()
        .nest("/v1", v1)
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { page("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { page("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/health", get(health))
        .route(
            "/metrics",
            get(metrics).route_layer(middleware::from_fn_with_state(st.clone(), auth)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(st.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(st.clone(), count))
        .layer(middleware::from_fn_with_state(st.clone(), access::check))
        .with_state(st)
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> Response {
    let mut e = ApiError::not_found(format!(
        "{} is not allowed on {}",
        req.method(),
        req.uri().path()
    ));
    e.status = StatusCode::METHOD_NOT_ALLOWED;
    e.into_response()
}

/// Bearer token on every /v1 route and /metrics when `--api-key` is set; compared in
/// constant time.
async fn auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(key) = &st.config.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            None => {
                return ApiError::unauthorized(
                    "missing API key: send the header `Authorization: Bearer KEY`",
                )
                .into_response()
            }
            Some(g) if !same(g.trim().as_bytes(), key.as_bytes()) => {
                return ApiError::unauthorized("incorrect API key").into_response()
            }
            Some(_) => {}
        }
    }
    next.run(req).await
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Counts every response by route template and status.
async fn count(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    st.metrics
        .requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    if resp.status().is_client_error() || resp.status().is_server_error() {
        st.metrics
            .errors
            .with_label_values(&[status.as_str()])
            .inc();
    }
    resp
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    match st.workers() {
        Ok(w) => Json(json!({
            "status": "ok",
            "models": {"llm": w.llm_id, "whisper": w.whisper_id, "clip": w.clip_id},
            "queue": {"depth": st.queue_depth(), "capacity": st.config.queue},
        }))
        .into_response(),
        Err(e) => {
            let status = if st.workers.get().is_some() {
                "stopping"
            } else {
                "loading"
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": status, "message": e.message})),
            )
                .into_response()
        }
    }
}

fn model_list(st: &AppState) -> Result<Vec<serde_json::Value>, ApiError> {
    let w = st.workers()?;
    let entry = |id: &str, kind: &str| json!({"id": id, "object": "model", "created": 0, "owned_by": "percept", "percept": {"kind": kind}});
    let mut data = vec![entry(&w.llm_id, "llm")];
    if let Some(id) = &w.whisper_id {
        data.push(entry(id, "speech"));
    }
    if let Some(id) = &w.clip_id {
        data.push(entry(id, "vision"));
    }
    Ok(data)
}

async fn models(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let data = model_list(&st)?;
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

async fn model(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let data = model_list(&st)?;
    let ids: Vec<String> = data
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    match data.into_iter().find(|m| m["id"] == id.as_str()) {
        Some(m) => Ok(Json(m).into_response()),
        None => Err(ApiError::unknown_model("model", &id, &ids)),
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    st.metrics.queue_depth.set(st.queue_depth() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}
