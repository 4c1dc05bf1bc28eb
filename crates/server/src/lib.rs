//! `slm serve`: OpenAI- and Ollama-compatible HTTP APIs over the engine, with API-key
//! auth, Prometheus metrics, probes and a web chat page.
//!
//! The server computes nothing itself: each model runs in its engine loop's own thread
//! (`engine::Engine`); handlers only parse, check, template and tokenize (on the blocking
//! pool), submit, and turn the ticket's events into responses. Main items: [`serve`],
//! [`ServeConfig`], [`ModelSpec`], [`router`], [`ApiError`].

mod auth;
mod config;
mod error;
mod format;
mod generation;
mod json;
mod metrics;
mod ollama;
mod openai;
mod params;
mod routes;
mod state;
mod tools;

use std::future::{Future, IntoFuture};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use engine::{Engine, EngineConfig, ModelInfo};

pub use auth::keys_match;
pub use config::{ModelSpec, ServeConfig, DEFAULT_PORT};
pub use error::{ApiError, ServerError};
pub use metrics::{render as render_metrics, HistogramSnapshot, ModelStats};
pub use routes::router;
pub use state::AppState;

/// Serves `models` (the first is the default) until `shutdown` completes, then stops
/// accepting connections, lets in-flight requests finish within
/// [`ServeConfig::shutdown_grace`], cancels the rest and returns. The address is bound
/// first, so `/health` answers and `/ready` says 503 while the models load. `on_listen`
/// gets the bound address (useful with port 0).
pub async fn serve(
    config: ServeConfig,
    models: Vec<ModelSpec>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    check_names(&models)?;
    let ip: IpAddr = config.host.parse().map_err(|_| ServerError::Host {
        host: config.host.clone(),
    })?;
    let addr = SocketAddr::new(ip, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    tracing::info!(%local, "listening");
    on_listen(local);

    let grace = config.shutdown_grace;
    let state = AppState::new(config, models);
    let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel::<ServerError>();
    spawn_loader(state.clone(), fatal_tx);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = routes::router(state.clone());
    let mut server = std::pin::pin!(axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let mut stop_rx = stop_rx;
            let _ = stop_rx.wait_for(|stop| *stop).await;
        })
        .into_future());

    let mut fatal_rx = fatal_rx;
    let mut shutdown = std::pin::pin!(shutdown);
    let fatal = tokio::select! {
        result = &mut server => return result.map_err(ServerError::Serve),
        () = &mut shutdown => None,
        Ok(error) = &mut fatal_rx => Some(error),
    };
    tracing::info!(
        grace_s = grace.as_secs_f64(),
        "shutting down: no new connections; finishing in-flight requests"
    );
    let _ = stop_tx.send(true);
    // The engines let running sequences go on until the grace period ends, then cancel
    // them, which ends their streams, so the connections close and the server returns.
    let engines: Vec<Engine> = state
        .models
        .loaded()
        .unwrap_or_default()
        .iter()
        .map(|s| s.engine.clone())
        .collect();
    let stopping = tokio::task::spawn_blocking(move || {
        for engine in &engines {
            engine.shutdown(grace);
        }
    });
    let hard_limit = grace + std::time::Duration::from_secs(5);
    match tokio::time::timeout(hard_limit, server).await {
        Ok(result) => result.map_err(ServerError::Serve)?,
        Err(_) => tracing::warn!("connections still open after the grace period; closing them"),
    }
    let _ = stopping.await;
    tracing::info!("stopped");
    match fatal {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("interrupted"),
        () = terminate => tracing::info!("terminated"),
    }
}

fn check_names(models: &[ModelSpec]) -> Result<(), ServerError> {
    for (i, model) in models.iter().enumerate() {
        if models[..i].iter().any(|m| m.name == model.name) {
            return Err(ServerError::DuplicateModel {
                name: model.name.clone(),
            });
        }
    }
    Ok(())
}

/// Loads every model on a thread of its own (loading maps files and repacks weights:
/// compute, not async work); marks them ready, or reports the first failure.
fn spawn_loader(state: AppState, fatal: tokio::sync::oneshot::Sender<ServerError>) {
    let spawned =
        std::thread::Builder::new()
            .name("slm-load".into())
            .spawn(move || match load_all(&state) {
                Ok(served) => {
                    tracing::info!(models = served.len(), "ready");
                    state.models.set_loaded(served);
                }
                Err(error) => {
                    state.models.set_failed(format!("{error}"));
                    let _ = fatal.send(error);
                }
            });
    if let Err(err) = spawned {
        tracing::error!(%err, "cannot start the thread that loads the models");
    }
}

fn load_all(state: &AppState) -> Result<Vec<state::Served>, ServerError> {
    let config = &state.config;
    let mut served = Vec::new();
    for spec in state.models.specs() {
        let start = Instant::now();
        let load_error = |source| ServerError::Load {
            name: spec.name.clone(),
            source: Box::new(source),
        };
        let info = ModelInfo::read(&spec.path).map_err(load_error)?;
        let n_ctx = config.n_ctx.unwrap_or_else(|| {
            let trained = info.context_length.and_then(|n| usize::try_from(n).ok());
            engine::DEFAULT_N_CTX.min(trained.unwrap_or(engine::DEFAULT_N_CTX).max(1))
        });
        let engine_config = EngineConfig {
            n_ctx,
            kv_budget_bytes: config.kv_budget_bytes,
            max_running: config.parallel.max(1),
            max_queue: config.max_queue,
            pack_cache_dir: config.pack_cache_dir.clone(),
            chat_template: config.chat_template.clone(),
            prefix_cache: config.prefix_cache,
            ..EngineConfig::default()
        };
        let engine =
            Engine::start(&spec.path, spec.name.clone(), engine_config).map_err(load_error)?;
        let metadata = std::fs::metadata(&spec.path).ok();
        served.push(state::Served {
            spec: spec.clone(),
            engine,
            load_duration: start.elapsed(),
            size: metadata.as_ref().map_or(info.file_size, |m| m.len()),
            modified: metadata
                .and_then(|m| m.modified().ok())
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH),
        });
        tracing::info!(model = %spec.name, n_ctx, load_ms = start.elapsed().as_millis() as u64, "model loaded");
    }
    Ok(served)
}
