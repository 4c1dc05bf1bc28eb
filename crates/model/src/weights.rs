//! Binding a file's tensors to the weights of a family, checking each one's shape, type
//! and size, and refusing files with tensors the family does not use.

use gguf::{GgufFile, TensorInfo};
use std::sync::Arc;

use kernels::{kernels, DType, PackedMatrix, WeightView};

use crate::config::ModelConfig;
use crate::family::{Family, Need, Output, TensorNames};
use crate::ModelError;

/// A weight matrix in the mapped file: `n_rows` rows of `n_cols` values.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    /// Index into the file's tensor list.
    tensor: usize,
    pub dtype: DType,
    pub n_rows: usize,
    pub n_cols: usize,
    /// Bytes of one row.
    pub row_bytes: usize,
    /// The copy repacked for the matmul kernels, when the type has a packed layout.
    pub packed: Option<Arc<PackedMatrix>>,
}

impl Matrix {
    /// The matrix as the kernels take it.
    pub fn view<'f>(&self, file: &'f GgufFile) -> WeightView<'f> {
        WeightView {
            dtype: self.dtype,
            data: file.tensor_data(&file.tensors()[self.tensor]),
            n_rows: self.n_rows,
            n_cols: self.n_cols,
        }
    }

    /// Row `row` dequantized into `out` (an embedding lookup).
    pub fn dequantize_row(
        &self,
        file: &GgufFile,
        row: usize,
        out: &mut [f32], // [n_cols]
    ) {
        let data = file.tensor_data(&file.tensors()[self.tensor]);
        let start = row * self.row_bytes;
        kernels().dequantize_row(self.dtype, &data[start..start + self.row_bytes], out);
    }
}

/// The weights of one transformer block. Vectors are copied out of the file as f32.
#[derive(Debug)]
pub(crate) struct LayerWeights {
    pub attn_norm: Vec<f32>,                   // [n_embd]
    pub attn_q: Matrix,                        // [q_dim rows, n_embd cols]
    pub attn_k: Matrix,                        // [kv_dim, n_embd]
    pub attn_v: Matrix,                        // [kv_dim, n_embd]
    pub attn_q_bias: Option<Vec<f32>>,         // [q_dim]
    pub attn_k_bias: Option<Vec<f32>>,         // [kv_dim]
    pub attn_v_bias: Option<Vec<f32>>,         // [kv_dim]
    pub attn_q_norm: Option<Vec<f32>>,         // [head_dim]
    pub attn_k_norm: Option<Vec<f32>>,         // [head_dim]
    pub attn_output: Matrix,                   // [n_embd, q_dim]
    pub attn_output_bias: Option<Vec<f32>>,    // [n_embd]
    pub post_attention_norm: Option<Vec<f32>>, // [n_embd]
    pub ffn_norm: Vec<f32>,                    // [n_embd]
    pub ffn_gate: Matrix,                      // [n_ff, n_embd]
    pub ffn_up: Matrix,                        // [n_ff, n_embd]
    pub ffn_down: Matrix,                      // [n_embd, n_ff]
    pub post_ffw_norm: Option<Vec<f32>>,       // [n_embd]
}

/// Every weight of a model.
#[derive(Debug)]
pub(crate) struct Weights {
    pub token_embd: Matrix,           // [n_vocab, n_embd]
    pub output_norm: Vec<f32>,        // [n_embd]
    pub output: Matrix,               // [n_vocab, n_embd]
    pub rope_freqs: Option<Vec<f32>>, // [n_rot / 2]
    pub layers: Vec<LayerWeights>,
}

/// Looks tensors up by name, checks them and remembers which were used.
pub(crate) struct Binder<'f> {
    file: &'f GgufFile,
    architecture: &'static str,
    used: Vec<bool>,
}

/// Dimensions compared as ggml compares them: missing trailing dimensions count as 1.
fn same_shape(got: &[u64], expected: &[u64]) -> bool {
    let n = got.len().max(expected.len());
    (0..n).all(|i| got.get(i).copied().unwrap_or(1) == expected.get(i).copied().unwrap_or(1))
}

impl<'f> Binder<'f> {
    pub fn new(file: &'f GgufFile, architecture: &'static str) -> Binder<'f> {
        Binder {
            file,
            architecture,
            used: vec![false; file.tensors().len()],
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.file.tensors().iter().position(|t| t.name == name)
    }

