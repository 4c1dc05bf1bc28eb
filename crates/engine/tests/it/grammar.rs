//! Constrained decoding on a real model (SLM_TEST_MODELS=1): output under a JSON Schema
//! parses and validates, in the serving loop and in a session; a grammar the greedy output
//! already satisfies leaves it unchanged; a bad grammar is refused at submit.

use engine::{
    Engine, EngineConfig, FinishReason, GenerateParams, Grammar, Message, Request, Role,
    SamplerParams, Session, SessionOptions, SubmitError,
};

use crate::common::{collect, enabled, model_path};

fn person_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "role": {"enum": ["admin", "user", "guest"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1, "maxItems": 3}
        },
        "required": ["name", "age", "role", "tags"],
        "additionalProperties": false
    })
}

/// Checks a reply against [`person_schema`] by hand.
fn check_person(text: &str) {
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
    let object = value.as_object().expect("an object");
    assert_eq!(object.len(), 4, "{text}");
    assert!(
        value["name"]
            .as_str()
            .is_some_and(|s| s.chars().count() <= 20),
        "{text}"
    );
    assert!(value["age"].as_u64().is_some_and(|a| a <= 120), "{text}");
    assert!(["admin", "user", "guest"].contains(&value["role"].as_str().unwrap_or("")));
    let tags = value["tags"].as_array().expect("tags");
    assert!((1..=3).contains(&tags.len()), "{text}");
}

/// Escapes text so a regex matches exactly it.
fn regex_literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~/\"".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[test]
fn serve_output_under_grammars() {
    if !enabled("serve_output_under_grammars") {
        return;
    }
    let path = model_path("qwen2.5-coder-0.5b");
    let config = EngineConfig {
        n_ctx: 256,
        max_running: 4,
        ..EngineConfig::default()
    };
    let engine = Engine::start(&path, "qwen".into(), config).expect("engine starts");
    let tokenizer = engine.tokenizer();
    let chat = |text: &str| {
        let messages = [Message::new(Role::User, text)];
        let text = engine
            .template()
            .render(&messages, &[], true)
            .expect("the template renders");
        tokenizer.encode(&text, true, true)
    };

    // Two sampled replies and one greedy under the schema, in one batch.
    let prompt = chat("Describe a fictional user as JSON.");
    let mut tickets: Vec<_> = (0..3u64)
        .map(|seed| {
            let sampler = if seed == 0 {
                SamplerParams::greedy()
            } else {
                SamplerParams {
                    seed,
                    ..SamplerParams::default()
                }
            };
            let request = Request {
                sampler,
                grammar: Some(Grammar::JsonSchema {
                    schema: person_schema(),
                    strict: true,
                }),
                ..Request::new(prompt.clone(), 120)
            };
            engine.submit(request).expect("submitted")
        })
        .collect();
    for ticket in &mut tickets {
        let outcome = collect(ticket);
        assert_eq!(outcome.finish, FinishReason::Stop, "{}", outcome.text);
        check_person(&outcome.text);
    }

    // Greedy output that already matches the grammar is unchanged by it.
    let prompt = tokenizer.encode("def fibonacci(n):", true, false);
    let free = Request {
        stop_at_eog: false,
        ..Request::new(prompt.clone(), 24)
    };
    let free = collect(&mut engine.submit(free).expect("submitted"));
    let constrained = Request {
        stop_at_eog: false,
        grammar: Some(Grammar::Regex(regex_literal(&free.text))),
        ..Request::new(prompt, 24)
    };
    let constrained = collect(&mut engine.submit(constrained).expect("submitted"));
    assert_eq!(constrained.tokens, free.tokens, "{:?}", free.text);
    assert_eq!(constrained.text, free.text);

    // An invalid grammar is refused with llguidance's message.
    let bad = Request {
        grammar: Some(Grammar::Regex("(unclosed".to_string())),
        ..Request::new(vec![1, 2, 3], 4)
    };
    let error = engine.submit(bad).expect_err("refused");
    assert!(matches!(error, SubmitError::InvalidGrammar(_)), "{error}");
    engine.shutdown(std::time::Duration::from_secs(5));
}

#[test]
fn session_output_under_a_schema() {
    if !enabled("session_output_under_a_schema") {
        return;
    }
    let path = model_path("qwen2.5-coder-0.5b");
    let options = SessionOptions {
        n_ctx: Some(256),
        ..SessionOptions::default()
    };
    let mut session = Session::load(&path, &options).expect("loads");
    let prompt = session
        .chat_prompt_tokens(
            &[Message::new(
                Role::User,
                "Describe a fictional user as JSON.",
            )],
            &[],
        )
        .expect("the template renders");
    let params = GenerateParams {
        max_tokens: 120,
        sampling: SamplerParams::greedy(),
        stop: Vec::new(),
        grammar: Some(Grammar::JsonSchema {
            schema: person_schema(),
            strict: false,
        }),
    };
    let generation = session
        .generate(&prompt, &params, |_| engine::Flow::Continue)
        .expect("generates");
    check_person(&generation.text);
    assert!(generation.grammar_masks.is_some_and(|(n, _)| n > 0));
}
