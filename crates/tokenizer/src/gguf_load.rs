//! Reading the `tokenizer.*` keys of a GGUF file, with the types llama.cpp accepts.

use std::borrow::Cow;

use gguf::{GgufFile, Value};

use crate::vocab::{SpecialTokenIds, VocabRef};
use crate::{load, Tokenizer, TokenizerError};

impl Tokenizer {
    /// Builds the tokenizer of a GGUF model file from its `tokenizer.*` metadata.
    ///
    /// Fails when the file has no vocabulary, a key of the wrong type, a tokenizer or
    /// pre-tokenizer slm does not run, or inconsistent tokens and merges.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let model = string(file, "tokenizer.ggml.model")?.ok_or(TokenizerError::MissingKey {
            key: "tokenizer.ggml.model",
        })?;
        let tokens = strings(file, "tokenizer.ggml.tokens")?.ok_or(TokenizerError::MissingKey {
            key: "tokenizer.ggml.tokens",
        })?;
        let n_tokens = tokens.len() as u64;
        // The older FIM keys are read after the newer ones by llama.cpp, so they win.
        let newer_or_older =
            |newer: Option<u64>, older: Option<u64>| older.filter(|&id| id < n_tokens).or(newer);
        let special = SpecialTokenIds {
            bos: id(file, "tokenizer.ggml.bos_token_id")?,
            eos: id(file, "tokenizer.ggml.eos_token_id")?,
            eot: id(file, "tokenizer.ggml.eot_token_id")?,
            eom: id(file, "tokenizer.ggml.eom_token_id")?,
            unk: id(file, "tokenizer.ggml.unknown_token_id")?,
            sep: id(file, "tokenizer.ggml.seperator_token_id")?,
            pad: id(file, "tokenizer.ggml.padding_token_id")?,
            mask: id(file, "tokenizer.ggml.mask_token_id")?,
            fim_pre: newer_or_older(
                id(file, "tokenizer.ggml.fim_pre_token_id")?,
                id(file, "tokenizer.ggml.prefix_token_id")?,
            ),
            fim_suf: newer_or_older(
                id(file, "tokenizer.ggml.fim_suf_token_id")?,
                id(file, "tokenizer.ggml.suffix_token_id")?,
            ),
            fim_mid: newer_or_older(
                id(file, "tokenizer.ggml.fim_mid_token_id")?,
                id(file, "tokenizer.ggml.middle_token_id")?,
            ),
            fim_pad: id(file, "tokenizer.ggml.fim_pad_token_id")?,
            fim_rep: id(file, "tokenizer.ggml.fim_rep_token_id")?,
            fim_sep: id(file, "tokenizer.ggml.fim_sep_token_id")?,
        };
        let vocab = VocabRef {
            model,
            pre: string(file, "tokenizer.ggml.pre")?,
            tokens,
            scores: scores(file)?,
            token_types: token_types(file)?,
            merges: strings(file, "tokenizer.ggml.merges")?,
            special,
            add_bos: boolean(file, "tokenizer.ggml.add_bos_token")?,
            add_eos: boolean(file, "tokenizer.ggml.add_eos_token")?,
            add_sep: boolean(file, "tokenizer.ggml.add_sep_token")?,
            add_space_prefix: boolean(file, "tokenizer.ggml.add_space_prefix")?,
            model_name: string(file, "general.name")?,
        };
        load::build(&vocab)
    }
}

fn wrong_type(key: &'static str, expected: &'static str, found: &Value) -> TokenizerError {
    TokenizerError::WrongType {
        key,
        expected,
        found: found.type_name(),
    }
}

fn string<'a>(file: &'a GgufFile, key: &'static str) -> Result<Option<&'a str>, TokenizerError> {
    file.get(key)
        .map(|v| v.as_str().ok_or_else(|| wrong_type(key, "a string", v)))
        .transpose()
}

fn boolean(file: &GgufFile, key: &'static str) -> Result<Option<bool>, TokenizerError> {
    file.get(key)
        .map(|v| v.as_bool().ok_or_else(|| wrong_type(key, "a bool", v)))
        .transpose()
}

/// A token id: any non-negative integer (llama.cpp wants a u32; ids out of range are
/// ignored later, as there).
fn id(file: &GgufFile, key: &'static str) -> Result<Option<u64>, TokenizerError> {
    file.get(key)
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| wrong_type(key, "a non-negative integer", v))
        })
        .transpose()
}

fn strings<'a>(
    file: &'a GgufFile,
    key: &'static str,
) -> Result<Option<&'a [String]>, TokenizerError> {
    file.get(key)
        .map(|v| {
            v.as_array()
                .and_then(|a| a.as_strings())
                .ok_or_else(|| wrong_type(key, "an array of strings", v))
        })
        .transpose()
}

/// `tokenizer.ggml.scores`: f32, or i32 converted to f32, as llama.cpp accepts both.
fn scores(file: &GgufFile) -> Result<Option<Cow<'_, [f32]>>, TokenizerError> {
    const KEY: &str = "tokenizer.ggml.scores";
    let Some(value) = file.get(KEY) else {
        return Ok(None);
    };
    let array = value.as_array();
    if let Some(floats) = array.and_then(|a| a.as_f32s()) {
        return Ok(Some(Cow::Borrowed(floats)));
    }
    if let Some(ints) = array.and_then(|a| a.as_i32s()) {
        return Ok(Some(Cow::Owned(ints.iter().map(|&i| i as f32).collect())));
    }
    Err(wrong_type(KEY, "an array of f32 or i32", value))
}

fn token_types(file: &GgufFile) -> Result<Option<&[i32]>, TokenizerError> {
    const KEY: &str = "tokenizer.ggml.token_type";
    file.get(KEY)
        .map(|v| {
            v.as_array()
                .and_then(|a| a.as_i32s())
                .ok_or_else(|| wrong_type(KEY, "an array of i32", v))
        })
        .transpose()
}

#[cfg(test)]
mod tests;
