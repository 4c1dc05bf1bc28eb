//! `slm bench`: prompt-processing and generation speed the way llama-bench measures them,
//! with load time, peak memory and the memory-bandwidth bound of generation; `--bandwidth`
//! measures the machine's read bandwidth alone.

use anyhow::{Context, Result};
use clap::Args;
use engine::bench::{
    measure_read_bandwidth, run_bench, BenchEvent, BenchOptions, BenchResult, Phase, ReadBandwidth,
    Throughput,
};

use super::{resolve_model, set_threads};

/// Bytes `--bandwidth` reads per pass: far past any last-level cache.
const BANDWIDTH_BYTES: usize = 1 << 30;
/// Passes `--bandwidth` times.
const BANDWIDTH_PASSES: usize = 5;
const MIB: f64 = (1u64 << 20) as f64;

/// `slm bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A catalog name or a .gguf path.
    #[arg(value_name = "MODEL", required_unless_present = "bandwidth")]
    pub model: Option<String>,

    /// Prompt tokens of the prompt-processing test (one forward pass into an empty
    /// cache); 0 skips it.
    #[arg(
        short = 'p',
        long = "n-prompt",
        value_name = "P",
        default_value_t = 512
    )]
    pub n_prompt: usize,

    /// Tokens of the generation test (one forward pass each); 0 skips it.
    #[arg(short = 'n', long = "n-gen", value_name = "N", default_value_t = 128)]
    pub n_gen: usize,

    /// Tokens already in the cache when generation starts (an untimed prefill); applies
    /// to the generation test only.
    #[arg(short = 'd', long, value_name = "D", default_value_t = 0)]
    pub depth: usize,

    /// Timed repetitions of each test, after one warm-up run that is not counted.
    #[arg(short = 'r', long, value_name = "R", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repetitions: u32,

    /// Compute threads (default: all cores).
    #[arg(short, long)]
    pub threads: Option<usize>,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Do not measure the memory bandwidth (no generation bound is reported).
    #[arg(long)]
    pub no_bandwidth: bool,

    /// Only measure the memory read bandwidth (1 GiB buffer, 5 passes).
    #[arg(long, conflicts_with_all = ["model", "no_bandwidth"])]
    pub bandwidth: bool,

    /// Measure what constrained decoding costs instead: greedy chat completions of up to
    /// N tokens without and with the JSON Schema in FILE, R times each; reports tokens
    /// per second of both and the mean time of one token mask.
    #[arg(long, value_name = "FILE", conflicts_with = "bandwidth")]
    pub json_schema: Option<std::path::PathBuf>,
}

/// Runs the benchmark and prints its table (or JSON) on stdout; progress goes to stderr.
pub fn bench(args: BenchArgs) -> Result<()> {
    set_threads(args.threads);
    let Some(name) = args.model.as_deref().filter(|_| !args.bandwidth) else {
        return bandwidth_only(args.json);
    };
    let path = resolve_model(name)?;
    if let Some(schema) = &args.json_schema {
        return super::bench_grammar::bench_grammar(
            name,
            &path,
            schema,
            args.n_gen,
            args.repetitions as usize,
            args.json,
        );
    }
    let options = BenchOptions {
        n_prompt: args.n_prompt,
        n_gen: args.n_gen,
        depth: args.depth,
        repetitions: args.repetitions as usize,
        bandwidth: !args.no_bandwidth,
        pack_cache_dir: super::pack_cache_dir(),
    };
    let result = run_bench(&path, &options, &mut |event| {
        report_progress(&options, event)
    })
    .with_context(|| format!("cannot benchmark model {name}"))?;
    if args.json {
        println!("{}", json_report(name, &result)?);
    } else {
        print_table(name, &result);
    }
    Ok(())
}

/// `slm bench --bandwidth`.
fn bandwidth_only(json: bool) -> Result<()> {
    eprintln!(
        "measuring read bandwidth: {} MiB, {BANDWIDTH_PASSES} passes",
        BANDWIDTH_BYTES >> 20
    );
    let bandwidth = measure_read_bandwidth(BANDWIDTH_BYTES, BANDWIDTH_PASSES);
    if json {
        let report = serde_json::json!({
            "threads": bandwidth.n_threads,
            "buffer_mib": bandwidth.buffer_bytes as f64 / MIB,
            "best_gbs": bandwidth.best_gbs(),
            "median_gbs": bandwidth.median_gbs(),
            "passes_gbs": bandwidth.passes_gbs,
        });
        println!("{report}");
    } else {
        println!("read bandwidth {}", bandwidth_line(&bandwidth));
    }
    Ok(())
}

fn bandwidth_line(bandwidth: &ReadBandwidth) -> String {
    format!(
        "{:.1} GB/s best, {:.1} GB/s median ({} MiB, {} threads, {} passes)",
        bandwidth.best_gbs(),
        bandwidth.median_gbs(),
        bandwidth.buffer_bytes >> 20,
        bandwidth.n_threads,
        bandwidth.passes_gbs.len()
    )
}

