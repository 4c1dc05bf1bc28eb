//! Request bodies: JSON parsed with the path of the field at fault, so a wrong type is a 400
//! whose message names the field (`messages[0].content: invalid type: ...`). Unknown fields
//! are ignored, as OpenAI's and Ollama's servers do.

use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a request body into `T`; a 400 naming the field when it does not fit.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the request body is empty; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid(format!(
                "the request body is not valid JSON ({inner}); send a JSON object"
            ));
        }
        if path == "." {
            ApiError::invalid(format!("invalid request body: {inner}"))
        } else {
            ApiError::invalid_param(path.clone(), format!("invalid field {path}: {inner}"))
        }
    })?;
    deserializer.end().map_err(|err| {
        ApiError::invalid(format!(
            "the request body has text after its JSON value ({err}); send one JSON object"
        ))
    })?;
    Ok(value)
}

/// A request's `stop`: one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub enum OneOrMany {
    /// `"stop": "\n"`.
    One(String),
    /// `"stop": ["\n", "User:"]`.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings, in order.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A JSON request body, read up to the server's `--max-body` limit and parsed with
/// [`parse_body`]. A body whose `Content-Length` is over the limit is refused (413) before
/// any of it is read; a chunked body is refused as soon as it passes the limit.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A request body type. Most parse in one go; a body whose fields are shared with
/// another (the sampling fields of both completion routes) parses them in a second pass
/// over the same bytes, which keeps the path of a bad field in the error (serde's
/// `flatten` loses it).
pub trait RequestBody: DeserializeOwned {
    /// Parses the body.
    fn from_json(bytes: &[u8]) -> Result<Self, ApiError> {
        parse_body(bytes)
    }
}

impl<T: RequestBody> axum::extract::FromRequest<crate::state::AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &crate::state::AppState,
    ) -> Result<JsonBody<T>, ApiError> {
        let limit = state.config.max_body_bytes;
        let flavor = crate::error::Flavor::of_path(request.uri().path());
        let declared = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ApiError::body_too_large(limit).with_flavor(flavor));
        }
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|err| {
                if is_length_limit(&err) {
                    ApiError::body_too_large(limit).with_flavor(flavor)
                } else {
                    ApiError::invalid(format!("cannot read the request body: {err}"))
                        .with_flavor(flavor)
                }
            })?;
        T::from_json(&bytes)
            .map(JsonBody)
            .map_err(|e| e.with_flavor(flavor))
    }
}

/// True when reading a body failed on the length limit.
fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.to_string().contains("length limit exceeded") {
            return true;
        }
        source = e.source();
    }
    false
}
