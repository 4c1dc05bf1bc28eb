//! Every SIMD kernel set this CPU runs, checked against the scalar reference; the
//! matmul against a naive loop; the compute pool.

use half::f16;
use kernels::dispatch::{TILE_ROWS, TILE_TOKENS};
use kernels::{matmul, pool, scalar, DType, Isa, Kernels, MatmulScratch, WeightView};
use proptest::prelude::*;

/// Weight types with a SIMD dot product, and the layouts of their f16 scale fields
/// (byte offsets inside one block) that random bytes must not turn into NaN or inf.
const WEIGHT_TYPES: [(DType, &[usize]); 12] = [
    (DType::Q4_0, &[0]),
    (DType::Q4_1, &[0, 2]),
    (DType::Q5_0, &[0]),
    (DType::Q5_1, &[0, 2]),
    (DType::Q8_0, &[0]),
    (DType::Q2_K, &[80, 82]),
    (DType::Q3_K, &[108]),
    (DType::Q4_K, &[0, 2]),
    (DType::Q5_K, &[0, 2]),
    (DType::Q6_K, &[208]),
    (DType::F16, &[]),
    (DType::F32, &[]),
];

/// A small deterministic generator (splitmix64), so a failing seed reproduces.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn floats(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.unit() * scale).collect()
    }
}

/// Random weights of `dtype` for `n` values: random bytes with valid f16 scales.
fn random_weights(rng: &mut Rng, dtype: DType, scale_offsets: &[usize], n: usize) -> Vec<u8> {
    match dtype {
        DType::F32 => return bytemuck::cast_slice(&rng.floats(n, 2.0)).to_vec(),
        DType::F16 => {
            let h: Vec<f16> = rng.floats(n, 2.0).into_iter().map(f16::from_f32).collect();
            return bytemuck::cast_slice(&h).to_vec();
        }
        _ => {}
    }
    let len = dtype.row_bytes(n).expect("whole blocks");
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    for block in bytes.chunks_exact_mut(dtype.type_size()) {
        for &off in scale_offsets {
            let d = f16::from_f32(rng.unit() * 0.05);
            block[off..off + 2].copy_from_slice(&d.to_le_bytes());
        }
    }
    bytes
}

/// `bytes` copied to an odd address, so kernels see unaligned input.
fn unaligned(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.push(0);
    v.extend_from_slice(bytes);
    v
}

/// Largest difference allowed between two dot products of `n` values: both sums
/// round once per addition, in different orders (the scalar one in sequence, the SIMD
/// one in lanes), so the bound is the sequential one, `n * eps` times the sum of the
/// terms' magnitudes, with room for the per-block scale products. Integer parts are
/// exact, so a wrong value or a dropped block shows up far above this.
fn dot_tolerance(n: usize, magnitude: f32) -> f32 {
    const SLACK_BLOCKS: usize = 64;
    (n + SLACK_BLOCKS) as f32 * f32::EPSILON * magnitude + f32::MIN_POSITIVE
}

/// `sum |w_i * x_i|` from the dequantized rows.
fn magnitude(dtype: DType, n: usize, w: &[u8], x: &[u8]) -> f32 {
    let mut wf = vec![0.0; n];
    let mut xf = vec![0.0; n];
    scalar::dequantize_row(dtype, w, &mut wf);
    scalar::dequantize_row(dtype.vec_dot_type(), x, &mut xf);
    wf.iter().zip(&xf).map(|(a, b)| (a * b).abs()).sum()
}

fn simd_sets() -> Vec<Kernels> {
    Kernels::supported()
        .into_iter()
        .filter(|k| k.isa != Isa::Scalar)
        .collect()
}

fn check_vec_dot(dtype: DType, scale_offsets: &[usize], n_blocks: usize, seed: u64) {
    let n = n_blocks * dtype.block_size() * if dtype.block_size() == 1 { 37 } else { 1 };
    let mut rng = Rng(seed);
    let w = random_weights(&mut rng, dtype, scale_offsets, n);
    let act = dtype.vec_dot_type();
    let xf = rng.floats(n, 3.0);
    let mut x = vec![0u8; act.row_bytes(n).expect("whole blocks")];
    scalar::quantize_row(act, &xf, &mut x);
    let expected = scalar::vec_dot(dtype, n, &w, &x);
    let tol = dot_tolerance(n, magnitude(dtype, n, &w, &x));
    let (w_odd, x_odd) = (unaligned(&w), unaligned(&x));
    for k in simd_sets() {
        let got = k.vec_dot(dtype, n, &w_odd[1..], &x_odd[1..]);
        assert!(
            (got - expected).abs() <= tol,
            "{} {}: n {n} seed {seed}: got {got}, scalar {expected}, tolerance {tol}",
            k.isa.name(),
            dtype.name()
        );
    }
}

