//! Memory read bandwidth, measured the way a memory-bound matvec reads its weights: the
//! compute pool's threads each stream through their share of a buffer much larger than the
//! last-level cache.
//!
//! Token generation reads every weight once per token, so bytes per token divided by this
//! bandwidth is the fastest generation the machine allows; `slm bench` reports how close
//! the kernels come to it.
//!
//! The buffer is written once (by the threads that later read it, so each page lands near
//! its reader) before any pass: pages never written are all the same zero page, which
//! would stay in the cache and measure nothing. Every pass sums every word into an
//! accumulator that is returned, so no read can be optimized away; the summing loop works
//! on independent lanes, which the compiler turns into vector loads and adds, and asks
//! for the memory ahead of use as the matmul kernels do.

use std::sync::Mutex;
use std::time::Instant;

use crate::pool;

/// Words summed side by side: independent accumulators the compiler maps onto vector
/// registers, and enough of them that the adds never wait on each other.
const LANES: usize = 16;

/// What [`measure_read_bandwidth`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadBandwidth {
    /// Bytes of the buffer read in each pass.
    pub buffer_bytes: usize,
    /// Threads that read it.
    pub n_threads: usize,
    /// GB/s (10^9 bytes per second) of each pass, in the order they ran.
    pub passes_gbs: Vec<f64>,
    /// The sum of every word of the last pass; meaningless except that computing it forces
    /// every byte to be read.
    pub checksum: u64,
}

impl ReadBandwidth {
    /// The fastest pass, GB/s: the least disturbed by other work on the machine.
    pub fn best_gbs(&self) -> f64 {
        self.passes_gbs.iter().copied().fold(0.0, f64::max)
    }

    /// The median pass, GB/s.
    pub fn median_gbs(&self) -> f64 {
        let mut sorted = self.passes_gbs.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }
}

/// Reads a buffer of about `buffer_bytes` (rounded down to whole 128-byte lines, at
/// least one) `passes` times with the compute pool's threads and times each pass.
/// The buffer is allocated and written once, before the first pass, and freed on return.
pub fn measure_read_bandwidth(buffer_bytes: usize, passes: usize) -> ReadBandwidth {
    let line_words = LANES;
    let n_words = (buffer_bytes / 8 / line_words).max(1) * line_words;
    let mut buffer = vec![0u64; n_words];
    let n_threads = pool::n_threads().max(1);
    let chunk_words = n_words.div_ceil(n_threads).div_ceil(line_words) * line_words;
    fill(&mut buffer, chunk_words);
    let mut passes_gbs = Vec::with_capacity(passes);
    let mut checksum = 0;
    for _ in 0..passes {
        let start = Instant::now();
        checksum = sum_parallel(&buffer, chunk_words);
        let seconds = start.elapsed().as_secs_f64();
        passes_gbs.push((n_words * 8) as f64 / seconds.max(1e-9) / 1e9);
    }
    ReadBandwidth {
        buffer_bytes: n_words * 8,
        n_threads,
        passes_gbs,
        checksum: std::hint::black_box(checksum),
    }
}

/// Writes a pattern into every word, each thread the chunk it will later read.
fn fill(
    buffer: &mut [u64], // [n_words]
    chunk_words: usize,
) {
    let chunks: Vec<Mutex<&mut [u64]>> = buffer.chunks_mut(chunk_words).map(Mutex::new).collect();
    pool::run(|thread_idx, n_threads| {
        for chunk_idx in (thread_idx..chunks.len()).step_by(n_threads) {
            let mut chunk = chunks[chunk_idx].lock().unwrap_or_else(|e| e.into_inner());
            let base = (chunk_idx * chunk_words) as u64;
            for (offset, word) in chunk.iter_mut().enumerate() {
                *word = base.wrapping_add(offset as u64);
            }
        }
    });
}

/// The wrapping sum of every word, each thread summing its own chunks.
fn sum_parallel(
    buffer: &[u64], // [n_words]
    chunk_words: usize,
) -> u64 {
    let chunks: Vec<&[u64]> = buffer.chunks(chunk_words).collect();
    let total = Mutex::new(0u64);
    pool::run(|thread_idx, n_threads| {
        let mut sum = 0u64;
        for chunk in chunks.iter().skip(thread_idx).step_by(n_threads) {
            sum = sum.wrapping_add(sum_words(chunk));
        }
        let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
        *total = total.wrapping_add(sum);
    });
    total.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// The wrapping sum of `words`, [`LANES`] independent lanes at a time.
fn sum_words(words: &[u64]) -> u64 {
    let mut lanes = [0u64; LANES];
    let blocks = words.chunks_exact(LANES);
    let tail = blocks.remainder();
    for block in blocks {
        // The kernels ask for their weights ahead of use; so does this loop, or it would
        // measure a single core's hardware prefetchers rather than the memory.
        #[cfg(target_arch = "x86_64")]
        crate::x86::prefetch_ahead(block.as_ptr().cast(), LANES * 8);
        for (lane, &word) in lanes.iter_mut().zip(block) {
            *lane = lane.wrapping_add(word);
        }
    }
    let tail_sum = tail.iter().fold(0u64, |acc, &w| acc.wrapping_add(w));
    lanes.iter().fold(tail_sum, |acc, &w| acc.wrapping_add(w))
}

#[cfg(test)]
mod tests;
