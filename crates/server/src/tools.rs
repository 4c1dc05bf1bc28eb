//! Tool calling for both APIs: the request's tools and `tool_choice` checked, the history's
//! calls read, the grammar and prompt of a request with tools, and the model's output read
//! back into calls (whole or streamed). A call that cannot be read is returned as text,
//! with the reason logged; it is never dropped and never a server error.

use engine::tools::{self, GrammarOptions, StreamEvent, StreamParser, ToolGrammarError};
use engine::{Engine, Grammar, Message, ToolCall, ToolChoice, ToolFormat, ToolSpec};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::generation::PromptSource;
use crate::params::GenParams;

#[cfg(test)]
mod tests;

/// The most tools one request may offer.
pub const MAX_TOOLS: usize = 128;

/// What a request asks of tool calling, checked against one model.
#[derive(Debug, Clone)]
pub struct ToolPlan {
    /// The model's call format.
    pub format: ToolFormat,
    /// The offered functions.
    pub tools: Vec<ToolSpec>,
    /// Which calls are allowed.
    pub choice: ToolChoice,
    /// Several calls per answer.
    pub parallel: bool,
}

impl ToolPlan {
    /// A plan for `engine`'s model.
    pub fn new(engine: &Engine, tools: Vec<ToolSpec>, choice: ToolChoice, parallel: bool) -> Self {
        ToolPlan {
            format: engine.info().tool_format,
            tools,
            choice,
            parallel,
        }
    }

    /// True when the output is read for calls.
    pub fn active(&self) -> bool {
        self.choice != ToolChoice::None && !self.tools.is_empty()
    }

    /// Sets the grammar that enforces the choice and returns the prompt: the tools go to
    /// the model's template when it renders them, otherwise into the system message (and
    /// the history's calls and results are written as text).
    pub fn apply(
        &self,
        engine: &Engine,
        params: &mut GenParams,
        messages: Vec<Message>,
    ) -> Result<PromptSource, ApiError> {
        let native = template_handles_tools(engine);
        let has_history_calls = messages
            .iter()
            .any(|m| !m.tool_calls.is_empty() || m.role == engine::Role::Tool);
        if !self.active() {
            let messages = if has_history_calls && !native {
                tools::lower_messages(self.format, &messages)
            } else {
                messages
            };
            return Ok(PromptSource::Chat(messages));
        }
        // The call markers of some formats are control tokens: the reader must see them.
        params.special_text = true;
        if let Some(grammar) = self.grammar(engine)? {
            if params.grammar.is_some() && self.choice != ToolChoice::Auto {
                return Err(ApiError::invalid_param(
                    "tool_choice",
                    "tool_choice required or a named function cannot be combined with a JSON response_format; drop one of them",
                ));
            }
            if params.grammar.is_none() {
                params.grammar = Some(grammar);
            }
        }
        if native {
            return Ok(PromptSource::ChatWithTools(messages, self.tools.clone()));
        }
        Ok(PromptSource::Chat(tools::with_tool_prompt(
            self.format,
            &messages,
            &self.tools,
        )))
    }

    fn grammar(&self, engine: &Engine) -> Result<Option<Grammar>, ApiError> {
        let tokenizer = engine.tokenizer();
        let single = |text: &str| {
            if text.is_empty() {
                return None;
            }
            tokenizer.token_id(text)
        };
        let options = GrammarOptions {
            opener_token: single(self.format.opener()),
            closer_token: single(self.format.closer()),
            parallel: self.parallel,
        };
        match tools::lark_grammar(self.format, &self.tools, &self.choice, options) {
            Ok(grammar) => Ok(grammar.map(Grammar::Lark)),
            Err(err @ ToolGrammarError::UnknownFunction { .. }) => {
                Err(ApiError::invalid_param("tool_choice", err.to_string()))
            }
            Err(err @ ToolGrammarError::NoTools) => {
                Err(ApiError::invalid_param("tool_choice", err.to_string()))
            }
        }
    }

    /// Splits a finished output into content and calls. A malformed call, or a call to a
    /// function the request did not offer, stays in the content (reason logged).
    pub fn read_output(&self, text: &str) -> (String, Vec<ToolCall>) {
        if !self.active() {
            return (text.to_owned(), Vec::new());
        }
        let (parsed, error) = tools::parse_lenient(self.format, text);
        if let Some(err) = error {
            tracing::info!(reason = %err, format = self.format.name(), "a tool call could not be read; returned as text");
        }
        let unknown = parsed
            .calls
            .iter()
            .filter(|c| !self.offers(&c.name))
            .count();
        if unknown > 0 {
            tracing::info!(
                calls = unknown,
                "the model called functions the request did not offer; returned as text"
            );
            return (text.to_owned(), Vec::new());
        }
        (parsed.content, parsed.calls)
    }

    /// Whether the request offers this function.
    pub fn offers(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t.name == name)
    }

    /// A stream reader for one choice, when the output is read for calls.
    pub fn stream_reader(&self) -> Option<CallStream> {
        self.active().then(|| CallStream {
            parser: StreamParser::new(self.format),
            plan_names: self.tools.iter().map(|t| t.name.clone()).collect(),
            format: self.format,
            hidden: Vec::new(),
            client_index: Vec::new(),
            n_calls: 0,
        })
    }
}

