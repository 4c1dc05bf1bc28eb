//! The one error type of this crate.

use thiserror::Error;

/// Why a tokenizer could not be built from a model's metadata.
///
/// Encoding and decoding never fail: every problem a file can have is caught here, at load.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum TokenizerError {
    /// A metadata key the tokenizer needs is absent.
    #[error("the model file has no `{key}`; it was not converted with a tokenizer, re-convert it with llama.cpp's convert_hf_to_gguf.py")]
    MissingKey {
        /// The GGUF metadata key.
        key: &'static str,
    },
    /// A metadata key holds a value of the wrong type.
    #[error("`{key}` is {found}, expected {expected}; the file is damaged or was written by a broken converter")]
    WrongType {
        /// The GGUF metadata key.
        key: &'static str,
        /// What the key should hold.
        expected: &'static str,
        /// What it holds.
        found: String,
    },
    /// `tokenizer.ggml.model` names a tokenizer llama.cpp does not know.
    #[error("unknown tokenizer model '{0}' in tokenizer.ggml.model; slm runs 'gpt2' (byte-level BPE) and 'llama' (SentencePiece)")]
    UnknownModel(String),
    /// `tokenizer.ggml.model` names a tokenizer that slm does not implement.
    #[error("tokenizer model '{0}' is not supported by slm; use a model whose tokenizer is 'gpt2' (byte-level BPE) or 'llama' (SentencePiece)")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer that slm does not implement.
    #[error("pre-tokenizer '{name}' in tokenizer.ggml.pre is not supported by slm; supported: {supported}")]
    UnsupportedPreTokenizer {
        /// The name found in the file.
        name: String,
        /// The names slm knows.
        supported: String,
    },
    /// The vocabulary has no tokens.
    #[error("tokenizer.ggml.tokens is empty; the file has no vocabulary")]
    EmptyVocabulary,
    /// A per-token array is shorter than the token list.
    #[error("{key} has {found} entries for {n_tokens} tokens; the file is damaged")]
    ShortArray {
        /// The GGUF metadata key.
        key: &'static str,
        /// Its length.
        found: usize,
        /// The number of tokens.
        n_tokens: usize,
    },
    /// Two tokens have the same text.
    #[error(
        "duplicate token in vocabulary: {text:?} has ids {first} and {second}; the file is damaged"
    )]
    DuplicateToken {
        /// The token text.
        text: String,
        /// The first id with that text.
        first: u32,
        /// The second id with that text.
        second: u32,
    },
    /// A BPE merge is not of the form "left right".
    #[error(
        "BPE merge {index} ({merge:?}) is not two tokens separated by a space; the file is damaged"
    )]
    MalformedMerge {
        /// Its index (rank) in tokenizer.ggml.merges.
        index: usize,
        /// The merge text.
        merge: String,
    },
    /// A BPE merge names a token, or makes a token, that is not in the vocabulary.
    #[error("BPE merge {index} ({merge:?}) uses or makes {token:?}, which is not in the vocabulary; the file is damaged")]
    MergeUnknownToken {
        /// Its index (rank) in tokenizer.ggml.merges.
        index: usize,
        /// The merge text.
        merge: String,
        /// The missing token text.
        token: String,
    },
    /// The model asks for a special token to be added, but has none.
    #[error("{flag_key} is true, but {id_key} is not set; the file is damaged")]
    MissingSpecialToken {
        /// The key of the flag, e.g. tokenizer.ggml.add_bos_token.
        flag_key: &'static str,
        /// The key of the id, e.g. tokenizer.ggml.bos_token_id.
        id_key: &'static str,
    },
}
