//! Tool calls: how each model family writes a call to a function, read back out of the
//! generated text (whole or streamed), and the grammars that make a model's calls parse.
//!
//! A family's format is detected from its chat template's source (and architecture):
//!
//! | format | families | a call looks like |
//! |---|---|---|
//! | [`ToolFormat::Hermes`] | Qwen2.5, Qwen3, Hermes, SmolLM3 | `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, one block per call |
//! | [`ToolFormat::Llama3`] | Llama 3.1 to 3.3 | `{"name": …, "parameters": {…}}`, optionally after `<|python_tag|>`; several separated by `;` |
//! | [`ToolFormat::Mistral`] | Mistral, Mistral Nemo | `[TOOL_CALLS][{"name": …, "arguments": {…}}, …]` |
//! | [`ToolFormat::Phi4Mini`] | Phi-4-mini | `<|tool_call|>[{"name": …, "arguments": {…}}, …]<|/tool_call|>` |
//! | [`ToolFormat::Fenced`] | Gemma and every model without a native format | a fenced block: three backticks, `tool_call`, a newline, `{"name": …, "arguments": {…}}`, a newline, three backticks |
//!
//! Gemma has no tool-call tokens of its own; the fenced block is slm's convention, taught by
//! the system prompt of [`system_prompt`]. That prompt is the fallback for every template
//! that does not render `tools` itself ([`template_renders_tools`]): the tool list and the
//! call format go into the system message, and earlier calls and results in the history are
//! written in the same format ([`lower_messages`]).
//!
//! Whatever the format: [`parse`] reads finished text into content and calls (with a
//! reason when a call is malformed), [`StreamParser`] does the same incrementally (plain text
//! released as it comes, text that may open a call withheld, calls yielded as a name then
//! argument fragments, as OpenAI streams them), and [`lark_grammar`] builds the llguidance
//! grammar that enforces a `tool_choice`.

mod grammar;
mod parse;
mod prompt;
mod stream;

#[cfg(test)]
mod tests;

pub use grammar::{lark_grammar, GrammarOptions, ToolGrammarError};
pub use parse::{parse, parse_lenient, ParsedOutput, ToolParseError};
pub use prompt::{lower_messages, system_prompt, with_tool_prompt};
pub use stream::{StreamEvent, StreamParser};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::chat::ToolCall;

/// How a model family writes its tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>` (Qwen2.5, Qwen3, Hermes).
    Hermes,
    /// A bare `{"name": …, "parameters": …}` object, optionally after `<|python_tag|>`.
    Llama3,
    /// `[TOOL_CALLS]` and a JSON array of calls.
    Mistral,
    /// `<|tool_call|>`, a JSON array of calls, `<|/tool_call|>`.
    Phi4Mini,
    /// slm's convention for models without one: a fenced `tool_call` block of JSON.
    Fenced,
}

/// The fixed text around a format's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// What opens a call (or, for array formats, the list of calls).
    pub opener: &'static str,
    /// What closes it; empty when nothing does.
    pub closer: &'static str,
    /// The calls after one opener are a JSON array, not one object.
    pub array: bool,
    /// The key of the arguments object the model writes.
    pub arguments_key: &'static str,
    /// A JSON object at the very start of the output is a call, without an opener.
    pub bare_json: bool,
}

impl Syntax {
    /// Calls without an opener follow each other, separated by `;` (Llama 3).
    pub fn chains_bare_calls(self) -> bool {
        self.bare_json && self.closer.is_empty()
    }
}

