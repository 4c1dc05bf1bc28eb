//! `slm`: run, chat with and manage small language models on this machine.
//!
//! stdout carries only each command's result (generated text, JSON, tables); logs,
//! progress and statistics go to stderr. Errors print as `error: …` with their causes and
//! exit with code 1.

mod args;
mod commands;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Chat(args) => commands::chat::chat(args),
        Command::Tokenize(args) => commands::tokenize::tokenize(args),
        Command::Perplexity(args) => commands::perplexity::perplexity(args),
        Command::Pull(args) => commands::store::pull(&args.name),
        Command::List => commands::store::list(),
        Command::Show(args) => commands::store::show(&args.name),
        Command::Rm(args) => commands::store::remove(&args.name),
        Command::Bench(args) => commands::bench::bench(args),
        Command::Serve(args) => commands::serve::serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: warnings by default, more with each -v; RUST_LOG overrides.
fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
