//! The tokenizer's input: the `tokenizer.*` metadata of a model file as plain values.

use std::borrow::Cow;

/// Token ids named by the metadata (`tokenizer.ggml.*_token_id`), as stored in the file.
///
/// Ids out of the vocabulary's range are ignored at load, as llama.cpp does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokenIds {
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u64>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u64>,
    /// `tokenizer.ggml.eot_token_id` (end of turn).
    pub eot: Option<u64>,
    /// `tokenizer.ggml.eom_token_id` (end of message).
    pub eom: Option<u64>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u64>,
    /// `tokenizer.ggml.seperator_token_id` (sic, as the GGUF key is spelled).
    pub sep: Option<u64>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad: Option<u64>,
    /// `tokenizer.ggml.mask_token_id`.
    pub mask: Option<u64>,
    /// `tokenizer.ggml.fim_pre_token_id` (or the older `prefix_token_id`).
    pub fim_pre: Option<u64>,
    /// `tokenizer.ggml.fim_suf_token_id` (or the older `suffix_token_id`).
    pub fim_suf: Option<u64>,
    /// `tokenizer.ggml.fim_mid_token_id` (or the older `middle_token_id`).
    pub fim_mid: Option<u64>,
    /// `tokenizer.ggml.fim_pad_token_id`.
    pub fim_pad: Option<u64>,
    /// `tokenizer.ggml.fim_rep_token_id`.
    pub fim_rep: Option<u64>,
    /// `tokenizer.ggml.fim_sep_token_id`.
    pub fim_sep: Option<u64>,
}

/// Everything the tokenizer reads from a model file, as plain values.
///
/// [`crate::Tokenizer::from_vocab`] builds a tokenizer from it, as
/// [`crate::Tokenizer::from_gguf`] does from the same keys of a GGUF file. Optional fields
/// are `None` when the key is absent, and then take llama.cpp's default for the tokenizer
/// model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vocab {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer of a BPE vocabulary.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: the text of each token; the index is the id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores`: SentencePiece merge scores (higher merges first).
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte.
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`: BPE merges "left right", in rank order.
    pub merges: Option<Vec<String>>,
    /// The special token ids.
    pub special: SpecialTokenIds,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_sep_token`.
    pub add_sep: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: Option<bool>,
    /// `general.name`: llama.cpp gives some models' special tokens extra attributes by name.
    pub model_name: Option<String>,
}

/// The metadata borrowed from wherever it lives (a [`Vocab`] or a GGUF file), so that
/// loading copies no token text twice.
pub(crate) struct VocabRef<'a> {
    pub(crate) model: &'a str,
    pub(crate) pre: Option<&'a str>,
    pub(crate) tokens: &'a [String],
    /// Owned when converted from integer scores.
    pub(crate) scores: Option<Cow<'a, [f32]>>,
    pub(crate) token_types: Option<&'a [i32]>,
    pub(crate) merges: Option<&'a [String]>,
    pub(crate) special: SpecialTokenIds,
    pub(crate) add_bos: Option<bool>,
    pub(crate) add_eos: Option<bool>,
    pub(crate) add_sep: Option<bool>,
    pub(crate) add_space_prefix: Option<bool>,
    pub(crate) model_name: Option<&'a str>,
}

impl Vocab {
    pub(crate) fn as_ref(&self) -> VocabRef<'_> {
        VocabRef {
            model: &self.model,
            pre: self.pre.as_deref(),
            tokens: &self.tokens,
            scores: self.scores.as_deref().map(Cow::Borrowed),
            token_types: self.token_types.as_deref(),
            merges: self.merges.as_deref(),
            special: self.special.clone(),
            add_bos: self.add_bos,
            add_eos: self.add_eos,
            add_sep: self.add_sep,
            add_space_prefix: self.add_space_prefix,
            model_name: self.model_name.as_deref(),
        }
    }
}
