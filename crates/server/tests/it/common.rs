//! Helpers: a router over models that are named but never loaded, and one-shot requests.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use serde_json::Value;
use server::{AppState, ModelSpec, ServeConfig};
use tower::ServiceExt;

/// The model name the test routers know (never loaded).
pub const MODEL: &str = "test:1b";

/// A router whose one model is still loading, with these settings.
pub fn router(config: ServeConfig) -> axum::Router {
    let spec = ModelSpec {
        name: MODEL.into(),
        path: "/nonexistent/test.gguf".into(),
        sha256: None,
    };
    server::router(AppState::new(config, vec![spec]))
}

/// The answer to one request.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Checks OpenAI's error object: status, type, and that the message mentions `needle`.
    pub fn assert_openai_error(&self, status: u16, kind: &str, needle: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        let body = self.json();
        let error = &body["error"];
        assert_eq!(error["type"], kind, "{}", self.text);
        for field in ["message", "type", "param", "code"] {
            assert!(error.get(field).is_some(), "no {field} in {}", self.text);
        }
        let message = error["message"].as_str().expect("a message");
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }

    /// Checks Ollama's error object.
    pub fn assert_ollama_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        let message = self.json()["error"]
            .as_str()
            .expect("a string error")
            .to_owned();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

/// Sends one request through the router.
pub async fn send(router: &axum::Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .expect("the body");
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A GET request.
pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("a request")
}

/// A POST with this body text.
pub fn post(path: &str, body: impl Into<String>) -> Request<Body> {
    let body: String = body.into();
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("a request")
}
