//! Command-line flags (clap derive). Defaults follow llama.cpp where a flag has a
//! llama.cpp equivalent.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[cfg(test)]
mod tests;

/// The model used when a command is given none.
pub const DEFAULT_MODEL: &str = "qwen2.5-coder:0.5b";

/// slm runs small language models (GGUF files) on this machine's CPU.
#[derive(Debug, Parser)]
#[command(name = "slm", version, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a completion of a prompt, streamed to stdout.
    Run(RunArgs),
    /// Chat with a model in the terminal.
    Chat(ChatArgs),
    /// Print the token ids of a text as a JSON array.
    Tokenize(TokenizeArgs),
    /// Measure a model's perplexity on a text file, as llama-perplexity does.
    Perplexity(PerplexityArgs),
    /// Download a model from the catalog into the local store.
    Pull(NameArgs),
    /// List the models in the local store.
    List,
    /// Show what a model file holds.
    Show(NameArgs),
    /// Remove a model from the local store.
    Rm(NameArgs),
    /// Measure a model's prompt and generation speed, as llama-bench does.
    Bench(crate::commands::bench::BenchArgs),
    /// Serve models over HTTP: OpenAI- and Ollama-compatible APIs and a web chat page.
    Serve(ServeArgs),
}

/// `slm run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// [MODEL] PROMPT: a catalog name or a .gguf path (default qwen2.5-coder:0.5b), then the
    /// prompt; `-` reads the prompt from stdin.
    #[arg(value_name = "[MODEL] PROMPT", num_args = 1..=2, required = true)]
    pub positional: Vec<String>,

    /// Use the prompt as is: no chat template (BOS as the model's metadata says, special
    /// tokens written as text are parsed).
    #[arg(long)]
    pub raw: bool,

    /// Stop after this many generated tokens (generation also stops at an
    /// end-of-generation token).
    #[arg(short = 'n', long, default_value_t = 512)]
    pub max_tokens: usize,

    /// Stop before this text (repeatable); it is not printed.
    #[arg(long, value_name = "TEXT")]
    pub stop: Vec<String>,

    #[command(flatten)]
    pub grammar: GrammarArgs,

    #[command(flatten)]
    pub sampling: SamplingArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// What the output must match (at most one).
#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub struct GrammarArgs {
    /// The output is one JSON object.
    #[arg(long)]
    pub json: bool,

    /// The output is JSON valid under the JSON Schema in FILE.
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<std::path::PathBuf>,

    /// The output matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,

    /// The output matches the Lark grammar in FILE (llguidance's dialect).
    #[arg(long, value_name = "FILE")]
    pub grammar: Option<std::path::PathBuf>,
}

/// `slm chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// A catalog name or a .gguf path.
    #[arg(value_name = "MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,

    /// A system message to start the conversation with.
    #[arg(long)]
    pub system: Option<String>,

    /// The most tokens per reply.
    #[arg(short = 'n', long, default_value_t = 2048)]
    pub max_tokens: usize,

    #[command(flatten)]
    pub sampling: SamplingArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Sampling flags, llama.cpp's defaults.
#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// Temperature; 0 picks the most probable token every time (greedy).
    #[arg(long, default_value_t = 0.8)]
    pub temp: f32,

    /// Sample from the K most probable tokens only; 0 = off.
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,

    /// Sample from the smallest set of tokens whose probabilities add up to P; 1 = off.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,

    /// Drop tokens less probable than P times the most probable one; 0 = off.
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,

    /// Penalize tokens seen in the last --repeat-last-n tokens; 1 = off.
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,

    /// How many recent tokens the penalties look at; 0 = off.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,

    /// Lower a token's logit by this much per earlier occurrence.
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f32,

    /// Lower a token's logit by this much if it occurred.
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f32,

    /// Random seed: the same seed and settings give the same output (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Flags for commands that run a model.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Compute threads (default: all cores).
    #[arg(short, long)]
    pub threads: Option<usize>,

    /// Context size in tokens (default: min(4096, the model's training context)).
    #[arg(short, long)]
    pub ctx: Option<usize>,

    /// A Jinja chat template file used instead of the model's own
    /// `tokenizer.chat_template` (rendered as Hugging Face transformers renders it).
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
}

