//! Constrained decoding: what a request's output must match. The sampler masks every token
//! that would leave the grammar, so the output parses by construction.

/// A grammar the generated text must match, from the start of the output to its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// Any JSON object (OpenAI `response_format: json_object`, Ollama `format: "json"`).
    JsonObject,
    /// JSON valid under this JSON Schema. `strict` (OpenAI structured outputs) refuses
    /// schema features that cannot be enforced instead of loosening them.
    JsonSchema {
        /// The schema.
        schema: serde_json::Value,
        /// Refuse what cannot be enforced.
        strict: bool,
    },
    /// A regular expression over the whole output.
    Regex(String),
    /// A Lark grammar (llguidance's dialect: `%json { … }` embeds a JSON Schema, special
    /// tokens are written `<|name|>`).
    Lark(String),
}
