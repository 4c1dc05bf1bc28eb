//! `POST /v1/completions`: raw prompts (no chat template), BOS as the model says.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::{Event, FinishReason, Ticket, Usage};
use serde_json::{json, Value};

use super::chat::stream_error;
use super::request::{CompletionRequest, Prompt};
use super::{logprobs, sse_data, sse_done, sse_response, usage_json, ResponseMeta};
use crate::error::ApiError;
use crate::generation::{self, finish_reason, PromptSource, StreamRender};
use crate::json::JsonBody;
use crate::state::AppState;

/// Completes one or more prompts, whole or streamed.
pub async fn completions(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CompletionRequest>,
) -> Result<Response, ApiError> {
    let params = request.params()?;
    let prompts = request.prompt.clone().split("prompt")?;
    let served = state.models.get(request.model.as_deref())?;
    let engine = &served.engine;
    let mut tickets: Vec<Ticket> = Vec::with_capacity(prompts.len() * params.n);
    let mut offsets = Vec::with_capacity(prompts.len());
    let deadline = state.deadline();
    for prompt in prompts {
        let (source, offset) = match prompt {
            Prompt::Text(text) => {
                let chars = text.chars().count();
                (PromptSource::Raw(text), chars)
            }
            Prompt::Tokens(tokens) => (PromptSource::Tokens(tokens), 0),
        };
        let tokens = generation::tokenize(engine, source).await?;
        generation::check_prompt(engine, &tokens, "prompt")?;
        // A refusal drops the tickets already queued, which cancels them.
        tickets.extend(generation::submit(engine, &tokens, &params, deadline, "prompt").await?);
        offsets.push(offset);
    }
    let meta = ResponseMeta::new("cmpl", &served.spec.name);
    if request.sampling.stream() {
        let render = CompletionStream {
            meta,
            n: params.n,
            include_usage: request.sampling.include_usage(),
            offsets: offsets
                .iter()
                .flat_map(|&offset| std::iter::repeat_n(offset, params.n))
                .collect(),
            usages: vec![Usage::default(); tickets.len()],
        };
        return Ok(sse_response(generation::stream_body(tickets, render)));
    }
    let finished = generation::collect_all(tickets).await?;
    let usages: Vec<Usage> = finished.iter().map(|f| f.usage).collect();
    let choices: Vec<Value> = finished
        .iter()
        .enumerate()
        .map(|(index, f)| {
            let offset = offsets.get(index / params.n).copied().unwrap_or(0);
            json!({
                "index": index,
                "text": f.text,
                "logprobs": params.logprobs.map(|_| logprobs::completion(&f.logprobs, offset)),
                "finish_reason": finish_reason(f.finish),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": meta.id,
        "object": "text_completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": choices,
        "usage": usage_json(generation::total_usage(&usages, params.n)),
    }))
    .into_response())
}

/// The chunks of a streamed completion.
struct CompletionStream {
    meta: ResponseMeta,
    n: usize,
    include_usage: bool,
    /// Per choice: where its next token's text starts, in characters (`text_offset`).
    offsets: Vec<usize>,
    usages: Vec<Usage>,
}

impl CompletionStream {
    fn chunk(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let mut chunk = json!({
            "id": self.meta.id,
            "object": "text_completion",
            "created": self.meta.created,
            "model": self.meta.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = usage.unwrap_or(Value::Null);
        }
        sse_data(&chunk)
    }

    fn choice(&self, index: usize, text: &str, logprobs: Value, finish: Value) -> Bytes {
        let choice = json!({
            "index": index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": finish,
        });
        self.chunk(json!([choice]), None)
    }
}

impl StreamRender for CompletionStream {
    fn start(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    fn event(&mut self, index: usize, event: Event) -> Vec<Bytes> {
        match event {
            Event::Token { text, logprob, .. } => {
                if text.is_empty() && logprob.is_none() {
                    return Vec::new();
                }
                let logprobs = match (logprob, self.offsets.get_mut(index)) {
                    (Some(lp), Some(offset)) => {
                        let value = logprobs::completion(std::slice::from_ref(&lp), *offset);
                        *offset += lp.text.chars().count();
                        value
                    }
                    _ => Value::Null,
                };
                vec![self.choice(index, &text, logprobs, Value::Null)]
            }
            Event::Done {
                finish,
                usage,
                text,
                ..
            } => {
                if finish == FinishReason::Cancelled {
                    return vec![stream_error(ApiError::unavailable(
                        "the server is shutting down; the request was cancelled",
                    ))];
                }
                if let Some(slot) = self.usages.get_mut(index) {
                    *slot = usage;
                }
                let finish = Value::from(finish_reason(Some(finish)));
                vec![self.choice(index, &text, Value::Null, finish)]
            }
            Event::Error(message) => vec![stream_error(generation::engine_failure(&message))],
        }
    }

    fn finish(&mut self) -> Vec<Bytes> {
        let mut frames = Vec::new();
        if self.include_usage {
            let usage = generation::total_usage(&self.usages, self.n);
            frames.push(self.chunk(json!([]), Some(usage_json(usage))));
        }
        frames.push(sse_done());
        frames
    }
}
