//! `POST /api/chat` and `POST /api/generate`: NDJSON lines by default, one object with
//! `"stream": false`; the last line carries `done`, `done_reason` and the counts and
//! durations (nanoseconds) Ollama reports.

use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::{Event, FinishReason, Ticket};
use serde_json::{json, Map, Value};

use super::request::{self, ChatRequest, GenerateRequest, Options};
use super::{nanos, rfc3339, OllamaError};
use crate::error::ApiError;
use crate::generation::{self, finish_reason, Finished, PromptSource, StreamRender};
use crate::json::JsonBody;
use crate::params::GenParams;
use crate::state::AppState;
use crate::tools::{CallDelta, CallStream, ToolPlan};
use engine::ToolChoice;

/// Which route: the text goes in `message.content` or in `response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Generate,
}

/// Answers a conversation.
pub async fn chat(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<ChatRequest>,
) -> Result<Response, OllamaError> {
    let started = Instant::now();
    let grammar = request::check_format(request.format.as_ref())?;
    let mut params = checked_options(request.options.as_ref())?;
    params.grammar = grammar;
    let messages = request::engine_messages(&request.messages)?;
    let tools = crate::tools::parse_tools(request.tools.as_ref())?;
    let served = state.models.get(request.model.as_deref())?;
    let model = served.spec.name.clone();
    if messages.is_empty() {
        return Ok(Json(loaded(Kind::Chat, &model)).into_response());
    }
    let engine = &served.engine;
    // Ollama has no tool_choice: the model decides, as OpenAI's auto.
    let choice = if tools.is_empty() {
        ToolChoice::None
    } else {
        ToolChoice::Auto
    };
    let plan = ToolPlan::new(engine, tools, choice, true);
    let source = plan.apply(engine, &mut params, messages)?;
    let prompt = generation::tokenize(engine, source).await?;
    generation::check_prompt(engine, &prompt, "messages")?;
    let tickets =
        generation::submit(engine, &prompt, &params, state.deadline(), "messages").await?;
    respond(
        tickets,
        Kind::Chat,
        model,
        started,
        request.stream.unwrap_or(true),
        Some(plan),
    )
    .await
}

/// Completes a prompt, in the model's chat format unless `raw`.
pub async fn generate(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<GenerateRequest>,
) -> Result<Response, OllamaError> {
    let started = Instant::now();
    let grammar = request::check_format(request.format.as_ref())?;
    if request.images.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::invalid_param(
            "images",
            "images are not supported; slm runs text models only",
        )
        .into());
    }
    if request.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid_param(
            "suffix",
            "suffix (fill-in-the-middle) is not supported yet",
        )
        .into());
    }
    if request.template.as_deref().is_some_and(|t| !t.is_empty()) {
        tracing::info!("the request's template is ignored: slm uses the model's chat format");
    }
    let mut params = checked_options(request.options.as_ref())?;
    params.grammar = grammar;
    let served = state.models.get(request.model.as_deref())?;
    let model = served.spec.name.clone();
    let prompt_text = request.prompt.unwrap_or_default();
    if prompt_text.is_empty() {
        return Ok(Json(loaded(Kind::Generate, &model)).into_response());
    }
    let engine = &served.engine;
    let source = if request.raw.unwrap_or(false) || !engine.info().has_chat_template {
        PromptSource::Raw(prompt_text)
    } else {
        let mut messages = Vec::new();
        if let Some(system) = request.system.filter(|s| !s.is_empty()) {
            messages.push(engine::Message::new(engine::Role::System, system));
        }
        messages.push(engine::Message::new(engine::Role::User, prompt_text));
        PromptSource::Chat(messages)
    };
    let prompt = generation::tokenize(engine, source).await?;
    generation::check_prompt(engine, &prompt, "prompt")?;
    let tickets = generation::submit(engine, &prompt, &params, state.deadline(), "prompt").await?;
    respond(
        tickets,
        Kind::Generate,
        model,
        started,
        request.stream.unwrap_or(true),
        None,
    )
    .await
}

fn checked_options(options: Option<&Options>) -> Result<GenParams, ApiError> {
    let Some(options) = options else {
        return Options::default().check();
    };
    if let Some(num_ctx) = options.num_ctx {
        tracing::debug!(
            num_ctx,
            "options.num_ctx is ignored: the server's --ctx applies"
        );
    }
    options.check()
}

/// What Ollama answers to a request with nothing to generate: the model is loaded.
fn loaded(kind: Kind, model: &str) -> Value {
    let mut line = line(kind, model, "");
    line.insert("done".into(), Value::Bool(true));
    line.insert("done_reason".into(), Value::from("load"));
    Value::Object(line)
}

/// The fields every line has, with this text.
fn line(kind: Kind, model: &str, text: &str) -> Map<String, Value> {
    let mut line = Map::new();
    line.insert("model".into(), Value::from(model));
    line.insert("created_at".into(), Value::from(rfc3339(SystemTime::now())));
    match kind {
        Kind::Chat => {
            line.insert(
                "message".into(),
                json!({ "role": "assistant", "content": text }),
            );
        }
        Kind::Generate => {
            line.insert("response".into(), Value::from(text));
        }
    }
    line
}

