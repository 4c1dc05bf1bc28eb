//! Helpers shared by the integration tests: the real-model gate and model paths.

use std::path::PathBuf;

/// Whether tests that load real models run (`SLM_TEST_MODELS=1`); says so when not.
pub fn enabled(test: &str) -> bool {
    if std::env::var("SLM_TEST_MODELS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped {test}: set SLM_TEST_MODELS=1 to run tests that load real models");
    false
}

/// The path of a real model in the store, `$SLM_HOME/models/<stem>.gguf`.
pub fn model_path(stem: &str) -> PathBuf {
    let home = std::env::var_os("SLM_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/slm")))
        .expect("HOME or SLM_HOME is set");
    let path = home.join(format!("models/{stem}.gguf"));
    assert!(
        path.is_file(),
        "model file {} is missing; run: bash scripts/test.sh (it pulls the test models)",
        path.display()
    );
    path
}

/// Everything a finished request sent.
#[derive(Debug)]
pub struct Outcome {
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish: engine::FinishReason,
    pub usage: engine::Usage,
    pub logprobs: Vec<engine::TokenLogprob>,
}

/// Reads a ticket to its end; panics on an `Error` event.
pub fn collect(ticket: &mut engine::Ticket) -> Outcome {
    let mut outcome = Outcome {
        tokens: Vec::new(),
        text: String::new(),
        finish: engine::FinishReason::Cancelled,
        usage: engine::Usage::default(),
        logprobs: Vec::new(),
    };
    while let Some(event) = ticket.blocking_next() {
        match event {
            engine::Event::Token { id, text, logprob } => {
                outcome.tokens.push(id);
                outcome.text.push_str(&text);
                outcome.logprobs.extend(logprob);
            }
            engine::Event::Done {
                finish,
                usage,
                text,
                ..
            } => {
                outcome.text.push_str(&text);
                outcome.finish = finish;
                outcome.usage = usage;
                return outcome;
            }
            engine::Event::Error(message) => panic!("request failed: {message}"),
        }
    }
    panic!("the ticket ended without Done");
}

/// Waits (up to 30 s, polling) until the engine's stats satisfy `done`.
pub fn wait_for(engine: &engine::Engine, what: &str, done: impl Fn(&engine::EngineStats) -> bool) {
    let start = std::time::Instant::now();
    while !done(&engine.stats()) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "gave up waiting for {what}: {:?}",
            engine.stats()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
