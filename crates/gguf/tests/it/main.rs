//! Integration tests of the gguf crate: malformed files, fuzzing, and the real models.

mod fuzz;
mod malformed;
mod real_models;

use gguf::{Array, GgmlType, GgufWriter};

/// A small valid file: several metadata kinds, an array of strings, a nested array and
/// three tensors of different types.
fn sample_writer() -> GgufWriter {
    let mut writer = GgufWriter::new();
    writer
        .add_metadata("general.architecture", "llama")
        .add_metadata("llama.context_length", 2048u32)
        .add_metadata("llama.attention.layer_norm_rms_epsilon", 1e-5f32)
        .add_metadata("tokenizer.ggml.add_bos_token", true)
        .add_metadata(
            "tokenizer.ggml.tokens",
            Array::from(vec!["<s>", "</s>", "hello", "wörld"]),
        )
        .add_metadata("tokenizer.ggml.token_type", vec![3i32, 3, 1, 1])
        .add_metadata(
            "test.nested",
            Array::Array(vec![Array::U16(vec![1, 2]), Array::from(vec!["x"])]),
        )
        .add_metadata("test.big", u64::MAX)
        .add_tensor(
            "token_embd.weight",
            GgmlType::F32,
            &[8, 4],
            vec![0x11; 8 * 4 * 4],
        )
        .add_tensor(
            "blk.0.attn_q.weight",
            GgmlType::Q8_0,
            &[32, 3],
            vec![0x22; 3 * 34],
        )
        .add_tensor(
            "output.weight",
            GgmlType::Q4_K,
            &[256, 2],
            vec![0x33; 2 * 144],
        );
    writer
}

/// The bytes of [`sample_writer`].
fn sample() -> Vec<u8> {
    sample_writer().to_bytes()
}

/// Position of the first occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .unwrap_or_else(|| panic!("{:?} is in the sample", String::from_utf8_lossy(needle)))
}
