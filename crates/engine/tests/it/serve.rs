//! The engine loop on a tiny model: admission limits, refusals, cancellation, deadlines,
//! stop strings, seeds, logprobs, embeddings and shutdown.

use std::time::{Duration, Instant};

use engine::{Event, FinishReason, Request, SamplerParams, SubmitError};

use crate::common::{collect, wait_for};
use crate::tiny::{config, TinyModel};

/// A request that runs until it is stopped: the context and `max_tokens` are huge and
/// end-of-generation tokens do not end it.
fn endless(prompt: Vec<u32>) -> Request {
    Request {
        stop_at_eog: false,
        ..Request::new(prompt, 1 << 20)
    }
}

/// The finish reason of the last event of a ticket.
fn last_finish(ticket: &mut engine::Ticket) -> Option<FinishReason> {
    let mut finish = None;
    while let Some(event) = ticket.blocking_next() {
        if let Event::Done { finish: f, .. } = event {
            finish = Some(f);
        }
    }
    finish
}

#[test]
fn a_full_queue_refuses_and_cancelling_frees_the_blocks() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(engine::EngineConfig {
        n_ctx: 1 << 20,
        max_running: 1,
        max_queue: 2,
        ..config()
    });
    let mut first = engine.submit(endless(vec![1, 5, 6])).unwrap();
    assert!(matches!(first.blocking_next(), Some(Event::Token { .. })));
    // The first runs; two wait; the fourth is refused.
    let second = engine.submit(endless(vec![1, 7])).unwrap();
    let third = engine.submit(endless(vec![1, 8])).unwrap();
    assert_eq!(
        engine.submit(endless(vec![1, 9])).unwrap_err(),
        SubmitError::QueueFull { max_queue: 2 }
    );
    assert_eq!(engine.stats().queue_depth, 2);
    wait_for(&engine, "the first request to run", |s| {
        s.running == 1 && s.kv_blocks_used > 0
    });
    // Cancelled while waiting or while running, a request still ends with Done.
    let mut third = third;
    third.cancel();
    assert_eq!(last_finish(&mut third), Some(FinishReason::Cancelled));
    first.cancel();
    assert_eq!(last_finish(&mut first), Some(FinishReason::Cancelled));
    // Dropping a ticket cancels its request, admitted or not.
    drop(second);
    wait_for(&engine, "every block to be free", |s| {
        s.running == 0 && s.queue_depth == 0 && s.kv_blocks_used == 0
    });
    assert_eq!(engine.stats().requests_total, 3);
}

#[test]
fn requests_that_cannot_run_are_refused_with_the_reason() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(config());
    let refuse = |request: Request| engine.submit(request).unwrap_err();
    assert_eq!(refuse(Request::new(vec![], 4)), SubmitError::EmptyPrompt);
    assert_eq!(
        refuse(Request::new(vec![1, 50], 4)),
        SubmitError::InvalidToken(50)
    );
    assert_eq!(
        refuse(Request::new(vec![1; 257], 4)),
        SubmitError::PromptTooLong {
            prompt: 257,
            n_ctx: 256
        }
    );
    let logprobs = Request {
        logprobs: Some(21),
        ..Request::new(vec![1], 4)
    };
    assert!(matches!(
        refuse(logprobs),
        SubmitError::TooManyLogprobs { .. }
    ));
    let message = SubmitError::PromptTooLong {
        prompt: 257,
        n_ctx: 256,
    }
    .to_string();
    assert!(
        message.contains("257") && message.contains("256"),
        "{message}"
    );

    // A cache of 2 blocks of 16 positions holds 32 positions.
    let small = tiny.engine(engine::EngineConfig {
        kv_budget_bytes: Some(2 * 16 * 256),
        ..config()
    });
    assert_eq!(small.stats().kv_blocks_total, 2);
    assert_eq!(
        small.submit(Request::new(vec![1; 20], 20)).unwrap_err(),
        SubmitError::KvTooSmall {
            needed_blocks: 3,
            total_blocks: 2
        }
    );
    let mut fits = small.submit(Request::new(vec![1; 20], 12)).unwrap();
    assert_eq!(collect(&mut fits).usage.completion_tokens, 12);

    let huge = engine::EngineConfig {
        kv_budget_bytes: Some(usize::MAX),
        ..config()
    };
    let error = engine::Engine::start(tiny.path(), "tiny".into(), huge).unwrap_err();
    assert!(error.to_string().contains("kv_budget_bytes"), "{error}");
    let zero = engine::EngineConfig {
        max_running: 0,
        ..config()
    };
    assert!(engine::Engine::start(tiny.path(), "tiny".into(), zero).is_err());
}

