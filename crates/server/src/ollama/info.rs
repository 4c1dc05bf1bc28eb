//! Ollama's model listings and embeddings: `/api/tags`, `/api/show`, `/api/ps`,
//! `/api/version`, `/api/embed`, `/api/embeddings`.

use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::ModelInfo;
use serde_json::{json, Map, Value};

use super::request::{EmbedRequest, LegacyEmbedRequest, ShowRequest};
use super::{nanos, rfc3339, OllamaError, OLLAMA_VERSION};
use crate::config::ModelSpec;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::openai::embeddings::embed;
use crate::openai::request::Prompt;
use crate::state::{AppState, Served};

/// `GET /api/version`.
pub async fn version() -> Response {
    Json(json!({ "version": OLLAMA_VERSION })).into_response()
}

/// `GET /api/tags`: the served models.
pub async fn tags(State(state): State<AppState>) -> Response {
    let loaded = state.models.loaded();
    let models: Vec<Value> = state
        .models
        .specs()
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let served = loaded.and_then(|l| l.get(i));
            let mut entry = entry(spec, served);
            let modified = served.map_or(SystemTime::UNIX_EPOCH, |s| s.modified);
            entry.insert("modified_at".into(), Value::from(rfc3339(modified)));
            Value::Object(entry)
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

/// `GET /api/ps`: the loaded models (all of them stay loaded while the server runs).
pub async fn ps(State(state): State<AppState>) -> Response {
    let models: Vec<Value> = state
        .models
        .loaded()
        .unwrap_or_default()
        .iter()
        .map(|served| {
            let mut entry = entry(&served.spec, Some(served));
            // Never unloaded: a day from now, refreshed on every call.
            let expires = SystemTime::now() + Duration::from_secs(86_400);
            entry.insert("expires_at".into(), Value::from(rfc3339(expires)));
            entry.insert("size_vram".into(), Value::from(0));
            entry.insert("context_length".into(), Value::from(served.engine.n_ctx()));
            Value::Object(entry)
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

/// `POST /api/show`: what the model file holds.
pub async fn show(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<ShowRequest>,
) -> Result<Response, OllamaError> {
    let name = request.model.or(request.name);
    let served = state.models.get(name.as_deref())?;
    let info = served.engine.info();
    let mut model_info = Map::new();
    let arch = info.architecture.clone();
    model_info.insert("general.architecture".into(), Value::from(arch.clone()));
    model_info.insert("general.parameter_count".into(), Value::from(info.n_params));
    if let Some(name) = &info.name {
        model_info.insert("general.basename".into(), Value::from(name.clone()));
    }
    let numbers = [
        ("context_length", info.context_length),
        ("block_count", info.n_layers),
        ("attention.head_count", info.n_heads),
        ("attention.head_count_kv", info.n_kv_heads),
        ("embedding_length", info.n_embd),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            model_info.insert(format!("{arch}.{key}"), Value::from(value));
        }
    }
    let parameters = format!("num_ctx {}", served.engine.n_ctx());
    Ok(Json(json!({
        "license": "",
        "modelfile": format!("# served by slm\nFROM {}\n", served.spec.path.display()),
        "parameters": parameters,
        // The Jinja source slm renders chats with (not a Go template).
        "template": served.engine.template().source(),
        "details": details(Some(info)),
        "model_info": model_info,
        "capabilities": ["completion", "embedding"],
        "modified_at": rfc3339(served.modified),
    }))
    .into_response())
}

/// `POST /api/embed`: one vector per input.
pub async fn embed_route(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<EmbedRequest>,
) -> Result<Response, OllamaError> {
    let started = Instant::now();
    let served = state.models.get(request.model.as_deref())?;
    let inputs: Vec<Prompt> = request
        .input
        .into_vec()
        .into_iter()
        .map(Prompt::Text)
        .collect();
    if inputs.is_empty() {
        return Err(ApiError::invalid_param(
            "input",
            "input is an empty array; give at least one text",
        )
        .into());
    }
    let result = embed(&served.engine, inputs, "input").await?;
    Ok(Json(json!({
        "model": served.spec.name,
        "embeddings": result.vectors,
        "total_duration": nanos(started.elapsed()),
        "load_duration": 0,
        "prompt_eval_count": result.prompt_tokens,
    }))
    .into_response())
}

/// `POST /api/embeddings`: the older route, one text, `{"embedding": [...]}`.
pub async fn embeddings_legacy(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LegacyEmbedRequest>,
) -> Result<Response, OllamaError> {
    let served = state.models.get(request.model.as_deref())?;
    let result = embed(&served.engine, vec![Prompt::Text(request.prompt)], "prompt").await?;
    let vector = result.vectors.into_iter().next().unwrap_or_default();
    Ok(Json(json!({ "embedding": vector })).into_response())
}

/// The fields `/api/tags` and `/api/ps` share.
fn entry(spec: &ModelSpec, served: Option<&Served>) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("name".into(), Value::from(spec.name.clone()));
    entry.insert("model".into(), Value::from(spec.name.clone()));
    let size = served.map_or(0, |s| s.size);
    entry.insert("size".into(), Value::from(size));
    entry.insert(
        "digest".into(),
        Value::from(spec.sha256.clone().unwrap_or_default()),
    );
    entry.insert("details".into(), details(served.map(|s| s.engine.info())));
    entry
}

/// Ollama's `details` object.
fn details(info: Option<&ModelInfo>) -> Value {
    let Some(info) = info else {
        return json!({ "format": "gguf" });
    };
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": info.architecture,
        "families": [info.architecture],
        "parameter_size": parameter_size(info.n_params),
        "quantization_level": quantization(info),
    })
}

/// `494.03M`, `1.54B`, as Ollama writes sizes.
pub fn parameter_size(n_params: u64) -> String {
    let n = n_params as f64;
    if n >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else {
        format!("{:.2}M", n / 1e6)
    }
}

/// The type most tensors have, F32 (norms, biases) aside.
fn quantization(info: &ModelInfo) -> String {
    info.tensor_types
        .iter()
        .filter(|(name, _)| name.as_str() != "F32")
        .max_by_key(|(_, count)| **count)
        .map_or_else(|| "F32".to_owned(), |(name, _)| name.clone())
}
