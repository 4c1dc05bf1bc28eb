//! The OpenAI API: `/v1/models`, `/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`, with OpenAI's request fields, response shapes, streaming (server-sent
//! events ending with `data: [DONE]`) and error objects.

pub mod chat;
pub mod completions;
pub mod embeddings;
mod logprobs;
pub mod request;

#[cfg(test)]
mod tests;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::Usage;
use serde_json::{json, Value};

use crate::state::AppState;

/// What every response and chunk of one request repeats.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    /// `chatcmpl-…`, `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model's name.
    pub model: String,
}

impl ResponseMeta {
    /// A fresh id with this prefix, for `model`.
    pub fn new(prefix: &str, model: &str) -> ResponseMeta {
        ResponseMeta {
            id: format!("{prefix}-{:016x}", crate::params::random_seed()),
            created: unix_now(),
            model: model.to_owned(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// OpenAI's `usage` object.
pub fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    })
}

/// One server-sent event carrying JSON.
pub fn sse_data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// The event that ends every OpenAI stream.
pub fn sse_done() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// A streamed response of server-sent events.
pub fn sse_response(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Proxies such as nginx would otherwise hold the tokens back.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/models`: the served models, the default first.
pub async fn list_models(State(state): State<AppState>) -> Response {
    let created = unix_now();
    let data: Vec<Value> = state
        .models
        .specs()
        .iter()
        .map(|spec| {
            json!({
                "id": spec.name,
                "object": "model",
                "created": created,
                "owned_by": "slm",
            })
        })
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}
