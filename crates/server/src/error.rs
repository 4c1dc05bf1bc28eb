//! Errors: the one API error type every handler returns, mapped to a status code and to
//! OpenAI's error object (`{"error": {"message", "type", "param", "code"}}`) or, on the
//! Ollama routes, to Ollama's (`{"error": "message"}`); and the errors of starting a server.

use std::net::SocketAddr;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[cfg(test)]
mod tests;

/// Which API's error shape a response takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// OpenAI's error object, on `/v1/...` and everything that is not Ollama's.
    OpenAi,
    /// Ollama's `{"error": "..."}`, on `/api/...`.
    Ollama,
}

impl Flavor {
    /// The flavour of a request path.
    pub fn of_path(path: &str) -> Flavor {
        if path.starts_with("/api/") {
            Flavor::Ollama
        } else {
            Flavor::OpenAi
        }
    }
}

/// An error answered to a client: a status, a message that says what is wrong and what to
/// do, and OpenAI's `type`, `param` and `code`. Internal details never go into the message;
/// they are logged where the error is made.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// OpenAI's error `type`.
    pub kind: &'static str,
    /// What is wrong, for people.
    pub message: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// OpenAI's machine-readable `code`.
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
    /// The response shape.
    pub flavor: Flavor,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
            flavor: Flavor::OpenAi,
        }
    }

    /// 400: the request is malformed or asks for something impossible.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 about one field: the message names it and `param` carries it.
    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        let mut error = ApiError::invalid(message);
        error.param = Some(param.into());
        error
    }

    /// 401: the API key is missing or wrong.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        let mut error = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message);
        error.code = Some("invalid_api_key");
        error
    }

    /// 404: no model of this name is served.
    pub fn model_not_found(model: &str, served: &[String]) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "the model `{model}` does not exist or is not served here; served models: {}",
                served.join(", ")
            ),
        );
        error.param = Some("model".into());
        error.code = Some("model_not_found");
        error
    }

    /// 404: no such route.
    pub fn route_not_found(method: &str, path: &str) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("there is no route {method} {path}; see /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings and the Ollama routes under /api/"),
        );
        error.code = Some("unknown_url");
        error
    }

    /// 413: the body is larger than `--max-body`.
    pub fn body_too_large(limit: usize) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the request body is larger than the server's limit of {limit} bytes; send a smaller request or start the server with a larger --max-body"),
        );
        error.code = Some("request_too_large");
        error
    }

    /// 429: the waiting queue is full; try again shortly.
    pub fn queue_full(max_queue: usize) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            format!("the server is busy: {max_queue} requests are already waiting; retry after a moment"),
        );
        error.code = Some("rate_limit_exceeded");
        error.retry_after = Some(1);
        error
    }

    /// 503: the server cannot take the request now (loading, shutting down).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        let mut error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message);
        error.code = Some("service_unavailable");
        error.retry_after = Some(1);
        error
    }

    /// 500: something failed inside; the cause is logged, not sent.
    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server failed to complete the request; its log says why",
        )
    }

    /// The same error in another response shape.
    pub fn with_flavor(mut self, flavor: Flavor) -> ApiError {
        self.flavor = flavor;
        self
    }

    /// OpenAI's error object, `{"error": {...}}`.
    pub fn openai_body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }

    /// Ollama's error object, `{"error": "..."}`.
    pub fn ollama_body(&self) -> serde_json::Value {
        json!({ "error": self.message })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.flavor {
            Flavor::OpenAi => self.openai_body(),
            Flavor::Ollama => self.ollama_body(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What keeps a server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}; is another server using the port? choose another with --port"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The host name is not an IP address.
    #[error("--host {host} is not an IP address; give one such as 127.0.0.1 or 0.0.0.0")]
    Host {
        /// What was given.
        host: String,
    },
    /// A model could not be loaded.
    #[error("cannot load model {name}")]
    Load {
        /// The model's name.
        name: String,
        /// Why.
        #[source]
        source: Box<engine::EngineError>,
    },
    /// Two models were given the same name.
    #[error("the model name {name} is given twice; serve each model once")]
    DuplicateModel {
        /// The name.
        name: String,
    },
    /// The HTTP server failed while running.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}
