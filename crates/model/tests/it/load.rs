//! Loading: configuration from metadata, and every way a file can be refused.

use gguf::GgmlType;
use model::ModelError;

use crate::tiny::{self, Tiny, HEAD_DIM, N_EMBD, N_FF, N_HEADS, N_KV_HEADS, N_VOCAB};

#[test]
fn tiny_models_report_their_configuration() {
    for (arch, model) in tiny::families() {
        let c = model.config();
        assert_eq!(c.architecture, arch);
        assert_eq!(c.n_vocab as u64, N_VOCAB);
        assert_eq!(c.n_embd as u64, N_EMBD);
        assert_eq!(c.n_heads as u64, N_HEADS);
        assert_eq!(c.n_kv_heads as u64, N_KV_HEADS);
        assert_eq!(c.head_dim as u64, HEAD_DIM);
        assert_eq!(c.n_ff as u64, N_FF);
        assert_eq!(c.n_ctx_train, 2048);
        assert_eq!(
            c.tensor_types,
            vec![("F32".to_string(), model.file().tensors().len())]
        );
        let n_params: u64 = model.file().tensors().iter().map(|t| t.n_elements()).sum();
        assert_eq!(c.n_params, n_params);
        assert!((c.attention_scale - 0.25).abs() < 1e-7);
    }
}

#[test]
fn gemma3_layers_follow_the_sliding_window_pattern() {
    let model = Tiny::new("gemma3", 12).load().unwrap();
    let c = model.config();
    let global: Vec<usize> = (0..12)
        .filter(|&i| c.layers[i].sliding_window.is_none())
        .collect();
    assert_eq!(global, vec![5, 11]);
    for (i, layer) in c.layers.iter().enumerate() {
        if global.contains(&i) {
            assert_eq!(layer.rope_freq_base, 10_000.0);
        } else {
            assert_eq!(layer.sliding_window, Some(tiny::SLIDING_WINDOW as usize));
            assert_eq!(
                layer.rope_freq_base, 10_000.0,
                "local layers default to base 10000"
            );
        }
    }
    let mut t = Tiny::new("gemma3", 6);
    t.meta("gemma3.rope.freq_base", 1_000_000f32);
    let model = t.load().unwrap();
    assert_eq!(model.config().layers[0].rope_freq_base, 10_000.0);
    assert_eq!(model.config().layers[5].rope_freq_base, 1_000_000.0);
}

#[test]
fn llama_without_output_weight_ties_to_embeddings_and_with_it_uses_it() {
    let mut t = Tiny::new("llama", 1);
    assert!(t.load().is_ok());
    let data: Vec<u8> = std::iter::repeat_n(0.5f32.to_le_bytes(), (N_EMBD * N_VOCAB) as usize)
        .flatten()
        .collect();
    t.tensors.push(tiny::Tensor {
        name: "output.weight".into(),
        type_id: GgmlType::F32.id(),
        dims: vec![N_EMBD, N_VOCAB],
        data,
    });
    assert!(t.load().is_ok());
}

