use serde_json::json;

use super::*;

fn openai(value: Value) -> Result<Option<Grammar>, String> {
    response_format(Some(&value)).map_err(|e| e.param.unwrap_or_default())
}

#[test]
fn openai_formats() {
    assert_eq!(openai(json!({"type": "text"})), Ok(None));
    assert_eq!(
        openai(json!({"type": "json_object"})),
        Ok(Some(Grammar::JsonObject))
    );
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    assert_eq!(
        openai(
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": true}})
        ),
        Ok(Some(Grammar::JsonSchema {
            schema: schema.clone(),
            strict: true
        }))
    );
    assert_eq!(
        openai(json!({"type": "json_object", "schema": schema})),
        Ok(Some(Grammar::JsonSchema {
            schema,
            strict: false
        }))
    );
    assert_eq!(response_format(None).ok(), Some(None));
}

#[test]
fn bad_openai_formats_name_the_field() {
    let check = |value: Value, param: &str| assert_eq!(openai(value), Err(param.to_string()));
    check(json!({"type": "xml"}), "response_format");
    check(json!("json"), "response_format");
    check(json!({}), "response_format");
    check(
        json!({"type": "json_schema"}),
        "response_format.json_schema",
    );
    check(
        json!({"type": "json_schema", "json_schema": {"schema": 3}}),
        "response_format.json_schema.schema",
    );
    check(
        json!({"type": "json_schema", "json_schema": {"schema": {}, "strict": "yes"}}),
        "response_format.json_schema.strict",
    );
}

#[test]
fn ollama_formats() {
    assert_eq!(
        ollama_format(Some(&json!("json"))).ok(),
        Some(Some(Grammar::JsonObject))
    );
    assert_eq!(ollama_format(Some(&json!(""))).ok(), Some(None));
    assert_eq!(ollama_format(None).ok(), Some(None));
    let schema = json!({"type": "object"});
    assert_eq!(
        ollama_format(Some(&schema)).ok(),
        Some(Some(Grammar::JsonSchema {
            schema,
            strict: false
        }))
    );
    assert!(ollama_format(Some(&json!("yaml"))).is_err());
    assert!(ollama_format(Some(&json!(5))).is_err());
}