/// `slm tokenize`.
#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// A catalog name or a .gguf path.
    pub model: String,

    /// The text; read from stdin, byte for byte, when absent.
    pub text: Option<String>,

    /// Do not add the BOS token (even if the model's metadata asks for it).
    #[arg(long)]
    pub no_bos: bool,

    /// Parse special-token text (like `<|im_start|>`) as the special token.
    #[arg(long)]
    pub special: bool,
}

/// `slm perplexity`.
#[derive(Debug, Args)]
pub struct PerplexityArgs {
    /// A catalog name or a .gguf path.
    pub model: String,

    /// The text file (UTF-8; one trailing newline is dropped, as llama.cpp does).
    pub file: PathBuf,

    /// Window size in tokens.
    #[arg(short, long, default_value_t = 512)]
    pub ctx: usize,

    /// Evaluate at most this many windows (default: all the text holds).
    #[arg(long)]
    pub chunks: Option<usize>,

    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Compute threads (default: all cores).
    #[arg(short, long)]
    pub threads: Option<usize>,
}

/// Commands that take one model name.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// A catalog name (like qwen2.5-coder:0.5b); `show` also takes a .gguf path.
    pub name: String,
}

/// `slm serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Models to serve (catalog names or .gguf paths); the first is the default for requests
    /// that name none (default qwen2.5-coder:0.5b).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,

    /// The IP address to listen on; 0.0.0.0 listens on every interface.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// The port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = server::DEFAULT_PORT)]
    pub port: u16,

    /// Require `Authorization: Bearer KEY` on every API route (/health stays open).
    #[arg(long, env = "SLM_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub api_key: Option<String>,

    /// Requests waiting for a place in the batch, per model; more are answered 429.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_queue: usize,

    /// KV cache size per model (bytes, or with K/M/G/KiB/MiB/GiB); default: enough for
    /// --parallel full contexts, at most a quarter of the available memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub kv_budget: Option<usize>,

    /// Tokens per sequence, prompt and reply (default: min(4096, the model's training
    /// context)).
    #[arg(short, long)]
    pub ctx: Option<usize>,

    /// A Jinja chat template file used instead of each model's own
    /// `tokenizer.chat_template`: it applies to every model this server loads.
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,

    /// Sequences generating at once, per model (the running batch).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub parallel: usize,

    /// Compute threads (default: all cores).
    #[arg(short, long)]
    pub threads: Option<usize>,

    /// The longest a request may run, in seconds; 0: no limit. A request past it ends
    /// with finish_reason "length".
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub request_timeout: u64,

    /// The largest request body accepted (bytes, or with K/M/G/KiB/MiB/GiB); larger
    /// bodies are answered 413.
    #[arg(long, default_value = "4MiB", value_name = "SIZE", value_parser = parse_size)]
    pub max_body: usize,

    /// On SIGTERM or Ctrl-C, seconds in-flight requests may go on before they are
    /// cancelled.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub shutdown_grace: u64,

    /// Evaluate every prompt whole: do not keep or share the KV cache of prompt prefixes
    /// that requests have in common (a repeated system prompt, an earlier turn).
    #[arg(long)]
    pub no_prefix_cache: bool,
}

/// A size in bytes: a number with an optional K, M, G (powers of 1000) or KiB, MiB, GiB
/// (powers of 1024) suffix.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write it like 512MiB, 2G or 1048576"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?}; use K, M, G, KiB, MiB or GiB"
            ))
        }
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > usize::MAX as f64 {
        return Err(format!("{text:?} is not a usable size"));
    }
    Ok(bytes as usize)
}