/// Whether the model's chat template renders the tools itself (its source, or its
/// `tool_use` variant, mentions `tools`).
fn template_handles_tools(engine: &Engine) -> bool {
    let template = engine.template();
    tools::template_renders_tools(Some(template.source())) || template.tool_use_source().is_some()
}

/// What a streamed choice yields once read for calls.
#[derive(Debug, Clone, PartialEq)]
pub enum CallDelta {
    /// Plain text.
    Text(String),
    /// A call starts (client index, id, name).
    Start(usize, String, String),
    /// A piece of a call's arguments (client index, piece).
    Arguments(usize, String),
    /// A call is complete.
    End(usize, ToolCall),
}

/// The streamed reading of one choice: [`StreamParser`] events with calls to functions the
/// request did not offer turned back into text and calls numbered for the client.
#[derive(Debug)]
pub struct CallStream {
    parser: StreamParser,
    plan_names: Vec<String>,
    format: ToolFormat,
    /// Parser call indices that are hidden (unknown function).
    hidden: Vec<usize>,
    /// Parser call index to client index.
    client_index: Vec<(usize, usize)>,
    n_calls: usize,
}

impl CallStream {
    /// Reads the next piece of text.
    pub fn push(&mut self, text: &str) -> Vec<CallDelta> {
        let events = self.parser.push(text);
        self.map(events)
    }

    /// The output ended.
    pub fn finish(&mut self) -> Vec<CallDelta> {
        let events = self.parser.finish();
        self.map(events)
    }

    /// How many calls went to the client.
    pub fn n_calls(&self) -> usize {
        self.n_calls
    }

    fn client(&self, index: usize) -> Option<usize> {
        self.client_index
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, c)| *c)
    }

    fn map(&mut self, events: Vec<StreamEvent>) -> Vec<CallDelta> {
        let mut out = Vec::new();
        for event in events {
            match event {
                StreamEvent::Text(text) => out.push(CallDelta::Text(text)),
                StreamEvent::CallStart { index, id, name } => {
                    if self.plan_names.contains(&name) {
                        let client = self.client_index.len();
                        self.client_index.push((index, client));
                        out.push(CallDelta::Start(client, id, name));
                    } else {
                        self.hidden.push(index);
                    }
                }
                StreamEvent::CallArguments { index, fragment } => {
                    if let Some(client) = self.client(index) {
                        out.push(CallDelta::Arguments(client, fragment));
                    }
                }
                StreamEvent::CallEnd { index, call } => match self.client(index) {
                    Some(client) => {
                        self.n_calls += 1;
                        out.push(CallDelta::End(client, call));
                    }
                    None => {
                        tracing::info!("the model called a function the request did not offer; returned as text");
                        out.push(CallDelta::Text(
                            self.format.write_call(&call.name, &call.arguments),
                        ));
                    }
                },
                StreamEvent::Invalid { text, reason } => {
                    tracing::info!(%reason, "a streamed tool call could not be read; returned as text");
                    out.push(CallDelta::Text(text));
                }
            }
        }
        out
    }
}

/// The request's `tools` (OpenAI's and Ollama's shape): functions with a name of letters,
/// digits, `_` and `-` (at most 64) and an object schema of parameters.
pub fn parse_tools(value: Option<&Value>) -> Result<Vec<ToolSpec>, ApiError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "tools",
                "tools must be an array of tools",
            ))
        }
    };
    if items.len() > MAX_TOOLS {
        return Err(ApiError::invalid_param(
            "tools",
            format!(
                "tools has {} entries; give at most {MAX_TOOLS}",
                items.len()
            ),
        ));
    }
    let mut specs: Vec<ToolSpec> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let spec = parse_tool(i, item)?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(ApiError::invalid_param(
                format!("tools[{i}].function.name"),
                format!(
                    "tools[{i}] repeats the function name {}; names must be unique",
                    spec.name
                ),
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn parse_tool(i: usize, item: &Value) -> Result<ToolSpec, ApiError> {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("function");
    if kind != "function" {
        return Err(ApiError::invalid_param(
            format!("tools[{i}].type"),
            format!("tools[{i}].type is {kind}; only function tools are supported"),
        ));
    }
    let Some(function) = item.get("function").filter(|f| f.is_object()) else {
        return Err(ApiError::invalid_param(
            format!("tools[{i}].function"),
            format!("tools[{i}] has no function object"),
        ));
    };
    let name = function.get("name").and_then(Value::as_str).unwrap_or("");
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(ApiError::invalid_param(
            format!("tools[{i}].function.name"),
            format!("tools[{i}].function.name {name:?} is not valid; use 1 to 64 letters, digits, _ or -"),
        ));
    }
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => json!({ "type": "object", "properties": {} }),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err(ApiError::invalid_param(
                format!("tools[{i}].function.parameters"),
                format!("tools[{i}].function.parameters must be a JSON Schema object"),
            ))
        }
    };
    if let Some(kind) = parameters.get("type").and_then(Value::as_str) {
        if kind != "object" {
            return Err(ApiError::invalid_param(
                format!("tools[{i}].function.parameters"),
                format!("tools[{i}].function.parameters has type {kind}; the arguments must be an object schema"),
            ));
        }
    }
    let description = function
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(ToolSpec {
        name: name.to_owned(),
        description,
        parameters,
    })
}

