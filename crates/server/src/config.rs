//! What a server is started with: where it listens, its limits, and the models it serves.

use std::path::PathBuf;
use std::time::Duration;

/// The port `slm serve` listens on unless told otherwise: clashes with neither Ollama's
/// 11434 nor llama-server's 8080.
pub const DEFAULT_PORT: u16 = 8377;

/// Server settings (the `slm serve` flags).
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// The IP address to bind (default 127.0.0.1).
    pub host: String,
    /// The port (0: any free port, printed at start).
    pub port: u16,
    /// With a key, every API route needs `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// Requests waiting for the batch, per model; more get 429.
    pub max_queue: usize,
    /// Bytes of KV cache per model; `None`: the engine's default.
    pub kv_budget_bytes: Option<usize>,
    /// Tokens per sequence (prompt and generated); `None`: min(4096, training context).
    pub n_ctx: Option<usize>,
    /// Sequences generating at once, per model.
    pub parallel: usize,
    /// The longest a request may run; past it generation ends (`finish_reason: length`).
    pub request_timeout: Option<Duration>,
    /// The largest request body accepted, in bytes; larger gets 413.
    pub max_body_bytes: usize,
    /// On SIGTERM/SIGINT, how long in-flight requests may go on before they are cancelled.
    pub shutdown_grace: Duration,
    /// Where repacked weights are cached between runs (`None`: repack at every start).
    pub pack_cache_dir: Option<PathBuf>,
    /// A Jinja chat template used instead of every model's own (`--chat-template`).
    pub chat_template: Option<String>,
    /// Share the KV blocks of common prompt prefixes between requests (default on).
    pub prefix_cache: bool,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            api_key: None,
            max_queue: 64,
            kv_budget_bytes: None,
            n_ctx: None,
            parallel: 8,
            request_timeout: Some(Duration::from_secs(600)),
            max_body_bytes: 4 << 20,
            shutdown_grace: Duration::from_secs(10),
            pack_cache_dir: None,
            chat_template: None,
            prefix_cache: true,
        }
    }
}

/// A model to serve: the name clients ask for and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name in requests and listings (a catalog name such as `qwen2.5-coder:0.5b`, or a
    /// file's stem).
    pub name: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// The file's sha256, when the store knows it (Ollama's `digest`).
    pub sha256: Option<String>,
}
