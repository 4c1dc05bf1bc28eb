//! Packed-weight matvec (decode, one token) and matmul (prefill, 64 tokens) throughput
//! per packed format, on matrices shaped like Qwen2.5-0.5B's `ffn_down` (896 rows of
//! 4864 columns) and `ffn_gate` (4864 rows of 896 columns; the 256-value K-quants do
//! not divide 896 columns, so that shape runs the 32-value formats only). Q4_1 and
//! Q5_1 run the lane-order kernel, as the model does.
//!
//! Matvec reports packed weight bytes per second (the bound is memory bandwidth): it
//! cycles through enough copies of the matrix to overflow the last-level cache, as
//! decode streams a whole model's weights from memory; `packed_matvec_hot` runs the same
//! matvec on one copy, from cache, which separates the kernel's speed from memory's. Prefill reports tokens per second
//! (elements = tokens) on one copy. Run with `cargo bench -p kernels --bench packed`;
//! `SLM_THREADS=n` sets the thread count, `SLM_ISA=avx2` caps the instruction set.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::{matmul_packed, pack, MatmulScratch, PackedFormat, PackedMatrix, WeightView};

/// `(name, n_rows, n_cols)` of the benchmarked shapes.
const SHAPES: [(&str, usize, usize); 2] = [("down", 896, 4864), ("gate", 4864, 896)];
const PREFILL_TOKENS: usize = 64;
/// Weight bytes the matvec cycles through, well past a 32 MiB L3.
const MATVEC_WORKING_SET: usize = 128 << 20;

/// Byte offsets of the f16 scales in a source block of `format`.
fn scale_offsets(format: PackedFormat) -> &'static [usize] {
    match format {
        PackedFormat::Q4_0 | PackedFormat::Q5_0 | PackedFormat::Q8_0 => &[0],
        PackedFormat::Q4_1 | PackedFormat::Q5_1 | PackedFormat::Q4K => &[0, 2],
        PackedFormat::Q6K => &[208],
    }
}

/// Random blocks with small finite scales (xorshift bytes; contents do not change the
/// work done).
fn random_weights(format: PackedFormat, n_rows: usize, n_cols: usize) -> Vec<u8> {
    let dtype = format.dtype();
    let len = dtype.row_bytes(n_cols).expect("whole blocks") * n_rows;
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
        for &off in scale_offsets(format) {
            block[off..off + 2].copy_from_slice(&scale);
        }
    }
    bytes
}

fn packed(format: PackedFormat, data: &[u8], n_rows: usize, n_cols: usize) -> PackedMatrix {
    let view = WeightView {
        dtype: format.dtype(),
        data,
        n_rows,
        n_cols,
    };
    pack(&view).expect("a packed format")
}

fn activations(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// The formats that fit `n_cols`.
fn formats(n_cols: usize) -> impl Iterator<Item = PackedFormat> {
    PackedFormat::ALL
        .into_iter()
        .filter(move |f| n_cols.is_multiple_of(f.block_values()))
}

/// Matvec cycling through copies of the matrix that fill `working_set` bytes: past the
/// last-level cache it measures what decode gets from memory; with one copy, which
/// stays in cache, the kernel's own speed.
fn bench_matvec(c: &mut Criterion, scratch: &mut MatmulScratch, name: &str, working_set: usize) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for (shape, n_rows, n_cols) in SHAPES {
        let x = activations(n_cols);
        let mut out = vec![0.0; n_rows];
        for format in formats(n_cols) {
            let data = random_weights(format, n_rows, n_cols);
            let one = packed(format, &data, n_rows, n_cols);
            let copies: Vec<PackedMatrix> = (0..working_set.div_ceil(one.size_bytes()))
                .map(|_| packed(format, &data, n_rows, n_cols))
                .collect();
            let mut next = 0;
            group.throughput(Throughput::Bytes(one.size_bytes() as u64));
            let id = BenchmarkId::new(shape, format!("{format:?}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    next = (next + 1) % copies.len();
                    matmul_packed(&copies[next], black_box(&x), 1, &mut out, scratch)
                })
            });
        }
    }
    group.finish();
}

fn bench_prefill(c: &mut Criterion, scratch: &mut MatmulScratch) {
    let mut group = c.benchmark_group("packed_prefill64");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for (shape, n_rows, n_cols) in SHAPES {
        let x = activations(n_cols * PREFILL_TOKENS);
        let mut out = vec![0.0; n_rows * PREFILL_TOKENS];
        for format in formats(n_cols) {
            let w = packed(
                format,
                &random_weights(format, n_rows, n_cols),
                n_rows,
                n_cols,
            );
            group.throughput(Throughput::Elements(PREFILL_TOKENS as u64));
            let id = BenchmarkId::new(shape, format!("{format:?}"));
            group.bench_function(id, |b| {
                b.iter(|| matmul_packed(&w, black_box(&x), PREFILL_TOKENS, &mut out, scratch))
            });
        }
    }
    group.finish();
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
    bench_matvec(c, &mut scratch, "packed_matvec", MATVEC_WORKING_SET);
    bench_matvec(c, &mut scratch, "packed_matvec_hot", 1);
    bench_prefill(c, &mut scratch);
}

criterion_group!(benches, bench);
criterion_main!(benches);