#[test]
fn length_is_capped_by_the_context_and_usage_counts_tokens() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(engine::EngineConfig {
        n_ctx: 40,
        ..config()
    });
    let prompt: Vec<u32> = (0..30).map(|i| 3 + i % 40).collect();
    let mut ticket = engine.submit(endless(prompt)).unwrap();
    let outcome = collect(&mut ticket);
    assert_eq!(outcome.finish, FinishReason::Length);
    // 30 prompt positions and 10 tokens fed back fill the 40; the 11th is sampled from
    // the last logits.
    assert_eq!(outcome.usage.prompt_tokens, 30);
    assert_eq!(outcome.usage.completion_tokens, 11);
    let mut none = engine.submit(Request::new(vec![1, 4], 0)).unwrap();
    let outcome = collect(&mut none);
    assert_eq!(
        (outcome.finish, outcome.tokens.len()),
        (FinishReason::Length, 0)
    );
}

#[test]
fn deadlines_end_requests_waiting_or_running() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(engine::EngineConfig {
        n_ctx: 1 << 20,
        ..config()
    });
    let past = Request {
        deadline: Some(Instant::now()),
        ..endless(vec![1, 3])
    };
    let outcome = collect(&mut engine.submit(past).unwrap());
    assert_eq!(
        (outcome.finish, outcome.tokens.len()),
        (FinishReason::Deadline, 0)
    );
    let soon = Request {
        deadline: Some(Instant::now() + Duration::from_millis(200)),
        ..endless(vec![1, 3])
    };
    let outcome = collect(&mut engine.submit(soon).unwrap());
    assert_eq!(outcome.finish, FinishReason::Deadline);
    assert!(!outcome.tokens.is_empty());
}

#[test]
fn stop_strings_spanning_tokens_end_the_text_before_them() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(config());
    let prompt = vec![1, 10, 20, 30, 40];
    let free = collect(&mut engine.submit(endless_short(&prompt, 24)).unwrap());
    assert_eq!(free.tokens.len(), 24);
    // A stop string that crosses a token boundary: the end of one piece and the start
    // of the next.
    let pieces: Vec<String> = free
        .tokens
        .iter()
        .map(|&t| String::from_utf8_lossy(&engine.tokenizer().token_to_piece(t, false)).into())
        .collect();
    let boundary = pieces[..10].iter().map(String::len).sum::<usize>();
    let stop = free.text[boundary - 1..boundary + 1].to_string();
    let first = free
        .text
        .find(&stop)
        .expect("the stop string is in the text");
    let request = Request {
        stop: vec![stop.clone()],
        ..endless_short(&prompt, 24)
    };
    let stopped = collect(&mut engine.submit(request).unwrap());
    assert_eq!(stopped.finish, FinishReason::Stop);
    assert_eq!(stopped.text, free.text[..first], "stop string {stop:?}");
}

/// A greedy request for `n` tokens that ignores end-of-generation tokens.
fn endless_short(prompt: &[u32], n: usize) -> Request {
    Request {
        stop_at_eog: false,
        ..Request::new(prompt.to_vec(), n)
    }
}

#[test]
fn seeded_sampling_is_reproducible_whatever_runs_beside_it() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(config());
    let sampled = |seed: u64| Request {
        sampler: SamplerParams {
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed,
            ..SamplerParams::default()
        },
        ..endless_short(&[1, 4, 5], 20)
    };
    let alone = collect(&mut engine.submit(sampled(7)).unwrap());
    let mut tickets: Vec<_> = [7, 8, 7]
        .iter()
        .map(|&seed| engine.submit(sampled(seed)).unwrap())
        .collect();
    let together: Vec<_> = tickets.iter_mut().map(collect).collect();
    assert_eq!(together[0].tokens, alone.tokens);
    assert_eq!(together[2].tokens, alone.tokens);
}

