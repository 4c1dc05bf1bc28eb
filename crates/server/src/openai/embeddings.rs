//! `POST /v1/embeddings`: one mean-pooled, L2-normalized vector per input.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::{Embeddings, Engine};
use serde_json::{json, Value};

use super::request::{EmbeddingRequest, Prompt};
use crate::error::ApiError;
use crate::generation::{self, PromptSource};
use crate::json::JsonBody;
use crate::state::AppState;

/// Embeds each input.
pub async fn embeddings(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    let base64 = request.base64()?;
    let inputs = request.input.clone().split("input")?;
    let served = state.models.get(request.model.as_deref())?;
    let engine = &served.engine;
    let result = embed(engine, inputs, "input").await?;
    if let Some(dimensions) = request.dimensions {
        let size = result.vectors.first().map_or(0, Vec::len);
        if usize::try_from(dimensions).ok() != Some(size) {
            return Err(ApiError::invalid_param(
                "dimensions",
                format!("dimensions must be absent or {size}, this model's embedding size; slm does not shorten embeddings"),
            ));
        }
    }
    let data: Vec<Value> = result
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                Value::from(base64_f32(vector))
            } else {
                Value::from(vector.clone())
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": served.spec.name,
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "total_tokens": result.prompt_tokens,
        },
    }))
    .into_response())
}

/// Tokenizes the inputs and waits for their vectors; `param` names the field in errors.
pub async fn embed(
    engine: &Engine,
    inputs: Vec<Prompt>,
    param: &str,
) -> Result<Embeddings, ApiError> {
    let mut token_lists = Vec::with_capacity(inputs.len());
    for input in inputs {
        let source = match input {
            Prompt::Text(text) => PromptSource::Raw(text),
            Prompt::Tokens(tokens) => PromptSource::Tokens(tokens),
        };
        let tokens = generation::tokenize(engine, source).await?;
        if tokens.len() > engine.n_ctx() {
            return Err(ApiError::invalid_param(
                param,
                format!(
                    "an input has {} tokens but the model's context holds {}; shorten it or start the server with a larger --ctx",
                    tokens.len(),
                    engine.n_ctx()
                ),
            ));
        }
        token_lists.push(tokens);
    }
    let ticket = engine
        .embed(token_lists)
        .map_err(|e| generation::submit_error(e, param))?;
    ticket
        .wait()
        .await
        .map_err(|message| generation::engine_failure(&message))
}

/// The vector's little-endian f32 bytes in standard base64 (what the `openai` package asks
/// for by default and decodes).
pub fn base64_f32(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64(&bytes)
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}
