use engine::{ToolChoice, ToolFormat};
use serde_json::json;

use super::*;

fn tools() -> Vec<ToolSpec> {
    parse_tools(Some(&json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "noop"}},
    ])))
    .expect("valid tools")
}

fn param_of(error: ApiError) -> String {
    error.param.unwrap_or_default()
}

#[test]
fn checks_tools() {
    let specs = tools();
    assert_eq!(specs.len(), 2);
    assert_eq!(
        specs[1].parameters,
        json!({"type": "object", "properties": {}})
    );
    let bad = [
        (json!({"type": "function"}), "tools"),
        (json!([{"type": "retrieval"}]), "tools[0].type"),
        (json!([{"type": "function"}]), "tools[0].function"),
        (
            json!([{"type": "function", "function": {"name": "a b"}}]),
            "tools[0].function.name",
        ),
        (
            json!([{"type": "function", "function": {"name": "f", "parameters": []}}]),
            "tools[0].function.parameters",
        ),
        (
            json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]),
            "tools[0].function.parameters",
        ),
        (
            json!([{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]),
            "tools[1].function.name",
        ),
    ];
    for (value, param) in bad {
        let err = parse_tools(Some(&value)).expect_err("a bad tool");
        assert_eq!(param_of(err), param, "{value}");
    }
}

#[test]
fn checks_tool_choice() {
    let specs = tools();
    let cases = [
        (None, ToolChoice::Auto),
        (Some(json!("none")), ToolChoice::None),
        (Some(json!("required")), ToolChoice::Required),
        (
            Some(json!({"type": "function", "function": {"name": "noop"}})),
            ToolChoice::Function("noop".into()),
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(
            parse_tool_choice(value.as_ref(), &specs).ok(),
            Some(expected)
        );
    }
    assert_eq!(parse_tool_choice(None, &[]).ok(), Some(ToolChoice::None));
    for bad in [
        json!("sometimes"),
        json!({"type": "function", "function": {"name": "nope"}}),
        json!({"function": {"name": "noop"}}),
        json!(3),
    ] {
        assert!(parse_tool_choice(Some(&bad), &specs).is_err(), "{bad}");
    }
    assert!(parse_tool_choice(Some(&json!("required")), &[]).is_err());
}

#[test]
fn reads_history_calls() {
    let calls = openai_history_calls(
        2,
        &json!([{"id": "call_x", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]),
    )
    .expect("valid calls");
    assert_eq!(calls[0].id, "call_x");
    assert_eq!(calls[0].arguments, json!({"a": 1}));
    let ollama = openai_history_calls(
        0,
        &json!([{"function": {"name": "f", "arguments": {"b": 2}}}]),
    )
    .expect("ollama calls");
    assert_eq!(ollama[0].arguments, json!({"b": 2}));
    assert!(ollama[0].id.starts_with("call_"));
    let bad = openai_history_calls(
        3,
        &json!([{"function": {"name": "f", "arguments": "{not json"}}]),
    )
    .expect_err("bad JSON");
    assert_eq!(
        param_of(bad),
        "messages[3].tool_calls[0].function.arguments"
    );
}

fn plan(choice: ToolChoice) -> ToolPlan {
    ToolPlan {
        format: ToolFormat::Hermes,
        tools: tools(),
        choice,
        parallel: true,
    }
}

#[test]
fn unknown_or_malformed_calls_stay_text() {
    let plan = plan(ToolChoice::Auto);
    let good = "<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call>";
    let (content, calls) = plan.read_output(good);
    assert_eq!((content.as_str(), calls.len()), ("", 1));
    let unknown = "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>";
    assert_eq!(plan.read_output(unknown), (unknown.to_owned(), Vec::new()));
    let broken = "<tool_call>\n{\"name\": \"noop\", \"arguments\": 3}\n</tool_call>";
    assert_eq!(plan.read_output(broken), (broken.to_owned(), Vec::new()));
    let none = ToolPlan {
        choice: ToolChoice::None,
        ..plan.clone()
    };
    assert_eq!(none.read_output(good), (good.to_owned(), Vec::new()));
}

#[test]
fn streamed_unknown_calls_become_text_and_indices_stay_dense() {
    let mut reader = plan(ToolChoice::Auto).stream_reader().expect("a reader");
    let text = "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call>";
    let mut deltas = reader.push(text);
    deltas.extend(reader.finish());
    let starts: Vec<&CallDelta> = deltas
        .iter()
        .filter(|d| matches!(d, CallDelta::Start(..)))
        .collect();
    assert!(
        matches!(starts[..], [CallDelta::Start(0, _, ref name)] if name == "noop"),
        "{deltas:?}"
    );
    assert!(
        deltas
            .iter()
            .any(|d| matches!(d, CallDelta::Text(t) if t.contains("rm_rf"))),
        "{deltas:?}"
    );
    assert_eq!(reader.n_calls(), 1);
}

#[test]
fn response_shapes() {
    let call = ToolCall {
        id: "call_1".into(),
        name: "f".into(),
        arguments: json!({"a": 1}),
    };
    assert_eq!(
        openai_calls(std::slice::from_ref(&call)),
        json!([{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}])
    );
    assert_eq!(
        ollama_calls(&[call]),
        json!([{"function": {"name": "f", "arguments": {"a": 1}}}])
    );
}
