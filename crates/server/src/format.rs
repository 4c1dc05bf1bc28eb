//! Structured output: OpenAI's `response_format` and Ollama's `format`, read into the
//! engine's [`Grammar`]. Whether a schema compiles is the engine's to say at submit.

use engine::Grammar;
use serde_json::Value;

use crate::error::ApiError;

/// OpenAI's `response_format`: absent, `{"type": "text"}`, `{"type": "json_object"}` (with
/// llama-server's optional `schema`), or `{"type": "json_schema", "json_schema": {"name",
/// "schema", "strict"}}`.
pub fn response_format(value: Option<&Value>) -> Result<Option<Grammar>, ApiError> {
    const PARAM: &str = "response_format";
    let object = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(_) => {
            return Err(ApiError::invalid_param(
                PARAM,
                "response_format must be an object such as {\"type\": \"json_object\"}",
            ))
        }
    };
    match object.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => match object.get("schema") {
            None | Some(Value::Null) => Ok(Some(Grammar::JsonObject)),
            Some(schema) => Ok(Some(json_schema(schema, false, "response_format.schema")?)),
        },
        Some("json_schema") => {
            let param = "response_format.json_schema";
            let Some(Value::Object(spec)) = object.get("json_schema") else {
                return Err(ApiError::invalid_param(
                    param,
                    "response_format.json_schema must be an object with a schema field",
                ));
            };
            let strict = match spec.get("strict") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(strict)) => *strict,
                Some(_) => {
                    return Err(ApiError::invalid_param(
                        "response_format.json_schema.strict",
                        "response_format.json_schema.strict must be a boolean",
                    ))
                }
            };
            // OpenAI makes the schema optional: without one any JSON value goes.
            let schema = spec
                .get("schema")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            Ok(Some(json_schema(
                &schema,
                strict,
                "response_format.json_schema.schema",
            )?))
        }
        Some(other) => Err(ApiError::invalid_param(
            PARAM,
            format!("response_format type {other} is not supported; use text, json_object or json_schema"),
        )),
        None => Err(ApiError::invalid_param(
            PARAM,
            "response_format needs a type: text, json_object or json_schema",
        )),
    }
}

/// Ollama's `format`: absent, `null` or `""` (none), `"json"`, or a JSON Schema object.
pub fn ollama_format(value: Option<&Value>) -> Result<Option<Grammar>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(Grammar::JsonObject)),
        Some(Value::Object(_)) => Ok(value.map(|schema| Grammar::JsonSchema {
            schema: schema.clone(),
            strict: false,
        })),
        Some(_) => Err(ApiError::invalid_param(
            "format",
            "format must be \"json\" or a JSON Schema object",
        )),
    }
}

/// A JSON Schema must be an object or a boolean.
fn json_schema(schema: &Value, strict: bool, param: &str) -> Result<Grammar, ApiError> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(ApiError::invalid_param(
            param,
            format!("{param} must be a JSON Schema: an object or a boolean"),
        ));
    }
    Ok(Grammar::JsonSchema {
        schema: schema.clone(),
        strict,
    })
}

#[cfg(test)]
mod tests;
