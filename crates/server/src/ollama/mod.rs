//! The Ollama API under `/api/`: `chat`, `generate` (NDJSON streaming by default),
//! `embed`, `embeddings`, `tags`, `show`, `ps`, `version`, with Ollama's field names,
//! durations in nanoseconds and `{"error": "..."}` errors, so Ollama clients work unchanged.

pub mod generate;
pub mod info;
pub mod request;

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, Flavor};

/// The Ollama version slm's `/api/version` reports: the API it follows.
pub const OLLAMA_VERSION: &str = "0.12.0";

/// An [`ApiError`] in Ollama's shape; `?` converts.
#[derive(Debug)]
pub struct OllamaError(pub ApiError);

impl From<ApiError> for OllamaError {
    fn from(error: ApiError) -> OllamaError {
        OllamaError(error)
    }
}

impl IntoResponse for OllamaError {
    fn into_response(self) -> Response {
        self.0.with_flavor(Flavor::Ollama).into_response()
    }
}

/// Nanoseconds, as Ollama reports durations.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A time in RFC 3339 with nanoseconds, UTC (`2024-05-01T12:00:00.123456789Z`), as
/// Ollama's `created_at` and `modified_at`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = engine::chat::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_nanos()
    )
}
