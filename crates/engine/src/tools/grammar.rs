//! Lark grammars (llguidance's dialect) that enforce a `tool_choice`: every call the
//! grammar admits is written in the family's format, names a requested function and has
//! arguments valid under that function's schema (`%json`), so it parses.

use serde_json::{Map, Value};

use super::{ToolChoice, ToolFormat};
use crate::chat::ToolSpec;

/// The most calls one answer may hold when parallel calls are on (a small model would
/// otherwise repeat calls until its token limit).
pub const MAX_PARALLEL_CALLS: usize = 8;

/// How to write the format's fixed text in a grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GrammarOptions {
    /// The opener's token id, when the vocabulary holds the opener as one token (Qwen's
    /// `<tool_call>` is 151657): the grammar then asks for that token, as the model was
    /// trained to write it.
    pub opener_token: Option<u32>,
    /// The closer's token id, likewise.
    pub closer_token: Option<u32>,
    /// Several calls may follow each other (OpenAI's `parallel_tool_calls`, default on).
    pub parallel: bool,
}

/// Why no grammar can be built for a `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolGrammarError {
    /// A named `tool_choice` that is not among the tools.
    #[error("tool_choice names the function {name}, which is not among the request's tools; name one of them")]
    UnknownFunction {
        /// The name asked for.
        name: String,
    },
    /// `required` or a named function without any tools.
    #[error("tool_choice asks for a tool call but the request has no tools; give tools or leave tool_choice out")]
    NoTools,
}

/// The grammar for `choice` over `tools` in `format`; `None` when nothing is enforced
/// (`none`, or `auto` without tools).
///
/// - `required`: one call (or several when `parallel`) to any of the tools.
/// - a function: one call to it (several when `parallel`).
/// - `auto`: from the first token, either text that never contains the opener (nor, for
///   formats whose calls need no opener, starts with `{`), or calls as for `required`.
pub fn lark_grammar(
    format: ToolFormat,
    tools: &[ToolSpec],
    choice: &ToolChoice,
    options: GrammarOptions,
) -> Result<Option<String>, ToolGrammarError> {
    let allowed: Vec<&ToolSpec> = match choice {
        ToolChoice::None => return Ok(None),
        ToolChoice::Auto if tools.is_empty() => return Ok(None),
        ToolChoice::Auto | ToolChoice::Required => tools.iter().collect(),
        ToolChoice::Function(name) => tools.iter().filter(|t| &t.name == name).collect(),
    };
    if allowed.is_empty() {
        return Err(match choice {
            ToolChoice::Function(name) if !tools.is_empty() => {
                ToolGrammarError::UnknownFunction { name: name.clone() }
            }
            _ => ToolGrammarError::NoTools,
        });
    }
    let mut lines = Vec::new();
    let calls = calls_rule(format, options);
    let syntax = format.syntax();
    if *choice == ToolChoice::Auto && syntax.bare_json && !syntax.closer.is_empty() {
        // The format's parser also reads one bare call object at the start (Hermes): a
        // model that begins with a brace writes such a call rather than free text.
        lines.push("start: TEXT | calls | call".to_owned());
        lines.push(text_terminal(format));
    } else if *choice == ToolChoice::Auto {
        lines.push("start: TEXT | calls".to_owned());
        lines.push(text_terminal(format));
    } else {
        lines.push("start: calls".to_owned());
    }
    lines.push(calls);
    let alternatives: Vec<String> = (0..allowed.len()).map(|i| format!("call_{i}")).collect();
    lines.push(format!("call: {}", alternatives.join(" | ")));
    for (i, tool) in allowed.iter().enumerate() {
        lines.push(call_rule(format, i, &tool.name));
        lines.push(format!(
            "args_{i}: %json {}",
            arguments_schema(&tool.parameters)
        ));
    }
    Ok(Some(lines.join("\n") + "\n"))
}

