//! Counters and latency histograms of an engine loop, snapshot by [`crate::Engine::stats`].

/// Upper bounds (seconds) of the latency buckets: from a fast decode step to a long
/// queue wait.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A histogram with fixed bucket bounds, as Prometheus exports them.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Samples per bucket (not cumulative); one more than `bounds` for +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over these upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Records one sample.
    pub fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// `(upper bound, samples <= bound)` per bucket, cumulative as Prometheus's `le`
    /// buckets; the +Inf bucket is [`Histogram::count`].
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.bounds
            .iter()
            .zip(&self.counts)
            .map(|(&bound, &n)| {
                total += n;
                (bound, total)
            })
            .collect()
    }

    /// The sum of all samples.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// How many samples were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// A snapshot of an engine loop's state and counters since it started.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStats {
    /// Requests waiting for admission.
    pub queue_depth: usize,
    /// Sequences in the running batch.
    pub running: usize,
    /// KV blocks in the cache.
    pub kv_blocks_total: usize,
    /// KV blocks holding some sequence's keys and values.
    pub kv_blocks_used: usize,
    /// KV blocks no sequence holds that keep a cached prefix; they count as free (not in
    /// `kv_blocks_used`) and are evicted when blocks are needed.
    pub kv_blocks_cached: usize,
    /// Positions per KV block.
    pub kv_block_tokens: usize,
    /// Bytes of one KV block.
    pub kv_block_bytes: usize,
    /// Prompt tokens evaluated.
    pub prompt_tokens_total: u64,
    /// Prompt tokens not evaluated because their keys and values were in the prefix
    /// cache.
    pub prompt_tokens_cached_total: u64,
    /// Generation requests that looked up their prompt in the prefix cache.
    pub prefix_cache_lookups_total: u64,
    /// Lookups that found at least one cached block.
    pub prefix_cache_hits_total: u64,
    /// Tokens generated.
    pub generated_tokens_total: u64,
    /// Requests finished (any reason, embeddings included).
    pub requests_total: u64,
    /// Forward steps run.
    pub steps_total: u64,
    /// Seconds from submission to the first token, per request.
    pub ttft_seconds: Histogram,
    /// Seconds between consecutive tokens of a request.
    pub itl_seconds: Histogram,
}

impl EngineStats {
    /// Zero counters for a cache of `kv_blocks_total` blocks.
    pub(crate) fn new(
        kv_blocks_total: usize,
        kv_block_tokens: usize,
        kv_block_bytes: usize,
    ) -> EngineStats {
        EngineStats {
            queue_depth: 0,
            running: 0,
            kv_blocks_total,
            kv_blocks_used: 0,
            kv_blocks_cached: 0,
            kv_block_tokens,
            kv_block_bytes,
            prompt_tokens_total: 0,
            prompt_tokens_cached_total: 0,
            prefix_cache_lookups_total: 0,
            prefix_cache_hits_total: 0,
            generated_tokens_total: 0,
            requests_total: 0,
            steps_total: 0,
            ttft_seconds: Histogram::new(LATENCY_BUCKETS),
            itl_seconds: Histogram::new(LATENCY_BUCKETS),
        }
    }
}