fn load_error(t: &Tiny) -> String {
    match t.load() {
        Ok(_) => panic!("the file should have been refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wrong_shape_names_the_tensor_and_both_shapes() {
    let mut t = Tiny::new("llama", 2);
    let tensor = t.tensor_mut("blk.1.attn_k.weight");
    tensor.dims = vec![N_EMBD, 16];
    tensor.data.truncate((N_EMBD * 16 * 4) as usize);
    let err = load_error(&t);
    assert!(err.contains("blk.1.attn_k.weight"), "{err}");
    assert!(
        err.contains("[64, 16]") && err.contains("[64, 32]"),
        "{err}"
    );
}

#[test]
fn unsupported_type_is_named() {
    let mut t = Tiny::new("llama", 1);
    let tensor = t.tensor_mut("blk.0.ffn_up.weight");
    // IQ4_NL: blocks of 32 values in 18 bytes, a type slm has no kernels for.
    tensor.type_id = GgmlType::IQ4_NL.id();
    tensor.data = vec![0u8; (N_EMBD / 32 * 18 * N_FF) as usize];
    let err = load_error(&t);
    assert_eq!(
        err.split(';').next().unwrap(),
        "tensor blk.0.ffn_up.weight has type IQ4_NL, which slm cannot run"
    );
}

#[test]
fn missing_pieces_are_named() {
    let mut t = Tiny::new("llama", 2);
    t.remove("blk.1.ffn_down.weight");
    assert!(load_error(&t).contains("tensor blk.1.ffn_down.weight is missing"));

    let mut t = Tiny::new("qwen2", 1);
    t.remove("blk.0.attn_k.bias");
    assert!(load_error(&t).contains("tensor blk.0.attn_k.bias is missing"));

    let mut t = Tiny::new("gemma3", 6);
    t.remove("blk.3.post_ffw_norm.weight");
    assert!(load_error(&t).contains("blk.3.post_ffw_norm.weight"));

    let mut t = Tiny::new("gemma3", 6);
    t.metadata
        .retain(|(k, _)| k != "gemma3.attention.sliding_window");
    assert!(load_error(&t).contains("gemma3.attention.sliding_window"));

    let mut t = Tiny::new("llama", 1);
    t.metadata
        .retain(|(k, _)| k != "llama.attention.layer_norm_rms_epsilon");
    assert!(load_error(&t).contains("llama.attention.layer_norm_rms_epsilon"));
}

#[test]
fn unknown_and_absent_architectures_are_refused() {
    let mut t = Tiny::new("llama", 1);
    t.meta("general.architecture", "mamba");
    assert!(
        matches!(t.load(), Err(ModelError::UnknownArchitecture { architecture }) if architecture == "mamba")
    );
    let mut t = Tiny::new("llama", 1);
    t.metadata.retain(|(k, _)| k != "general.architecture");
    assert!(matches!(t.load(), Err(ModelError::MissingArchitecture)));
}

#[test]
fn extra_tensors_are_refused() {
    let mut t = Tiny::new("llama", 1);
    t.add("blk.0.ffn_up.bias", &[N_FF], &vec![0.0; N_FF as usize]);
    assert!(load_error(&t).contains("tensor blk.0.ffn_up.bias is not part of a llama model"));
    // Biases a family does not have are refused too.
    let mut t = Tiny::new("gemma3", 6);
    t.add(
        "blk.0.attn_q.bias",
        &[N_HEADS * HEAD_DIM],
        &vec![0.0; (N_HEADS * HEAD_DIM) as usize],
    );
    assert!(load_error(&t).contains("blk.0.attn_q.bias"));
}

#[test]
fn inconsistent_dimensions_are_refused() {
    let mut t = Tiny::new("llama", 1);
    t.meta("llama.attention.head_count_kv", 3u32);
    assert!(load_error(&t).contains("not a multiple of head_count_kv"));
    let mut t = Tiny::new("llama", 1);
    t.meta("llama.block_count", 1_000_000u32);
    assert!(load_error(&t).contains("block_count"));
    let mut t = Tiny::new("llama", 1);
    t.meta("llama.embedding_length", "wide");
    assert!(load_error(&t).contains("llama.embedding_length"));
}

#[test]
fn yarn_rope_scaling_is_refused_and_linear_accepted() {
    let mut t = Tiny::new("llama", 1);
    t.meta("llama.rope.scaling.type", "yarn");
    t.meta("llama.rope.scaling.factor", 4f32);
    assert!(matches!(t.load(), Err(ModelError::UnsupportedRopeScaling { kind }) if kind == "yarn"));
    let mut t = Tiny::new("llama", 1);
    t.meta("llama.rope.scaling.type", "linear");
    t.meta("llama.rope.scaling.factor", 4f32);
    assert_eq!(t.load().unwrap().config().rope_freq_scale, 0.25);
}

#[test]
fn llama_rope_freqs_are_accepted() {
    let mut t = Tiny::new("llama", 1);
    t.add(
        "rope_freqs.weight",
        &[HEAD_DIM / 2],
        &vec![1.0; (HEAD_DIM / 2) as usize],
    );
    assert!(t.load().is_ok());
}
