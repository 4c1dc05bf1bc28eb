//! [`ChatTemplate`]: a model's Jinja chat template, compiled once, rendered per request.

use gguf::GgufFile;
use minijinja::{Environment, ErrorKind};
use serde_json::{json, Value as Json};
use tokenizer::Tokenizer;

use super::context::{message_json, tool_json};
use super::environment::{new_environment, RAISED_PREFIX};
use super::{fallback, Message, ToolSpec};

/// The metadata key of a file's chat template.
const TEMPLATE_KEY: &str = "tokenizer.chat_template";
/// The metadata key of the template llama.cpp uses when tools are given.
const TOOL_USE_KEY: &str = "tokenizer.chat_template.tool_use";
/// Names of the templates inside the environment.
const DEFAULT_NAME: &str = "chat_template";
const TOOL_USE_NAME: &str = "chat_template.tool_use";

/// Why a conversation could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is not valid Jinja.
    #[error("the chat template does not parse: {message}; fix it or pass another with --chat-template FILE")]
    Syntax {
        /// minijinja's description, with the line.
        message: String,
    },
    /// The template called `raise_exception`: it rejects this conversation (a role it
    /// does not support, turns that do not alternate, …).
    #[error("the chat template rejected the conversation: {message}")]
    Raised {
        /// The template's own message.
        message: String,
    },
    /// Rendering failed otherwise (a value the template needs is missing or has the
    /// wrong type).
    #[error("cannot render the chat template: {message}")]
    Render {
        /// minijinja's description, with the line.
        message: String,
    },
}

/// Where a template came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// The model file's `tokenizer.chat_template`.
    Model,
    /// A file given by the user (`--chat-template`).
    Override,
    /// A built-in one, for a file without a template (see [`fallback`]).
    Fallback(&'static str),
}

/// The special-token texts templates see, and whether to strip a leading BOS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `bos_token`: the BOS token's text ("" when the vocabulary has none).
    pub bos_token: String,
    /// `eos_token`: the EOS token's text ("" when the vocabulary has none).
    pub eos_token: String,
    /// Remove `bos_token` from the start of the rendered text: set when the tokenizer adds
    /// BOS itself, so that it is never doubled (as llama.cpp does).
    pub strip_bos: bool,
}

impl SpecialTokens {
    /// The texts of a tokenizer's BOS and EOS tokens; BOS is stripped when it adds one.
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> SpecialTokens {
        let text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.token_text(id))
                .unwrap_or("")
                .to_owned()
        };
        SpecialTokens {
            bos_token: text(tokenizer.bos()),
            eos_token: text(tokenizer.eos()),
            strip_bos: tokenizer.add_bos(),
        }
    }
}