/// One stderr line per step.
fn report_progress(options: &BenchOptions, event: BenchEvent) {
    match event {
        BenchEvent::Loaded { load_ms } => eprintln!("loaded in {load_ms:.0} ms"),
        BenchEvent::Started(Phase::Depth) => {
            eprintln!("filling the cache to depth {}", options.depth);
        }
        BenchEvent::Started(Phase::Bandwidth) => eprintln!("measuring read bandwidth"),
        BenchEvent::Started(_) => {}
        BenchEvent::Sample {
            phase,
            repetition,
            tokens_per_second,
        } => {
            let test = match phase {
                Phase::Prompt => format!("pp{}", options.n_prompt),
                _ => test_name_tg(options.n_gen, options.depth),
            };
            let run = match repetition {
                0 => "warm-up".to_string(),
                n => format!("{n}/{}", options.repetitions),
            };
            eprintln!("{test} {run}: {tokens_per_second:.2} t/s");
        }
    }
}

fn test_name_tg(n_gen: usize, depth: usize) -> String {
    match depth {
        0 => format!("tg{n_gen}"),
        d => format!("tg{n_gen} @ d{d}"),
    }
}

/// The `--json` object.
fn json_report(name: &str, result: &BenchResult) -> Result<String> {
    let throughput = |t: &Throughput| {
        serde_json::json!({
            "tokens": t.tokens,
            "depth": t.depth,
            "median": t.stats.median,
            "min": t.stats.min,
            "max": t.stats.max,
            "samples": t.stats.samples,
        })
    };
    let mut pp = result.pp.as_ref().map(throughput);
    if let Some(serde_json::Value::Object(map)) = pp.as_mut() {
        // Prompt processing always starts from an empty cache.
        map.remove("depth");
    }
    let report = serde_json::json!({
        "model": name,
        "model_path": result.model_path,
        "architecture": result.architecture,
        "isa": result.isa,
        "threads": result.n_threads,
        "pp": pp,
        "tg": result.tg.as_ref().map(throughput),
        "load_ms": result.load_ms,
        "peak_rss_mib": result.peak_rss_bytes.map(|b| b as f64 / MIB),
        "model_file_mib": result.model_file_bytes as f64 / MIB,
        "kv_cache_mib": result.kv_cache_bytes as f64 / MIB,
        "repacked_mib": result.repacked_bytes as f64 / MIB,
        "bytes_per_token": result.bytes_per_token(),
        "weight_bytes_per_token": result.weight_bytes_per_token,
        "kv_bytes_per_token": result.kv_bytes_per_token,
        "bandwidth_gbs": result.bandwidth_gbs(),
        "tg_bound": result.tg_bound(),
        "tg_share_of_bound": result.tg_share_of_bound(),
        "last_level_cache_mib": result.last_level_cache_bytes.map(|b| b as f64 / MIB),
        "fits_in_last_level_cache": result.fits_in_last_level_cache(),
    });
    serde_json::to_string(&report).context("cannot format the result as JSON")
}

/// The human-readable report: a speed table, then one line per other measure.
fn print_table(name: &str, result: &BenchResult) {
    println!(
        "model      {name} ({}, {:.0} MiB)",
        result.architecture,
        result.model_file_bytes as f64 / MIB
    );
    println!("threads    {} ({} kernels)", result.n_threads, result.isa);
    println!("load       {:.0} ms", result.load_ms);
    println!();
    println!(
        "{:<16} {:>12} {:>12} {:>12}",
        "test", "t/s median", "min", "max"
    );
    let rows = [
        result.pp.as_ref().map(|t| (format!("pp{}", t.tokens), t)),
        result
            .tg
            .as_ref()
            .map(|t| (test_name_tg(t.tokens, t.depth), t)),
    ];
    for (test, t) in rows.iter().flatten() {
        println!(
            "{test:<16} {:>12.2} {:>12.2} {:>12.2}",
            t.stats.median, t.stats.min, t.stats.max
        );
    }
    println!();
    let peak = result
        .peak_rss_bytes
        .map_or("n/a".to_string(), |b| format!("{:.0} MiB", b as f64 / MIB));
    println!(
        "peak RSS   {peak} (model file {:.0}, KV cache {:.0}, repacked {:.0} MiB)",
        result.model_file_bytes as f64 / MIB,
        result.kv_cache_bytes as f64 / MIB,
        result.repacked_bytes as f64 / MIB
    );
    println!(
        "per token  {:.2} MB read (weights {:.2}, KV cache {:.2})",
        result.bytes_per_token() as f64 / 1e6,
        result.weight_bytes_per_token as f64 / 1e6,
        result.kv_bytes_per_token as f64 / 1e6
    );
    if let Some(bandwidth) = &result.bandwidth {
        println!("bandwidth  {}", bandwidth_line(bandwidth));
    }
    if let Some(bound) = result.tg_bound() {
        let share = result.tg_share_of_bound().map_or(String::new(), |s| {
            format!("; generation reaches {:.1}%", s * 100.0)
        });
        println!("tg bound   {bound:.2} t/s{share}");
        if let Some(llc) = result
            .last_level_cache_bytes
            .filter(|_| result.fits_in_last_level_cache())
        {
            println!(
                "           (the {:.0} MB read per token fit in the CPU's {:.0} MiB last-level cache,\n            \
                 so the bound, from memory bandwidth, may undercount)",
                result.bytes_per_token() as f64 / 1e6,
                llc as f64 / MIB
            );
        }
    }
}
