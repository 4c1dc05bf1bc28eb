//! The router: every route, the middleware around them (request counting and logging,
//! API-key check), probes, metrics and the web page.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tracing::Instrument;

use crate::error::{ApiError, Flavor};
use crate::state::AppState;
use crate::{auth, metrics, ollama, openai};

/// The web chat page: one HTML file with its script and style, no outside resources.
pub const PAGE: &str = include_str!("../static/index.html");

/// Every route of the server over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/chat/completions", post(openai::chat::chat_completions))
        .route("/v1/completions", post(openai::completions::completions))
        .route("/v1/embeddings", post(openai::embeddings::embeddings))
        .route("/api/version", get(ollama::info::version))
        .route("/api/tags", get(ollama::info::tags))
        .route("/api/ps", get(ollama::info::ps))
        .route("/api/show", post(ollama::info::show))
        .route("/api/chat", post(ollama::generate::chat))
        .route("/api/generate", post(ollama::generate::generate))
        .route("/api/embed", post(ollama::info::embed_route))
        .route("/api/embeddings", post(ollama::info::embeddings_legacy))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The body extractor enforces --max-body itself, with an API-shaped 413.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Middleware: a span per request (id, method, route), a log line when it is answered, and
/// the request counter.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!("request", id, %method, route = %route);
    let start = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    state.metrics.record_request(&route, status);
    span.in_scope(|| {
        // Client mistakes are the client's business: logged, never as errors.
        tracing::info!(status, ms = start.elapsed().as_millis() as u64, "answered");
    });
    response
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// Liveness: the process answers.
async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Readiness: 200 once every model is loaded, 503 before.
async fn ready(State(state): State<AppState>) -> Response {
    let models = state.models.names();
    if state.models.ready() {
        Json(json!({ "status": "ready", "models": models })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "loading", "models": models })),
        )
            .into_response()
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    let text = metrics::render(
        &state.metrics.requests(),
        &state.models.stats(),
        state.models.ready(),
    );
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn method_not_allowed(request: Request) -> ApiError {
    let path = request.uri().path();
    let mut error = ApiError::invalid(format!(
        "{path} does not take {}; see the API's documentation for its method",
        request.method()
    ));
    error.status = StatusCode::METHOD_NOT_ALLOWED;
    error.with_flavor(Flavor::of_path(path))
}

async fn not_found(request: Request) -> ApiError {
    let path = request.uri().path();
    ApiError::route_not_found(request.method().as_str(), path).with_flavor(Flavor::of_path(path))
}
