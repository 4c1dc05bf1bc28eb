//! Bad requests get the right status and the API's error shape, naming the field at fault.

use serde_json::json;
use server::ServeConfig;

use crate::common::{post, router, send, MODEL};

/// A chat body that must be refused with 400 and a message naming `field`.
async fn check_refused(path: &str, body: serde_json::Value, field: &str) {
    let app = router(ServeConfig::default());
    let answer = send(&app, post(path, body.to_string())).await;
    if path.starts_with("/api/") {
        answer.assert_ollama_error(400, field);
    } else {
        answer.assert_openai_error(400, "invalid_request_error", field);
        assert_eq!(answer.json()["error"]["param"], field, "{}", answer.text);
    }
}

#[tokio::test]
async fn wrong_types_and_values_name_the_field() {
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let chat = "/v1/chat/completions";
    check_refused(
        chat,
        json!({"messages": msgs, "temperature": "hot"}),
        "temperature",
    )
    .await;
    check_refused(
        chat,
        json!({"messages": msgs, "temperature": 7}),
        "temperature",
    )
    .await;
    check_refused(
        chat,
        json!({"messages": msgs, "max_tokens": "ten"}),
        "max_tokens",
    )
    .await;
    check_refused(chat, json!({"messages": msgs, "stop": {"a": 1}}), "stop").await;
    check_refused(chat, json!({"messages": msgs, "n": 0}), "n").await;
    check_refused(
        chat,
        json!({"messages": [{"role": "user"}], "logprobs": 3}),
        "logprobs",
    )
    .await;
    check_refused(chat, json!({"messages": 5}), "messages").await;
    check_refused(
        chat,
        json!({"messages": [{"role": "user", "content": 5}]}),
        "messages[0].content",
    )
    .await;
    let completions = "/v1/completions";
    check_refused(completions, json!({"prompt": "x", "top_p": -1}), "top_p").await;
    check_refused(completions, json!({"prompt": true}), "prompt").await;
    check_refused(completions, json!({"prompt": "x", "seed": 1.5}), "seed").await;
    check_refused("/v1/embeddings", json!({"input": 3.5}), "input").await;
    check_refused(
        "/api/chat",
        json!({"messages": msgs, "options": {"top_k": "many"}}),
        "options.top_k",
    )
    .await;
    check_refused("/api/generate", json!({"prompt": 3}), "prompt").await;
    check_refused(
        "/api/generate",
        json!({"prompt": "x", "format": "yaml"}),
        "format",
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = router(ServeConfig::default());
    for body in ["{", "not json", "", "[]", "{\"messages\": []} {}"] {
        let answer = send(&app, post("/v1/chat/completions", body)).await;
        answer.assert_openai_error(400, "invalid_request_error", "");
    }
    let answer = send(&app, post("/api/chat", "{")).await;
    answer.assert_ollama_error(400, "JSON");
}

#[tokio::test]
async fn unknown_model_is_a_404() {
    let app = router(ServeConfig::default());
    let body = json!({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]});
    let answer = send(&app, post("/v1/chat/completions", body.to_string())).await;
    answer.assert_openai_error(404, "invalid_request_error", "gpt-9");
    assert_eq!(answer.json()["error"]["code"], "model_not_found");
    assert!(
        answer.text.contains(MODEL),
        "lists the served models: {}",
        answer.text
    );
    let body = json!({"model": "gpt-9", "prompt": "hi"});
    let answer = send(&app, post("/api/generate", body.to_string())).await;
    answer.assert_ollama_error(404, "gpt-9");
}

#[tokio::test]
async fn a_model_still_loading_is_a_503() {
    let app = router(ServeConfig::default());
    for model in [MODEL, "test:1b:latest", ""] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let answer = send(&app, post("/v1/chat/completions", body.to_string())).await;
        answer.assert_openai_error(503, "server_error", "loading");
        assert!(answer.headers.contains_key("retry-after"));
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_a_413() {
    let config = ServeConfig {
        max_body_bytes: 100,
        ..ServeConfig::default()
    };
    let app = router(config);
    let big = json!({"prompt": "x".repeat(200)}).to_string();
    let answer = send(&app, post("/v1/completions", big.clone())).await;
    answer.assert_openai_error(413, "invalid_request_error", "100 bytes");
    let answer = send(&app, post("/api/generate", big.clone())).await;
    answer.assert_ollama_error(413, "100 bytes");

    // No Content-Length: refused once the streamed body passes the limit.
    let chunks: Vec<Result<String, std::io::Error>> =
        vec![Ok(big[..50].to_string()), Ok(big[50..].to_string())];
    let request = axum::http::Request::post("/v1/completions")
        .body(axum::body::Body::from_stream(futures_util::stream::iter(
            chunks,
        )))
        .expect("a request");
    let answer = send(&app, request).await;
    answer.assert_openai_error(413, "invalid_request_error", "100 bytes");
}
