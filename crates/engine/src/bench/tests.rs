use gguf::{GgmlType, GgufWriter};

use super::*;

#[test]
fn stats_of_odd_even_and_no_samples() {
    let check = |samples: &[f64], median: f64, min: f64, max: f64| {
        let stats = Stats::of(samples);
        assert_eq!(
            (stats.median, stats.min, stats.max),
            (median, min, max),
            "{samples:?}"
        );
        assert_eq!(stats.samples, samples);
    };
    check(&[], 0.0, 0.0, 0.0);
    check(&[3.0], 3.0, 3.0, 3.0);
    check(&[5.0, 1.0, 3.0], 3.0, 1.0, 5.0);
    check(&[4.0, 1.0, 2.0, 8.0], 3.0, 1.0, 8.0);
}

#[test]
fn vm_hwm_is_read_in_bytes() {
    let status = "Name:\tslm\nVmPeak:\t  9999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t  1000 kB\n";
    assert_eq!(parse_vm_hwm(status), Some(2048 * 1024));
    assert_eq!(parse_vm_hwm("VmRSS: 12 kB\n"), None);
    assert_eq!(parse_vm_hwm("VmHWM: lots kB\n"), None);
}

#[test]
fn kv_bytes_count_every_position_seen_in_each_layer() {
    // One global layer, kv_dim 4: a position costs 2 (K and V) * 4 * 2 bytes = 16.
    let per_position = 16;
    // The token at depth 0 sees itself only.
    assert_eq!(kv_bytes_per_token(&[None], 4, 0, 1), per_position);
    // After 10 cached tokens, 4 generated tokens see 11, 12, 13, 14 positions.
    assert_eq!(kv_bytes_per_token(&[None], 4, 10, 4), 12 * per_position + 8);
    // n_gen 0 counts as one token.
    assert_eq!(kv_bytes_per_token(&[None], 4, 10, 0), 11 * per_position);
    // A window of 12 caps 13 and 14 at 12: (11 + 12 + 12 + 12) / 4.
    assert_eq!(
        kv_bytes_per_token(&[Some(12)], 4, 10, 4),
        47 * per_position / 4
    );
    // A window smaller than the depth sees the window only; layers add up.
    assert_eq!(
        kv_bytes_per_token(&[Some(5), None], 4, 10, 4),
        5 * per_position + (12 * per_position + 8)
    );
    assert_eq!(kv_bytes_per_token(&[], 4, 10, 4), 0);
}

const N_VOCAB: u64 = 40;
const N_EMBD: u64 = 32;
const N_FF: u64 = 48;
const N_LAYERS: u64 = 2;
/// Two heads of 16, one KV head: kv_dim 16.
const KV_DIM: u64 = 16;

fn f32_tensor(writer: &mut GgufWriter, name: &str, dims: &[u64]) {
    let n: u64 = dims.iter().product();
    let data: Vec<u8> = (0..n)
        .flat_map(|i| (((i % 7) as f32 - 3.0) * 0.05).to_le_bytes())
        .collect();
    writer.add_tensor(name, GgmlType::F32, dims, data);
}

/// A tiny llama model with F32 weights, with or without its own output matrix.
fn tiny_llama(tied: bool) -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama");
    for (key, value) in [
        ("context_length", 1024u32),
        ("embedding_length", N_EMBD as u32),
        ("block_count", N_LAYERS as u32),
        ("feed_forward_length", N_FF as u32),
        ("attention.head_count", 2),
        ("attention.head_count_kv", 1),
    ] {
        w.add_metadata(format!("llama.{key}"), value);
    }
    w.add_metadata("llama.attention.layer_norm_rms_epsilon", 1e-5f32);
    f32_tensor(&mut w, "token_embd.weight", &[N_EMBD, N_VOCAB]);
    f32_tensor(&mut w, "output_norm.weight", &[N_EMBD]);
    if !tied {
        f32_tensor(&mut w, "output.weight", &[N_EMBD, N_VOCAB]);
    }
    for layer in 0..N_LAYERS {
        let name = |stem: &str| format!("blk.{layer}.{stem}.weight");
        f32_tensor(&mut w, &name("attn_norm"), &[N_EMBD]);
        f32_tensor(&mut w, &name("attn_q"), &[N_EMBD, N_EMBD]);
        f32_tensor(&mut w, &name("attn_k"), &[N_EMBD, KV_DIM]);
        f32_tensor(&mut w, &name("attn_v"), &[N_EMBD, KV_DIM]);
        f32_tensor(&mut w, &name("attn_output"), &[N_EMBD, N_EMBD]);
        f32_tensor(&mut w, &name("ffn_norm"), &[N_EMBD]);
        f32_tensor(&mut w, &name("ffn_gate"), &[N_EMBD, N_FF]);
        f32_tensor(&mut w, &name("ffn_up"), &[N_EMBD, N_FF]);
        f32_tensor(&mut w, &name("ffn_down"), &[N_FF, N_EMBD]);
    }
    w
}

