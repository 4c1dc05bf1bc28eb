//! OpenAI request bodies (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`) and
//! their checks. Fields OpenAI defines that slm does not use are ignored, as unknown fields
//! are; a field slm cannot honour in a way the client would rely on (`echo`) is a 400
//! rather than a silently different answer.

use engine::{Message, Role, SamplerParams, ToolChoice, ToolSpec};
use serde::Deserialize;

use crate::error::ApiError;
use crate::json::{parse_body, OneOrMany, RequestBody};
use crate::params::{self, GenParams, MAX_CHOICES, MAX_TOP_LOGPROBS};

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// The model's name; absent or empty: the server's default model.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// The sampling and length settings shared with `/v1/completions`.
    #[serde(skip)]
    pub sampling: SamplingFields,
    /// Deprecated spelling of `max_completion_tokens`.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Generated tokens at most.
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    /// Return each token's log-probability.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// With `logprobs`: how many alternatives per token (0 to 20).
    #[serde(default)]
    pub top_logprobs: Option<i64>,
    /// `text`, `json_object` or `json_schema` (see `crate::format`).
    #[serde(default)]
    pub response_format: Option<serde_json::Value>,
    /// Functions the model may call: `[{"type": "function", "function": {name,
    /// description, parameters}}]`.
    #[serde(default)]
    pub tools: Option<serde_json::Value>,
    /// `none`, `auto`, `required` or `{"type": "function", "function": {"name": …}}`.
    #[serde(default)]
    pub tool_choice: Option<serde_json::Value>,
    /// Several calls in one answer (default true).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
}

impl RequestBody for ChatRequest {
    fn from_json(bytes: &[u8]) -> Result<ChatRequest, ApiError> {
        let mut request: ChatRequest = parse_body(bytes)?;
        request.sampling = parse_body(bytes)?;
        Ok(request)
    }
}

impl RequestBody for CompletionRequest {
    fn from_json(bytes: &[u8]) -> Result<CompletionRequest, ApiError> {
        let mut request: CompletionRequest = parse_body(bytes)?;
        request.sampling = parse_body(bytes)?;
        Ok(request)
    }
}

impl RequestBody for EmbeddingRequest {}

/// The fields both generation endpoints share.
#[derive(Debug, Default, Deserialize)]
pub struct SamplingFields {
    /// 0 to 2; 0 is greedy. Default 0.8, as llama.cpp.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling, in (0, 1]. Default 0.95, as llama.cpp.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Extension (llama-server, vLLM): keep the k most probable tokens; 0 = off.
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Extension: drop tokens less probable than this times the best; 0 = off.
    #[serde(default)]
    pub min_p: Option<f64>,
    /// Extension: llama.cpp's repetition penalty; 1 = off.
    #[serde(default)]
    pub repeat_penalty: Option<f64>,
    /// -2 to 2.
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// -2 to 2.
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    /// Same seed and settings, same output.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Stop strings.
    #[serde(default)]
    pub stop: Option<OneOrMany>,
    /// Number of choices.
    #[serde(default)]
    pub n: Option<i64>,
    /// Server-sent events instead of one JSON object.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `{"include_usage": true}`: a last chunk with the usage.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with `usage` and no choices.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// One message of `messages`.
#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text, or a list of content parts; `null` for an assistant message with tool calls.
    #[serde(default)]
    pub content: Option<Content>,
    /// An assistant message's calls: `[{id, type, function: {name, arguments}}]`.
    #[serde(default)]
    pub tool_calls: Option<serde_json::Value>,
    /// A tool message: the id of the call it answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// A tool message: the function's name (optional; found from the call otherwise).
    #[serde(default)]
    pub name: Option<String>,
}

/// A message's content.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of content parts")]
pub enum Content {
    /// Plain text.
    Text(String),
    /// `[{"type": "text", "text": "..."}, ...]`.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Deserialize)]
pub struct ContentPart {
    /// `text` is the only kind slm reads.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// `POST /v1/completions`.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    /// The model's name; absent or empty: the default model.
    #[serde(default)]
    pub model: Option<String>,
    /// A string, strings, token ids, or lists of token ids.
    pub prompt: PromptInput,
    /// Shared settings.
    #[serde(skip)]
    pub sampling: SamplingFields,
    /// Generated tokens at most; OpenAI's default is 16.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Log-probabilities of each token and this many alternatives (0 to 20).
    #[serde(default)]
    pub logprobs: Option<i64>,
    /// Echo the prompt: not supported.
    #[serde(default)]
    pub echo: Option<bool>,
    /// Must equal `n` when given: slm returns every choice it generates.
    #[serde(default)]
    pub best_of: Option<i64>,
    /// Text after the completion (fill-in-the-middle): not supported.
    #[serde(default)]
    pub suffix: Option<String>,
    /// As on `/v1/chat/completions` (see `crate::format`).
    #[serde(default)]
    pub response_format: Option<serde_json::Value>,
}

/// `POST /v1/embeddings`.
#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    /// The model's name; absent or empty: the default model.
    #[serde(default)]
    pub model: Option<String>,
    /// A string, strings, token ids, or lists of token ids.
    pub input: PromptInput,
    /// `float` (default) or `base64` (little-endian f32, what the `openai` package asks for).
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Must be absent or equal the model's size: slm does not shorten embeddings.
    #[serde(default)]
    pub dimensions: Option<i64>,
}

