//! `slm serve`: the HTTP server over the named models.

use std::time::Duration;

use anyhow::{Context, Result};

use super::{resolve_model, set_threads};
use crate::args::{ServeArgs, DEFAULT_MODEL};

/// Resolves (pulling if needed) the models, then serves them until SIGINT or SIGTERM.
pub fn serve(args: ServeArgs) -> Result<()> {
    let names = if args.models.is_empty() {
        vec![DEFAULT_MODEL.to_owned()]
    } else {
        args.models.clone()
    };
    let mut models = Vec::with_capacity(names.len());
    for name in &names {
        let path = resolve_model(name)?;
        models.push(server::ModelSpec {
            name: served_name(name, &path),
            sha256: sha256_of(&path),
            path,
        });
    }
    set_threads(args.threads);
    let config = server::ServeConfig {
        host: args.host,
        port: args.port,
        api_key: args.api_key.filter(|k| !k.is_empty()),
        max_queue: args.max_queue,
        kv_budget_bytes: args.kv_budget,
        n_ctx: args.ctx,
        parallel: args.parallel.max(1),
        request_timeout: (args.request_timeout > 0)
            .then(|| Duration::from_secs(args.request_timeout)),
        max_body_bytes: args.max_body,
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        pack_cache_dir: super::pack_cache_dir(),
        chat_template: super::read_chat_template(args.chat_template.as_deref())?,
        prefix_cache: !args.no_prefix_cache,
    };
    // The async threads only parse, wait and write; the engines compute on their own
    // threads, so two are plenty.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("slm-http")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let keyed = config.api_key.is_some();
    runtime
        .block_on(server::serve(
            config,
            models,
            server::shutdown_signal(),
            |addr| {
                // The one line a script waits for (stderr: stdout carries results only).
                eprintln!(
                    "slm serve: listening on http://{addr}{}",
                    if keyed { " (API key required)" } else { "" }
                );
            },
        ))
        .context("the server failed")?;
    Ok(())
}

/// The name clients use: the catalog name as given, or a file's stem.
fn served_name(name: &str, path: &std::path::Path) -> String {
    let is_file = std::path::Path::new(name).is_file();
    if is_file {
        path.file_stem()
            .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned())
    } else {
        name.to_owned()
    }
}

/// The sha256 the store recorded for this file, if any.
fn sha256_of(path: &std::path::Path) -> Option<String> {
    let store = ::store::Store::open_default().ok()?;
    let models = store.list().ok()?;
    models
        .into_iter()
        .find(|m| m.path == path)
        .and_then(|m| m.sha256)
}