/// Bytes of the layers' matrices of the tiny model, F32.
const LAYER_MATRIX_BYTES: u64 =
    N_LAYERS * 4 * (2 * N_EMBD * N_EMBD + 2 * N_EMBD * KV_DIM + 3 * N_EMBD * N_FF);

#[test]
fn weight_bytes_count_one_embedding_row_unless_tied() {
    let embedding_row = 4 * N_EMBD;
    let embedding = embedding_row * N_VOCAB;
    for (tied, expected) in [
        (false, LAYER_MATRIX_BYTES + embedding_row + embedding),
        (true, LAYER_MATRIX_BYTES + embedding),
    ] {
        let file = GgufFile::from_bytes(tiny_llama(tied).to_bytes()).expect("tiny file parses");
        let family = model::Family::for_architecture("llama").expect("llama is known");
        assert_eq!(
            weight_bytes_per_token(&file, &family, 0),
            expected,
            "tied {tied}"
        );
    }
}

#[test]
fn weight_bytes_read_packable_matrices_from_their_copies() {
    // A Q8_0 matrix of 4 rows of 32 values: one 34-byte block per row (f16 scale 1.0,
    // then 32 codes).
    let q8_row: Vec<u8> = [0x00, 0x3C].into_iter().chain([1u8; 32]).collect();
    let mut w = tiny_llama(false);
    w.add_tensor("extra.weight", GgmlType::Q8_0, &[32, 4], q8_row.repeat(4));
    let file = GgufFile::from_bytes(w.to_bytes()).expect("tiny file parses");
    let family = model::Family::for_architecture("llama").expect("llama is known");
    let unpacked = weight_bytes_per_token(&file, &family, 0);
    // F32 has no packed layout; the Q8_0 matrix is read from a 200-byte copy.
    assert_eq!(
        weight_bytes_per_token(&file, &family, 200),
        unpacked - 4 * 34 + 200
    );
}

#[test]
fn a_bench_run_on_a_tiny_model_reports_every_measure() {
    let path = std::env::temp_dir().join(format!("slm-bench-tiny-{}.gguf", std::process::id()));
    tiny_llama(false)
        .write(&path)
        .expect("the temporary directory is writable");
    let options = BenchOptions {
        n_prompt: 8,
        n_gen: 3,
        depth: 5,
        repetitions: 2,
        bandwidth: false,
        pack_cache_dir: None,
    };
    let mut events = Vec::new();
    let result = run_bench(&path, &options, &mut |e| events.push(e));
    let _ = std::fs::remove_file(&path);
    let result = result.expect("the tiny model benches");
    let pp = result.pp.as_ref().expect("pp ran");
    let tg = result.tg.as_ref().expect("tg ran");
    assert_eq!((pp.tokens, pp.depth, pp.stats.samples.len()), (8, 0, 2));
    assert_eq!((tg.tokens, tg.depth, tg.stats.samples.len()), (3, 5, 2));
    assert!(tg.stats.min > 0.0 && tg.stats.min <= tg.stats.median);
    // max(8, 5 + 3) positions of 2 layers, K and V, kv_dim f16 values.
    assert_eq!(result.kv_cache_bytes, 8 * N_LAYERS * 2 * KV_DIM * 2);
    assert_eq!(
        result.kv_bytes_per_token,
        kv_bytes_per_token(&[None, None], KV_DIM as usize, 5, 3)
    );
    assert_eq!(
        result.bytes_per_token(),
        result.weight_bytes_per_token + result.kv_bytes_per_token
    );
    assert!(result.bandwidth.is_none() && result.tg_bound().is_none());
    // Warm-up plus two repetitions of each test.
    let samples = events
        .iter()
        .filter(|e| matches!(e, BenchEvent::Sample { .. }))
        .count();
    assert_eq!(samples, 6);
}

