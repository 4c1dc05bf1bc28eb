use std::time::{Duration, SystemTime};

use serde_json::json;

use super::request::{engine_messages, ChatRequest, GenerateRequest, Options};
use super::rfc3339;
use crate::json::parse_body;

#[test]
fn rfc3339_dates() {
    let at = |secs: u64, nanos: u32| SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        rfc3339(at(951_782_400, 5)),
        "2000-02-29T00:00:00.000000005Z"
    );
    assert_eq!(
        rfc3339(at(1_714_564_800, 123_456_789)),
        "2024-05-01T12:00:00.123456789Z"
    );
}

#[test]
fn options_take_ollamas_defaults() {
    let params = Options::default().check().expect("valid");
    assert_eq!(params.sampler.temperature, 0.8);
    assert_eq!(params.sampler.top_k, 40);
    assert_eq!(params.sampler.top_p, 0.9);
    assert_eq!(params.sampler.repeat_penalty, 1.1);
    assert_eq!(params.max_tokens, None);
}

#[test]
fn options_are_checked() {
    let parse = |v: serde_json::Value| parse_body::<GenerateRequest>(v.to_string().as_bytes());
    let request = parse(json!({"model": "m", "prompt": "x", "options": {
        "temperature": 0, "seed": 3, "num_predict": 8, "stop": ["a", "b"], "num_ctx": 99, "num_gpu": 1
    }}))
    .expect("valid");
    let params = request
        .options
        .as_ref()
        .expect("options")
        .check()
        .expect("valid");
    assert_eq!(params.sampler.seed, 3);
    assert_eq!(params.max_tokens, Some(8));
    assert_eq!(params.stop, vec!["a".to_string(), "b".to_string()]);
    let error =
        parse(json!({"prompt": "x", "options": {"temperature": "warm"}})).expect_err("a string");
    assert_eq!(
        error.param.as_deref(),
        Some("options.temperature"),
        "{error}"
    );
    let options: Options = serde_json::from_value(json!({"top_p": 2})).expect("parses");
    assert_eq!(
        options.check().expect_err("out of range").param.as_deref(),
        Some("options.top_p")
    );
    let options: Options = serde_json::from_value(json!({"num_predict": -1})).expect("parses");
    assert_eq!(options.check().expect("valid").max_tokens, None);
}

#[test]
fn chat_messages_are_checked() {
    let parse =
        |v: serde_json::Value| parse_body::<ChatRequest>(v.to_string().as_bytes()).expect("parses");
    let request = parse(
        json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
    );
    assert_eq!(engine_messages(&request.messages).expect("valid").len(), 2);
    let request = parse(json!({"messages": [{"role": "tool", "content": "u"}]}));
    assert_eq!(
        engine_messages(&request.messages).expect("a tool result")[0].role,
        engine::Role::Tool
    );
    let request = parse(json!({"messages": [{"role": "robot", "content": "u"}]}));
    let error = engine_messages(&request.messages).expect_err("robot");
    assert_eq!(error.param.as_deref(), Some("messages[0].role"));
    let request =
        parse(json!({"messages": [{"role": "user", "content": "u", "images": ["aGk="]}]}));
    assert!(engine_messages(&request.messages).is_err());
}
