//! Whole-model speed, measured as llama-bench measures it: prompt processing (one forward
//! pass of P tokens into an empty cache, logits of the last row only) and token generation
//! (N single-token forward passes after D tokens already in the cache), each repeated
//! after one warm-up run that is not counted; plus load time, peak memory, the bytes a
//! generated token reads and how close generation comes to the memory-bandwidth bound.
//!
//! The tokens are pseudo-random ids, as llama-bench's: the speed of a forward pass does
//! not depend on which tokens go through it, and no tokenizer is needed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use gguf::GgufFile;
use model::{KvCache, LoadOptions, Logits, Model};

use crate::error::EngineError;

mod accounting;
mod stats;

pub use accounting::{kv_bytes_per_token, weight_bytes_per_token};
pub use kernels::bandwidth::{measure_read_bandwidth, ReadBandwidth};
pub use stats::Stats;

/// Bytes of the buffer a bench run reads to measure bandwidth: well past any last-level
/// cache (32 to 96 MiB on the CPUs slm targets), small enough to take a fraction of a
/// second per pass.
pub const BENCH_BANDWIDTH_BYTES: usize = 512 << 20;
/// Passes over that buffer; the best one is used.
pub const BENCH_BANDWIDTH_PASSES: usize = 3;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    /// Prompt tokens of the prompt-processing test; 0 skips it.
    pub n_prompt: usize,
    /// Generated tokens of the generation test; 0 skips it.
    pub n_gen: usize,
    /// Tokens in the cache before generation starts (filled by an untimed prefill).
    pub depth: usize,
    /// Timed repetitions of each test (after one warm-up run); at least 1 is used.
    pub repetitions: usize,
    /// Measure the read bandwidth after the tests, to compute the generation bound.
    pub bandwidth: bool,
    /// Where repacked weights are cached between runs (see `model::LoadOptions`), as
    /// for a session; `None` repacks in memory, which the load time then includes.
    pub pack_cache_dir: Option<PathBuf>,
}

impl Default for BenchOptions {
    /// llama-bench's defaults: pp512, tg128, depth 0, 5 repetitions.
    fn default() -> BenchOptions {
        BenchOptions {
            n_prompt: 512,
            n_gen: 128,
            depth: 0,
            repetitions: 5,
            bandwidth: true,
            pack_cache_dir: None,
        }
    }
}

/// One test's speed.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// Tokens per repetition (P or N).
    pub tokens: usize,
    /// Tokens in the cache before the timed part.
    pub depth: usize,
    /// Tokens per second over the repetitions.
    pub stats: Stats,
}

/// The phase a progress event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Prompt processing.
    Prompt,
    /// Filling the cache to the generation depth (untimed).
    Depth,
    /// Token generation.
    Generation,
    /// Measuring the read bandwidth.
    Bandwidth,
}

/// What a bench run reports while it goes, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum BenchEvent {
    /// The model is ready.
    Loaded {
        /// Milliseconds the load took.
        load_ms: f64,
    },
    /// A phase starts.
    Started(Phase),
    /// A run of a test finished (`repetition` 0 is the warm-up).
    Sample {
        /// Which test.
        phase: Phase,
        /// 0 for the warm-up, then 1..=repetitions.
        repetition: usize,
        /// Its speed, tokens per second.
        tokens_per_second: f64,
    },
}

/// Everything a bench run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// The model file.
    pub model_path: PathBuf,
    /// `general.architecture`.
    pub architecture: String,
    /// The model file's size in bytes.
    pub model_file_bytes: u64,
    /// The instruction set of the kernels that ran (`avx512`).
    pub isa: &'static str,
    /// Compute threads.
    pub n_threads: usize,
    /// Prompt processing, `None` when skipped.
    pub pp: Option<Throughput>,
    /// Token generation, `None` when skipped.
    pub tg: Option<Throughput>,
    /// Milliseconds from opening the file to a model ready to run (any repacking
    /// included; weights stay mapped, so their pages are read by the first forward pass).
    pub load_ms: f64,
    /// The process's peak resident memory after the tests (VmHWM), `None` where the OS
    /// does not say (anything but Linux).
    pub peak_rss_bytes: Option<u64>,
    /// Bytes of the KV cache the run allocated (`max(P, D + N)` positions).
    pub kv_cache_bytes: u64,
    /// Bytes of the weight copies the loader repacked for the kernels (in memory, or
    /// mapped from the repacked-weights cache); 0 when repacking is off.
    pub repacked_bytes: u64,
    /// Weight bytes every generated token reads (see [`weight_bytes_per_token`]).
    pub weight_bytes_per_token: u64,
    /// KV cache bytes a generated token reads, averaged over the generation test
    /// (see [`kv_bytes_per_token`]).
    pub kv_bytes_per_token: u64,
    /// The read bandwidth measured after the tests, `None` when not measured.
    pub bandwidth: Option<ReadBandwidth>,
    /// The size of the CPU's largest cache (see [`last_level_cache_bytes`]), `None` where
    /// the OS does not say.
    pub last_level_cache_bytes: Option<u64>,
}