/// A prompt or embedding input in any of OpenAI's four spellings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, an array of strings, an array of token ids or an array of arrays of token ids"
)]
pub enum PromptInput {
    /// `"text"`.
    Text(String),
    /// `["text", "more"]`.
    Texts(Vec<String>),
    /// `[1, 2, 3]`.
    Tokens(Vec<u32>),
    /// `[[1, 2], [3]]`.
    TokenLists(Vec<Vec<u32>>),
}

/// One prompt after [`PromptInput::split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Text, tokenized by the server.
    Text(String),
    /// Token ids, used as given.
    Tokens(Vec<u32>),
}

impl PromptInput {
    /// The prompts, one per entry; an error names `param` when there are none.
    pub fn split(self, param: &str) -> Result<Vec<Prompt>, ApiError> {
        let prompts: Vec<Prompt> = match self {
            PromptInput::Text(text) => vec![Prompt::Text(text)],
            PromptInput::Texts(texts) => texts.into_iter().map(Prompt::Text).collect(),
            PromptInput::Tokens(tokens) => vec![Prompt::Tokens(tokens)],
            PromptInput::TokenLists(lists) => lists.into_iter().map(Prompt::Tokens).collect(),
        };
        if prompts.is_empty() {
            return Err(ApiError::invalid_param(
                param,
                format!("{param} is an empty array; give at least one entry"),
            ));
        }
        Ok(prompts)
    }
}

impl SamplingFields {
    /// The checked settings; `logprobs` and `max_tokens` come from the endpoint's own fields.
    pub fn check(
        &self,
        max_tokens: Option<usize>,
        logprobs: Option<usize>,
    ) -> Result<GenParams, ApiError> {
        let defaults = SamplerParams::default();
        let opt_range = |param: &str, value: Option<f64>, min: f64, max: f64, default: f32| {
            value.map_or(Ok(default), |v| params::in_range(param, v, min, max))
        };
        let sampler = SamplerParams {
            temperature: opt_range(
                "temperature",
                self.temperature,
                0.0,
                2.0,
                defaults.temperature,
            )?,
            top_p: opt_range("top_p", self.top_p, 0.0, 1.0, defaults.top_p)?,
            top_k: match self.top_k {
                Some(k) => params::count_in_range("top_k", k, 0, i64::from(u32::MAX))?,
                None => defaults.top_k,
            },
            min_p: opt_range("min_p", self.min_p, 0.0, 1.0, defaults.min_p)?,
            repeat_penalty: opt_range(
                "repeat_penalty",
                self.repeat_penalty,
                0.0,
                10.0,
                defaults.repeat_penalty,
            )?,
            presence_penalty: opt_range("presence_penalty", self.presence_penalty, -2.0, 2.0, 0.0)?,
            frequency_penalty: opt_range(
                "frequency_penalty",
                self.frequency_penalty,
                -2.0,
                2.0,
                0.0,
            )?,
            repeat_last_n: defaults.repeat_last_n,
            seed: params::seed_or_random(self.seed),
        };
        let n = match self.n {
            Some(n) => params::count_in_range("n", n, 1, MAX_CHOICES as i64)?,
            None => 1,
        };
        let stop = self
            .stop
            .clone()
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        Ok(GenParams {
            sampler,
            max_tokens,
            stop: params::stop_strings("stop", stop)?,
            logprobs,
            n,
            grammar: None,
            special_text: false,
        })
    }

