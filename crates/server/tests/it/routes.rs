//! Probes, auth, listings, metrics and the page.

use axum::body::Body;
use axum::http::{header, Request};
use server::ServeConfig;

use crate::common::{get, router, send, MODEL};

fn keyed() -> ServeConfig {
    ServeConfig {
        api_key: Some("s3cret".into()),
        ..ServeConfig::default()
    }
}

fn with_key(path: &str, value: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, value)
        .body(Body::empty())
        .expect("a request")
}

#[tokio::test]
async fn probes_say_alive_and_not_ready() {
    let app = router(ServeConfig::default());
    let answer = send(&app, get("/health")).await;
    assert_eq!(answer.status.as_u16(), 200);
    let answer = send(&app, get("/ready")).await;
    assert_eq!(
        answer.status.as_u16(),
        503,
        "not loaded yet: {}",
        answer.text
    );
    assert_eq!(answer.json()["status"], "loading");
}

#[tokio::test]
async fn api_routes_need_the_key() {
    let app = router(keyed());
    for path in ["/v1/models", "/metrics"] {
        let answer = send(&app, get(path)).await;
        answer.assert_openai_error(401, "invalid_request_error", "API key");
        assert_eq!(answer.json()["error"]["code"], "invalid_api_key");
        let answer = send(&app, with_key(path, "Bearer wrong")).await;
        answer.assert_openai_error(401, "invalid_request_error", "incorrect");
        let answer = send(&app, with_key(path, "Basic s3cret")).await;
        answer.assert_openai_error(401, "invalid_request_error", "Bearer");
        let answer = send(&app, with_key(path, "Bearer s3cret")).await;
        assert_eq!(answer.status.as_u16(), 200, "{path}: {}", answer.text);
    }
    let answer = send(&app, get("/api/tags")).await;
    answer.assert_ollama_error(401, "API key");
    let answer = send(&app, with_key("/api/tags", "Bearer s3cret")).await;
    assert_eq!(answer.status.as_u16(), 200);
    for open in ["/health", "/"] {
        let answer = send(&app, get(open)).await;
        assert_eq!(answer.status.as_u16(), 200, "{open} stays open");
    }
}

#[tokio::test]
async fn listings_name_the_models() {
    let app = router(ServeConfig::default());
    let models = send(&app, get("/v1/models")).await.json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], MODEL);
    assert_eq!(models["data"][0]["object"], "model");
    let tags = send(&app, get("/api/tags")).await.json();
    assert_eq!(tags["models"][0]["name"], MODEL);
    let version = send(&app, get("/api/version")).await.json();
    assert!(version["version"].as_str().is_some());
    let ps = send(&app, get("/api/ps")).await.json();
    assert_eq!(
        ps["models"].as_array().map(Vec::len),
        Some(0),
        "nothing loaded"
    );
}

#[tokio::test]
async fn unknown_routes_are_a_json_404() {
    let app = router(ServeConfig::default());
    let answer = send(&app, get("/v1/nothing")).await;
    answer.assert_openai_error(404, "invalid_request_error", "/v1/nothing");
    let answer = send(&app, get("/api/pull")).await;
    answer.assert_ollama_error(404, "/api/pull");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = router(ServeConfig::default());
    send(&app, get("/health")).await;
    send(&app, get("/health")).await;
    send(&app, get("/v1/nothing")).await;
    let answer = send(&app, get("/metrics")).await;
    assert_eq!(answer.status.as_u16(), 200);
    assert!(answer.headers[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain; version=0.0.4"));
    let text = answer.text;
    assert!(
        text.contains("slm_http_requests_total{route=\"/health\",status=\"200\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("slm_http_requests_total{route=\"unmatched\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(text.contains("slm_ready 0"), "{text}");
}

#[tokio::test]
async fn the_page_is_self_contained() {
    let app = router(ServeConfig::default());
    let answer = send(&app, get("/")).await;
    assert_eq!(answer.status.as_u16(), 200);
    assert!(answer.headers[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let page = answer.text;
    assert!(page.contains("/v1/chat/completions") && page.contains("/v1/models"));
    assert!(page.contains("localStorage"), "keeps the API key");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no outside resources"
    );
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let app = router(ServeConfig::default());
    let answer = send(&app, get("/v1/chat/completions")).await;
    answer.assert_openai_error(405, "invalid_request_error", "GET");
    let answer = send(&app, get("/api/chat")).await;
    answer.assert_ollama_error(405, "GET");
}
