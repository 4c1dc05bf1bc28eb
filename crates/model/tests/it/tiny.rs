//! Tiny models of each family with pseudo-random F32 weights, built in memory: fast enough
//! to exercise the forward pass's bookkeeping (batching, chunking, the cache, errors)
//! without a real model.

use std::sync::Arc;

use gguf::{GgmlType, GgufFile, GgufWriter, Value};
use model::Model;

pub const N_VOCAB: u64 = 50;
pub const N_EMBD: u64 = 64;
pub const N_HEADS: u64 = 4;
pub const N_KV_HEADS: u64 = 2;
pub const HEAD_DIM: u64 = 16;
pub const N_FF: u64 = 96;
pub const SLIDING_WINDOW: u64 = 4;

/// A tensor to be written.
pub struct Tensor {
    pub name: String,
    pub type_id: u32,
    pub dims: Vec<u64>,
    pub data: Vec<u8>,
}

/// The metadata and tensors of a tiny model, editable before it is written.
pub struct Tiny {
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
}

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

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Tiny {
    /// A tiny `architecture` model of `n_layers` layers.
    pub fn new(architecture: &str, n_layers: u64) -> Tiny {
        let mut tiny = Tiny {
            metadata: Vec::new(),
            tensors: Vec::new(),
        };
        let key = |k: &str| format!("{architecture}.{k}");
        tiny.meta("general.architecture", architecture);
        tiny.meta(&key("context_length"), 2048u32);
        tiny.meta(&key("embedding_length"), N_EMBD as u32);
        tiny.meta(&key("block_count"), n_layers as u32);
        tiny.meta(&key("feed_forward_length"), N_FF as u32);
        tiny.meta(&key("attention.head_count"), N_HEADS as u32);
        tiny.meta(&key("attention.head_count_kv"), N_KV_HEADS as u32);
        tiny.meta(&key("attention.layer_norm_rms_epsilon"), 1e-5f32);
        tiny.meta(&key("rope.freq_base"), 10_000f32);
        let gemma = architecture == "gemma3";
        if gemma {
            tiny.meta(&key("attention.sliding_window"), SLIDING_WINDOW as u32);
            tiny.meta(&key("attention.key_length"), HEAD_DIM as u32);
            tiny.meta(&key("attention.value_length"), HEAD_DIM as u32);
        }
        let (q_dim, kv_dim) = (N_HEADS * HEAD_DIM, N_KV_HEADS * HEAD_DIM);
        tiny.matrix("token_embd.weight", N_EMBD, N_VOCAB, 1.0);
        tiny.norm("output_norm.weight", N_EMBD);
        for layer in 0..n_layers {
            let name = |stem: &str| format!("blk.{layer}.{stem}.weight");
            tiny.norm(&name("attn_norm"), N_EMBD);
            tiny.matrix(&name("attn_q"), N_EMBD, q_dim, 0.3);
            tiny.matrix(&name("attn_k"), N_EMBD, kv_dim, 0.3);
            tiny.matrix(&name("attn_v"), N_EMBD, kv_dim, 0.3);
            tiny.matrix(&name("attn_output"), q_dim, N_EMBD, 0.2);
            tiny.norm(&name("ffn_norm"), N_EMBD);
            tiny.matrix(&name("ffn_gate"), N_EMBD, N_FF, 0.2);
            tiny.matrix(&name("ffn_up"), N_EMBD, N_FF, 0.2);
            tiny.matrix(&name("ffn_down"), N_FF, N_EMBD, 0.2);
            if architecture == "qwen2" {
                for (stem, n) in [("attn_q", q_dim), ("attn_k", kv_dim), ("attn_v", kv_dim)] {
                    tiny.vector(&format!("blk.{layer}.{stem}.bias"), n, 0.1);
                }
            }
            if gemma {
                tiny.norm(&name("attn_q_norm"), HEAD_DIM);
                tiny.norm(&name("attn_k_norm"), HEAD_DIM);
                tiny.norm(&name("post_attention_norm"), N_EMBD);
                tiny.norm(&name("post_ffw_norm"), N_EMBD);
            }
        }
        tiny
    }

    pub fn meta(&mut self, key: &str, value: impl Into<Value>) {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.to_string(), value.into()));
    }

    fn seed(&self) -> u64 {
        self.tensors.len() as u64 + 1
    }

    pub fn add(&mut self, name: &str, dims: &[u64], v: &[f32]) {
        self.tensors.push(Tensor {
            name: name.to_string(),
            type_id: GgmlType::F32.id(),
            dims: dims.to_vec(),
            data: f32_bytes(v),
        });
    }

    fn matrix(&mut self, name: &str, n_cols: u64, n_rows: u64, scale: f32) {
        let v = values((n_cols * n_rows) as usize, self.seed(), scale);
        self.add(name, &[n_cols, n_rows], &v);
    }

    fn vector(&mut self, name: &str, n: u64, scale: f32) {
        let v = values(n as usize, self.seed(), scale);
        self.add(name, &[n], &v);
    }

    /// Norm weights around 1.
    fn norm(&mut self, name: &str, n: u64) {
        let v: Vec<f32> = values(n as usize, self.seed(), 0.2)
            .iter()
            .map(|x| 1.0 + x)
            .collect();
        self.add(name, &[n], &v);
    }

    pub fn tensor_mut(&mut self, name: &str) -> &mut Tensor {
        self.tensors
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("tiny model has no tensor {name}"))
    }

    /// Converts every matrix but the embeddings to `ggml_type` (a quantized type whose
    /// blocks divide the rows), so the loader repacks them.
    pub fn quantize_matrices(&mut self, dtype: kernels::DType) {
        for t in self.tensors.iter_mut() {
            if t.dims.len() != 2 || t.name.starts_with("token_embd") {
                continue;
            }
            let values: Vec<f32> = t
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let n_cols = t.dims[0] as usize;
            let row_bytes = dtype.row_bytes(n_cols).expect("whole blocks");
            let mut data = vec![0u8; row_bytes * values.len() / n_cols];
            for (src, dst) in values
                .chunks_exact(n_cols)
                .zip(data.chunks_exact_mut(row_bytes))
            {
                kernels::kernels().quantize_row(dtype, src, dst);
            }
            t.type_id = dtype as u32;
            t.data = data;
        }
    }

    /// Writes the model as a GGUF file at `path`.
    pub fn write(&self, path: &std::path::Path) {
        let mut writer = GgufWriter::new();
        for (key, value) in &self.metadata {
            writer.add_metadata(key.clone(), value.clone());
        }
        for t in &self.tensors {
            writer.add_tensor_with_type_id(t.name.clone(), t.type_id, &t.dims, t.data.clone());
        }
        std::fs::write(path, writer.to_bytes()).expect("temporary files are writable");
    }

    pub fn remove(&mut self, name: &str) {
        self.tensors.retain(|t| t.name != name);
    }

    pub fn file(&self) -> Arc<GgufFile> {
        let mut writer = GgufWriter::new();
        for (key, value) in &self.metadata {
            writer.add_metadata(key.clone(), value.clone());
        }
        for t in &self.tensors {
            writer.add_tensor_with_type_id(t.name.clone(), t.type_id, &t.dims, t.data.clone());
        }
        Arc::new(GgufFile::from_bytes(writer.to_bytes()).expect("tiny model files are well-formed"))
    }

    pub fn load(&self) -> Result<Model, model::ModelError> {
        Model::load(self.file())
    }
}

/// Tiny models of every family, by name.
pub fn families() -> Vec<(&'static str, Model)> {
    [("llama", 2), ("qwen2", 2), ("gemma3", 6)]
        .into_iter()
        .map(|(arch, layers)| {
            let model = Tiny::new(arch, layers)
                .load()
                .unwrap_or_else(|e| panic!("tiny {arch} model loads: {e}"));
            (arch, model)
        })
        .collect()
}
