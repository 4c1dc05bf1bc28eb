//! Aggregate generation speed through the engine loop with 1, 4 and 8 concurrent greedy
//! requests: `cargo run --release -p engine --example serve_load -- MODEL.gguf [TOKENS]`.
//!
//! Each request has a short prompt of its own and generates TOKENS tokens (end of
//! generation ignored); the figure is generated tokens of all requests per second of
//! wall time, prompts included.

use std::time::{Duration, Instant};

use engine::{Engine, EngineConfig, Event, Request};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: serve_load MODEL.gguf [TOKENS]")?;
    let n_tokens: usize = args.next().map_or(Ok(32), |s| s.parse())?;
    let config = EngineConfig {
        n_ctx: 512,
        max_running: 8,
        ..EngineConfig::default()
    };
    let engine = Engine::start(path.as_ref(), "load".into(), config)?;
    for n_requests in [1usize, 4, 8] {
        let start = Instant::now();
        let mut tickets = Vec::new();
        for i in 0..n_requests {
            let prompt = engine.tokenizer().encode(
                &format!("Request {i}: write a story about"),
                true,
                false,
            );
            let request = Request {
                stop_at_eog: false,
                ..Request::new(prompt, n_tokens)
            };
            tickets.push(engine.submit(request)?);
        }
        let mut generated = 0;
        let mut ttft = Duration::ZERO;
        for ticket in &mut tickets {
            while let Some(event) = ticket.blocking_next() {
                match event {
                    Event::Token { .. } => generated += 1,
                    Event::Done { timings, .. } => {
                        ttft = ttft.max(timings.ttft.unwrap_or_default());
                    }
                    Event::Error(message) => return Err(message.into()),
                }
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{n_requests} requests: {generated} tokens in {seconds:.2} s, {:.1} tok/s aggregate, slowest first token {:.2} s",
            generated as f64 / seconds,
            ttft.as_secs_f64()
        );
    }
    let stats = engine.stats();
    println!(
        "steps {}, ttft mean {:.3} s, inter-token mean {:.3} s",
        stats.steps_total,
        stats.ttft_seconds.sum() / stats.ttft_seconds.count().max(1) as f64,
        stats.itl_seconds.sum() / stats.itl_seconds.count().max(1) as f64
    );
    engine.shutdown(Duration::from_secs(1));
    Ok(())
}
