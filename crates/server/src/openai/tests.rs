use serde_json::json;

use super::embeddings::base64;
use super::request::{ChatRequest, CompletionRequest, EmbeddingRequest, Prompt, PromptInput};
use crate::error::ApiError;
use crate::json::{parse_body, RequestBody};

fn chat(body: serde_json::Value) -> Result<ChatRequest, ApiError> {
    ChatRequest::from_json(body.to_string().as_bytes())
}

/// A chat body that must be refused with a 400 naming `param`.
fn check_chat_refused(body: serde_json::Value, param: &str) {
    let error = chat(body.clone())
        .and_then(|r| r.params().and_then(|_| r.engine_messages()).map(|_| r))
        .expect_err(&format!("{body} must be refused"));
    assert_eq!(error.status.as_u16(), 400, "{body}: {error}");
    assert_eq!(error.param.as_deref(), Some(param), "{body}: {error}");
    assert!(
        error.message.contains(param),
        "{body}: message names {param}: {error}"
    );
}

#[test]
fn chat_fields_are_checked() {
    let msgs = json!([{"role": "user", "content": "hi"}]);
    check_chat_refused(
        json!({"messages": msgs, "temperature": "hot"}),
        "temperature",
    );
    check_chat_refused(json!({"messages": msgs, "temperature": 3}), "temperature");
    check_chat_refused(json!({"messages": msgs, "top_p": 1.5}), "top_p");
    check_chat_refused(json!({"messages": msgs, "max_tokens": 0}), "max_tokens");
    check_chat_refused(
        json!({"messages": msgs, "max_completion_tokens": -1}),
        "max_completion_tokens",
    );
    check_chat_refused(json!({"messages": msgs, "n": 0}), "n");
    check_chat_refused(json!({"messages": msgs, "n": 1000}), "n");
    check_chat_refused(json!({"messages": msgs, "stop": 5}), "stop");
    check_chat_refused(json!({"messages": msgs, "stop": [""]}), "stop");
    check_chat_refused(
        json!({"messages": msgs, "presence_penalty": 9}),
        "presence_penalty",
    );
    check_chat_refused(
        json!({"messages": msgs, "frequency_penalty": -9}),
        "frequency_penalty",
    );
    check_chat_refused(json!({"messages": msgs, "top_logprobs": 3}), "top_logprobs");
    check_chat_refused(
        json!({"messages": msgs, "logprobs": true, "top_logprobs": 21}),
        "top_logprobs",
    );
    check_chat_refused(json!({"messages": msgs, "logprobs": "yes"}), "logprobs");
    check_chat_refused(json!({"messages": msgs, "seed": "x"}), "seed");
    check_chat_refused(json!({"messages": msgs, "stream": 1}), "stream");
    check_chat_refused(
        json!({"messages": msgs, "response_format": {"type": "yaml"}}),
        "response_format",
    );
    check_chat_refused(json!({"messages": []}), "messages");
    check_chat_refused(json!({"messages": "hi"}), "messages");
    check_chat_refused(
        json!({"messages": [{"role": "robot", "content": "x"}]}),
        "messages[0].role",
    );
    check_chat_refused(
        json!({"messages": [{"role": "user", "content": 3}]}),
        "messages[0].content",
    );
    check_chat_refused(
        json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
        "messages[0].content[0]",
    );
}

#[test]
fn chat_defaults_and_unknown_fields() {
    let request = chat(json!({
        "model": "m",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": null}
        ],
        "some_future_field": {"x": 1},
        "stop": "\n",
        "seed": 7,
        "temperature": 0,
        "n": 2,
        "logprobs": true,
        "top_logprobs": 2,
        "max_tokens": 5
    }))
    .expect("a valid body");
    let params = request.params().expect("valid settings");
    assert_eq!(params.stop, vec!["\n".to_string()]);
    assert_eq!(params.sampler.seed, 7);
    assert_eq!(params.sampler_for_choice(1).seed, 8);
    assert_eq!(params.sampler.temperature, 0.0);
    assert_eq!(params.n, 2);
    assert_eq!(params.logprobs, Some(2));
    assert_eq!(params.max_tokens, Some(5));
    let messages = request.engine_messages().expect("valid messages");
    assert_eq!(messages[0].role, engine::Role::System);
    assert_eq!(messages[1].content, "ab");
    assert_eq!(messages[2].content, "");

    let plain = chat(json!({"messages": [{"role": "user", "content": "x"}]})).expect("valid");
    let params = plain.params().expect("valid");
    assert_eq!(params.max_tokens, None);
    assert_eq!(params.logprobs, None);
    assert_eq!(params.n, 1);
    assert!(!plain.sampling.stream());
}