/// `calls`: the calls of one response in the format's layout.
fn calls_rule(format: ToolFormat, options: GrammarOptions) -> String {
    let syntax = format.syntax();
    let open = fixed(syntax.opener, options.opener_token);
    let close = fixed(syntax.closer, options.closer_token);
    let parallel = options.parallel;
    let more = MAX_PARALLEL_CALLS - 1;
    match format {
        ToolFormat::Hermes | ToolFormat::Fenced => {
            let block = format!("{open} \"\\n\" call \"\\n\" {close}");
            if parallel {
                // A newline after a block may end the answer or start the next block.
                format!("calls: block (\"\\n\" block){{0,{more}}} \"\\n\"?\nblock: {block}")
            } else {
                format!("calls: {block}")
            }
        }
        ToolFormat::Llama3 => {
            if parallel {
                format!("calls: call (\"; \" call){{0,{more}}}")
            } else {
                "calls: call".to_owned()
            }
        }
        ToolFormat::Mistral | ToolFormat::Phi4Mini => {
            let list = if parallel {
                format!("call (\", \" call){{0,{more}}}")
            } else {
                "call".to_owned()
            };
            let close = if syntax.closer.is_empty() {
                String::new()
            } else {
                format!(" {close}")
            };
            format!("calls: {open} \"[\" {list} \"]\"{close}")
        }
    }
}

/// `call_i`: one call of the function `name`.
fn call_rule(format: ToolFormat, index: usize, name: &str) -> String {
    let head = format!(
        "{{\"name\": {}, \"{}\": ",
        Value::from(name),
        format.syntax().arguments_key
    );
    format!("call_{index}: {} args_{index} \"}}\"", lark_string(&head))
}

/// Text the model may write instead of calls.
fn text_terminal(format: ToolFormat) -> String {
    let syntax = format.syntax();
    let mut terminal = format!(
        "TEXT: /(?s:.+)/ & ~/(?s:.*{}.*)/",
        regex_escape(syntax.opener)
    );
    if syntax.bare_json {
        terminal.push_str(" & ~/(?s:\\s*\\{.*)/");
    }
    terminal
}

/// A fixed piece of text: its token when it is one, else a string literal.
fn fixed(text: &str, token: Option<u32>) -> String {
    match token {
        Some(id) => format!("<[{id}]>"),
        None => lark_string(text),
    }
}

/// A Lark string literal (llguidance reads JSON string syntax).
fn lark_string(text: &str) -> String {
    Value::from(text).to_string()
}

/// `text` matched literally inside a `/…/` regex.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The schema the arguments must follow: the function's parameters, an object in any
/// case (`{}` and non-objects allow any object). Objects that list their properties and
/// say nothing of others get no others (as OpenAI's strict function calling does: a small
/// model otherwise copies schema keywords such as `required` into its arguments), and JSON
/// whitespace is bounded as for every JSON grammar.
fn arguments_schema(parameters: &Value) -> Value {
    let mut schema = match parameters {
        Value::Object(schema) if !schema.is_empty() => {
            let mut schema = schema.clone();
            schema
                .entry("type")
                .or_insert_with(|| Value::from("object"));
            Value::Object(schema)
        }
        _ => {
            let mut schema = Map::new();
            schema.insert("type".into(), Value::from("object"));
            Value::Object(schema)
        }
    };
    close_objects(&mut schema, 0);
    if let Value::Object(map) = &mut schema {
        map.entry("x-guidance")
            .or_insert_with(|| crate::constraint::json_options(false));
    }
    schema
}

/// Sets `additionalProperties: false` on every object schema that lists `properties` and
/// says nothing of other keys, through nested schemas (to a sane depth).
fn close_objects(schema: &mut Value, depth: usize) {
    if depth > 32 {
        return;
    }
    match schema {
        Value::Object(map) => {
            if map.get("properties").is_some_and(Value::is_object)
                && !map.contains_key("additionalProperties")
                && !map.contains_key("patternProperties")
                && !map.contains_key("unevaluatedProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, value) in map.iter_mut() {
                match key.as_str() {
                    // Keyword values that are not schemas.
                    "enum" | "const" | "required" | "default" | "examples" | "x-guidance" => {}
                    // Maps of names to schemas.
                    "properties" | "$defs" | "definitions" | "patternProperties" => {
                        if let Value::Object(children) = value {
                            for child in children.values_mut() {
                                close_objects(child, depth + 1);
                            }
                        }
                    }
                    _ => close_objects(value, depth + 1),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                close_objects(item, depth + 1);
            }
        }
        _ => {}
    }
}
