//! Chat templates: turning a conversation into the prompt text a model was trained on.
//!
//! GGUF files carry a Jinja template (`tokenizer.chat_template`). Until slm evaluates Jinja,
//! it recognises the template's family from the text and renders that family's format here,
//! matching what the template renders for plain conversations (roles system, user,
//! assistant; no tools). A model without a template gets its architecture's format when the
//! family is known, otherwise a plain `User:` / `Assistant:` transcript.
//!
//! The rendered text never contains the BOS token: tokenizing it with `add_special` adds
//! BOS when the model's metadata asks for it, as llama.cpp does.

#[cfg(test)]
mod tests;

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

/// The chat formats slm can render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateKind {
    /// ChatML (`<|im_start|>role\n…<|im_end|>\n`): Qwen, SmolLM. Some templates insert a
    /// default system message when the conversation has none (Qwen2.5: "You are Qwen,
    /// created by Alibaba Cloud. You are a helpful assistant.").
    ChatMl {
        /// The system message the template adds when the first message is not a system one.
        default_system: Option<String>,
    },
    /// Gemma (`<start_of_turn>user\n…<end_of_turn>\n`, the assistant is `model`); a system
    /// message is prepended to the first user turn.
    Gemma,
    /// Llama 3 (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`).
    Llama3,
    /// No known format: `User: …` / `Assistant: …` lines, a system message first.
    Plain,
}

impl TemplateKind {
    /// The format for a model, from its `tokenizer.chat_template` (if any) and its
    /// `general.architecture`.
    pub fn detect(chat_template: Option<&str>, architecture: &str) -> TemplateKind {
        if let Some(template) = chat_template {
            if template.contains("<|im_start|>") {
                return TemplateKind::ChatMl {
                    default_system: chatml_default_system(template),
                };
            }
            if template.contains("<start_of_turn>") {
                return TemplateKind::Gemma;
            }
            if template.contains("<|start_header_id|>") {
                return TemplateKind::Llama3;
            }
        }
        match architecture {
            "gemma" | "gemma2" | "gemma3" => TemplateKind::Gemma,
            "qwen2" | "qwen3" => TemplateKind::ChatMl {
                default_system: None,
            },
            _ => TemplateKind::Plain,
        }
    }

    /// A short name for messages and `slm show`.
    pub fn name(&self) -> &'static str {
        match self {
            TemplateKind::ChatMl { .. } => "chatml",
            TemplateKind::Gemma => "gemma",
            TemplateKind::Llama3 => "llama3",
            TemplateKind::Plain => "plain",
        }
    }
}

/// Finds the literal default system message of a ChatML template: the text of a
/// `<|im_start|>system\n…<|im_end|>` string literal that is plain text rather than an
/// expression (`' + messages[0]['content'] + '`). Both the escaped (`\n` written as two
/// characters inside a Jinja string) and the literal newline spellings occur in real files.
fn chatml_default_system(template: &str) -> Option<String> {
    const START: &str = "<|im_start|>system";
    const END: &str = "<|im_end|>";
    let mut rest = template;
    while let Some(at) = rest.find(START) {
        rest = &rest[at + START.len()..];
        let body = if let Some(b) = rest.strip_prefix("\\n") {
            b
        } else if let Some(b) = rest.strip_prefix('\n') {
            b
        } else {
            continue;
        };
        let Some(end) = body.find(END) else {
            break;
        };
        let text = &body[..end];
        let is_expression =
            text.contains(['{', '}']) || text.contains("' +") || text.contains("+ '");
        let is_literal = !text.is_empty() && !is_expression;
        if is_literal {
            return Some(text.replace("\\n", "\n"));
        }
    }
    None
}

/// Renders a conversation in a model's chat format. With `add_generation_prompt` the text
/// ends with the opening of an assistant turn, ready for the model to continue.
pub fn render_chat(
    kind: &TemplateKind,
    messages: &[Message],
    add_generation_prompt: bool,
) -> String {
    match kind {
        TemplateKind::ChatMl { default_system } => {
            render_chatml(default_system.as_deref(), messages, add_generation_prompt)
        }
        TemplateKind::Gemma => render_gemma(messages, add_generation_prompt),
        TemplateKind::Llama3 => render_llama3(messages, add_generation_prompt),
        TemplateKind::Plain => render_plain(messages, add_generation_prompt),
    }
}

fn render_chatml(default_system: Option<&str>, messages: &[Message], add_gen: bool) -> String {
    let mut out = String::new();
    let starts_with_system = messages.first().is_some_and(|m| m.role == Role::System);
    if let (Some(system), false) = (default_system, starts_with_system) {
        out.push_str(&format!("<|im_start|>system\n{system}<|im_end|>\n"));
    }
    for m in messages {
        out.push_str(&format!(
            "<|im_start|>{}\n{}<|im_end|>\n",
            m.role.as_str(),
            m.content
        ));
    }
    if add_gen {
        out.push_str("<|im_start|>assistant\n");
    }
    out
}

/// Gemma 3's template: the system text and a blank line open the first user turn; every
/// message's content is trimmed; the assistant's role is `model`.
fn render_gemma(messages: &[Message], add_gen: bool) -> String {
    let mut out = String::new();
    let (prefix, rest) = match messages.split_first() {
        Some((first, rest)) if first.role == Role::System => {
            (format!("{}\n\n", first.content), rest)
        }
        _ => (String::new(), messages),
    };
    for (i, m) in rest.iter().enumerate() {
        let role = match m.role {
            Role::Assistant => "model",
            Role::User | Role::System | Role::Tool => "user",
        };
        let prefix = if i == 0 { prefix.as_str() } else { "" };
        out.push_str(&format!(
            "<start_of_turn>{role}\n{prefix}{}<end_of_turn>\n",
            m.content.trim()
        ));
    }
    if add_gen {
        out.push_str("<start_of_turn>model\n");
    }
    out
}

fn render_llama3(messages: &[Message], add_gen: bool) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(&format!(
            "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
            m.role.as_str(),
            m.content.trim()
        ));
    }
    if add_gen {
        out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }
    out
}

fn render_plain(messages: &[Message], add_gen: bool) -> String {
    let mut out = String::new();
    for m in messages {
        match m.role {
            Role::System => out.push_str(&format!("{}\n\n", m.content)),
            Role::User | Role::Tool => out.push_str(&format!("User: {}\n", m.content)),
            Role::Assistant => out.push_str(&format!("Assistant: {}\n", m.content)),
        }
    }
    if add_gen {
        out.push_str("Assistant:");
    }
    out
}
