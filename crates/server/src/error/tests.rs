use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, Flavor};

async fn body_of(error: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let response = error.into_response();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a small body");
    (
        status,
        headers,
        serde_json::from_slice(&bytes).expect("json"),
    )
}

#[tokio::test]
async fn openai_shape_has_every_field() {
    let (status, _, body) = body_of(ApiError::invalid_param("temperature", "bad")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": {"message": "bad", "type": "invalid_request_error", "param": "temperature", "code": null}})
    );
}

#[tokio::test]
async fn queue_full_says_when_to_retry() {
    let (status, headers, body) = body_of(ApiError::queue_full(4)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn ollama_shape_is_a_string() {
    let error = ApiError::model_not_found("nope", &["a".into()]).with_flavor(Flavor::Ollama);
    let (status, _, body) = body_of(error).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().expect("a string").contains("nope"));
}

#[tokio::test]
async fn unauthorized_asks_for_bearer() {
    let (status, headers, body) = body_of(ApiError::unauthorized("no key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(body["error"]["code"], "invalid_api_key");
}

#[test]
fn flavor_follows_the_path() {
    assert_eq!(Flavor::of_path("/api/chat"), Flavor::Ollama);
    assert_eq!(Flavor::of_path("/v1/chat/completions"), Flavor::OpenAi);
    assert_eq!(Flavor::of_path("/apix"), Flavor::OpenAi);
}
