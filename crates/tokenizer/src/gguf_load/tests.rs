use gguf::{Array, GgufFile, GgufWriter, Value};

use crate::tests::byte_level_vocab;
use crate::{Tokenizer, TokenizerError};

/// A GGUF file holding `vocab` as tokenizer metadata, plus `extra` entries.
fn gguf_of(vocab: &crate::Vocab, extra: &[(&str, Value)]) -> Result<GgufFile, gguf::GgufError> {
    let mut writer = GgufWriter::new();
    writer.add_metadata("tokenizer.ggml.model", Value::String(vocab.model.clone()));
    if let Some(pre) = &vocab.pre {
        writer.add_metadata("tokenizer.ggml.pre", Value::String(pre.clone()));
    }
    writer.add_metadata(
        "tokenizer.ggml.tokens",
        Value::Array(Array::String(vocab.tokens.clone())),
    );
    if let Some(types) = &vocab.token_types {
        writer.add_metadata(
            "tokenizer.ggml.token_type",
            Value::Array(Array::I32(types.clone())),
        );
    }
    if let Some(merges) = &vocab.merges {
        writer.add_metadata(
            "tokenizer.ggml.merges",
            Value::Array(Array::String(merges.clone())),
        );
    }
    for (key, value) in extra {
        writer.add_metadata(*key, value.clone());
    }
    GgufFile::from_bytes(writer.to_bytes())
}

fn load(extra: &[(&str, Value)]) -> Result<Tokenizer, TokenizerError> {
    let vocab = byte_level_vocab("gpt-2", &["h e", "he l"], &[("<|im_end|>", 3)]);
    let file = gguf_of(&vocab, extra).map_err(|e| panic!("writing a test file: {e}"))?;
    Tokenizer::from_gguf(&file)
}

#[test]
fn reads_tokens_merges_and_ids() -> Result<(), TokenizerError> {
    let t = load(&[
        ("tokenizer.ggml.eos_token_id", Value::U32(258)),
        ("tokenizer.ggml.bos_token_id", Value::I32(5)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
    ])?;
    // 256 bytes, "he", "hel", "<|im_end|>".
    assert_eq!(t.n_vocab(), 259);
    assert_eq!(t.eos(), Some(258));
    assert_eq!(t.bos(), Some(5));
    assert_eq!(
        t.encode("hel", true, false),
        [5, t.token_id("hel").unwrap_or(0)]
    );
    assert!(t.is_eog(258));
    Ok(())
}

#[test]
fn missing_or_mistyped_keys_are_errors() {
    let mut writer = GgufWriter::new();
    writer.add_metadata("tokenizer.ggml.model", Value::String("gpt2".into()));
    let file = GgufFile::from_bytes(writer.to_bytes());
    let error = file.map(|f| Tokenizer::from_gguf(&f).err());
    assert!(matches!(
        error,
        Ok(Some(TokenizerError::MissingKey {
            key: "tokenizer.ggml.tokens"
        }))
    ));

    let error = load(&[("tokenizer.ggml.add_bos_token", Value::U8(1))]).err();
    assert!(matches!(
        error,
        Some(TokenizerError::WrongType {
            key: "tokenizer.ggml.add_bos_token",
            ..
        })
    ));
    let error = load(&[("tokenizer.ggml.eos_token_id", Value::I32(-1))]).err();
    assert!(matches!(error, Some(TokenizerError::WrongType { .. })));
    let message = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("tokenizer.ggml.eos_token_id"), "{message}");
}

#[test]
fn merges_referencing_unknown_tokens_are_errors() {
    let mut vocab = byte_level_vocab("gpt-2", &[], &[]);
    vocab.merges = Some(vec!["Ġ zz".into()]);
    let error = gguf_of(&vocab, &[]).map(|f| Tokenizer::from_gguf(&f).err());
    assert!(matches!(
        error,
        Ok(Some(TokenizerError::MergeUnknownToken { .. }))
    ));
}