/// The last line: counts and durations. `before` is the time spent before submission
/// (parsing, templating, tokenizing), reported as `load_duration`.
fn final_line(kind: Kind, model: &str, text: &str, finished: &Finished, before: Duration) -> Value {
    let timings = finished.timings;
    let ttft = timings.ttft.unwrap_or(timings.total);
    let mut line = line(kind, model, text);
    line.insert("done".into(), Value::Bool(true));
    line.insert(
        "done_reason".into(),
        Value::from(finish_reason(finished.finish)),
    );
    let fields = [
        ("total_duration", nanos(before + timings.total)),
        ("load_duration", nanos(before)),
        ("prompt_eval_count", finished.usage.prompt_tokens as u64),
        (
            "prompt_eval_duration",
            nanos(ttft.saturating_sub(timings.queued)),
        ),
        ("eval_count", finished.usage.completion_tokens as u64),
        ("eval_duration", nanos(timings.total.saturating_sub(ttft))),
    ];
    for (name, value) in fields {
        line.insert(name.into(), Value::from(value));
    }
    Value::Object(line)
}

async fn respond(
    mut tickets: Vec<Ticket>,
    kind: Kind,
    model: String,
    started: Instant,
    stream: bool,
    plan: Option<ToolPlan>,
) -> Result<Response, OllamaError> {
    let before = started.elapsed();
    if stream {
        let render = OllamaStream {
            kind,
            model,
            before,
            reader: plan.as_ref().and_then(ToolPlan::stream_reader),
        };
        let body = generation::stream_body(tickets, render);
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response());
    }
    let Some(ticket) = tickets.pop() else {
        return Err(ApiError::internal().into());
    };
    let finished = generation::collect(ticket).await?;
    let (content, calls) = match &plan {
        Some(plan) => plan.read_output(&finished.text),
        None => (finished.text.clone(), Vec::new()),
    };
    let mut last = final_line(kind, &model, &content, &finished, before);
    if !calls.is_empty() {
        last["message"]["tool_calls"] = crate::tools::ollama_calls(&calls);
    }
    Ok(Json(last).into_response())
}

/// The lines of a streamed response.
struct OllamaStream {
    kind: Kind,
    model: String,
    before: Duration,
    /// The reader of tool calls when the request offers tools.
    reader: Option<CallStream>,
}

impl OllamaStream {
    /// The lines of text and complete calls (Ollama sends each call whole).
    fn call_lines(&self, deltas: Vec<CallDelta>) -> Vec<Bytes> {
        let mut frames = Vec::new();
        for delta in deltas {
            let mut line = match delta {
                CallDelta::Text(text) if !text.is_empty() => line(self.kind, &self.model, &text),
                CallDelta::End(_, call) => {
                    let mut line = line(self.kind, &self.model, "");
                    line.insert(
                        "message".into(),
                        json!({ "role": "assistant", "content": "", "tool_calls": crate::tools::ollama_calls(&[call]) }),
                    );
                    line
                }
                _ => continue,
            };
            line.insert("done".into(), Value::Bool(false));
            frames.push(ndjson(&Value::Object(line)));
        }
        frames
    }
}

fn ndjson(value: &Value) -> Bytes {
    Bytes::from(format!("{value}\n"))
}

fn error_line(error: &ApiError) -> Bytes {
    ndjson(&error.ollama_body())
}

impl StreamRender for OllamaStream {
    fn start(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    fn event(&mut self, _index: usize, event: Event) -> Vec<Bytes> {
        match event {
            Event::Token { text, .. } => {
                if text.is_empty() {
                    return Vec::new();
                }
                if let Some(reader) = self.reader.as_mut() {
                    let deltas = reader.push(&text);
                    return self.call_lines(deltas);
                }
                let mut line = line(self.kind, &self.model, &text);
                line.insert("done".into(), Value::Bool(false));
                vec![ndjson(&Value::Object(line))]
            }
            Event::Done {
                finish,
                usage,
                timings,
                text,
            } => {
                if finish == FinishReason::Cancelled {
                    return vec![error_line(&ApiError::unavailable(
                        "the server is shutting down; the request was cancelled",
                    ))];
                }
                let mut frames = Vec::new();
                if let Some(reader) = self.reader.as_mut() {
                    let mut deltas = reader.push(&text);
                    deltas.extend(reader.finish());
                    frames = self.call_lines(deltas);
                } else if !text.is_empty() {
                    let mut line = line(self.kind, &self.model, &text);
                    line.insert("done".into(), Value::Bool(false));
                    frames.push(ndjson(&Value::Object(line)));
                }
                let finished = Finished {
                    finish: Some(finish),
                    usage,
                    timings,
                    ..Finished::default()
                };
                frames.push(ndjson(&final_line(
                    self.kind,
                    &self.model,
                    "",
                    &finished,
                    self.before,
                )));
                frames
            }
            Event::Error(message) => vec![error_line(&generation::engine_failure(&message))],
        }
    }

    fn finish(&mut self) -> Vec<Bytes> {
        Vec::new()
    }
}
