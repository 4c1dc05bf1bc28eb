//! Prometheus metrics: HTTP requests by route and status, counted here; tokens, queue,
//! batch, KV blocks and latency histograms, read from each model's engine when scraped.
//! Rendered in Prometheus' text exposition format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[cfg(test)]
mod tests;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counters the server keeps itself.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by (route pattern, status code).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record_request(&self, route: &str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((route.to_owned(), status)).or_insert(0) += 1;
    }

    /// The request counts, sorted by route then status.
    pub fn requests(&self) -> Vec<((String, u16), u64)> {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// A histogram as Prometheus wants it: cumulative counts at upper bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations at or below it), ascending; `+Inf` is added
    /// when rendering, with `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all observations, in seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// One served model's figures at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelStats {
    /// The model's name (the `model` label).
    pub model: String,
    /// Requests waiting for a place in the batch.
    pub queue_depth: usize,
    /// Sequences in the running batch.
    pub running: usize,
    /// KV blocks in the pool.
    pub kv_blocks_total: usize,
    /// KV blocks held by sequences.
    pub kv_blocks_used: usize,
    /// Bytes of one KV block.
    pub kv_block_bytes: usize,
    /// KV blocks no sequence holds that keep a cached prompt prefix (counted as free).
    pub kv_blocks_cached: usize,
    /// Prompt tokens served from the prefix cache instead of evaluated.
    pub prompt_tokens_cached_total: u64,
    /// Generation requests that looked up their prompt in the prefix cache.
    pub prefix_cache_lookups_total: u64,
    /// Lookups that found a cached prefix.
    pub prefix_cache_hits_total: u64,
    /// Prompt tokens processed since start.
    pub prompt_tokens_total: u64,
    /// Tokens generated since start.
    pub generated_tokens_total: u64,
    /// Requests finished since start.
    pub requests_total: u64,
    /// Time from admission to the first generated token.
    pub ttft_seconds: HistogramSnapshot,
    /// Time between consecutive generated tokens of a sequence.
    pub itl_seconds: HistogramSnapshot,
}

/// A metric family read from each model: name, type, help, value.
type Family<T> = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ModelStats) -> T,
);
/// A histogram family: name, help, histogram.
type HistogramFamily = (
    &'static str,
    &'static str,
    fn(&ModelStats) -> &HistogramSnapshot,
);

/// The whole exposition: request counters, then each model's figures.
pub fn render(requests: &[((String, u16), u64)], models: &[ModelStats], ready: bool) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "slm_ready",
        "gauge",
        "1 when every model is loaded and requests are served.",
    );
    let _ = writeln!(out, "slm_ready {}", u8::from(ready));
    header(
        &mut out,
        "slm_http_requests_total",
        "counter",
        "HTTP requests answered, by route pattern and status code.",
    );
    for ((route, status), count) in requests {
        let _ = writeln!(
            out,
            "slm_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
            escape(route)
        );
    }
    let gauges: [Family<f64>; 13] = [
        (
            "slm_prompt_tokens_total",
            "counter",
            "Prompt tokens processed.",
            |m| m.prompt_tokens_total as f64,
        ),
        (
            "slm_generated_tokens_total",
            "counter",
            "Tokens generated.",
            |m| m.generated_tokens_total as f64,
        ),
        (
            "slm_requests_finished_total",
            "counter",
            "Generation requests finished, any way.",
            |m| m.requests_total as f64,
        ),
        (
            "slm_queue_depth",
            "gauge",
            "Requests waiting for a place in the running batch.",
            |m| m.queue_depth as f64,
        ),
        (
            "slm_running_sequences",
            "gauge",
            "Sequences in the running batch.",
            |m| m.running as f64,
        ),
        (
            "slm_kv_blocks_total",
            "gauge",
            "KV cache blocks in the pool.",
            |m| m.kv_blocks_total as f64,
        ),
        (
            "slm_kv_blocks_used",
            "gauge",
            "KV cache blocks held by sequences (shared ones once).",
            |m| m.kv_blocks_used as f64,
        ),
        (
            "slm_kv_blocks_free",
            "gauge",
            "KV cache blocks free (cached prefix blocks included: they are evicted when needed).",
            |m| m.kv_blocks_total.saturating_sub(m.kv_blocks_used) as f64,
        ),
        (
            "slm_kv_blocks_cached",
            "gauge",
            "KV cache blocks no sequence holds that keep a cached prompt prefix (part of the free ones).",
            |m| m.kv_blocks_cached as f64,
        ),
        (
            "slm_kv_block_bytes",
            "gauge",
            "Bytes of one KV cache block.",
            |m| m.kv_block_bytes as f64,
        ),
        (
            "slm_prompt_tokens_cached_total",
            "counter",
            "Prompt tokens served from the prefix cache instead of evaluated.",
            |m| m.prompt_tokens_cached_total as f64,
        ),
        (
            "slm_prefix_cache_lookups_total",
            "counter",
            "Generation requests that looked up their prompt in the prefix cache.",
            |m| m.prefix_cache_lookups_total as f64,
        ),
        (
            "slm_prefix_cache_hits_total",
            "counter",
            "Prefix cache lookups that found a cached prefix (hit rate: hits / lookups).",
            |m| m.prefix_cache_hits_total as f64,
        ),
    ];
    for (name, kind, help, value) in gauges {
        header(&mut out, name, kind, help);
        for m in models {
            let _ = writeln!(out, "{name}{{model=\"{}\"}} {}", escape(&m.model), value(m));
        }
    }
    let histograms: [HistogramFamily; 2] = [
        (
            "slm_time_to_first_token_seconds",
            "Time from a request's admission to its first generated token.",
            |m| &m.ttft_seconds,
        ),
        (
            "slm_inter_token_latency_seconds",
            "Time between consecutive generated tokens of a sequence.",
            |m| &m.itl_seconds,
        ),
    ];
    for (name, help, histogram) in histograms {
        header(&mut out, name, "histogram", help);
        for m in models {
            render_histogram(&mut out, name, &escape(&m.model), histogram(m));
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render_histogram(out: &mut String, name: &str, model: &str, h: &HistogramSnapshot) {
    for (bound, count) in &h.buckets {
        let _ = writeln!(
            out,
            "{name}_bucket{{model=\"{model}\",le=\"{bound}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{model=\"{model}\",le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(out, "{name}_sum{{model=\"{model}\"}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{model=\"{model}\"}} {}", h.count);
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