impl BenchResult {
    /// All bytes a generated token reads: weights and KV cache.
    pub fn bytes_per_token(&self) -> u64 {
        self.weight_bytes_per_token
            .saturating_add(self.kv_bytes_per_token)
    }

    /// The best measured read bandwidth, GB/s.
    pub fn bandwidth_gbs(&self) -> Option<f64> {
        self.bandwidth.as_ref().map(ReadBandwidth::best_gbs)
    }

    /// The fastest generation memory allows: bandwidth / bytes per token, tokens/s.
    pub fn tg_bound(&self) -> Option<f64> {
        let bytes = self.bytes_per_token();
        let gbs = self.bandwidth_gbs()?;
        (bytes > 0).then(|| gbs * 1e9 / bytes as f64)
    }

    /// Whether the bytes a generated token reads fit in the last-level cache. Then most
    /// of them may come from the cache rather than from memory, and
    /// [`BenchResult::tg_bound`], computed from the memory's bandwidth, undercounts.
    pub fn fits_in_last_level_cache(&self) -> bool {
        self.last_level_cache_bytes
            .is_some_and(|llc| self.bytes_per_token() <= llc)
    }

    /// Measured median generation speed as a share of [`BenchResult::tg_bound`] (1.0 =
    /// every byte read at full bandwidth).
    pub fn tg_share_of_bound(&self) -> Option<f64> {
        let bound = self.tg_bound()?;
        let tg = self.tg.as_ref()?;
        (bound > 0.0).then(|| tg.stats.median / bound)
    }
}

/// Loads the model at `path` and measures it with the compute pool as sized (see
/// [`crate::set_threads`]). `progress` sees each step as it happens.
pub fn run_bench(
    path: impl AsRef<Path>,
    options: &BenchOptions,
    progress: &mut dyn FnMut(BenchEvent),
) -> Result<BenchResult, EngineError> {
    let path = path.as_ref();
    let _span = tracing::info_span!("bench", path = %path.display()).entered();
    let start = Instant::now();
    let file = Arc::new(GgufFile::open(path).map_err(|source| EngineError::Open {
        path: path.to_path_buf(),
        source,
    })?);
    let load_options = LoadOptions {
        pack_cache_dir: options.pack_cache_dir.clone(),
        cache_name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let model =
        Model::load_with(Arc::clone(&file), &load_options).map_err(|source| EngineError::Load {
            path: path.to_path_buf(),
            source,
        })?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    progress(BenchEvent::Loaded { load_ms });
    let config = model.config();
    let positions = options
        .depth
        .checked_add(options.n_gen)
        .map(|n| n.max(options.n_prompt).max(1))
        .filter(|&n| n <= config.n_ctx_train)
        .ok_or(EngineError::BenchTooLong {
            n_prompt: options.n_prompt,
            depth: options.depth,
            n_gen: options.n_gen,
            n_ctx_train: config.n_ctx_train,
        })?;
    let mut cache = model.new_cache(positions);
    let mut runner = Runner {
        model: &model,
        cache: &mut cache,
        tokens: TokenStream::new(config.n_vocab),
        logits: Vec::new(),
        repetitions: options.repetitions.max(1),
    };
    let pp = match options.n_prompt {
        0 => None,
        n => Some(runner.prompt(n, progress)?),
    };
    let tg = match options.n_gen {
        0 => None,
        n => Some(runner.generation(n, options.depth, progress)?),
    };
    // Read before the bandwidth buffer raises it.
    let peak_rss_bytes = peak_rss_bytes();
    let bandwidth = options.bandwidth.then(|| {
        progress(BenchEvent::Started(Phase::Bandwidth));
        measure_read_bandwidth(BENCH_BANDWIDTH_BYTES, BENCH_BANDWIDTH_PASSES)
    });
    let windows: Vec<Option<usize>> = config.layers.iter().map(|l| l.sliding_window).collect();
    Ok(BenchResult {
        model_path: path.to_path_buf(),
        architecture: config.architecture.clone(),
        model_file_bytes: file.file_size(),
        isa: kernels::kernels().isa.name(),
        n_threads: kernels::pool::n_threads(),
        pp,
        tg,
        load_ms,
        peak_rss_bytes,
        kv_cache_bytes: cache.size_bytes() as u64,
        repacked_bytes: model.repacked_bytes() as u64,
        weight_bytes_per_token: weight_bytes_per_token(
            &file,
            model.family(),
            model.repacked_bytes() as u64,
        ),
        kv_bytes_per_token: kv_bytes_per_token(
            &windows,
            config.kv_dim(),
            options.depth,
            options.n_gen,
        ),
        bandwidth,
        last_level_cache_bytes: last_level_cache_bytes(),
    })
}

/// The size of the largest cache of CPU 0, in bytes (Linux: the highest-level entry
/// of `/sys/devices/system/cpu/cpu0/cache`). On a shared machine other tenants use part
/// of it.
pub fn last_level_cache_bytes() -> Option<u64> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let mut best: Option<(u32, u64)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let read = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
        let (Some(level), Some(size)) = (read("level"), read("size")) else {
            continue;
        };
        let (Ok(level), Some(size)) = (level.trim().parse::<u32>(), parse_cache_size(&size)) else {
            continue;
        };
        if best.is_none_or(|(l, s)| (level, size) > (l, s)) {
            best = Some((level, size));
        }
    }
    best.map(|(_, size)| size)
}

