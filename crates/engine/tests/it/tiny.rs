//! A tiny Llama-shaped model with pseudo-random F32 weights and a 50-token SentencePiece
//! vocabulary (letters and spaces), written to a temporary GGUF file: fast enough to
//! exercise the engine loop without a real model.

use std::path::{Path, PathBuf};

use engine::{Engine, EngineConfig};
use gguf::{Array, GgmlType, GgufWriter, Value};

const N_EMBD: u64 = 64;
const N_HEADS: u64 = 4;
const N_KV_HEADS: u64 = 2;
const HEAD_DIM: u64 = 16;
const N_FF: u64 = 96;
const N_LAYERS: u64 = 2;

/// Deterministic values in `[-scale, scale]`.
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// The vocabulary: `<unk>`, `<s>`, `</s>`, the letters, `▁`, then `▁a` … `▁t`.
fn vocab() -> (Vec<String>, Vec<i32>) {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for c in 'a'..='z' {
        tokens.push(c.to_string());
        types.push(1);
    }
    tokens.push("▁".into());
    types.push(1);
    for c in 'a'..='t' {
        tokens.push(format!("▁{c}"));
        types.push(1);
    }
    (tokens, types)
}

/// A temporary tiny model file; removed when dropped.
pub struct TinyModel {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TinyModel {
    /// Writes the model.
    pub fn new() -> TinyModel {
        let (tokens, types) = vocab();
        let n_vocab = tokens.len() as u64;
        let mut w = GgufWriter::new();
        let arch = "llama";
        w.add_metadata("general.architecture", arch);
        for (key, value) in [
            ("context_length", 4096u32),
            ("embedding_length", N_EMBD as u32),
            ("block_count", N_LAYERS as u32),
            ("feed_forward_length", N_FF as u32),
            ("attention.head_count", N_HEADS as u32),
            ("attention.head_count_kv", N_KV_HEADS as u32),
        ] {
            w.add_metadata(format!("{arch}.{key}"), value);
        }
        w.add_metadata(format!("{arch}.attention.layer_norm_rms_epsilon"), 1e-5f32);
        w.add_metadata("tokenizer.ggml.model", "llama");
        let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
        w.add_metadata("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
        w.add_metadata("tokenizer.ggml.scores", scores);
        w.add_metadata("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
        w.add_metadata("tokenizer.ggml.bos_token_id", 1u32);
        w.add_metadata("tokenizer.ggml.eos_token_id", 2u32);
        let mut seed = 1;
        let mut tensor = |w: &mut GgufWriter, name: String, dims: &[u64], scale: f32, base: f32| {
            seed += 1;
            let n = dims.iter().product::<u64>() as usize;
            let data: Vec<u8> = values(n, seed, scale)
                .iter()
                .flat_map(|x| (x + base).to_le_bytes())
                .collect();
            w.add_tensor(name, GgmlType::F32, dims, data);
        };
        let (q_dim, kv_dim) = (N_HEADS * HEAD_DIM, N_KV_HEADS * HEAD_DIM);
        tensor(
            &mut w,
            "token_embd.weight".into(),
            &[N_EMBD, n_vocab],
            1.0,
            0.0,
        );
        tensor(&mut w, "output_norm.weight".into(), &[N_EMBD], 0.2, 1.0);
        for layer in 0..N_LAYERS {
            let name = |stem: &str| format!("blk.{layer}.{stem}.weight");
            tensor(&mut w, name("attn_norm"), &[N_EMBD], 0.2, 1.0);
            tensor(&mut w, name("attn_q"), &[N_EMBD, q_dim], 0.3, 0.0);
            tensor(&mut w, name("attn_k"), &[N_EMBD, kv_dim], 0.3, 0.0);
            tensor(&mut w, name("attn_v"), &[N_EMBD, kv_dim], 0.3, 0.0);
            tensor(&mut w, name("attn_output"), &[q_dim, N_EMBD], 0.2, 0.0);
            tensor(&mut w, name("ffn_norm"), &[N_EMBD], 0.2, 1.0);
            tensor(&mut w, name("ffn_gate"), &[N_EMBD, N_FF], 0.2, 0.0);
            tensor(&mut w, name("ffn_up"), &[N_EMBD, N_FF], 0.2, 0.0);
            tensor(&mut w, name("ffn_down"), &[N_FF, N_EMBD], 0.2, 0.0);
        }
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("tiny.gguf");
        w.write(&path).expect("the tiny model is written");
        TinyModel { _dir: dir, path }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An engine over the model with `config`.
    pub fn engine(&self, config: EngineConfig) -> Engine {
        Engine::start(&self.path, "tiny".into(), config).expect("the tiny engine starts")
    }
}

/// A small engine configuration: short context, small blocks.
pub fn config() -> EngineConfig {
    EngineConfig {
        n_ctx: 256,
        kv_budget_bytes: None,
        kv_block_tokens: 16,
        max_running: 4,
        max_queue: 8,
        prefill_chunk: 8,
        pack_cache_dir: None,
        chat_template: None,
        prefix_cache: true,
    }
}
