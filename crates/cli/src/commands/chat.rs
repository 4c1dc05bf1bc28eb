//! `slm chat`: a conversation in the terminal.
//!
//! Lines typed on stdin are user messages; replies stream to stdout. `/bye` or end of input
//! leaves, `/clear` starts over. Ctrl-C during a reply stops the reply; at the prompt it
//! leaves. Each turn re-renders the whole conversation, and the session only evaluates the
//! tokens its cache does not already hold.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use engine::{EngineError, Flow, GenerateParams, Message, Role, Session, SessionOptions};

use super::{resolve_model, sampler_params, set_threads};
use crate::args::ChatArgs;

/// Set while a reply is being generated: Ctrl-C then interrupts the reply.
static GENERATING: AtomicBool = AtomicBool::new(false);
/// Set by Ctrl-C during a reply; the generation callback sees it and stops.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs the interactive chat loop.
pub fn chat(args: ChatArgs) -> Result<()> {
    let path = resolve_model(&args.model)?;
    set_threads(args.runtime.threads);
    let mut session = Session::load(
        &path,
        &SessionOptions {
            n_ctx: args.runtime.ctx,
            pack_cache_dir: super::pack_cache_dir(),
            chat_template: super::read_chat_template(args.runtime.chat_template.as_deref())?,
        },
    )
    .with_context(|| format!("cannot load model {}", args.model))?;
    ctrlc::set_handler(|| {
        if GENERATING.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
        } else {
            // At the prompt, Ctrl-C leaves, as it would without a handler.
            eprintln!();
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;

    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "chatting with {} (/bye to leave, /clear to start over)",
            args.model
        );
    }
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        sampling: sampler_params(&args.sampling),
        stop: Vec::new(),
        grammar: None,
    };
    let initial: Vec<Message> = args
        .system
        .iter()
        .map(|s| Message::new(Role::System, s.clone()))
        .collect();
    let mut messages = initial.clone();
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    loop {
        if interactive {
            eprint!(">>> ");
            let _ = std::io::stderr().flush();
        }
        line.clear();
        if stdin.read_line(&mut line).context("cannot read stdin")? == 0 {
            break;
        }
        let input = line.trim_end_matches(['\n', '\r']);
        match input.trim() {
            "" => continue,
            "/bye" => break,
            "/clear" => {
                messages = initial.clone();
                session.clear();
                continue;
            }
            _ => {}
        }
        messages.push(Message::new(Role::User, input));
        match reply(&mut session, &messages, &params) {
            Ok(text) => messages.push(Message::new(Role::Assistant, text)),
            Err(err @ EngineError::PromptTooLong { .. }) => {
                // The conversation outgrew the context: say so and drop the message.
                eprintln!("error: {err}; use /clear to start over or a larger --ctx");
                messages.pop();
            }
            Err(err) => return Err(err).context("generation failed"),
        }
    }
    Ok(())
}

/// Generates the assistant's reply to the conversation, streaming it to stdout.
fn reply(
    session: &mut Session,
    messages: &[Message],
    params: &GenerateParams,
) -> Result<String, EngineError> {
    let tokens = session.chat_prompt_tokens(messages, &[])?;
    let mut stdout = std::io::stdout().lock();
    INTERRUPTED.store(false, Ordering::SeqCst);
    GENERATING.store(true, Ordering::SeqCst);
    let result = session.generate(&tokens, params, |text| {
        // A failed write to stdout (closed pipe) ends the reply like Ctrl-C.
        let written = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush());
        if written.is_err() || INTERRUPTED.load(Ordering::SeqCst) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    });
    GENERATING.store(false, Ordering::SeqCst);
    let generation = result?;
    let _ = writeln!(stdout).and_then(|()| stdout.flush());
    tracing::info!(
        tokens = generation.tokens.len(),
        tok_per_s = generation.generated_tokens_per_second(),
        reason = generation.stop_reason.as_str(),
        "reply"
    );
    Ok(generation.text)
}
