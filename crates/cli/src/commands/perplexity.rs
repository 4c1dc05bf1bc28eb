//! `slm perplexity`: llama-perplexity's measurement.

use std::io::Write;

use anyhow::{Context, Result};
use engine::{Session, SessionOptions};

use super::{resolve_model, set_threads};
use crate::args::PerplexityArgs;

/// The `--json` output, fields in this order.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    ppl: f64,
    ppl_stderr: Option<f64>,
    tokens_scored: usize,
    chunks: usize,
    chunk_running_ppl: &'a [f64],
    ctx: usize,
}

/// Prints the running perplexity per window on stderr (`[1]13.0198,[2]…` as llama.cpp)
/// and the final estimate on stdout, as text or JSON.
pub fn perplexity(args: PerplexityArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read text file {}", args.file.display()))?;
    // llama.cpp's -f drops one trailing newline.
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let path = resolve_model(&args.model)?;
    set_threads(args.threads);
    let mut session = Session::load(
        &path,
        &SessionOptions {
            n_ctx: Some(args.ctx),
            pack_cache_dir: super::pack_cache_dir(),
            chat_template: None,
        },
    )
    .with_context(|| format!("cannot load model {}", args.model))?;
    let result = session
        .perplexity(text, args.chunks, |index, ppl| {
            eprint!("[{}]{ppl:.4},", index + 1);
            let _ = std::io::stderr().flush();
        })
        .context("perplexity failed")?;
    eprintln!();
    if args.json {
        let report = JsonReport {
            ppl: result.ppl,
            ppl_stderr: result.ppl_stderr,
            tokens_scored: result.tokens_scored,
            chunks: result.n_chunks,
            chunk_running_ppl: &result.chunk_running_ppl,
            ctx: args.ctx,
        };
        println!(
            "{}",
            serde_json::to_string(&report).context("cannot format the result as JSON")?
        );
    } else {
        match result.ppl_stderr {
            Some(stderr) => println!("PPL = {:.4} +/- {stderr:.5}", result.ppl),
            None => println!("PPL = {:.4}", result.ppl),
        }
    }
    Ok(())
}
