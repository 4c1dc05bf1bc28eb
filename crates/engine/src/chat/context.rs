//! Messages and tools as the dicts transformers hands to templates.

use serde_json::{json, Map, Value as Json};

use super::{Message, ToolSpec};

/// A message as transformers receives it: `{role, content}`, plus `tool_calls`
/// (`[{id, type: "function", function: {name, arguments: <object>}}]`) for an assistant
/// that called tools, and `tool_call_id` / `name` for a tool result when set.
pub(super) fn message_json(message: &Message) -> Json {
    let mut object = Map::new();
    object.insert("role".into(), Json::from(message.role.as_str()));
    object.insert("content".into(), Json::from(message.content.as_str()));
    if !message.tool_calls.is_empty() {
        let calls = message
            .tool_calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })
            })
            .collect();
        object.insert("tool_calls".into(), Json::Array(calls));
    }
    if let Some(id) = &message.tool_call_id {
        object.insert("tool_call_id".into(), Json::from(id.as_str()));
    }
    if let Some(name) = &message.name {
        object.insert("name".into(), Json::from(name.as_str()));
    }
    Json::Object(object)
}

/// A tool in OpenAI's shape: `{type: "function", function: {name, description,
/// parameters}}` (no `description` when it has none).
pub(super) fn tool_json(tool: &ToolSpec) -> Json {
    let mut function = Map::new();
    function.insert("name".into(), Json::from(tool.name.as_str()));
    if let Some(description) = &tool.description {
        function.insert("description".into(), Json::from(description.as_str()));
    }
    function.insert("parameters".into(), tool.parameters.clone());
    json!({"type": "function", "function": Json::Object(function)})
}
