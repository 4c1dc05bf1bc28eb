//! The bridge to the engine that both APIs use: prompts to tokens (off the async threads),
//! requests submitted per choice, engine refusals mapped to API errors, and the tickets'
//! events collected (whole responses) or merged into one stream (streamed responses).
//!
//! A streamed response's body owns its tickets: when the client disconnects, hyper drops
//! the body, the tickets drop with it, and the engine cancels those sequences and frees
//! their KV blocks before its next step. A whole response's handler future owns them in the
//! same way.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Instant;

use axum::body::{Body, Bytes};
use engine::{
    Engine, Event, FinishReason, Message, Request, SubmitError, Ticket, Timings, TokenLogprob,
    Usage,
};
use futures_util::stream::{self, SelectAll, Stream, StreamExt};

use crate::error::ApiError;
use crate::params::GenParams;

/// A prompt as a request gives it.
#[derive(Debug, Clone)]
pub enum PromptSource {
    /// A conversation, rendered in the model's chat format.
    Chat(Vec<Message>),
    /// A conversation with the functions the model may call, both passed to the template.
    ChatWithTools(Vec<Message>, Vec<engine::ToolSpec>),
    /// Text used as is: BOS as the model's metadata says, special-token text parsed (as
    /// `slm run --raw` and llama.cpp's completion tools do).
    Raw(String),
    /// Token ids used as given.
    Tokens(Vec<u32>),
}

/// Turns a prompt into token ids. Templating and tokenizing are compute, so they run on
/// the blocking pool, not on the async threads. The one place chat templates are applied:
/// a conversation the model's template rejects (or cannot render) is a 400 with the
/// template's message.
pub async fn tokenize(engine: &Engine, prompt: PromptSource) -> Result<Vec<u32>, ApiError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || match prompt {
        PromptSource::Chat(messages) => {
            let text = engine
                .template()
                .render(&messages, &[], true)
                .map_err(|err| ApiError::invalid_param("messages", err.to_string()))?;
            Ok(engine.tokenizer().encode(&text, true, true))
        }
        PromptSource::ChatWithTools(messages, tools) => {
            let text = engine
                .template()
                .render(&messages, &tools, true)
                .map_err(|err| ApiError::invalid_param("messages", err.to_string()))?;
            Ok(engine.tokenizer().encode(&text, true, true))
        }
        PromptSource::Raw(text) => Ok(engine.tokenizer().encode(&text, true, true)),
        PromptSource::Tokens(tokens) => Ok(tokens),
    })
    .await
    .map_err(|err| {
        tracing::error!(%err, "tokenizing failed");
        ApiError::internal()
    })?
}

/// Checks that the prompt leaves room to generate; `param` names the field at fault.
pub fn check_prompt(engine: &Engine, prompt: &[u32], param: &str) -> Result<(), ApiError> {
    let n_ctx = engine.n_ctx();
    if prompt.len() >= n_ctx {
        return Err(prompt_too_long(param, prompt.len(), n_ctx));
    }
    if prompt.is_empty() {
        return Err(ApiError::invalid_param(
            param,
            format!("{param} is empty and the model adds no BOS token; give some text"),
        ));
    }
    Ok(())
}

fn prompt_too_long(param: &str, prompt: usize, n_ctx: usize) -> ApiError {
    let mut error = ApiError::invalid_param(
        param,
        format!(
            "the prompt has {prompt} tokens but the model's context holds {n_ctx} tokens (prompt and reply); shorten the prompt or start the server with a larger --ctx"
        ),
    );
    error.code = Some("context_length_exceeded");
    error
}

/// The API error for an engine's refusal.
pub fn submit_error(err: SubmitError, param: &str) -> ApiError {
    match err {
        SubmitError::QueueFull { max_queue } => ApiError::queue_full(max_queue),
        SubmitError::PromptTooLong { prompt, n_ctx } => prompt_too_long(param, prompt, n_ctx),
        SubmitError::ShuttingDown => {
            ApiError::unavailable("the server is shutting down; retry on another server")
        }
        SubmitError::EmptyPrompt
        | SubmitError::InvalidToken(_)
        | SubmitError::TooManyLogprobs { .. } => ApiError::invalid_param(param, err.to_string()),
        SubmitError::InvalidGrammar(_) => ApiError::invalid(err.to_string()),
        SubmitError::KvTooSmall { .. } => {
            let mut error = ApiError::invalid(err.to_string());
            error.param = Some("max_tokens".into());
            error
        }
    }
}

/// Submits one request per choice. If any is refused, the ones already queued are
/// cancelled (their tickets drop) and the refusal is returned. A request with a grammar
/// is submitted from the blocking pool: compiling it (and, the first time, the model's
/// token trie) is compute, which never runs on the async threads.
pub async fn submit(
    engine: &Engine,
    prompt: &[u32],
    params: &GenParams,
    deadline: Option<Instant>,
    param: &str,
) -> Result<Vec<Ticket>, ApiError> {
    if params.grammar.is_none() {
        return submit_now(engine, prompt, params, deadline, param);
    }
    let (engine, prompt) = (engine.clone(), prompt.to_vec());
    let (params, param) = (params.clone(), param.to_string());
    tokio::task::spawn_blocking(move || submit_now(&engine, &prompt, &params, deadline, &param))
        .await
        .map_err(|err| {
            tracing::error!(%err, "submitting failed");
            ApiError::internal()
        })?
}

