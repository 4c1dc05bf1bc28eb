//! One module per subcommand.

pub mod bench;
pub mod chat;
pub mod perplexity;
pub mod run;
pub mod serve;
pub mod store;
pub mod tokenize;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::args::{GrammarArgs, SamplingArgs};
use crate::progress::BarProgress;

/// The file of a model given by catalog name (pulled first if absent) or by path.
pub fn resolve_model(name_or_path: &str) -> Result<PathBuf> {
    let store = ::store::Store::open_default().context("cannot open the model store")?;
    store
        .resolve(name_or_path, &mut BarProgress::new())
        .with_context(|| format!("cannot find model {name_or_path}"))
}

/// Where repacked weights are cached: `packed/` in the model store (`SLM_PACK_CACHE=0`
/// turns the cache off).
pub fn pack_cache_dir() -> Option<PathBuf> {
    if std::env::var_os("SLM_PACK_CACHE").is_some_and(|v| v == "0") {
        return None;
    }
    ::store::Store::open_default()
        .ok()
        .map(|store| store.packed_dir())
}

/// The text of a `--chat-template` file, if one was given.
pub fn read_chat_template(path: Option<&std::path::Path>) -> Result<Option<String>> {
    path.map(|path| {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read chat template {}", path.display()))
    })
    .transpose()
}

/// Sizes the compute pool when asked to.
pub fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        engine::set_threads(n.max(1));
    }
}

/// The sampler settings of the flags; a random seed when none is given.
pub fn sampler_params(args: &SamplingArgs) -> engine::SamplerParams {
    let seed = args.seed.unwrap_or_else(random_seed);
    tracing::info!(seed, "sampling");
    engine::SamplerParams {
        temperature: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: args.repeat_last_n,
        frequency_penalty: args.frequency_penalty,
        presence_penalty: args.presence_penalty,
        seed,
    }
}

/// A seed from the standard library's per-process random hasher keys.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// All of stdin as UTF-8 text, byte for byte.
pub fn read_stdin() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read stdin")?;
    String::from_utf8(bytes).context("stdin is not valid UTF-8 text")
}

/// The grammar the flags ask for: `--json`, `--json-schema FILE`, `--regex RE` or
/// `--grammar FILE.lark`.
pub fn grammar(args: &GrammarArgs) -> Result<Option<engine::Grammar>> {
    if args.json {
        return Ok(Some(engine::Grammar::JsonObject));
    }
    if let Some(path) = &args.json_schema {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read JSON Schema file {}", path.display()))?;
        let schema: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        return Ok(Some(engine::Grammar::JsonSchema {
            schema,
            strict: false,
        }));
    }
    if let Some(regex) = &args.regex {
        return Ok(Some(engine::Grammar::Regex(regex.clone())));
    }
    if let Some(path) = &args.grammar {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read grammar file {}", path.display()))?;
        return Ok(Some(engine::Grammar::Lark(text)));
    }
    Ok(None)
}
