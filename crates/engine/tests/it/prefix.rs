//! The prefix cache: a request served from cached KV blocks gives exactly the tokens it
//! gives evaluated whole, whether the blocks come from a finished request, a running
//! one, or survived a tight KV budget; on the tiny model always, on a real model with
//! SLM_TEST_MODELS=1.

use std::time::Duration;

use engine::{Engine, EngineConfig, Event, FinishReason, Request};

use crate::common::{collect, enabled, model_path, wait_for};
use crate::tiny::{config, TinyModel};

/// Greedy tokens of `prompt`, without stopping at end of generation.
fn run(engine: &Engine, prompt: &[u32], n: usize) -> Vec<u32> {
    let request = Request {
        stop_at_eog: false,
        ..Request::new(prompt.to_vec(), n)
    };
    let mut ticket = engine.submit(request).expect("submitted");
    collect(&mut ticket).tokens
}

/// Tiny-model tokens 3..49: a prompt of `len` tokens from `seed`.
fn prompt(len: usize, seed: u32) -> Vec<u32> {
    (0..len as u32)
        .map(|i| 3 + (i.wrapping_mul(7).wrapping_add(seed * 13)) % 46)
        .collect()
}

#[test]
fn cached_prefixes_give_the_uncached_tokens() {
    let tiny = TinyModel::new();
    let plain = tiny.engine(EngineConfig {
        prefix_cache: false,
        ..config()
    });
    let cached = tiny.engine(config());
    let system = prompt(40, 1);
    let mut shared = system.clone();
    shared.extend(prompt(9, 2));
    // 48 tokens: three whole blocks of 16, the last one written again.
    let whole = prompt(48, 3);
    for p in [&system, &system, &shared, &whole, &whole] {
        assert_eq!(run(&cached, p, 12), run(&plain, p, 12));
    }
    // The scheduler gives a finished request's blocks back just after its last event.
    wait_for(&cached, "the blocks to be given back", |s| {
        s.kv_blocks_used == 0
    });
    let stats = cached.stats();
    // system: 0, then 32; shared: 32; whole: 0, then 47.
    assert_eq!(stats.prompt_tokens_cached_total, 32 + 32 + 47);
    assert_eq!(
        (
            stats.prefix_cache_lookups_total,
            stats.prefix_cache_hits_total
        ),
        (5, 3)
    );
    assert_eq!(stats.kv_blocks_used, 0);
    assert!(stats.kv_blocks_cached > 0);
    assert_eq!(plain.stats().prefix_cache_lookups_total, 0);
    assert_eq!(plain.stats().kv_blocks_cached, 0);
}

#[test]
fn concurrent_requests_evaluate_a_common_prefix_once() {
    let tiny = TinyModel::new();
    let plain = tiny.engine(EngineConfig {
        prefix_cache: false,
        ..config()
    });
    let cached = tiny.engine(config());
    let system = prompt(64, 4);
    let prompts: Vec<Vec<u32>> = (0..3)
        .map(|i| [system.clone(), prompt(5, 10 + i)].concat())
        .collect();
    let mut tickets: Vec<_> = prompts
        .iter()
        .map(|p| {
            let request = Request {
                stop_at_eog: false,
                ..Request::new(p.clone(), 8)
            };
            cached.submit(request).expect("submitted")
        })
        .collect();
    let outputs: Vec<Vec<u32>> = tickets.iter_mut().map(|t| collect(t).tokens).collect();
    for (p, tokens) in prompts.iter().zip(&outputs) {
        assert_eq!(tokens, &run(&plain, p, 8));
    }
    let stats = cached.stats();
    // The 64 system tokens were evaluated once; the others took its four blocks.
    assert_eq!(stats.prompt_tokens_cached_total, 2 * 64);
    assert_eq!(stats.prompt_tokens_total, 64 + 3 * 5);
}