/// OpenAI's `tool_choice`: `none`, `auto`, `required` or
/// `{"type": "function", "function": {"name": …}}` naming one of the tools. Absent: `auto`
/// with tools, `none` without.
pub fn parse_tool_choice(
    value: Option<&Value>,
    tools: &[ToolSpec],
) -> Result<ToolChoice, ApiError> {
    let bad = |message: String| ApiError::invalid_param("tool_choice", message);
    let choice =
        match value {
            None | Some(Value::Null) => {
                return Ok(if tools.is_empty() {
                    ToolChoice::None
                } else {
                    ToolChoice::Auto
                })
            }
            Some(Value::String(s)) => match s.as_str() {
                "none" => ToolChoice::None,
                "auto" => ToolChoice::Auto,
                "required" => ToolChoice::Required,
                other => {
                    return Err(bad(format!(
                    "tool_choice {other} is not one of none, auto, required or a function object"
                )))
                }
            },
            Some(object @ Value::Object(_)) => {
                let name = object
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str);
                let kind = object.get("type").and_then(Value::as_str);
                match (kind, name) {
                    (Some("function"), Some(name)) => ToolChoice::Function(name.to_owned()),
                    _ => return Err(bad(
                        "tool_choice must be {\"type\": \"function\", \"function\": {\"name\": …}}"
                            .into(),
                    )),
                }
            }
            Some(_) => return Err(bad("tool_choice must be a string or an object".into())),
        };
    match &choice {
        ToolChoice::Function(name) if !tools.iter().any(|t| &t.name == name) => Err(bad(format!(
            "tool_choice names the function {name}, which is not among the request's tools"
        ))),
        ToolChoice::Function(_) | ToolChoice::Required if tools.is_empty() => Err(bad(
            "tool_choice asks for a tool call but the request has no tools".into(),
        )),
        _ => Ok(choice),
    }
}

/// An assistant message's OpenAI `tool_calls`: `[{id, type, function: {name, arguments}}]`
/// with `arguments` a JSON string holding an object. `index` is the message's.
pub fn openai_history_calls(index: usize, value: &Value) -> Result<Vec<ToolCall>, ApiError> {
    let param = |j: usize, field: &str| format!("messages[{index}].tool_calls[{j}]{field}");
    let Value::Array(items) = value else {
        return Err(ApiError::invalid_param(
            format!("messages[{index}].tool_calls"),
            format!("messages[{index}].tool_calls must be an array"),
        ));
    };
    let mut calls = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let function = item.get("function");
        let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) else {
            return Err(ApiError::invalid_param(
                param(j, ".function.name"),
                format!("{} is missing", param(j, ".function.name")),
            ));
        };
        let arguments = match function.and_then(|f| f.get("arguments")) {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(object @ Value::Object(_)) => object,
                Ok(_) => {
                    return Err(ApiError::invalid_param(
                        param(j, ".function.arguments"),
                        format!(
                            "{} must be a JSON object in a string",
                            param(j, ".function.arguments")
                        ),
                    ))
                }
                Err(err) => {
                    return Err(ApiError::invalid_param(
                        param(j, ".function.arguments"),
                        format!(
                            "{} is not valid JSON: {err}",
                            param(j, ".function.arguments")
                        ),
                    ))
                }
            },
            Some(object @ Value::Object(_)) => object.clone(),
            Some(_) => {
                return Err(ApiError::invalid_param(
                    param(j, ".function.arguments"),
                    format!("{} must be a JSON string", param(j, ".function.arguments")),
                ))
            }
        };
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(tools::new_call_id, str::to_owned);
        calls.push(ToolCall {
            id,
            name: name.to_owned(),
            arguments,
        });
    }
    Ok(calls)
}

/// Fills each tool message's function name from the call it answers (templates print it).
pub fn name_tool_results(messages: &mut [Message]) {
    let mut names: Vec<(String, String)> = Vec::new();
    for message in messages.iter_mut() {
        for call in &message.tool_calls {
            names.push((call.id.clone(), call.name.clone()));
        }
        if message.role == engine::Role::Tool && message.name.is_none() {
            let id = message.tool_call_id.as_deref();
            message.name = names
                .iter()
                .find(|(call_id, _)| Some(call_id.as_str()) == id)
                .or(names.last())
                .map(|(_, name)| name.clone());
        }
    }
}

/// OpenAI's `message.tool_calls` of a response.
pub fn openai_calls(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": { "name": call.name, "arguments": call.arguments.to_string() },
                })
            })
            .collect(),
    )
}

/// Ollama's `message.tool_calls`: arguments as an object.
pub fn ollama_calls(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|call| json!({ "function": { "name": call.name, "arguments": call.arguments } }))
            .collect(),
    )
}
