//! `POST /v1/chat/completions`.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::{Event, FinishReason, Usage};
use serde_json::{json, Value};

use super::request::ChatRequest;
use super::{logprobs, sse_data, sse_done, sse_response, usage_json, ResponseMeta};
use crate::error::ApiError;
use crate::generation::{self, finish_reason, StreamRender};
use crate::json::JsonBody;
use crate::state::AppState;
use crate::tools::{self, CallDelta, CallStream, ToolPlan};

/// Generates a reply to a conversation, whole or streamed.
pub async fn chat_completions(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<ChatRequest>,
) -> Result<Response, ApiError> {
    let mut params = request.params()?;
    let messages = request.engine_messages()?;
    let (tools, tool_choice, parallel) = request.tool_request()?;
    let served = state.models.get(request.model.as_deref())?;
    let engine = &served.engine;
    let plan = ToolPlan::new(engine, tools, tool_choice, parallel);
    let source = plan.apply(engine, &mut params, messages)?;
    let prompt = generation::tokenize(engine, source).await?;
    generation::check_prompt(engine, &prompt, "messages")?;
    let tickets =
        generation::submit(engine, &prompt, &params, state.deadline(), "messages").await?;
    let meta = ResponseMeta::new("chatcmpl", &served.spec.name);
    if request.sampling.stream() {
        let render = ChatStream {
            meta,
            n: params.n,
            include_usage: request.sampling.include_usage(),
            usages: vec![Usage::default(); params.n],
            readers: (0..params.n).map(|_| plan.stream_reader()).collect(),
        };
        return Ok(sse_response(generation::stream_body(tickets, render)));
    }
    let finished = generation::collect_all(tickets).await?;
    let usages: Vec<Usage> = finished.iter().map(|f| f.usage).collect();
    let choices: Vec<Value> = finished
        .iter()
        .enumerate()
        .map(|(index, f)| {
            let (content, calls) = plan.read_output(&f.text);
            let mut message = json!({ "role": "assistant", "content": content, "refusal": null });
            let mut finish = finish_reason(f.finish);
            if !calls.is_empty() {
                message["tool_calls"] = tools::openai_calls(&calls);
                if content.is_empty() {
                    message["content"] = Value::Null;
                }
                finish = "tool_calls";
            }
            json!({
                "index": index,
                "message": message,
                "logprobs": params.logprobs.map(|_| logprobs::chat(&f.logprobs)),
                "finish_reason": finish,
            })
        })
        .collect();
    Ok(Json(json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": choices,
        "usage": usage_json(generation::total_usage(&usages, params.n)),
    }))
    .into_response())
}

/// The chunks of a streamed chat completion.
struct ChatStream {
    meta: ResponseMeta,
    n: usize,
    include_usage: bool,
    usages: Vec<Usage>,
    /// Per choice, the reader of tool calls when the request offers tools.
    readers: Vec<Option<CallStream>>,
}

impl ChatStream {
    fn chunk(&self, choices: Value) -> Bytes {
        let mut chunk = json!({
            "id": self.meta.id,
            "object": "chat.completion.chunk",
            "created": self.meta.created,
            "model": self.meta.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        sse_data(&chunk)
    }

    fn delta(&self, index: usize, delta: Value, logprobs: Value, finish: Value) -> Bytes {
        self.chunk(json!([{
            "index": index,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": finish,
        }]))
    }
}

impl ChatStream {
    /// The chunks of one token's reading for tool calls, as OpenAI streams them: text as
    /// `content`, a call's start with its id, type and name and empty arguments, then its
    /// arguments piece by piece. The token's log-probability rides on the first chunk.
    fn call_frames(&self, index: usize, deltas: Vec<CallDelta>, logprobs: Value) -> Vec<Bytes> {
        let mut logprobs = Some(logprobs);
        let mut frames = Vec::new();
        for delta in deltas {
            let body = match delta {
                CallDelta::Text(text) => json!({ "content": text }),
                CallDelta::Start(call, id, name) => json!({ "tool_calls": [{
                    "index": call,
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": "" },
                }] }),
                CallDelta::Arguments(call, fragment) => json!({ "tool_calls": [{
                    "index": call,
                    "function": { "arguments": fragment },
                }] }),
                CallDelta::End(..) => continue,
            };
            let lp = logprobs.take().unwrap_or(Value::Null);
            frames.push(self.delta(index, body, lp, Value::Null));
        }
        if let Some(lp) = logprobs.filter(|lp| !lp.is_null()) {
            frames.push(self.delta(index, json!({ "content": "" }), lp, Value::Null));
        }
        frames
    }
}

impl StreamRender for ChatStream {
    fn start(&mut self) -> Vec<Bytes> {
        (0..self.n)
            .map(|index| {
                let delta = json!({ "role": "assistant", "content": "" });
                self.delta(index, delta, Value::Null, Value::Null)
            })
            .collect()
    }

    fn event(&mut self, index: usize, event: Event) -> Vec<Bytes> {
        match event {
            Event::Token { text, logprob, .. } => {
                if text.is_empty() && logprob.is_none() {
                    return Vec::new();
                }
                let logprobs = logprob.map_or(
                    Value::Null,
                    |lp| json!({ "content": [logprobs::chat_entry(&lp)], "refusal": null }),
                );
                let Some(Some(reader)) = self.readers.get_mut(index) else {
                    return vec![self.delta(
                        index,
                        json!({ "content": text }),
                        logprobs,
                        Value::Null,
                    )];
                };
                let deltas = reader.push(&text);
                self.call_frames(index, deltas, logprobs)
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
                let mut frames = Vec::new();
                let mut made_calls = false;
                if let Some(Some(reader)) = self.readers.get_mut(index) {
                    let mut deltas = reader.push(&text);
                    deltas.extend(reader.finish());
                    made_calls = reader.n_calls() > 0;
                    frames = self.call_frames(index, deltas, Value::Null);
                } else if !text.is_empty() {
                    let delta = json!({ "content": text });
                    frames.push(self.delta(index, delta, Value::Null, Value::Null));
                }
                let finish = if made_calls {
                    Value::from("tool_calls")
                } else {
                    Value::from(finish_reason(Some(finish)))
                };
                frames.push(self.delta(index, json!({}), Value::Null, finish));
                frames
            }
            Event::Error(message) => vec![stream_error(generation::engine_failure(&message))],
        }
    }

    fn finish(&mut self) -> Vec<Bytes> {
        let mut frames = Vec::new();
        if self.include_usage {
            let usage = generation::total_usage(&self.usages, self.n);
            let mut chunk = json!({
                "id": self.meta.id,
                "object": "chat.completion.chunk",
                "created": self.meta.created,
                "model": self.meta.model,
                "system_fingerprint": null,
                "choices": [],
            });
            chunk["usage"] = usage_json(usage);
            frames.push(sse_data(&chunk));
        }
        frames.push(sse_done());
        frames
    }
}

/// An error in the middle of a stream: an event with OpenAI's error object (the `openai`
/// package raises it as an `APIError`).
pub fn stream_error(error: ApiError) -> Bytes {
    sse_data(&error.openai_body())
}
