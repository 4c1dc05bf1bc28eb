//! Chat templates: turning a conversation into the prompt text a model was trained on.
//!
//! GGUF files carry a Jinja template (`tokenizer.chat_template`, and sometimes named ones
//! such as `tokenizer.chat_template.tool_use`). [`ChatTemplate`] compiles it once with
//! minijinja, set up as Hugging Face transformers sets up jinja2 (`trim_blocks`,
//! `lstrip_blocks`, loop controls, a `tojson` equal to Python's `json.dumps`,
//! `raise_exception`, `strftime_now`, Python string/dict/list methods), and renders
//! conversations with it. A model without a template gets a built-in one chosen from its
//! vocabulary and architecture ([`fallback`]).
//!
//! The rendered text never starts with the BOS token when the tokenizer adds one itself:
//! tokenizing with `add_special` adds BOS as the model's metadata says, as llama.cpp does.

mod context;
mod environment;
pub mod fallback;
mod json;
mod strftime;
mod template;

#[cfg(test)]
mod tests;

pub use strftime::civil_from_days;
pub use template::{ChatTemplate, SpecialTokens, TemplateError, TemplateOrigin};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The person chatting.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, answering the assistant's call with `tool_call_id`.
    Tool,
}

impl Role {
    /// The role's name as chat templates write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said ("" for an assistant turn that only calls tools).
    pub content: String,
    /// The tools an assistant message called, in order.
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the id of the call it answers.
    pub tool_call_id: Option<String>,
    /// For a [`Role::Tool`] message: the function's name (some templates print it).
    pub name: Option<String>,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }
}

/// One call of a function by the assistant.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The call's id (`call_…`), echoed by the tool message that answers it.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments: a JSON object (templates print it with `tojson`).
    pub arguments: serde_json::Value,
}

/// A function the model may call, as OpenAI's `tools[].function` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// Its arguments' JSON Schema (an object schema; `{}` when absent).
    pub parameters: serde_json::Value,
}
