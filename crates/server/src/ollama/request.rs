//! Ollama request bodies (`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`,
//! `/api/show`) and their `options`, checked into the same settings the OpenAI routes use.

use engine::{Message, Role, SamplerParams};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::json::{OneOrMany, RequestBody};
use crate::params::{self, GenParams};

/// `POST /api/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// The model; absent or empty: the default one.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation; empty: only load the model (Ollama's `done_reason: load`).
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    /// NDJSON lines (the default) or one object.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `json` or a schema: needs constrained decoding, not supported yet.
    #[serde(default)]
    pub format: Option<Value>,
    /// Sampling and length settings.
    #[serde(default)]
    pub options: Option<Options>,
    /// Functions the model may call (OpenAI's shape); calls come back in
    /// `message.tool_calls`.
    #[serde(default)]
    pub tools: Option<Value>,
}

/// One message of `messages`.
#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// An assistant message's calls: `[{"function": {"name": …, "arguments": {…}}}]`.
    #[serde(default)]
    pub tool_calls: Option<Value>,
    /// A tool message: the function whose result it is.
    #[serde(default)]
    pub tool_name: Option<String>,
    /// Images: not supported (slm runs text models).
    #[serde(default)]
    pub images: Option<Vec<Value>>,
}

/// `POST /api/generate`.
#[derive(Debug, Deserialize)]
pub struct GenerateRequest {
    /// The model; absent or empty: the default one.
    #[serde(default)]
    pub model: Option<String>,
    /// The prompt; empty: only load the model.
    #[serde(default)]
    pub prompt: Option<String>,
    /// A system message for the chat template (ignored with `raw`).
    #[serde(default)]
    pub system: Option<String>,
    /// A Go template: ignored (logged); slm uses the model's chat format.
    #[serde(default)]
    pub template: Option<String>,
    /// Use the prompt as is, without the chat template.
    #[serde(default)]
    pub raw: Option<bool>,
    /// NDJSON lines (the default) or one object.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `json` or a schema: not supported yet.
    #[serde(default)]
    pub format: Option<Value>,
    /// Sampling and length settings.
    #[serde(default)]
    pub options: Option<Options>,
    /// Fill-in-the-middle suffix: not supported.
    #[serde(default)]
    pub suffix: Option<String>,
    /// Images: not supported.
    #[serde(default)]
    pub images: Option<Vec<Value>>,
}

/// `POST /api/embed`.
#[derive(Debug, Deserialize)]
pub struct EmbedRequest {
    /// The model; absent or empty: the default one.
    #[serde(default)]
    pub model: Option<String>,
    /// One text or several.
    pub input: OneOrMany,
}

/// `POST /api/embeddings` (the older route).
#[derive(Debug, Deserialize)]
pub struct LegacyEmbedRequest {
    /// The model; absent or empty: the default one.
    #[serde(default)]
    pub model: Option<String>,
    /// The text.
    pub prompt: String,
}

/// `POST /api/show`: `model` or the older `name`.
#[derive(Debug, Deserialize)]
pub struct ShowRequest {
    /// The model.
    #[serde(default)]
    pub model: Option<String>,
    /// The older spelling.
    #[serde(default)]
    pub name: Option<String>,
}

impl RequestBody for ChatRequest {}
impl RequestBody for GenerateRequest {}
impl RequestBody for EmbedRequest {}
impl RequestBody for LegacyEmbedRequest {}
impl RequestBody for ShowRequest {}

/// Ollama's `options` (the fields slm uses; others, such as `num_gpu`, are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Options {
    /// Default 0.8.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Default 0.9.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Default 40.
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Default 0.
    #[serde(default)]
    pub min_p: Option<f64>,
    /// Random when absent or -1.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Generated tokens at most; -1 or -2: until the context is full.
    #[serde(default)]
    pub num_predict: Option<i64>,
    /// Stop strings.
    #[serde(default)]
    pub stop: Option<OneOrMany>,
    /// Default 1.1.
    #[serde(default)]
    pub repeat_penalty: Option<f64>,
    /// Default 64.
    #[serde(default)]
    pub repeat_last_n: Option<i64>,
    /// Default 0.
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// Default 0.
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    /// The context size; the server's `--ctx` is used (logged when it differs).
    #[serde(default)]
    pub num_ctx: Option<i64>,
}

impl Options {
    /// The checked settings, with Ollama's defaults.
    pub fn check(&self) -> Result<GenParams, ApiError> {
        let range = |param: &str, value: Option<f64>, min: f64, max: f64, default: f32| {
            value.map_or(Ok(default), |v| {
                params::in_range(&format!("options.{param}"), v, min, max)
            })
        };
        let sampler = SamplerParams {
            temperature: range("temperature", self.temperature, 0.0, 100.0, 0.8)?,
            top_p: range("top_p", self.top_p, 0.0, 1.0, 0.9)?,
            top_k: match self.top_k {
                Some(k) => params::count_in_range("options.top_k", k, 0, i64::from(u32::MAX))?,
                None => 40,
            },
            min_p: range("min_p", self.min_p, 0.0, 1.0, 0.0)?,
            repeat_penalty: range("repeat_penalty", self.repeat_penalty, 0.0, 100.0, 1.1)?,
            repeat_last_n: match self.repeat_last_n {
                // Ollama: -1 means the whole context.
                Some(-1) => 1 << 24,
                Some(n) => params::count_in_range("options.repeat_last_n", n, 0, i64::MAX)?,
                None => 64,
            },
            presence_penalty: range(
                "presence_penalty",
                self.presence_penalty,
                -100.0,
                100.0,
                0.0,
            )?,
            frequency_penalty: range(
                "frequency_penalty",
                self.frequency_penalty,
                -100.0,
                100.0,
                0.0,
            )?,
            seed: params::seed_or_random(self.seed.filter(|&s| s != -1)),
        };
        let max_tokens = match self.num_predict {
            None => None,
            Some(n) if n < 0 => None,
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let stop = self
            .stop
            .clone()
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        Ok(GenParams {
            sampler,
            max_tokens,
            stop: params::stop_strings("options.stop", stop)?,
            logprobs: None,
            n: 1,
            grammar: None,
            special_text: false,
        })
    }
}

/// The grammar of `format` (see `crate::format`); `null` and `""` mean none.
pub fn check_format(format: Option<&Value>) -> Result<Option<engine::Grammar>, ApiError> {
    crate::format::ollama_format(format)
}

/// The conversation as the engine's messages.
pub fn engine_messages(messages: &[ChatMessage]) -> Result<Vec<Message>, ApiError> {
    let mut messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if m.images.as_ref().is_some_and(|v| !v.is_empty()) {
                return Err(ApiError::invalid_param(
                    format!("messages[{i}].images"),
                    format!("messages[{i}] has images; slm runs text models only"),
                ));
            }
            let role = match m.role.as_str() {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "tool" => Role::Tool,
                other => {
                    return Err(ApiError::invalid_param(
                        format!("messages[{i}].role"),
                        format!("messages[{i}].role {other} is not supported; use system, user, assistant or tool"),
                    ))
                }
            };
            let mut message = Message::new(role, m.content.clone());
            if let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_null()) {
                message.tool_calls = crate::tools::openai_history_calls(i, calls)?;
            }
            if role == Role::Tool {
                message.name = m.tool_name.clone();
            }
            Ok(message)
        })
        .collect::<Result<Vec<Message>, ApiError>>()?;
    crate::tools::name_tool_results(&mut messages);
    Ok(messages)
}