/// A sysfs cache size (`32K`, `504M`, `1024`), in bytes.
fn parse_cache_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale = match unit.trim() {
        "" => 1,
        "K" | "KB" | "KiB" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        "G" | "GB" | "GiB" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// The process's peak resident set (VmHWM in /proc/self/status), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// The `VmHWM:   1234 kB` line of a /proc status file, in bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Runs the timed tests against one model and cache.
struct Runner<'a> {
    model: &'a Model,
    cache: &'a mut KvCache,
    tokens: TokenStream,
    /// The last forward pass's logits, `[1, n_vocab]`.
    logits: Vec<f32>,
    repetitions: usize,
}

impl Runner<'_> {
    fn forward(&mut self, tokens: &[u32], logits: Logits) -> Result<(), EngineError> {
        self.model
            .forward(tokens, self.cache, logits, &mut self.logits)
            .map_err(EngineError::Forward)
    }

    /// Prompt processing: `n_prompt` tokens into an empty cache, last row's logits.
    fn prompt(
        &mut self,
        n_prompt: usize,
        progress: &mut dyn FnMut(BenchEvent),
    ) -> Result<Throughput, EngineError> {
        progress(BenchEvent::Started(Phase::Prompt));
        let mut samples = Vec::with_capacity(self.repetitions);
        for repetition in 0..=self.repetitions {
            let batch = self.tokens.take(n_prompt);
            self.cache.clear();
            let start = Instant::now();
            self.forward(&batch, Logits::Last)?;
            let speed = tokens_per_second(n_prompt, start);
            progress(BenchEvent::Sample {
                phase: Phase::Prompt,
                repetition,
                tokens_per_second: speed,
            });
            if repetition > 0 {
                samples.push(speed);
            }
        }
        Ok(Throughput {
            tokens: n_prompt,
            depth: 0,
            stats: Stats::of(&samples),
        })
    }

    /// Token generation: `n_gen` single-token passes after `depth` cached tokens. The
    /// cache is filled to `depth` once, untimed, and cut back to it before every run.
    fn generation(
        &mut self,
        n_gen: usize,
        depth: usize,
        progress: &mut dyn FnMut(BenchEvent),
    ) -> Result<Throughput, EngineError> {
        self.cache.clear();
        if depth > 0 {
            progress(BenchEvent::Started(Phase::Depth));
            // One model batch at a time: `Logits::Tail(0)` over more tokens than
            // `MAX_BATCH` would make the model skip a chunk before the (empty) logit rows,
            // which its output indexing does not allow for.
            let fill = self.tokens.take(depth);
            for batch in fill.chunks(model::MAX_BATCH) {
                self.forward(batch, Logits::Tail(0))?;
            }
        }
        progress(BenchEvent::Started(Phase::Generation));
        let mut samples = Vec::with_capacity(self.repetitions);
        for repetition in 0..=self.repetitions {
            self.cache.truncate(depth);
            let start = Instant::now();
            for _ in 0..n_gen {
                let token = self.tokens.next_token();
                self.forward(&[token], Logits::Last)?;
            }
            let speed = tokens_per_second(n_gen, start);
            progress(BenchEvent::Sample {
                phase: Phase::Generation,
                repetition,
                tokens_per_second: speed,
            });
            if repetition > 0 {
                samples.push(speed);
            }
        }
        Ok(Throughput {
            tokens: n_gen,
            depth,
            stats: Stats::of(&samples),
        })
    }
}

fn tokens_per_second(n_tokens: usize, start: Instant) -> f64 {
    n_tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

/// Pseudo-random token ids in `0..n_vocab` (xorshift64), the same sequence every run.
struct TokenStream {
    state: u64,
    n_vocab: u64,
}

impl TokenStream {
    fn new(n_vocab: usize) -> TokenStream {
        TokenStream {
            state: 0x9E37_79B9_7F4A_7C15,
            n_vocab: (n_vocab as u64).clamp(1, u64::from(u32::MAX)),
        }
    }

    fn next_token(&mut self) -> u32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        // n_vocab fits in u32, so the remainder does.
        (self.state % self.n_vocab) as u32
    }

    fn take(&mut self, n: usize) -> Vec<u32> {
        (0..n).map(|_| self.next_token()).collect()
    }
}

#[cfg(test)]
mod tests;