fn submit_now(
    engine: &Engine,
    prompt: &[u32],
    params: &GenParams,
    deadline: Option<Instant>,
    param: &str,
) -> Result<Vec<Ticket>, ApiError> {
    (0..params.n)
        .map(|index| {
            let request = Request {
                prompt: prompt.to_vec(),
                sampler: params.sampler_for_choice(index),
                max_tokens: params.max_tokens.unwrap_or(usize::MAX),
                stop: params.stop.clone(),
                stop_at_eog: true,
                logprobs: params.logprobs,
                deadline,
                grammar: params.grammar.clone(),
                special_text: params.special_text,
            };
            engine.submit(request).map_err(|e| submit_error(e, param))
        })
        .collect()
}

/// One choice, finished.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// The generated text.
    pub text: String,
    /// Per generated token, when asked for: its log-probability and alternatives.
    pub logprobs: Vec<TokenLogprob>,
    /// Why it ended.
    pub finish: Option<FinishReason>,
    /// Tokens used.
    pub usage: Usage,
    /// Where the time went.
    pub timings: Timings,
}

/// Waits for a request's last event and gathers its text.
pub async fn collect(mut ticket: Ticket) -> Result<Finished, ApiError> {
    let mut finished = Finished::default();
    while let Some(event) = ticket.next().await {
        match event {
            Event::Token { text, logprob, .. } => {
                finished.text.push_str(&text);
                finished.logprobs.extend(logprob);
            }
            Event::Done {
                finish,
                usage,
                timings,
                text,
            } => {
                if finish == FinishReason::Cancelled {
                    return Err(ApiError::unavailable(
                        "the server is shutting down; the request was cancelled",
                    ));
                }
                finished.text.push_str(&text);
                finished.finish = Some(finish);
                finished.usage = usage;
                finished.timings = timings;
                return Ok(finished);
            }
            Event::Error(message) => return Err(engine_failure(&message)),
        }
    }
    Err(engine_failure(
        "the engine ended the request without finishing it",
    ))
}

/// Waits for every choice.
pub async fn collect_all(tickets: Vec<Ticket>) -> Result<Vec<Finished>, ApiError> {
    futures_util::future::try_join_all(tickets.into_iter().map(collect)).await
}

/// A 500 for an engine-side failure; the cause is logged, not sent.
pub fn engine_failure(message: &str) -> ApiError {
    tracing::error!(error = message, "generation failed");
    ApiError::internal()
}

/// The API name of why a choice ended: a deadline is a limit like `max_tokens` (as
/// llama-server reports its time limit).
pub fn finish_reason(finish: Option<FinishReason>) -> &'static str {
    match finish {
        Some(FinishReason::Stop) => "stop",
        Some(FinishReason::Length | FinishReason::Deadline) | None => "length",
        Some(FinishReason::Cancelled) => "cancelled",
    }
}

/// Token counts of a response: each prompt once (choices `i * n .. (i + 1) * n` share
/// prompt `i`), every choice's generated tokens added.
pub fn total_usage(usages: &[Usage], n: usize) -> Usage {
    let mut total = Usage::default();
    for (index, usage) in usages.iter().enumerate() {
        if index % n.max(1) == 0 {
            total.prompt_tokens += usage.prompt_tokens;
            total.cached_tokens += usage.cached_tokens;
        }
        total.completion_tokens += usage.completion_tokens;
    }
    total
}

/// Turns choices' events into the bytes of a streamed response.
pub trait StreamRender: Send + 'static {
    /// Bytes before any event (e.g. each choice's role chunk).
    fn start(&mut self) -> Vec<Bytes>;
    /// Bytes for one event of choice `index`.
    fn event(&mut self, index: usize, event: Event) -> Vec<Bytes>;
    /// Bytes after every choice's last event.
    fn finish(&mut self) -> Vec<Bytes>;
}

type IndexedEvents = std::pin::Pin<Box<dyn Stream<Item = (usize, Event)> + Send>>;

/// The events of all tickets as one stream of (choice index, event). The stream owns the
/// tickets: dropping it cancels whatever still runs.
fn merge(tickets: Vec<Ticket>) -> SelectAll<IndexedEvents> {
    stream::select_all(tickets.into_iter().enumerate().map(|(index, ticket)| {
        let events = stream::unfold(ticket, |mut ticket| async move {
            ticket.next().await.map(|event| (event, ticket))
        });
        Box::pin(events.map(move |event| (index, event))) as IndexedEvents
    }))
}

/// A response body streaming the tickets' events through `render`.
pub fn stream_body<R: StreamRender>(tickets: Vec<Ticket>, render: R) -> Body {
    Body::from_stream(render_stream(tickets, render))
}

struct StreamState<R> {
    events: SelectAll<IndexedEvents>,
    render: R,
    pending: VecDeque<Bytes>,
    ended: bool,
}

fn render_stream<R: StreamRender>(
    tickets: Vec<Ticket>,
    mut render: R,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let state = StreamState {
        events: merge(tickets),
        pending: render.start().into(),
        render,
        ended: false,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(bytes) = state.pending.pop_front() {
                return Some((Ok(bytes), state));
            }
            if state.ended {
                return None;
            }
            match state.events.next().await {
                Some((index, event)) => {
                    let frames = state.render.event(index, event);
                    state.pending.extend(frames);
                }
                None => {
                    state.ended = true;
                    let frames = state.render.finish();
                    state.pending.extend(frames);
                }
            }
        }
    })
}
