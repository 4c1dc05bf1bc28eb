//! The engine loop on real models: batched requests give what a session gives alone.
//! Run only with SLM_TEST_MODELS=1.

use engine::{
    Engine, EngineConfig, Event, FinishReason, GenerateParams, Request, SamplerParams, Session,
    SessionOptions, Ticket,
};

use crate::common::{enabled, model_path};

/// Tokens and text of a finished ticket, and why it ended.
pub fn collect(ticket: &mut Ticket) -> (Vec<u32>, String, FinishReason) {
    let mut tokens = Vec::new();
    let mut text = String::new();
    while let Some(event) = ticket.blocking_next() {
        match event {
            Event::Token {
                id, text: piece, ..
            } => {
                tokens.push(id);
                text.push_str(&piece);
            }
            Event::Done {
                finish, text: rest, ..
            } => {
                text.push_str(&rest);
                return (tokens, text, finish);
            }
            Event::Error(message) => panic!("request failed: {message}"),
        }
    }
    panic!("the ticket ended without Done");
}

#[test]
fn concurrent_greedy_requests_match_a_session() {
    if !enabled("concurrent_greedy_requests_match_a_session") {
        return;
    }
    let path = model_path("smollm2-135m");
    let config = EngineConfig {
        n_ctx: 256,
        max_running: 4,
        ..EngineConfig::default()
    };
    let engine = Engine::start(&path, "smollm2".into(), config).expect("engine starts");
    let prompts = [
        "The capital of France is",
        "def fibonacci(n):",
        "Once upon a time",
    ];
    let tokenized: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| engine.tokenizer().encode(p, true, false))
        .collect();
    let mut tickets: Vec<Ticket> = tokenized
        .iter()
        .map(|p| {
            engine
                .submit(Request::new(p.clone(), 16))
                .expect("submitted")
        })
        .collect();
    let results: Vec<_> = tickets.iter_mut().map(collect).collect();
    engine.shutdown(std::time::Duration::from_secs(5));

    let mut session =
        Session::load(&path, &SessionOptions { n_ctx: Some(256) }).expect("session loads");
    for (prompt, (tokens, text, finish)) in tokenized.iter().zip(&results) {
        session.clear();
        let params = GenerateParams {
            max_tokens: 16,
            sampling: SamplerParams::greedy(),
            stop: Vec::new(),
        };
        let alone = session
            .generate(prompt, &params, |_| engine::Flow::Continue)
            .expect("generates");
        assert_eq!(tokens, &alone.tokens, "{text:?} vs {:?}", alone.text);
        assert_eq!(text, &alone.text);
        assert_eq!(*finish, FinishReason::Length);
    }
}