    /// The tensor `name` checked to have `dims` (row length first) and a type slm runs
    /// with whole-block rows, and exactly the bytes that implies. `None` when absent.
    fn tensor(
        &mut self,
        name: &str,
        dims: &[usize],
    ) -> Result<Option<(usize, DType, usize)>, ModelError> {
        let Some(index) = self.find(name) else {
            return Ok(None);
        };
        let info: &TensorInfo = &self.file.tensors()[index];
        let expected: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        if !same_shape(&info.dims, &expected) {
            return Err(ModelError::TensorShape {
                name: name.to_string(),
                expected,
                got: info.dims.clone(),
            });
        }
        let unsupported = || ModelError::UnsupportedType {
            name: name.to_string(),
            type_name: info.ggml_type.name().to_string(),
        };
        let dtype = DType::from_ggml_id(info.ggml_type.id()).ok_or_else(unsupported)?;
        let row_len = dims.first().copied().unwrap_or(1);
        let n_rows: usize = dims.iter().skip(1).product();
        let row_bytes = dtype
            .row_bytes(row_len)
            .ok_or_else(|| ModelError::TensorShape {
                name: name.to_string(),
                expected: expected.clone(),
                got: info.dims.clone(),
            })?;
        let total = row_bytes.checked_mul(n_rows).ok_or_else(|| {
            ModelError::Inconsistent(format!("tensor {name} is too large to address"))
        })?;
        let got = self.file.tensor_data(info).len();
        if got != total {
            return Err(ModelError::TensorSize {
                name: name.to_string(),
                expected: total as u64,
                got: got as u64,
            });
        }
        self.used[index] = true;
        Ok(Some((index, dtype, row_bytes)))
    }

    fn missing(&self, name: &str) -> ModelError {
        ModelError::MissingTensor {
            name: name.to_string(),
            architecture: self.architecture.to_string(),
        }
    }

    /// A matrix of `n_rows` rows of `n_cols` values, if present.
    pub fn optional_matrix(
        &mut self,
        name: &str,
        n_cols: usize,
        n_rows: usize,
    ) -> Result<Option<Matrix>, ModelError> {
        Ok(self
            .tensor(name, &[n_cols, n_rows])?
            .map(|(tensor, dtype, row_bytes)| Matrix {
                tensor,
                dtype,
                n_rows,
                n_cols,
                row_bytes,
                packed: None,
            }))
    }

    /// A required matrix.
    pub fn matrix(
        &mut self,
        name: &str,
        n_cols: usize,
        n_rows: usize,
    ) -> Result<Matrix, ModelError> {
        self.optional_matrix(name, n_cols, n_rows)?
            .ok_or_else(|| self.missing(name))
    }

    /// A vector of `n` values as f32, if present.
    pub fn optional_vector(
        &mut self,
        name: &str,
        n: usize,
    ) -> Result<Option<Vec<f32>>, ModelError> {
        let Some((tensor, dtype, _)) = self.tensor(name, &[n])? else {
            return Ok(None);
        };
        let data = self.file.tensor_data(&self.file.tensors()[tensor]);
        let mut values = vec![0.0f32; n];
        kernels().dequantize_row(dtype, data, &mut values);
        Ok(Some(values))
    }

    /// A required vector.
    pub fn vector(&mut self, name: &str, n: usize) -> Result<Vec<f32>, ModelError> {
        self.optional_vector(name, n)?
            .ok_or_else(|| self.missing(name))
    }

    /// A vector the family `need`s.
    pub fn needed_vector(
        &mut self,
        name: &str,
        n: usize,
        need: Need,
    ) -> Result<Option<Vec<f32>>, ModelError> {
        match need {
            Need::Required => self.vector(name, n).map(Some),
            Need::Optional => self.optional_vector(name, n),
            Need::Absent => Ok(None),
        }
    }

