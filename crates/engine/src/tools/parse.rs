//! Finished text to content and calls.

use serde_json::Value;

use super::{call, Syntax, ToolFormat};
use crate::chat::ToolCall;

/// A generated text split into what the model said and what it called.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedOutput {
    /// The text outside the calls, trimmed ("" when the output is only calls).
    pub content: String,
    /// The calls, in order, each with a fresh id.
    pub calls: Vec<ToolCall>,
}

/// Why a tool call in the output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolParseError {
    /// The text after the opener is not JSON.
    #[error("tool call {index} is not valid JSON ({message}); the model wrote a malformed call")]
    Json {
        /// Which call (0-based).
        index: usize,
        /// serde_json's description, with line and column.
        message: String,
    },
    /// The opener is followed by nothing.
    #[error("tool call {index} is empty: the output ends after {opener}")]
    Empty {
        /// Which call.
        index: usize,
        /// The format's opener.
        opener: &'static str,
    },
    /// An array format's opener is not followed by an array.
    #[error("the tool calls after {opener} are not a JSON array")]
    NotArray {
        /// The format's opener.
        opener: &'static str,
    },
    /// A call is not an object with a string `name`.
    #[error("tool call {index} has no \"name\" string")]
    NoName {
        /// Which call.
        index: usize,
    },
    /// The arguments are neither an object nor a string holding one.
    #[error("tool call {index} ({name}) has arguments that are not a JSON object")]
    ArgumentsNotObject {
        /// Which call.
        index: usize,
        /// The function called.
        name: String,
    },
    /// Something other than the closer follows a call.
    #[error("tool call {index} is not closed by {closer}")]
    Unclosed {
        /// Which call.
        index: usize,
        /// The format's closer.
        closer: &'static str,
    },
}

/// Splits finished output into content and calls in `format`. A closer missing at the very
/// end is forgiven (generation stopped right after the call). Any malformed call is an error.
pub fn parse(format: ToolFormat, text: &str) -> Result<ParsedOutput, ToolParseError> {
    let (parsed, error) = parse_lenient(format, text);
    match error {
        Some(error) => Err(error),
        None => Ok(parsed),
    }
}

/// As [`parse`], but the calls before a malformed one are kept: the malformed call and
/// everything after it become content, and the error says why (as [`super::StreamParser`]
/// does; a generation cut short by its token limit ends this way).
pub fn parse_lenient(format: ToolFormat, text: &str) -> (ParsedOutput, Option<ToolParseError>) {
    let syntax = format.syntax();
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    if syntax.bare_json {
        let trimmed = rest.trim_start();
        if trimmed.starts_with('{') {
            match bare_calls(syntax, trimmed) {
                Ok((found, after)) => {
                    calls = found;
                    rest = after;
                }
                // A JSON answer that is not a call is text.
                Err(_) => return (plain(text), None),
            }
        }
    }
    let mut error = None;
    while let Some(at) = rest.find(syntax.opener) {
        content.push_str(&rest[..at]);
        let block = &rest[at..];
        let mut found = Vec::new();
        match one_block(syntax, &block[syntax.opener.len()..], &mut found) {
            Ok(after) => {
                calls.extend(found);
                rest = after;
            }
            Err(err) => {
                error = Some(renumber(err, calls.len()));
                rest = block;
                break;
            }
        }
    }
    content.push_str(rest);
    let parsed = ParsedOutput {
        content: content.trim().to_owned(),
        calls,
    };
    (parsed, error)
}

/// An error of a block whose calls were counted from 0, counted from `offset`.
fn renumber(error: ToolParseError, offset: usize) -> ToolParseError {
    match error {
        ToolParseError::Json { index, message } => ToolParseError::Json {
            index: index.saturating_add(offset),
            message,
        },
        ToolParseError::Empty { index, opener } => ToolParseError::Empty {
            index: index.saturating_add(offset),
            opener,
        },
        ToolParseError::NoName { index } => ToolParseError::NoName {
            index: index.saturating_add(offset),
        },
        ToolParseError::ArgumentsNotObject { index, name } => ToolParseError::ArgumentsNotObject {
            index: index.saturating_add(offset),
            name,
        },
        ToolParseError::Unclosed { index, closer } => ToolParseError::Unclosed {
            index: index.saturating_add(offset),
            closer,
        },
        other @ ToolParseError::NotArray { .. } => other,
    }
}

