//! The bytes one generated token reads, the numerator of the memory-bandwidth bound.
//!
//! Decoding one token multiplies one activation row by every weight matrix, so each matrix
//! is read whole, once: from its repacked copy when the loader repacked it, else from the
//! mapped file. The token-embedding matrix is the exception: a lookup reads one row, unless
//! the output projection is tied to it and reads it all. Norm and bias vectors are copied
//! out of the file as f32 at load and are a rounding error; they are left out. Attention
//! reads the keys and values (f16) of every position it sees, in every layer.

use gguf::{GgufFile, TensorInfo};
use kernels::{DType, PackedFormat};
use model::family::{Family, TensorNames};

/// Bytes of an f16 key or value.
const KV_ELEMENT_BYTES: u128 = 2;

/// Weight bytes a generated token reads from `file` (a model of `family`) and from the
/// `repacked_bytes` of packed copies the loader made: every matrix whole, the token
/// embedding one row, or whole when no output matrix is present (tied). With repacking
/// on (`repacked_bytes > 0`), every matrix the output projection or a layer multiplies
/// by whose type has a packed layout is read from its copy instead of the file.
pub fn weight_bytes_per_token(file: &GgufFile, family: &Family, repacked_bytes: u64) -> u64 {
    let token_embd = TensorNames::global(family.names.token_embd, "weight");
    let output = TensorNames::global(family.names.output, "weight");
    let tied = file.tensor(&output).is_none();
    let packed = |t: &TensorInfo| {
        repacked_bytes > 0
            && DType::from_ggml_id(t.ggml_type.id())
                .and_then(PackedFormat::for_dtype)
                .is_some()
    };
    file.tensors()
        .iter()
        .filter(|t| t.dims.iter().skip(1).any(|&d| d > 1))
        .map(|t| match (t.name == token_embd, tied) {
            // Only looked up: one row, from the file.
            (true, false) => t.n_bytes / t.n_rows().max(1),
            _ if packed(t) => 0,
            _ => t.n_bytes,
        })
        .fold(repacked_bytes, u64::saturating_add)
}

/// KV cache bytes a generated token reads, averaged over `n_gen` tokens generated after
/// `depth` cached ones (at least one token is assumed): the token at position `p` sees
/// `p + 1` positions in a global layer and at most `window` in a sliding-window one, and
/// reads a key and a value row of `kv_dim` f16 values for each. `windows` has one entry
/// per layer.
pub fn kv_bytes_per_token(
    windows: &[Option<usize>],
    kv_dim: usize,
    depth: usize,
    n_gen: usize,
) -> u64 {
    let n_gen = n_gen.max(1) as u128;
    // Positions seen by the generated tokens: p + 1 for p in depth..depth + n_gen.
    let first = depth as u128 + 1;
    let last = depth as u128 + n_gen;
    let positions: u128 = windows
        .iter()
        .map(|window| match window.map(|w| w as u128) {
            Some(w) if w < first => w * n_gen,
            Some(w) if w < last => sum_range(first, w) + (last - w) * w,
            _ => sum_range(first, last),
        })
        .sum();
    let bytes = positions * 2 * kv_dim as u128 * KV_ELEMENT_BYTES / n_gen;
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// `first + (first + 1) + … + last`.
fn sum_range(first: u128, last: u128) -> u128 {
    (first + last) * (last + 1 - first) / 2
}