    /// Fails on the first tensor nothing bound: a file with extra tensors is a variant
    /// the description does not cover.
    pub fn finish(self) -> Result<(), ModelError> {
        match self.used.iter().position(|&used| !used) {
            Some(index) => Err(ModelError::UnusedTensor {
                name: self.file.tensors()[index].name.clone(),
                architecture: self.architecture.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// The embedding matrix, found before the configuration because it gives `n_vocab`.
pub(crate) fn token_embd(
    binder: &mut Binder,
    family: &Family,
    n_embd: usize,
) -> Result<Matrix, ModelError> {
    let name = TensorNames::global(family.names.token_embd, "weight");
    let index = binder.find(&name).ok_or_else(|| binder.missing(&name))?;
    let dims = binder.file.tensors()[index].dims.clone();
    let n_vocab = match dims.as_slice() {
        [_, rows, rest @ ..] if rest.iter().all(|&d| d == 1) => usize::try_from(*rows).ok(),
        _ => None,
    }
    .filter(|&n| n > 0)
    .ok_or_else(|| ModelError::TensorShape {
        name: name.clone(),
        expected: vec![n_embd as u64, 0],
        got: dims.clone(),
    })?;
    binder.matrix(&name, n_embd, n_vocab)
}

/// Binds every weight of a `family` model with dimensions `config`.
pub(crate) fn bind(
    binder: &mut Binder,
    family: &Family,
    config: &ModelConfig,
    token_embd: Matrix,
) -> Result<Weights, ModelError> {
    let names = family.names;
    let n_embd = config.n_embd;
    let output_norm = binder.vector(&TensorNames::global(names.output_norm, "weight"), n_embd)?;
    let output_name = TensorNames::global(names.output, "weight");
    let output = match (
        binder.optional_matrix(&output_name, n_embd, config.n_vocab)?,
        family.output,
    ) {
        (Some(m), _) => m,
        (None, Output::TiedWhenAbsent) => token_embd.clone(),
        (None, Output::Own) => return Err(binder.missing(&output_name)),
    };
    let rope_freqs = binder.needed_vector(
        &TensorNames::global(names.rope_freqs, "weight"),
        config.n_rot / 2,
        family.rope_freqs,
    )?;
    let layers = (0..config.n_layers)
        .map(|layer_idx| bind_layer(binder, family, config, layer_idx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Weights {
        token_embd,
        output_norm,
        output,
        rope_freqs,
        layers,
    })
}

fn bind_layer(
    binder: &mut Binder,
    family: &Family,
    config: &ModelConfig,
    layer_idx: usize,
) -> Result<LayerWeights, ModelError> {
    let names = family.names;
    let weight = |stem: &str| TensorNames::layer(layer_idx, stem, "weight");
    let bias = |stem: &str| TensorNames::layer(layer_idx, stem, "bias");
    let (n_embd, q_dim, kv_dim, n_ff) =
        (config.n_embd, config.q_dim(), config.kv_dim(), config.n_ff);
    let head_dim = config.head_dim;
    let qk_norm = if family.qk_norm {
        Need::Required
    } else {
        Need::Absent
    };
    let post_norm = if family.post_norms {
        Need::Required
    } else {
        Need::Absent
    };
    Ok(LayerWeights {
        attn_norm: binder.vector(&weight(names.attn_norm), n_embd)?,
        attn_q: binder.matrix(&weight(names.attn_q), n_embd, q_dim)?,
        attn_k: binder.matrix(&weight(names.attn_k), n_embd, kv_dim)?,
        attn_v: binder.matrix(&weight(names.attn_v), n_embd, kv_dim)?,
        attn_q_bias: binder.needed_vector(&bias(names.attn_q), q_dim, family.qkv_bias)?,
        attn_k_bias: binder.needed_vector(&bias(names.attn_k), kv_dim, family.qkv_bias)?,
        attn_v_bias: binder.needed_vector(&bias(names.attn_v), kv_dim, family.qkv_bias)?,
        attn_q_norm: binder.needed_vector(&weight(names.attn_q_norm), head_dim, qk_norm)?,
        attn_k_norm: binder.needed_vector(&weight(names.attn_k_norm), head_dim, qk_norm)?,
        attn_output: binder.matrix(&weight(names.attn_output), q_dim, n_embd)?,
        attn_output_bias: binder.needed_vector(
            &bias(names.attn_output),
            n_embd,
            family.attn_output_bias,
        )?,
        post_attention_norm: binder.needed_vector(
            &weight(names.post_attention_norm),
            n_embd,
            post_norm,
        )?,
        ffn_norm: binder.vector(&weight(names.ffn_norm), n_embd)?,
        ffn_gate: binder.matrix(&weight(names.ffn_gate), n_embd, n_ff)?,
        ffn_up: binder.matrix(&weight(names.ffn_up), n_embd, n_ff)?,
        ffn_down: binder.matrix(&weight(names.ffn_down), n_ff, n_embd)?,
        post_ffw_norm: binder.needed_vector(&weight(names.post_ffw_norm), n_embd, post_norm)?,
    })
}

impl Weights {
    /// Every matrix a forward pass multiplies by (not the embedding lookup table).
    pub(crate) fn matmul_matrices(&mut self) -> impl Iterator<Item = &mut Matrix> {
        self.layers
            .iter_mut()
            .flat_map(|l| {
                [
                    &mut l.attn_q,
                    &mut l.attn_k,
                    &mut l.attn_v,
                    &mut l.attn_output,
                    &mut l.ffn_gate,
                    &mut l.ffn_up,
                    &mut l.ffn_down,
                ]
            })
            .chain(std::iter::once(&mut self.output))
    }

    /// Repacks every matrix whose type has a packed layout; returns the bytes the
    /// copies take.
    pub fn pack(&mut self, file: &GgufFile) -> usize {
        let mut bytes = 0;
        for m in self.matmul_matrices() {
            let view = m.view(file);
            if let Some(packed) = kernels::pack(&view) {
                bytes += packed.size_bytes();
                m.packed = Some(Arc::new(packed));
                // The packed copy is what the kernels read from now on; without this the
                // first load (the one that fills the repacked-weights cache) would hold
                // the model file and its repacked copy resident at once.
                file.release(view.data);
            }
        }
        bytes
    }
}
