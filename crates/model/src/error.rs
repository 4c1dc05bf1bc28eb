//! The model crate's error type.

use thiserror::Error;

/// What went wrong loading a model or running it.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The file names no architecture.
    #[error("the file has no general.architecture key; it is not a model slm can run")]
    MissingArchitecture,

    /// The architecture is not one slm has a description for.
    #[error(
        "architecture {architecture} is not supported; slm runs llama, qwen2 and gemma3 models"
    )]
    UnknownArchitecture {
        /// `general.architecture` as the file gives it.
        architecture: String,
    },

    /// A metadata key the architecture needs is absent.
    #[error("metadata key {key} is missing; the file is incomplete or not a {architecture} model")]
    MissingKey {
        /// The full key.
        key: String,
        /// The architecture that needs it.
        architecture: String,
    },

    /// A metadata value has the wrong type or an unusable value.
    #[error("metadata key {key} is {got}, expected {expected}; the file is damaged or of an unsupported variant")]
    BadKey {
        /// The full key.
        key: String,
        /// What slm needs.
        expected: String,
        /// What the file holds.
        got: String,
    },

    /// The hyperparameters contradict each other.
    #[error(
        "inconsistent model dimensions: {0}; the file is damaged or of an unsupported variant"
    )]
    Inconsistent(String),

    /// The file asks for a rope scaling slm does not implement.
    #[error("rope scaling {kind} is not supported; use a file without it")]
    UnsupportedRopeScaling {
        /// `rope.scaling.type` as the file gives it.
        kind: String,
    },

    /// A tensor the architecture needs is absent.
    #[error("tensor {name} is missing; the file is incomplete or not a {architecture} model")]
    MissingTensor {
        /// The tensor's name.
        name: String,
        /// The architecture that needs it.
        architecture: String,
    },

    /// A tensor has other dimensions than the metadata implies.
    #[error("tensor {name} has shape {got:?}, expected {expected:?}; the file is damaged or inconsistent")]
    TensorShape {
        /// The tensor's name.
        name: String,
        /// Dimensions from the metadata, row length first.
        expected: Vec<u64>,
        /// Dimensions in the file.
        got: Vec<u64>,
    },

    /// A tensor's element type has no kernels in slm.
    #[error("tensor {name} has type {type_name}, which slm cannot run; use a file quantized to F32, F16, BF16, Q4_0 … Q8_0 or Q2_K … Q6_K")]
    UnsupportedType {
        /// The tensor's name.
        name: String,
        /// The type's name as GGUF tools print it.
        type_name: String,
    },

    /// A tensor's data is shorter or longer than its shape and type imply.
    #[error(
        "tensor {name} holds {got} bytes, expected {expected}; the file is truncated or damaged"
    )]
    TensorSize {
        /// The tensor's name.
        name: String,
        /// Bytes its shape and type need.
        expected: u64,
        /// Bytes the file gives it.
        got: u64,
    },

    /// The file holds a tensor the architecture's description does not use, so running
    /// the model without it would silently compute something else.
    #[error("tensor {name} is not part of a {architecture} model as slm knows it; slm cannot run this file")]
    UnusedTensor {
        /// The tensor's name.
        name: String,
        /// The architecture.
        architecture: String,
    },

    /// A forward call got no tokens.
    #[error("no tokens to evaluate")]
    EmptyBatch,

    /// A token id is outside the vocabulary.
    #[error("token {token} is outside the vocabulary of {n_vocab} tokens")]
    TokenOutOfRange {
        /// The offending id.
        token: u32,
        /// Vocabulary size.
        n_vocab: usize,
    },

    /// The KV cache cannot take the batch.
    #[error("the context is full: {len} tokens cached + {n_tokens} new exceed its {capacity}; start a new context or make it larger")]
    ContextFull {
        /// Tokens already cached.
        len: usize,
        /// Tokens in the batch.
        n_tokens: usize,
        /// Cache capacity in tokens.
        capacity: usize,
    },

    /// More logit rows were requested than there are tokens.
    #[error("asked for the logits of the last {requested} tokens of a batch of {n_tokens}")]
    TooManyLogitRows {
        /// Rows requested.
        requested: usize,
        /// Tokens in the batch.
        n_tokens: usize,
    },

    /// The cache was made for another model.
    #[error("the KV cache was made for another model; make one with this model's new_cache")]
    CacheMismatch,
    /// The KV pool has too few free blocks for the batch.
    #[error("the KV cache needs {needed} more blocks but only {free} of {total} are free; finish or cancel a sequence first, or give the cache more memory")]
    KvPoolFull {
        /// Blocks the batch needs.
        needed: usize,
        /// Blocks free.
        free: usize,
        /// Blocks in the pool.
        total: usize,
    },
    /// More rows than one batch may hold.
    #[error("a batch of {n_rows} rows exceeds the limit of {max}; split it into smaller steps")]
    BatchTooLarge {
        /// Rows in the batch.
        n_rows: usize,
        /// The limit, [`crate::MAX_BATCH`].
        max: usize,
    },
}
