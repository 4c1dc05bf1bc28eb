//! The fallback for templates that do not render tools: the tool list and the call format
//! in the system message, and the history's calls and results written as text.

use serde_json::{json, Value};

use super::ToolFormat;
use crate::chat::{Message, Role, ToolSpec};

/// The tools as OpenAI lists them, one JSON object per line.
fn tool_lines(tools: &[ToolSpec]) -> String {
    tools
        .iter()
        .map(|tool| {
            let mut function = json!({ "name": tool.name, "parameters": tool.parameters });
            if let Some(description) = &tool.description {
                function["description"] = Value::from(description.as_str());
            }
            json!({ "type": "function", "function": function }).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The system prompt that teaches a model the tools and how to call them in `format`.
pub fn system_prompt(format: ToolFormat, tools: &[ToolSpec]) -> String {
    let example = format
        .write_call("function_name", &json!({}))
        .replace("{}", "{arguments as a JSON object}");
    format!(
        "# Tools\n\nYou may call one or more functions to answer the user. The functions, \
         with JSON Schemas of their arguments, are listed within <tools></tools> tags:\n\
         <tools>\n{}\n</tools>\n\nTo call a function, reply with exactly this, the \
         arguments following the function's schema:\n{example}\n\n\
         Otherwise answer in plain text. Each call's result comes back in a later message.",
        tool_lines(tools)
    )
}

/// The conversation with the tool prompt at the head of its system message (a system
/// message is added when there is none), and its calls and results written as text.
pub fn with_tool_prompt(
    format: ToolFormat,
    messages: &[Message],
    tools: &[ToolSpec],
) -> Vec<Message> {
    let mut out = lower_messages(format, messages);
    let prompt = system_prompt(format, tools);
    match out.first_mut() {
        Some(first) if first.role == Role::System => {
            first.content = format!("{}\n\n{prompt}", first.content);
        }
        _ => out.insert(0, Message::new(Role::System, prompt)),
    }
    out
}

/// Writes assistant calls into the assistant's text in `format` and turns tool results
/// into user messages, for templates that know neither.
pub fn lower_messages(format: ToolFormat, messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .map(|message| match message.role {
            Role::Assistant if !message.tool_calls.is_empty() => {
                let calls: Vec<String> = message
                    .tool_calls
                    .iter()
                    .map(|call| format.write_call(&call.name, &call.arguments))
                    .collect();
                let mut content = message.content.trim().to_owned();
                if !content.is_empty() {
                    content.push('\n');
                }
                content.push_str(&calls.join("\n"));
                Message::new(Role::Assistant, content)
            }
            Role::Tool => {
                let name = message.name.as_deref().unwrap_or("the function");
                let content = match format {
                    ToolFormat::Hermes => {
                        format!("<tool_response>\n{}\n</tool_response>", message.content)
                    }
                    _ => format!("Result of {name}:\n{}", message.content),
                };
                Message::new(Role::User, content)
            }
            _ => Message::new(message.role, message.content.clone()),
        })
        .collect()
}