#[test]
fn eviction_under_a_tight_budget_keeps_outputs() {
    let tiny = TinyModel::new();
    let plain = tiny.engine(EngineConfig {
        prefix_cache: false,
        ..config()
    });
    // Six blocks of 16 positions: room for one request and a little cache.
    let cached = tiny.engine(EngineConfig {
        kv_budget_bytes: Some(6 * 16 * 256),
        ..config()
    });
    assert_eq!(cached.stats().kv_blocks_total, 6);
    let prompts: Vec<Vec<u32>> = (0..4).map(|i| prompt(50, 20 + i)).collect();
    for p in prompts.iter().chain(&prompts).chain(prompts.iter().rev()) {
        assert_eq!(run(&cached, p, 30), run(&plain, p, 30));
    }
    let stats = cached.stats();
    assert_eq!(stats.kv_blocks_used, 0);
    assert!(stats.kv_blocks_cached <= 6);
    assert!(stats.prefix_cache_hits_total > 0, "{stats:?}");
}

#[test]
fn a_cancelled_request_leaves_only_whole_blocks() {
    let tiny = TinyModel::new();
    let plain = tiny.engine(EngineConfig {
        prefix_cache: false,
        ..config()
    });
    let cached = tiny.engine(config());
    let p = prompt(70, 5);
    let request = Request {
        stop_at_eog: false,
        ..Request::new(p.clone(), 1 << 10)
    };
    let mut ticket = cached.submit(request).expect("submitted");
    // Cancel once it generates: the block it is writing is not whole yet.
    assert!(matches!(ticket.blocking_next(), Some(Event::Token { .. })));
    ticket.cancel();
    while let Some(event) = ticket.blocking_next() {
        if let Event::Done { finish, .. } = event {
            assert_eq!(finish, FinishReason::Cancelled);
        }
    }
    wait_for(&cached, "the blocks to be given back", |s| {
        s.kv_blocks_used == 0
    });
    assert_eq!(run(&cached, &p, 20), run(&plain, &p, 20));
    assert_eq!(cached.stats().prompt_tokens_cached_total, 64);
}

/// A long shared system prompt in tokens of a real model's tokenizer.
fn system_prompt(engine: &Engine) -> Vec<u32> {
    let text = "You are a careful coding assistant. Answer briefly. Tools: read_file(path) \
                returns a file's text; write_file(path, text) replaces it; run(cmd) runs a \
                shell command and returns its output. Prefer small, exact edits. "
        .repeat(3);
    engine.tokenizer().encode(&text, true, false)
}

#[test]
fn real_model_outputs_do_not_change_with_the_cache() {
    if !enabled("real_model_outputs_do_not_change_with_the_cache") {
        return;
    }
    let path = model_path("qwen2.5-coder-0.5b");
    let settings = EngineConfig {
        n_ctx: 512,
        max_running: 4,
        ..EngineConfig::default()
    };
    let plain = Engine::start(
        &path,
        "plain".into(),
        EngineConfig {
            prefix_cache: false,
            ..settings.clone()
        },
    )
    .expect("engine starts");
    let cached = Engine::start(&path, "cached".into(), settings).expect("engine starts");
    let system = system_prompt(&cached);
    let questions = [
        "User: how do I list files?\n",
        "User: fix the failing test.\n",
    ];
    let prompts: Vec<Vec<u32>> = questions
        .iter()
        .map(|q| [system.clone(), cached.tokenizer().encode(q, false, false)].concat())
        .collect();
    const N: usize = 12;
    let expected: Vec<Vec<u32>> = prompts.iter().map(|p| run(&plain, p, N)).collect();
    // The same prompt twice, then a prompt sharing its prefix.
    assert_eq!(run(&cached, &prompts[0], N), expected[0]);
    assert_eq!(run(&cached, &prompts[0], N), expected[0]);
    assert_eq!(run(&cached, &prompts[1], N), expected[1]);
    // Both at once on a cold cache: the second takes the first's blocks.
    let cold = Engine::start(&path, "cold".into(), cached.config().clone()).expect("starts");
    let mut tickets: Vec<_> = prompts
        .iter()
        .map(|p| {
            let request = Request {
                stop_at_eog: false,
                ..Request::new(p.clone(), N)
            };
            cold.submit(request).expect("submitted")
        })
        .collect();
    for (ticket, want) in tickets.iter_mut().zip(&expected) {
        assert_eq!(&collect(ticket).tokens, want);
    }
    let stats = cold.stats();
    assert!(stats.prompt_tokens_cached_total >= (system.len() / 32 * 32) as u64);
    let stats = cached.stats();
    assert_eq!(stats.prefix_cache_hits_total, 2, "{stats:?}");
    for engine in [plain, cached, cold] {
        engine.shutdown(Duration::from_secs(5));
    }
}
