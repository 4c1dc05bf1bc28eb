//! `slm run`: one completion, streamed to stdout.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context, Result};
use engine::{Flow, GenerateParams, Generation, Message, Role, Session, SessionOptions};

use super::{read_stdin, resolve_model, sampler_params, set_threads};
use crate::args::{RunArgs, DEFAULT_MODEL};

/// Generates a completion of the prompt and streams it to stdout; statistics to stderr.
pub fn run(args: RunArgs) -> Result<()> {
    let (model, prompt) = match args.positional.as_slice() {
        [prompt] => (DEFAULT_MODEL, prompt),
        [model, prompt] => (model.as_str(), prompt),
        _ => bail!("give a prompt, optionally preceded by a model: slm run [MODEL] PROMPT"),
    };
    let prompt = if prompt == "-" {
        read_stdin()?
    } else {
        prompt.clone()
    };
    let path = resolve_model(model)?;
    set_threads(args.runtime.threads);
    let mut session = Session::load(
        &path,
        &SessionOptions {
            n_ctx: args.runtime.ctx,
            pack_cache_dir: super::pack_cache_dir(),
            chat_template: super::read_chat_template(args.runtime.chat_template.as_deref())?,
        },
    )
    .with_context(|| format!("cannot load model {model}"))?;

    // A base model (no template in the file) completes the raw text unless a template was
    // given for it.
    let chat = session.is_chat_model() || args.runtime.chat_template.is_some();
    let tokens = if args.raw || !chat {
        session.raw_prompt_tokens(&prompt)
    } else {
        session.chat_prompt_tokens(&[Message::new(Role::User, prompt)], &[])?
    };
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        sampling: sampler_params(&args.sampling),
        stop: args.stop,
        grammar: super::grammar(&args.grammar)?,
    };

    let mut stdout = std::io::stdout().lock();
    let mut write_error = None;
    let generation = session
        .generate(&tokens, &params, |text| {
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => Flow::Continue,
                Err(err) => {
                    write_error = Some(err);
                    Flow::Stop
                }
            }
        })
        .context("generation failed")?;
    match write_error {
        // The reader went away (`slm run … | head`): stopping is what it asked for.
        Some(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Some(err) => return Err(err).context("cannot write to stdout"),
        None => {}
    }
    print_stats(&session, &generation);
    Ok(())
}

/// Load time, prompt and generation speeds on stderr.
fn print_stats(session: &Session, generation: &Generation) {
    if std::io::stdout().is_terminal() {
        // Ends the generated text's line when both streams share the terminal.
        eprintln!();
    }
    eprintln!("load: {:.2} s", session.load_time().as_secs_f64());
    eprintln!(
        "prompt: {} tokens ({} evaluated), {:.1} tok/s",
        generation.n_prompt_tokens,
        generation.n_prompt_evaluated,
        generation.prompt_tokens_per_second()
    );
    eprintln!(
        "generated: {} tokens, {:.1} tok/s (stopped: {})",
        generation.tokens.len(),
        generation.generated_tokens_per_second(),
        generation.stop_reason.as_str()
    );
}