/// A chat template compiled once: renders conversations (and tools) into prompt text.
#[derive(Clone)]
pub struct ChatTemplate {
    source: String,
    tool_use_source: Option<String>,
    origin: TemplateOrigin,
    tokens: SpecialTokens,
    /// The compiled templates, or why the main one does not compile (reported by every
    /// render, so that a model with a broken template still loads for raw completion).
    compiled: Result<Environment<'static>, TemplateError>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .field("has_tool_use", &self.tool_use_source.is_some())
            .field("compiles", &self.compiled.is_ok())
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source` (and an optional `tool_use` template, used when tools are given).
    /// Fails if either does not parse.
    pub fn new(
        source: impl Into<String>,
        tool_use_source: Option<String>,
        origin: TemplateOrigin,
        tokens: SpecialTokens,
    ) -> Result<ChatTemplate, TemplateError> {
        let template = ChatTemplate::compile(source.into(), tool_use_source, origin, tokens, None);
        if let Err(err) = &template.compiled {
            return Err(err.clone());
        }
        Ok(template)
    }

    /// The template for a model file: `override_source` when given (it must compile), else
    /// the file's `tokenizer.chat_template` (with `tokenizer.chat_template.tool_use` when
    /// present), else the built-in one for its architecture and vocabulary. A file's
    /// template that does not compile is kept and fails at each render; a `tool_use` one
    /// that does not compile is ignored, as llama.cpp does.
    pub fn for_model(
        file: &GgufFile,
        tokenizer: &Tokenizer,
        override_source: Option<&str>,
    ) -> Result<ChatTemplate, TemplateError> {
        let tokens = SpecialTokens::from_tokenizer(tokenizer);
        if let Some(source) = override_source {
            return ChatTemplate::new(source, None, TemplateOrigin::Override, tokens);
        }
        let string = |key: &str| file.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let Some(source) = string(TEMPLATE_KEY) else {
            let architecture = string("general.architecture").unwrap_or_default();
            let builtin =
                fallback::for_model(&architecture, |text| tokenizer.token_id(text).is_some());
            return ChatTemplate::new(
                builtin.source,
                None,
                TemplateOrigin::Fallback(builtin.name),
                tokens,
            );
        };
        let mut tool_use = string(TOOL_USE_KEY);
        if let Some(tool_source) = &tool_use {
            if let Err(err) = new_environment(None).add_template_owned("t", tool_source.clone()) {
                tracing::warn!(error = %err, "ignoring the file's tool_use chat template: it does not parse");
                tool_use = None;
            }
        }
        let template = ChatTemplate::compile(source, tool_use, TemplateOrigin::Model, tokens, None);
        if let Err(err) = &template.compiled {
            tracing::warn!(error = %err, "the model's chat template does not parse; chat requests will fail");
        }
        Ok(template)
    }

    /// The same template with `strftime_now` pinned to `unix_seconds` (UTC), for
    /// reproducible renders.
    pub fn with_fixed_time(self, unix_seconds: i64) -> ChatTemplate {
        let ChatTemplate {
            source,
            tool_use_source,
            origin,
            tokens,
            ..
        } = self;
        ChatTemplate::compile(source, tool_use_source, origin, tokens, Some(unix_seconds))
    }

    fn compile(
        source: String,
        tool_use_source: Option<String>,
        origin: TemplateOrigin,
        tokens: SpecialTokens,
        fixed_now: Option<i64>,
    ) -> ChatTemplate {
        let mut env = new_environment(fixed_now);
        let mut compiled = env
            .add_template_owned(DEFAULT_NAME, source.clone())
            .map_err(|err| TemplateError::Syntax {
                message: err.to_string(),
            });
        if let (Ok(()), Some(tool_source)) = (&compiled, &tool_use_source) {
            compiled = env
                .add_template_owned(TOOL_USE_NAME, tool_source.clone())
                .map_err(|err| TemplateError::Syntax {
                    message: format!("tool_use template: {err}"),
                });
        }
        ChatTemplate {
            source,
            tool_use_source,
            origin,
            tokens,
            compiled: compiled.map(|()| env),
        }
    }

    /// Renders a conversation. `tools` are the functions the model may call (none: the
    /// template sees `tools` as none); with tools, a `tool_use` template is used when the
    /// model has one. With `add_generation_prompt` the text ends with the opening of an
    /// assistant turn. A leading BOS text is removed when the tokenizer adds BOS itself.
    pub fn render(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let env = self.compiled.as_ref().map_err(Clone::clone)?;
        let name = if !tools.is_empty() && self.tool_use_source.is_some() {
            TOOL_USE_NAME
        } else {
            DEFAULT_NAME
        };
        let template = env.get_template(name).map_err(render_error)?;
        let tools = if tools.is_empty() {
            Json::Null
        } else {
            Json::Array(tools.iter().map(tool_json).collect())
        };
        let context = json!({
            "messages": messages.iter().map(message_json).collect::<Vec<_>>(),
            "tools": tools,
            "documents": Json::Null,
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.tokens.bos_token,
            "eos_token": self.tokens.eos_token,
        });
        let mut text = template
            .render(minijinja::Value::from(minijinja::value::Serde(&context)))
            .map_err(render_error)?;
        let bos = &self.tokens.bos_token;
        if self.tokens.strip_bos && !bos.is_empty() && text.starts_with(bos.as_str()) {
            text.drain(..bos.len());
        }
        Ok(text)
    }

    /// The Jinja source of the main template.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The Jinja source of the `tool_use` template, if the model has one.
    pub fn tool_use_source(&self) -> Option<&str> {
        self.tool_use_source.as_deref()
    }

    /// Where the template came from.
    pub fn origin(&self) -> &TemplateOrigin {
        &self.origin
    }

    /// A short description for logs and `slm show`: `model`, `--chat-template` or
    /// `built-in <name>`.
    pub fn describe(&self) -> String {
        match &self.origin {
            TemplateOrigin::Model => "model".to_owned(),
            TemplateOrigin::Override => "--chat-template".to_owned(),
            TemplateOrigin::Fallback(name) => format!("built-in {name}"),
        }
    }

    /// The BOS/EOS texts the template sees.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.tokens
    }
}

/// A minijinja error as a [`TemplateError`]: `raise_exception`'s with the template's
/// message alone, others with minijinja's description.
fn render_error(err: minijinja::Error) -> TemplateError {
    if let Some(message) = err.detail().and_then(|d| d.strip_prefix(RAISED_PREFIX)) {
        return TemplateError::Raised {
            message: message.to_owned(),
        };
    }
    match err.kind() {
        ErrorKind::SyntaxError => TemplateError::Syntax {
            message: err.to_string(),
        },
        _ => TemplateError::Render {
            message: err.to_string(),
        },
    }
}
