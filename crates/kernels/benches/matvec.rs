//! Matvec (decode, one token) and matmul (prefill, 64 tokens) throughput on a weight
//! matrix shaped like Qwen2.5-0.5B's `ffn_down` (896 rows of 4864 columns).
//!
//! Matvec reports weight bytes per second (the bound is memory bandwidth): it cycles
//! through enough copies of the matrix to overflow the last-level cache, as decode
//! streams a whole model's weights from memory. Prefill reports tokens per second
//! (elements = tokens) on one copy. Run with
//! `cargo bench -p kernels --bench matvec`; `SLM_THREADS=n` sets the thread count.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::{matmul, DType, MatmulScratch, WeightView};

const N_ROWS: usize = 896;
const N_COLS: usize = 4864;
const PREFILL_TOKENS: usize = 64;
/// Weight bytes the matvec cycles through, well past a 32 MiB L3.
const MATVEC_WORKING_SET: usize = 128 << 20;

/// Weight types benchmarked, with the byte offsets of their f16 scales in a block.
const TYPES: [(DType, &[usize]); 5] = [
    (DType::Q5_0, &[0]),
    (DType::Q8_0, &[0]),
    (DType::Q4_K, &[0, 2]),
    (DType::Q6_K, &[208]),
    (DType::Q4_1, &[0, 2]),
];

/// Random blocks with small finite scales (xorshift bytes; contents do not change
/// the work done).
fn random_weights(dtype: DType, scale_offsets: &[usize]) -> Vec<u8> {
    let len = dtype.row_bytes(N_COLS).expect("whole blocks") * N_ROWS;
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let scale = half::f16::from_f32(0.01).to_le_bytes();
    for block in bytes.chunks_exact_mut(dtype.type_size()) {
        for &off in scale_offsets {
            block[off..off + 2].copy_from_slice(&scale);
        }
    }
    bytes
}

fn activations(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn bench(c: &mut Criterion) {
    if let Some(n) = std::env::var("SLM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        kernels::set_threads(n);
    }
    eprintln!(
        "isa {:?}, {} threads",
        kernels::kernels().isa,
        kernels::pool::n_threads()
    );
    let mut scratch = MatmulScratch::default();
    let x1 = activations(N_COLS);
    let x64 = activations(N_COLS * PREFILL_TOKENS);
    let mut out1 = vec![0.0; N_ROWS];
    let mut out64 = vec![0.0; N_ROWS * PREFILL_TOKENS];

    let mut group = c.benchmark_group("matvec");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for (dtype, offsets) in TYPES {
        let one = random_weights(dtype, offsets);
        let copies: Vec<Vec<u8>> = (0..MATVEC_WORKING_SET.div_ceil(one.len()))
            .map(|_| one.clone())
            .collect();
        let views: Vec<WeightView> = copies
            .iter()
            .map(|data| WeightView {
                dtype,
                data,
                n_rows: N_ROWS,
                n_cols: N_COLS,
            })
            .collect();
        let mut next = 0;
        group.throughput(Throughput::Bytes(one.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(dtype.name()), |b| {
            b.iter(|| {
                next = (next + 1) % views.len();
                matmul(&views[next], black_box(&x1), 1, &mut out1, &mut scratch)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("prefill64");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for (dtype, offsets) in TYPES {
        let data = random_weights(dtype, offsets);
        let w = WeightView {
            dtype,
            data: &data,
            n_rows: N_ROWS,
            n_cols: N_COLS,
        };
        group.throughput(Throughput::Elements(PREFILL_TOKENS as u64));
        group.bench_function(BenchmarkId::from_parameter(dtype.name()), |b| {
            b.iter(|| {
                matmul(
                    &w,
                    black_box(&x64),
                    PREFILL_TOKENS,
                    &mut out64,
                    &mut scratch,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