fn check_tile(dtype: DType, scale_offsets: &[usize], n_blocks: usize, seed: u64) {
    let n = n_blocks * dtype.block_size();
    let mut rng = Rng(seed);
    let act = dtype.vec_dot_type();
    let w: Vec<Vec<u8>> = (0..TILE_ROWS)
        .map(|_| unaligned(&random_weights(&mut rng, dtype, scale_offsets, n)))
        .collect();
    let x: Vec<Vec<u8>> = (0..TILE_TOKENS)
        .map(|_| {
            let mut q = vec![0u8; act.row_bytes(n).expect("whole blocks")];
            scalar::quantize_row(act, &rng.floats(n, 3.0), &mut q);
            unaligned(&q)
        })
        .collect();
    for k in simd_sets() {
        let Some(tile) = k.get(dtype).vec_dot_tile else {
            continue;
        };
        let got = tile(
            n,
            std::array::from_fn(|r| &w[r][1..]),
            std::array::from_fn(|t| &x[t][1..]),
        );
        for r in 0..TILE_ROWS {
            for t in 0..TILE_TOKENS {
                let expected = scalar::vec_dot(dtype, n, &w[r][1..], &x[t][1..]);
                let tol = dot_tolerance(n, magnitude(dtype, n, &w[r][1..], &x[t][1..]));
                assert!(
                    (got[r][t] - expected).abs() <= tol,
                    "{} {} tile [{r}][{t}]: n {n} seed {seed}: got {}, scalar {expected}",
                    k.isa.name(),
                    dtype.name(),
                    got[r][t]
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn vec_dot_matches_scalar(type_idx in 0..WEIGHT_TYPES.len(), n_blocks in 0usize..7, seed: u64) {
        let (dtype, offsets) = WEIGHT_TYPES[type_idx];
        check_vec_dot(dtype, offsets, n_blocks, seed);
    }

    #[test]
    fn vec_dot_tiles_match_scalar(type_idx in 0..WEIGHT_TYPES.len(), n_blocks in 0usize..5, seed: u64) {
        let (dtype, offsets) = WEIGHT_TYPES[type_idx];
        check_tile(dtype, offsets, n_blocks, seed);
    }

    #[test]
    fn quantize_q8_k_matches_scalar(n_blocks in 0usize..5, seed: u64, zero_block: bool) {
        let n = n_blocks * 256;
        let mut rng = Rng(seed);
        let mut xf = rng.floats(n, 10.0);
        if zero_block && n > 0 {
            xf[..256].fill(0.0);
        }
        let len = DType::Q8_K.row_bytes(n).expect("whole blocks");
        let mut expected = vec![0u8; len];
        scalar::quantize_row(DType::Q8_K, &xf, &mut expected);
        for k in simd_sets() {
            let mut got = vec![0xAAu8; len + 1];
            k.quantize_row(DType::Q8_K, &xf, &mut got[1..]);
            prop_assert_eq!(&got[1..], &expected[..], "{}", k.isa.name());
        }
    }

    #[test]
    fn quantize_q8_0_q8_1_match_ggml_x86(n_blocks in 0usize..7, seed: u64, scale in 0.0f32..100.0) {
        let n = n_blocks * 32;
        let mut rng = Rng(seed);
        let xf = rng.floats(n, scale);
        for dtype in [DType::Q8_0, DType::Q8_1] {
            let expected = q8_x86_model(dtype, &xf);
            let mut reference = vec![0u8; expected.len()];
            scalar::quantize_row(dtype, &xf, &mut reference);
            assert_within_one_step(dtype, &expected, &reference);
            for k in simd_sets() {
                let mut got = vec![0u8; expected.len() + 1];
                k.quantize_row(dtype, &xf, &mut got[1..]);
                prop_assert_eq!(&got[1..], &expected[..], "{} {}", k.isa.name(), dtype.name());
            }
        }
    }

    #[test]
    fn quantize_f16_matches_scalar(n in 0usize..100, seed: u64) {
        let xf = Rng(seed).floats(n, 1000.0);
        let mut expected = vec![0u8; 2 * n];
        scalar::quantize_row(DType::F16, &xf, &mut expected);
        for k in simd_sets() {
            let mut got = vec![0u8; 2 * n];
            k.quantize_row(DType::F16, &xf, &mut got);
            prop_assert_eq!(&got, &expected, "{}", k.isa.name());
        }
    }
}

/// ggml's x86 `quantize_row_q8_0`/`_q8_1` (what llama.cpp runs on x86), written out:
/// inverse scale `127 / amax`, products rounded half to even, `s = d * sum(q)`.
fn q8_x86_model(dtype: DType, x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for block in x.chunks_exact(32) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let q: Vec<i8> = block
            .iter()
            .map(|v| (v * id).round_ties_even() as i8)
            .collect();
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        if dtype == DType::Q8_1 {
            let sum: i32 = q.iter().map(|&v| i32::from(v)).sum();
            out.extend_from_slice(&f16::from_f32(d * sum as f32).to_le_bytes());
        }
        out.extend(q.iter().map(|&v| v as u8));
    }
    out
}

/// The x86 and reference Q8_0/Q8_1 bytes share the scale and differ by at most one
/// step per value (the rounding of ties and of the inverse scale).
fn assert_within_one_step(dtype: DType, x86: &[u8], reference: &[u8]) {
    let header = if dtype == DType::Q8_1 { 4 } else { 2 };
    for (a, b) in x86
        .chunks_exact(dtype.type_size())
        .zip(reference.chunks_exact(dtype.type_size()))
    {
        assert_eq!(a[..2], b[..2], "scales differ");
        for (qa, qb) in a[header..].iter().zip(&b[header..]) {
            assert!((i16::from(*qa as i8) - i16::from(*qb as i8)).abs() <= 1);
        }
    }
}

/// The one documented difference: ties round to even on x86, away from zero in the
/// reference. With `amax = 127` the inverse scale is exactly 1.
#[test]
fn q8_0_x86_rounds_ties_to_even() {
    let mut x = [0.0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -3.5;
    x[3] = 0.5;
    let k = kernels::kernels();
    let mut got = vec![0u8; 34];
    k.quantize_row(DType::Q8_0, &x, &mut got);
    let mut reference = vec![0u8; 34];
    scalar::quantize_row(DType::Q8_0, &x, &mut reference);
    assert_eq!(reference[2..6], [127, 3, (-4i8) as u8, 1]);
    if k.isa != Isa::Scalar {
        assert_eq!(got[2..6], [127, 2, (-4i8) as u8, 0]);
    }
}

/// `out[t][r]` by the definition: activations quantized by the dispatched kernels
/// (as matmul does), dot products by the scalar reference.
fn naive_matmul(w: &WeightView, x: &[f32], n_tokens: usize) -> Vec<f32> {
    let act = w.dtype.vec_dot_type();
    let act_row = act.row_bytes(w.n_cols).expect("whole blocks");
    let w_row = w.row_bytes();
    let mut out = vec![0.0; n_tokens * w.n_rows];
    let mut q = vec![0u8; act_row];
    for t in 0..n_tokens {
        kernels::kernels().quantize_row(act, &x[t * w.n_cols..(t + 1) * w.n_cols], &mut q);
        for r in 0..w.n_rows {
            out[t * w.n_rows + r] =
                scalar::vec_dot(w.dtype, w.n_cols, &w.data[r * w_row..(r + 1) * w_row], &q);
        }
    }
    out
}

/// Serializes the tests that change the pool's thread count.
static THREADS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn matmul_matches_naive_for_odd_shapes() {
    let _guard = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let mut scratch = MatmulScratch::default();
    for (case, &(dtype, offsets)) in WEIGHT_TYPES.iter().enumerate() {
        let n_cols = if dtype.block_size() == 256 { 512 } else { 96 };
        for (n_rows, n_tokens) in [(1, 1), (7, 3), (13, 1), (33, 17), (130, 5), (4, 9), (9, 70)] {
            let mut rng = Rng(case as u64 * 1000 + n_rows as u64 * 31 + n_tokens as u64);
            let data = random_weights(&mut rng, dtype, offsets, n_rows * n_cols);
            let w = WeightView {
                dtype,
                data: &data,
                n_rows,
                n_cols,
            };
            let x = rng.floats(n_tokens * n_cols, 2.0);
            let expected = naive_matmul(&w, &x, n_tokens);
            let mut results = Vec::new();
            for threads in [1, 2] {
                pool::set_threads(threads);
                let mut out = vec![f32::NAN; n_tokens * n_rows];
                matmul(&w, &x, n_tokens, &mut out, &mut scratch);
                results.push(out);
            }
            assert_eq!(
                results[0],
                results[1],
                "{}: threads change the result",
                dtype.name()
            );
            let act_row = dtype
                .vec_dot_type()
                .row_bytes(n_cols)
                .expect("whole blocks");
            let mut q = vec![0u8; act_row];
            for t in 0..n_tokens {
                kernels::kernels().quantize_row(
                    dtype.vec_dot_type(),
                    &x[t * n_cols..(t + 1) * n_cols],
                    &mut q,
                );
                for r in 0..n_rows {
                    let w_r = &data[r * w.row_bytes()..(r + 1) * w.row_bytes()];
                    let tol = dot_tolerance(n_cols, magnitude(dtype, n_cols, w_r, &q));
                    let (got, want) = (results[0][t * n_rows + r], expected[t * n_rows + r]);
                    assert!(
                        (got - want).abs() <= tol,
                        "{} {n_rows}x{n_cols} × {n_tokens} tokens at [{t}][{r}]: {got} vs {want}",
                        dtype.name()
                    );
                }
            }
        }
    }
    pool::set_threads(0);
}

#[test]
fn pool_runs_every_thread_once() {
    let _guard = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    for threads in [1, 2, 3] {
        pool::set_threads(threads);
        for _ in 0..100 {
            let seen = std::sync::Mutex::new(Vec::new());
            pool::run(|idx, n| {
                assert_eq!(n, threads);
                seen.lock().unwrap().push(idx);
            });
            let mut seen = seen.into_inner().unwrap();
            seen.sort_unstable();
            assert_eq!(seen, (0..threads).collect::<Vec<_>>());
        }
    }
    pool::set_threads(0);
}

#[test]
fn pool_propagates_worker_panics_and_keeps_working() {
    let _guard = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    pool::set_threads(3);
    for panicking in 0..3 {
        let result = std::panic::catch_unwind(|| {
            pool::run(|idx, _| {
                if idx == panicking {
                    panic!("thread {idx} fails");
                }
            })
        });
        assert!(result.is_err(), "panic in thread {panicking} was lost");
    }
    let count = std::sync::atomic::AtomicUsize::new(0);
    pool::run(|_, _| {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(count.into_inner(), 3);
    pool::set_threads(0);
}

#[test]
fn pool_runs_nested_calls_inline() {
    let _guard = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let count = std::sync::atomic::AtomicUsize::new(0);
    pool::run(|_, _| {
        pool::run(|idx, n| {
            assert_eq!((idx, n), (0, 1));
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
    });
    assert_eq!(count.into_inner(), pool::n_threads());
}

#[test]
fn force_scalar_and_detection_report_an_isa() {
    let k = kernels::kernels();
    let forced = std::env::var_os("SLM_FORCE_SCALAR").is_some_and(|v| v == "1");
    if forced {
        assert_eq!(k.isa, Isa::Scalar);
    } else {
        assert_eq!(Some(k.isa), Kernels::supported().last().map(|k| k.isa));
    }
}

#[test]
fn pool_for_each_chunk_runs_every_chunk_once() {
    let _guard = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    for threads in [1, 2, 3] {
        pool::set_threads(threads);
        for n_chunks in [0, 1, 2, 5, 64, 1000] {
            let hits: Vec<_> = (0..n_chunks)
                .map(|_| std::sync::atomic::AtomicU32::new(0))
                .collect();
            pool::for_each_chunk(n_chunks, |c| {
                hits[c].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            assert!(hits
                .iter()
                .all(|h| h.load(std::sync::atomic::Ordering::Relaxed) == 1));
        }
        let result = std::panic::catch_unwind(|| {
            pool::for_each_chunk(100, |c| {
                if c == 57 {
                    panic!("chunk {c} fails");
                }
            })
        });
        assert!(result.is_err(), "panic in a chunk was lost");
        // The pool still works after the panic.
        let count = std::sync::atomic::AtomicUsize::new(0);
        pool::for_each_chunk(10, |_| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(count.into_inner(), 10);
    }
    pool::set_threads(0);
}