#[test]
fn max_completion_tokens_wins_over_max_tokens() {
    let request = chat(json!({
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 50, "max_completion_tokens": 7
    }))
    .expect("valid");
    assert_eq!(request.params().expect("valid").max_tokens, Some(7));
}

#[test]
fn bodies_that_are_not_json_objects_are_refused() {
    for body in [
        "",
        "   ",
        "{",
        "[1,2]",
        "{\"messages\": []} trailing",
        "null",
    ] {
        let error = ChatRequest::from_json(body.as_bytes()).expect_err(body);
        assert_eq!(error.status.as_u16(), 400, "{body:?}");
    }
    let error = ChatRequest::from_json(b"{}").expect_err("missing messages");
    assert!(error.message.contains("messages"), "{error}");
}

#[test]
fn prompts_come_in_four_spellings() {
    let check = |value: serde_json::Value, expected: Vec<Prompt>| {
        let input: PromptInput = serde_json::from_value(value.clone()).expect("a prompt");
        assert_eq!(
            input.split("prompt").expect("non-empty"),
            expected,
            "{value}"
        );
    };
    check(json!("a"), vec![Prompt::Text("a".into())]);
    check(
        json!(["a", "b"]),
        vec![Prompt::Text("a".into()), Prompt::Text("b".into())],
    );
    check(json!([1, 2]), vec![Prompt::Tokens(vec![1, 2])]);
    check(
        json!([[1], [2, 3]]),
        vec![Prompt::Tokens(vec![1]), Prompt::Tokens(vec![2, 3])],
    );
    let empty: PromptInput = serde_json::from_value(json!([])).expect("parses");
    assert_eq!(
        empty.split("prompt").expect_err("empty").param.as_deref(),
        Some("prompt")
    );
    let error = parse_body::<CompletionRequest>(json!({"prompt": {"a": 1}}).to_string().as_bytes())
        .expect_err("an object is no prompt");
    assert_eq!(error.param.as_deref(), Some("prompt"));
}

#[test]
fn completion_settings() {
    let parse = |v: serde_json::Value| {
        CompletionRequest::from_json(v.to_string().as_bytes()).expect("parses")
    };
    let params = parse(json!({"prompt": "x"})).params().expect("valid");
    assert_eq!(params.max_tokens, Some(16), "OpenAI's default");
    let params = parse(json!({"prompt": "x", "logprobs": 3}))
        .params()
        .expect("valid");
    assert_eq!(params.logprobs, Some(3));
    for (body, param) in [
        (json!({"prompt": "x", "echo": true}), "echo"),
        (json!({"prompt": "x", "best_of": 3}), "best_of"),
        (json!({"prompt": "x", "logprobs": 50}), "logprobs"),
        (json!({"prompt": "x", "suffix": "y"}), "suffix"),
    ] {
        let error = parse(body.clone()).params().expect_err(&body.to_string());
        assert_eq!(error.param.as_deref(), Some(param), "{body}");
    }
}

#[test]
fn embedding_formats() {
    let parse = |v: serde_json::Value| {
        parse_body::<EmbeddingRequest>(v.to_string().as_bytes()).expect("parses")
    };
    assert!(!parse(json!({"input": "x"})).base64().expect("float"));
    assert!(parse(json!({"input": "x", "encoding_format": "base64"}))
        .base64()
        .expect("b64"));
    let error = parse(json!({"input": "x", "encoding_format": "hex"}))
        .base64()
        .expect_err("hex");
    assert_eq!(error.param.as_deref(), Some("encoding_format"));
}

#[test]
fn base64_matches_rfc4648() {
    for (input, output) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), output, "{input}");
    }
}