#[test]
fn logprobs_come_from_the_raw_logits() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(config());
    let request = Request {
        logprobs: Some(3),
        ..endless_short(&[1, 12, 13], 5)
    };
    let outcome = collect(&mut engine.submit(request).unwrap());
    assert_eq!(outcome.logprobs.len(), 5);
    for (lp, &token) in outcome.logprobs.iter().zip(&outcome.tokens) {
        assert_eq!(lp.token, token);
        assert_eq!(lp.top.len(), 3);
        // Greedy: the token is the most likely one.
        assert_eq!(lp.top[0].0, token);
        assert_eq!(lp.top[0].3, lp.logprob);
        assert!(lp.top.windows(2).all(|w| w[0].3 >= w[1].3));
        assert!(lp.logprob <= 0.0);
    }
}

#[test]
fn embeddings_are_normalized_and_independent_of_the_batch() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(config());
    let inputs = vec![vec![1, 5, 6, 7], (3..40).collect(), vec![1, 5, 6, 7]];
    let result = engine.embed(inputs).unwrap().blocking_wait().unwrap();
    assert_eq!(result.vectors.len(), 3);
    assert_eq!(result.prompt_tokens, 4 + 37 + 4);
    for v in &result.vectors {
        assert_eq!(v.len(), 64);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    assert_eq!(result.vectors[0], result.vectors[2]);
    assert_ne!(result.vectors[0], result.vectors[1]);
    assert_eq!(engine.embed(vec![]).unwrap_err(), SubmitError::EmptyPrompt);
}

#[test]
fn shutdown_cancels_running_requests_and_refuses_new_ones() {
    let tiny = TinyModel::new();
    let engine = tiny.engine(engine::EngineConfig {
        n_ctx: 1 << 20,
        ..config()
    });
    let mut running = engine.submit(endless(vec![1, 3])).unwrap();
    assert!(matches!(running.blocking_next(), Some(Event::Token { .. })));
    engine.shutdown(Duration::from_millis(50));
    assert_eq!(last_finish(&mut running), Some(FinishReason::Cancelled));
    assert_eq!(
        engine.submit(Request::new(vec![1], 1)).unwrap_err(),
        SubmitError::ShuttingDown
    );
}

#[test]
fn a_long_prompt_joins_running_streams_in_chunks_without_changing_them() {
    let tiny = TinyModel::new();
    // Without the prefix cache, which would serve the repeated long prompt from the
    // blocks of its first run instead of evaluating it in chunks.
    let engine = tiny.engine(engine::EngineConfig {
        n_ctx: 1 << 20,
        prefix_cache: false,
        ..config()
    });
    let prompt = [1, 4, 9];
    let long_prompt: Vec<u32> = (0..100).map(|i| 3 + (i * 7) % 47).collect();
    let long = endless_short(&long_prompt, 10);
    let long_alone = collect(&mut engine.submit(long.clone()).unwrap());

    // The first stream never ends by itself, so the second can only finish by sharing
    // its steps.
    let mut first = engine.submit(endless(prompt.to_vec())).unwrap();
    assert!(matches!(first.blocking_next(), Some(Event::Token { .. })));
    let steps_before = engine.stats().steps_total;
    let second = collect(&mut engine.submit(long).unwrap());
    let steps = engine.stats().steps_total - steps_before;
    first.cancel();
    let mut first_tokens = Vec::new();
    while let Some(event) = first.blocking_next() {
        if let Event::Token { id, .. } = event {
            first_tokens.push(id);
        }
    }
    // The tiny model's F32 weights take the same kernels for one row and many, so
    // batching is exact here.
    assert_eq!(second.tokens, long_alone.tokens);
    let n = first_tokens.len() + 1;
    let first_alone = collect(&mut engine.submit(endless_short(&prompt, n)).unwrap());
    assert_eq!(first_tokens, first_alone.tokens[1..]);
    // The 100-token prompt went in chunks of 8 (the stats may lag by a step).
    assert!(steps >= 100 / 8, "{steps} steps");
}