    /// True for a streamed response.
    pub fn stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// True when a streamed response ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

impl ChatRequest {
    /// The checked generation settings.
    pub fn params(&self) -> Result<GenParams, ApiError> {
        let max_tokens = match (self.max_completion_tokens, self.max_tokens) {
            (Some(n), _) => Some(params::max_tokens("max_completion_tokens", n)?),
            (None, Some(n)) => Some(params::max_tokens("max_tokens", n)?),
            (None, None) => None,
        };
        let logprobs = match (self.logprobs.unwrap_or(false), self.top_logprobs) {
            (true, top) => Some(match top {
                Some(k) => params::count_in_range("top_logprobs", k, 0, MAX_TOP_LOGPROBS as i64)?,
                None => 0,
            }),
            (false, Some(_)) => {
                return Err(ApiError::invalid_param(
                    "top_logprobs",
                    "top_logprobs needs logprobs set to true",
                ))
            }
            (false, None) => None,
        };
        let mut params = self.sampling.check(max_tokens, logprobs)?;
        params.grammar = crate::format::response_format(self.response_format.as_ref())?;
        Ok(params)
    }

    /// The conversation as the engine's messages.
    pub fn engine_messages(&self) -> Result<Vec<Message>, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::invalid_param(
                "messages",
                "messages is empty; give at least one message",
            ));
        }
        let mut messages = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| m.to_engine(i))
            .collect::<Result<Vec<Message>, ApiError>>()?;
        crate::tools::name_tool_results(&mut messages);
        Ok(messages)
    }

    /// The offered tools, the `tool_choice` and whether calls may come several at once.
    pub fn tool_request(&self) -> Result<(Vec<ToolSpec>, ToolChoice, bool), ApiError> {
        let tools = crate::tools::parse_tools(self.tools.as_ref())?;
        let choice = crate::tools::parse_tool_choice(self.tool_choice.as_ref(), &tools)?;
        Ok((tools, choice, self.parallel_tool_calls.unwrap_or(true)))
    }
}

impl ChatMessage {
    fn to_engine(&self, index: usize) -> Result<Message, ApiError> {
        let role = match self.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(ApiError::invalid_param(
                    format!("messages[{index}].role"),
                    format!("messages[{index}].role {other} is not supported; use system, developer, user, assistant or tool"),
                ))
            }
        };
        let content = match &self.content {
            None => String::new(),
            Some(Content::Text(text)) => text.clone(),
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for (j, part) in parts.iter().enumerate() {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(t)) => text.push_str(t),
                        _ => {
                            return Err(ApiError::invalid_param(
                                format!("messages[{index}].content[{j}]"),
                                format!("messages[{index}].content[{j}] is a {} part; only text parts with a text field are supported", part.kind),
                            ))
                        }
                    }
                }
                text
            }
        };
        let mut message = Message::new(role, content);
        if let Some(calls) = self.tool_calls.as_ref().filter(|c| !c.is_null()) {
            if role != Role::Assistant {
                return Err(ApiError::invalid_param(
                    format!("messages[{index}].tool_calls"),
                    format!(
                        "messages[{index}] has tool_calls but only assistant messages make calls"
                    ),
                ));
            }
            message.tool_calls = crate::tools::openai_history_calls(index, calls)?;
        }
        if role == Role::Tool {
            message.tool_call_id = self.tool_call_id.clone();
            message.name = self.name.clone();
        }
        Ok(message)
    }
}

impl CompletionRequest {
    /// The checked generation settings.
    pub fn params(&self) -> Result<GenParams, ApiError> {
        // OpenAI's default for this endpoint.
        let max_tokens = params::max_tokens("max_tokens", self.max_tokens.unwrap_or(16))?;
        let logprobs = match self.logprobs {
            Some(k) => Some(params::count_in_range(
                "logprobs",
                k,
                0,
                MAX_TOP_LOGPROBS as i64,
            )?),
            None => None,
        };
        if self.echo == Some(true) {
            return Err(ApiError::invalid_param(
                "echo",
                "echo is not supported; the prompt is not returned",
            ));
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::invalid_param(
                "suffix",
                "suffix (fill-in-the-middle) is not supported yet",
            ));
        }
        let mut params = self.sampling.check(Some(max_tokens), logprobs)?;
        params.grammar = crate::format::response_format(self.response_format.as_ref())?;
        if let Some(best_of) = self.best_of {
            if usize::try_from(best_of).ok() != Some(params.n) {
                return Err(ApiError::invalid_param(
                    "best_of",
                    format!(
                        "best_of must equal n ({}): every generated choice is returned",
                        params.n
                    ),
                ));
            }
        }
        Ok(params)
    }
}

impl EmbeddingRequest {
    /// True when the embeddings go back base64-encoded.
    pub fn base64(&self) -> Result<bool, ApiError> {
        match self.encoding_format.as_deref() {
            None | Some("float") => Ok(false),
            Some("base64") => Ok(true),
            Some(other) => Err(ApiError::invalid_param(
                "encoding_format",
                format!("encoding_format {other} is not supported; use float or base64"),
            )),
        }
    }
}