#[test]
fn a_depth_of_more_than_one_model_batch_is_filled() {
    let path = std::env::temp_dir().join(format!("slm-bench-deep-{}.gguf", std::process::id()));
    tiny_llama(true)
        .write(&path)
        .expect("the temporary directory is writable");
    let options = BenchOptions {
        n_prompt: 0,
        n_gen: 2,
        depth: model::MAX_BATCH + 9,
        repetitions: 1,
        bandwidth: false,
        pack_cache_dir: None,
    };
    let result = run_bench(&path, &options, &mut |_| {});
    let _ = std::fs::remove_file(&path);
    let tg = result.expect("the tiny model benches").tg.expect("tg ran");
    assert_eq!(tg.depth, model::MAX_BATCH + 9);
}

#[test]
fn a_bench_longer_than_the_training_context_is_refused() {
    let path = std::env::temp_dir().join(format!("slm-bench-long-{}.gguf", std::process::id()));
    tiny_llama(true)
        .write(&path)
        .expect("the temporary directory is writable");
    let options = BenchOptions {
        n_prompt: 0,
        n_gen: 1000,
        depth: 100,
        repetitions: 1,
        bandwidth: false,
        pack_cache_dir: None,
    };
    let result = run_bench(&path, &options, &mut |_| {});
    let _ = std::fs::remove_file(&path);
    assert!(matches!(result, Err(EngineError::BenchTooLong { .. })));
}

#[test]
fn the_bound_is_bandwidth_over_bytes() {
    let result = BenchResult {
        model_path: PathBuf::from("m.gguf"),
        architecture: "llama".into(),
        model_file_bytes: 0,
        isa: "scalar",
        n_threads: 1,
        pp: None,
        tg: Some(Throughput {
            tokens: 4,
            depth: 0,
            stats: Stats::of(&[25.0]),
        }),
        load_ms: 1.0,
        peak_rss_bytes: None,
        kv_cache_bytes: 0,
        repacked_bytes: 0,
        weight_bytes_per_token: 900_000_000,
        kv_bytes_per_token: 100_000_000,
        bandwidth: Some(ReadBandwidth {
            buffer_bytes: 1,
            n_threads: 1,
            passes_gbs: vec![40.0, 50.0],
            checksum: 0,
        }),
        last_level_cache_bytes: None,
    };
    assert_eq!(result.tg_bound(), Some(50.0));
    assert_eq!(result.tg_share_of_bound(), Some(0.5));
    assert!(!result.fits_in_last_level_cache());
    let big_cache = BenchResult {
        last_level_cache_bytes: Some(1_000_000_000),
        ..result.clone()
    };
    assert!(big_cache.fits_in_last_level_cache());
    let small_cache = BenchResult {
        last_level_cache_bytes: Some(999_999_999),
        ..result
    };
    assert!(!small_cache.fits_in_last_level_cache());
}

#[test]
fn cache_sizes_are_read_in_bytes() {
    assert_eq!(parse_cache_size("32K\n"), Some(32 << 10));
    assert_eq!(parse_cache_size("504M"), Some(504 << 20));
    assert_eq!(parse_cache_size("1G"), Some(1 << 30));
    assert_eq!(parse_cache_size("4096"), Some(4096));
    assert_eq!(parse_cache_size("12Q"), None);
    assert_eq!(parse_cache_size("K"), None);
    assert_eq!(parse_cache_size(""), None);
    // Whatever this machine says, it is a size or nothing.
    if let Some(bytes) = last_level_cache_bytes() {
        assert!(bytes >= 1 << 10, "{bytes}");
    }
}