impl ToolFormat {
    /// The format for a model, from its `tokenizer.chat_template` (if any) and its
    /// `general.architecture`.
    pub fn detect(chat_template: Option<&str>, architecture: &str) -> ToolFormat {
        if let Some(template) = chat_template {
            if template.contains("<tool_call>") {
                return ToolFormat::Hermes;
            }
            if template.contains("[TOOL_CALLS]") {
                return ToolFormat::Mistral;
            }
            if template.contains("<|tool_call|>") {
                return ToolFormat::Phi4Mini;
            }
            if template.contains("<|python_tag|>") || template.contains("<|start_header_id|>") {
                return ToolFormat::Llama3;
            }
            if template.contains("<|im_start|>") && architecture.starts_with("qwen") {
                return ToolFormat::Hermes;
            }
            return ToolFormat::Fenced;
        }
        match architecture {
            "qwen2" | "qwen3" => ToolFormat::Hermes,
            _ => ToolFormat::Fenced,
        }
    }

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            ToolFormat::Hermes => "hermes",
            ToolFormat::Llama3 => "llama3",
            ToolFormat::Mistral => "mistral",
            ToolFormat::Phi4Mini => "phi4-mini",
            ToolFormat::Fenced => "fenced",
        }
    }

    /// The text that opens a call; a model's vocabulary may hold it as one special token.
    pub fn opener(self) -> &'static str {
        self.syntax().opener
    }

    /// The text that closes a call ("" when nothing does).
    pub fn closer(self) -> &'static str {
        self.syntax().closer
    }

    pub(crate) fn syntax(self) -> Syntax {
        let call = |opener, closer, array, arguments_key, bare_json| Syntax {
            opener,
            closer,
            array,
            arguments_key,
            bare_json,
        };
        match self {
            // Small Qwen models sometimes drop the tags around a call at the start.
            ToolFormat::Hermes => call("<tool_call>", "</tool_call>", false, "arguments", true),
            ToolFormat::Llama3 => call("<|python_tag|>", "", false, "parameters", true),
            ToolFormat::Mistral => call("[TOOL_CALLS]", "", true, "arguments", false),
            ToolFormat::Phi4Mini => {
                call("<|tool_call|>", "<|/tool_call|>", true, "arguments", false)
            }
            ToolFormat::Fenced => call("```tool_call", "```", false, "arguments", false),
        }
    }

    /// One call written as the model writes it (for history and examples).
    pub fn write_call(self, name: &str, arguments: &serde_json::Value) -> String {
        let syntax = self.syntax();
        // The name first, as models are trained to write it (a JSON map would sort the keys).
        let object = format!(
            "{{\"name\": {}, \"{}\": {arguments}}}",
            serde_json::Value::from(name),
            syntax.arguments_key
        );
        match self {
            ToolFormat::Hermes | ToolFormat::Fenced => {
                format!("{}\n{object}\n{}", syntax.opener, syntax.closer)
            }
            ToolFormat::Llama3 => object.to_string(),
            ToolFormat::Mistral | ToolFormat::Phi4Mini => {
                format!("{}[{object}]{}", syntax.opener, syntax.closer)
            }
        }
    }
}

/// Whether a chat template renders the request's tools itself (it mentions `tools`);
/// otherwise [`with_tool_prompt`] puts them in the system message.
pub fn template_renders_tools(chat_template: Option<&str>) -> bool {
    chat_template.is_some_and(|t| t.contains("tools"))
}

/// Which calls a request allows (OpenAI's `tool_choice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// No call: tools are not offered and the output is not parsed for calls.
    None,
    /// Text or calls, as the model decides.
    Auto,
    /// At least one call (exactly one when parallel calls are off).
    Required,
    /// A call to this function.
    Function(String),
}

/// A fresh call id: `call_` and 24 random letters and digits. Ids differ within a process
/// (a counter is mixed into the random seed), so they are unique within a response.
pub fn new_call_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut rng = crate::rng::Rng::new(hasher.finish());
    let mut id = String::from("call_");
    for _ in 0..24 {
        let pick = (rng.next_u64() % ALPHABET.len() as u64) as usize;
        id.push(char::from(ALPHABET[pick]));
    }
    id
}

/// A call with a fresh id.
pub(crate) fn call(name: String, arguments: serde_json::Value) -> ToolCall {
    ToolCall {
        id: new_call_id(),
        name,
        arguments,
    }
}
