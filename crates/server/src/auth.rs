//! API-key authentication: `Authorization: Bearer KEY`, compared in constant time so the
//! time a refusal takes says nothing about how much of a guess was right.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, Flavor};
use crate::state::AppState;

#[cfg(test)]
mod tests;

/// Paths anyone may fetch without a key: liveness and readiness probes, and the web page
/// itself (it holds no data; its requests to the API carry the key the user pastes).
pub fn is_open_path(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/" | "/favicon.ico")
}

/// True when `given` equals `expected`. The comparison's time depends on the lengths only,
/// never on where the first differing byte is.
pub fn keys_match(given: &[u8], expected: &[u8]) -> bool {
    // `ct_eq` on slices of different lengths returns false at once; the length of the
    // server's key is not the secret.
    given.ct_eq(expected).into()
}

/// The key of an `Authorization: Bearer KEY` header value; `None` for any other scheme.
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let rest = value.get(7..)?;
    let start = rest.iter().position(|b| *b != b' ')?;
    let token = rest.get(start..)?;
    let end = token.iter().rposition(|b| *b != b' ')?;
    token.get(..=end)
}

/// Middleware: refuses a request to a protected path without the right key (401, in the
/// path's API error shape). Without a configured key every request passes.
pub async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = state.config.api_key.as_deref() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if is_open_path(path) || request.method() == axum::http::Method::OPTIONS {
        return next.run(request).await;
    }
    let flavor = Flavor::of_path(path);
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| bearer_token(v.as_bytes()));
    match given {
        Some(Some(key)) if keys_match(key, expected.as_bytes()) => next.run(request).await,
        Some(Some(_)) => ApiError::unauthorized("incorrect API key provided; use the key the server was started with (--api-key or SLM_API_KEY)")
            .with_flavor(flavor)
            .into_response(),
        Some(None) => ApiError::unauthorized("the Authorization header is not `Bearer KEY`; send Authorization: Bearer followed by the server's API key")
            .with_flavor(flavor)
            .into_response(),
        None => ApiError::unauthorized("this server needs an API key; send it as Authorization: Bearer KEY")
            .with_flavor(flavor)
            .into_response(),
    }
}