fn plain(text: &str) -> ParsedOutput {
    ParsedOutput {
        content: text.trim().to_owned(),
        calls: Vec::new(),
    }
}

/// Calls written without an opener at the start of the output: objects separated by `;`
/// or white space. Returns them and the text after the last.
fn bare_calls(syntax: Syntax, text: &str) -> Result<(Vec<ToolCall>, &str), ToolParseError> {
    let mut calls = Vec::new();
    let mut rest = text;
    loop {
        let (value, after) = next_value(rest, calls.len(), syntax.opener)?;
        calls.push(to_call(value, syntax, calls.len())?);
        rest = after;
        let next = rest.trim_start().trim_start_matches(';').trim_start();
        if !syntax.chains_bare_calls() || !next.starts_with('{') {
            return Ok((calls, rest));
        }
        rest = next;
    }
}

/// The calls after one opener; returns the text after its closer.
fn one_block<'t>(
    syntax: Syntax,
    text: &'t str,
    calls: &mut Vec<ToolCall>,
) -> Result<&'t str, ToolParseError> {
    let index = calls.len();
    if syntax.chains_bare_calls() {
        let (found, after) = bare_calls(syntax, text)?;
        calls.extend(found);
        return Ok(after);
    }
    let (value, mut rest) = next_value(text, index, syntax.opener)?;
    if syntax.array {
        let Value::Array(items) = value else {
            return Err(ToolParseError::NotArray {
                opener: syntax.opener,
            });
        };
        for item in items {
            calls.push(to_call(item, syntax, calls.len())?);
        }
    } else {
        calls.push(to_call(value, syntax, index)?);
    }
    if !syntax.closer.is_empty() {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix(syntax.closer) {
            rest = after;
        } else if !trimmed.is_empty() {
            return Err(ToolParseError::Unclosed {
                index,
                closer: syntax.closer,
            });
        }
    }
    Ok(rest)
}

/// The JSON value at the start of `text` (after white space) and the text after it.
fn next_value<'t>(
    text: &'t str,
    index: usize,
    opener: &'static str,
) -> Result<(Value, &'t str), ToolParseError> {
    let body = text.trim_start();
    let mut values = serde_json::Deserializer::from_str(body).into_iter::<Value>();
    match values.next() {
        Some(Ok(value)) => {
            let end = values.byte_offset();
            Ok((value, body.get(end..).unwrap_or("")))
        }
        Some(Err(err)) => Err(ToolParseError::Json {
            index,
            message: err.to_string(),
        }),
        None => Err(ToolParseError::Empty { index, opener }),
    }
}

/// A `{"name": …, "arguments": …}` object as a call. `parameters` and `arguments` are both
/// accepted; arguments written as a JSON string are decoded; absent ones are `{}`.
pub(crate) fn to_call(
    value: Value,
    syntax: Syntax,
    index: usize,
) -> Result<ToolCall, ToolParseError> {
    let Value::Object(mut object) = value else {
        return Err(ToolParseError::NoName { index });
    };
    let Some(Value::String(name)) = object.remove("name") else {
        return Err(ToolParseError::NoName { index });
    };
    let arguments = object
        .remove(syntax.arguments_key)
        .or_else(|| object.remove("arguments"))
        .or_else(|| object.remove("parameters"))
        .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    let arguments = match arguments {
        Value::Object(_) => arguments,
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(decoded @ Value::Object(_)) => decoded,
            _ => return Err(ToolParseError::ArgumentsNotObject { index, name }),
        },
        _ => return Err(ToolParseError::ArgumentsNotObject { index, name }),
    };
    Ok(call(name, arguments))
}
