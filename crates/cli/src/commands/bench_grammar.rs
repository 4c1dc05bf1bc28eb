//! `slm bench MODEL --json-schema FILE`: what a grammar costs. The same chat prompt is
//! completed greedily without and with the schema; the report gives generation speed of
//! both and the mean time of one token mask.

use std::path::Path;

use anyhow::{Context, Result};
use engine::{
    Flow, GenerateParams, Grammar, Message, Role, SamplerParams, Session, SessionOptions,
};

/// One measured completion.
struct Run {
    tokens: usize,
    tokens_per_second: f64,
    mask_micros: Option<f64>,
}

/// Runs the comparison and prints it (a table, or one JSON object with `json`).
pub fn bench_grammar(
    name: &str,
    path: &Path,
    schema_file: &Path,
    n_gen: usize,
    repetitions: usize,
    json: bool,
) -> Result<()> {
    let text = std::fs::read_to_string(schema_file)
        .with_context(|| format!("cannot read JSON Schema file {}", schema_file.display()))?;
    let schema: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", schema_file.display()))?;
    let options = SessionOptions {
        pack_cache_dir: super::pack_cache_dir(),
        ..SessionOptions::default()
    };
    let mut session =
        Session::load(path, &options).with_context(|| format!("cannot load model {name}"))?;
    let request = format!("Reply with one JSON value valid under this JSON Schema:\n{schema}");
    let prompt = session.chat_prompt_tokens(&[Message::new(Role::User, request)], &[])?;
    let free = GenerateParams {
        max_tokens: n_gen,
        sampling: SamplerParams::greedy(),
        stop: Vec::new(),
        grammar: None,
    };
    let constrained = GenerateParams {
        grammar: Some(Grammar::JsonSchema {
            schema,
            strict: false,
        }),
        ..free.clone()
    };
    // Warm-up: the first constrained run also builds the model's token trie.
    let built = std::time::Instant::now();
    measure(&mut session, &prompt, &constrained)?;
    eprintln!(
        "warm-up with the grammar (token trie included): {:.0} ms",
        built.elapsed().as_secs_f64() * 1e3
    );
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for repetition in 0..repetitions.max(1) {
        without.push(measure(&mut session, &prompt, &free)?);
        with.push(measure(&mut session, &prompt, &constrained)?);
        eprintln!("repetition {} of {}", repetition + 1, repetitions.max(1));
    }
    report(name, &without, &with, json);
    Ok(())
}

fn measure(session: &mut Session, prompt: &[u32], params: &GenerateParams) -> Result<Run> {
    // A fresh cache each time: every run evaluates the same prompt the same way.
    session.clear();
    let generation = session
        .generate(prompt, params, |_| Flow::Continue)
        .context("generation failed")?;
    Ok(Run {
        tokens: generation.tokens.len(),
        tokens_per_second: generation.generated_tokens_per_second(),
        mask_micros: generation.grammar_masks.map(|(_, mean)| mean),
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

fn report(name: &str, without: &[Run], with: &[Run], json: bool) {
    let free_speed = mean(without.iter().map(|r| r.tokens_per_second));
    let grammar_speed = mean(with.iter().map(|r| r.tokens_per_second));
    let mask = mean(with.iter().filter_map(|r| r.mask_micros));
    let free_tokens = mean(without.iter().map(|r| r.tokens as f64));
    let grammar_tokens = mean(with.iter().map(|r| r.tokens as f64));
    if json {
        let report = serde_json::json!({
            "model": name,
            "tg_tokens_per_second": free_speed,
            "tg_tokens_per_second_with_grammar": grammar_speed,
            "mask_micros_per_token": mask,
            "tokens": free_tokens,
            "tokens_with_grammar": grammar_tokens,
        });
        println!("{report}");
        return;
    }
    println!("| model | grammar | tokens | tg t/s | mask µs/token |");
    println!("| --- | --- | ---: | ---: | ---: |");
    println!("| {name} | none | {free_tokens:.0} | {free_speed:.1} | |");
    println!("| {name} | JSON Schema | {grammar_tokens:.0} | {grammar_speed:.1} | {mask:.0} |");
}
