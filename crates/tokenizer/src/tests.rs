//! Unit tests on small vocabularies made up here; the real models are tested in tests/it.

use super::*;
use crate::unicode::byte_to_char;

/// A byte-level BPE vocabulary: the 256 byte characters, the results of `merges`, then
/// `specials` (text, GGUF token type).
pub(crate) fn byte_level_vocab(pre: &str, merges: &[&str], specials: &[(&str, i32)]) -> Vocab {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_to_char(b).to_string()).collect();
    for merge in merges {
        let joined = merge.replacen(' ', "", 1);
        if !tokens.contains(&joined) {
            tokens.push(joined);
        }
    }
    let mut types = vec![1; tokens.len()];
    for (text, token_type) in specials {
        tokens.push((*text).to_owned());
        types.push(*token_type);
    }
    Vocab {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens,
        token_types: Some(types),
        merges: Some(merges.iter().map(|m| (*m).to_owned()).collect()),
        ..Vocab::default()
    }
}

/// A SentencePiece vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then `pieces`
/// with their scores.
pub(crate) fn spm_vocab(pieces: &[(&str, f32)]) -> Vocab {
    let mut tokens = vec!["<unk>".to_owned(), "<s>".to_owned(), "</s>".to_owned()];
    let mut types = vec![2, 3, 3];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
        scores.push(0.0);
    }
    for (text, score) in pieces {
        tokens.push((*text).to_owned());
        types.push(1);
        scores.push(*score);
    }
    Vocab {
        model: "llama".into(),
        tokens,
        token_types: Some(types),
        scores: Some(scores),
        ..Vocab::default()
    }
}

fn texts(tokenizer: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&id| tokenizer.token_text(id).unwrap_or("?").to_owned())
        .collect()
}

const HELLO_MERGES: &[&str] = &[
    "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld",
];

#[test]
fn bpe_merges_by_rank() -> Result<(), TokenizerError> {
    let t = Tokenizer::from_vocab(&byte_level_vocab("gpt-2", HELLO_MERGES, &[]))?;
    let ids = t.encode("hello world", false, false);
    assert_eq!(texts(&t, &ids), ["hello", "Ġworld"]);
    assert_eq!(t.decode(&ids), "hello world");
    let ids = t.encode("héllo wörld", false, false);
    assert_eq!(t.decode(&ids), "héllo wörld");
    assert_eq!(
        texts(&t, &t.encode("yellow", false, false)),
        ["y", "e", "ll", "o", "w"]
    );
    Ok(())
}

#[test]
fn special_tokens_and_eog() -> Result<(), TokenizerError> {
    let specials = [("<|im_start|>", 3), ("<|im_end|>", 3), ("<tool>", 4)];
    let t = Tokenizer::from_vocab(&byte_level_vocab("qwen2", HELLO_MERGES, &specials))?;
    let start = t.token_id("<|im_start|>").unwrap_or(0);
    let end = t.token_id("<|im_end|>").unwrap_or(0);
    let tool = t.token_id("<tool>").unwrap_or(0);
    let ids = t.encode("<|im_start|>hello<tool><|im_end|>", false, true);
    assert_eq!(ids[0], start);
    assert_eq!(&ids[2..], [tool, end]);
    let plain = t.encode("<|im_start|>hello<tool>", false, false);
    assert!(!plain.contains(&start));
    assert_eq!(plain.last(), Some(&tool));
    assert!(t.is_eog(end));
    assert!(!t.is_eog(start));
    assert!(t.token_to_piece(end, false).is_empty());
    assert_eq!(t.token_to_piece(end, true), b"<|im_end|>");
    assert_eq!(t.token_to_piece(tool, false), b"<tool>");
    // The gpt2 default BOS/EOS id 11 applies when the file names none.
    assert_eq!(t.bos(), Some(11));
    assert!(!t.add_bos());
    Ok(())
}

#[test]
fn llama3_takes_whole_words_and_adds_bos() -> Result<(), TokenizerError> {
    // "hello" is a token, but no merge sequence reaches it from the bytes.
    let mut vocab = byte_level_vocab("llama-bpe", &["h e"], &[("<|begin_of_text|>", 3)]);
    vocab.tokens.push("hello".into());
    if let Some(types) = vocab.token_types.as_mut() {
        types.push(1);
    }
    let bos = vocab.tokens.len() as u64 - 2;
    vocab.special.bos = Some(bos);
    let t = Tokenizer::from_vocab(&vocab)?;
    assert!(t.add_bos());
    let ids = t.encode("hello", true, false);
    assert_eq!(texts(&t, &ids), ["<|begin_of_text|>", "hello"]);
    Ok(())
}

#[test]
fn spm_merges_by_score_with_byte_fallback() -> Result<(), TokenizerError> {
    let pieces = [
        ("▁", -1.0),
        ("h", -2.0),
        ("e", -2.0),
        ("l", -2.0),
        ("o", -2.0),
        ("▁h", -3.0),
        ("ll", -1.5),
        ("▁he", -4.0),
        ("llo", -3.5),
        ("▁hello", -5.0),
    ];
    let t = Tokenizer::from_vocab(&spm_vocab(&pieces))?;
    assert!(t.add_bos());
    let ids = t.encode("hello é", true, false);
    assert_eq!(texts(&t, &ids), ["<s>", "▁hello", "▁", "<0xC3>", "<0xA9>"]);
    // As llama_detokenize: the prefixed space is removed from the first token only, and
    // here the first token is BOS.
    assert_eq!(t.decode(&ids), " hello é");
    assert_eq!(t.decode(&ids[1..]), "hello é");
    assert_eq!(t.token_to_piece(ids[1], false), b" hello");
    Ok(())
}

#[test]
fn spm_without_space_prefix() -> Result<(), TokenizerError> {
    let mut vocab = spm_vocab(&[("▁", -1.0), ("a", -1.0), ("▁a", -2.0)]);
    vocab.add_space_prefix = Some(false);
    let t = Tokenizer::from_vocab(&vocab)?;
    assert_eq!(texts(&t, &t.encode("a a", false, false)), ["a", "▁a"]);
    assert_eq!(t.decode(&t.encode("a a", false, false)), "a a");
    Ok(())
}

fn load_error(vocab: Vocab) -> TokenizerError {
    match Tokenizer::from_vocab(&vocab) {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn unknown_pre_tokenizer_is_an_error() {
    let error = load_error(byte_level_vocab("no-such-pre", HELLO_MERGES, &[]));
    assert!(
        matches!(error, TokenizerError::UnsupportedPreTokenizer { ref name, .. } if name == "no-such-pre")
    );
    assert!(error.to_string().contains("qwen2"));
}

#[test]
fn bad_merges_are_errors() {
    let error = load_error(byte_level_vocab("gpt-2", &["h e"], &[]).with_merges(&["h e", "x zz"]));
    assert!(
        matches!(error, TokenizerError::MergeUnknownToken { index: 1, ref token, .. } if token == "zz")
    );
    let error = load_error(byte_level_vocab("gpt-2", &[], &[]).with_merges(&["a b"]));
    assert!(matches!(error, TokenizerError::MergeUnknownToken { ref token, .. } if token == "ab"));
    let error = load_error(byte_level_vocab("gpt-2", &[], &[]).with_merges(&["ab"]));
    assert!(matches!(
        error,
        TokenizerError::MalformedMerge { index: 0, .. }
    ));
    let mut vocab = byte_level_vocab("gpt-2", &[], &[]);
    vocab.merges = None;
    assert!(matches!(
        load_error(vocab),
        TokenizerError::MissingKey {
            key: "tokenizer.ggml.merges"
        }
    ));
}

#[test]
fn bad_vocabularies_are_errors() {
    let mut vocab = byte_level_vocab("gpt-2", &[], &[]);
    vocab.model = "bert".into();
    assert!(matches!(
        load_error(vocab.clone()),
        TokenizerError::UnsupportedModel(_)
    ));
    vocab.model = "nonsense".into();
    assert!(matches!(load_error(vocab), TokenizerError::UnknownModel(_)));

    let mut vocab = byte_level_vocab("gpt-2", &[], &[]);
    vocab.tokens.clear();
    assert_eq!(load_error(vocab), TokenizerError::EmptyVocabulary);

    let mut vocab = byte_level_vocab("gpt-2", &[], &[]);
    vocab.tokens[5] = vocab.tokens[4].clone();
    assert!(matches!(
        load_error(vocab),
        TokenizerError::DuplicateToken {
            first: 4,
            second: 5,
            ..
        }
    ));

    let mut vocab = spm_vocab(&[]);
    if let Some(scores) = vocab.scores.as_mut() {
        scores.truncate(10);
    }
    assert!(matches!(
        load_error(vocab),
        TokenizerError::ShortArray { found: 10, .. }
    ));

    // SentencePiece adds BOS by default; with one token there is no id 1 for it.
    let vocab = Vocab {
        model: "llama".into(),
        tokens: vec!["a".into()],
        ..Vocab::default()
    };
    assert!(matches!(
        load_error(vocab),
        TokenizerError::MissingSpecialToken { .. }
    ));
}

#[test]
fn out_of_range_ids_are_ignored() -> Result<(), TokenizerError> {
    let mut vocab = byte_level_vocab("gpt-2", &[], &[]);
    vocab.special.eos = Some(1 << 40);
    vocab.special.bos = Some(3);
    let t = Tokenizer::from_vocab(&vocab)?;
    assert_eq!((t.bos(), t.eos()), (Some(3), Some(11)));
    assert_eq!(t.token_to_piece(100_000, true), b"");
    assert!(!t.is_eog(u32::MAX));
    Ok(())
}

impl Vocab {
    fn with_merges(mut self, merges: &[&str]) -> Vocab {
        self.merges = Some(merges.iter().map(|m| (*m).to_owned()).collect());
        self
    }
}

/// Encodes without splitting SentencePiece text into words.
fn encode_whole_text(t: &mut Tokenizer, text: &str) -> Vec<u32> {
    let saved = match &mut t.kind {
        Kind::Spm(spm) => spm.spanning.take(),
        Kind::Bpe(_) => None,
    };
    let ids = t.encode(text, false, false);
    if let Kind::Spm(spm) = &mut t.kind {
        spm.spanning = saved;
    }
    ids
}

#[test]
fn spm_words_give_the_tokens_of_the_whole_text() -> Result<(), TokenizerError> {
    // "o▁w" spans a word start, and outscores everything around it.
    let pieces = [
        ("▁", -1.0),
        ("h", -2.0),
        ("e", -2.0),
        ("l", -2.0),
        ("o", -2.0),
        ("w", -2.0),
        ("r", -2.0),
        ("d", -2.0),
        ("o▁w", -0.5),
        ("▁w", -1.0),
        ("ll", -1.5),
        ("▁▁", -1.2),
        ("▁he", -3.0),
        ("▁hello", -2.5),
        ("hell", -2.2),
    ];
    let mut t = Tokenizer::from_vocab(&spm_vocab(&pieces))?;
    assert!(matches!(&t.kind, Kind::Spm(Spm { spanning: Some(s), .. }) if s == &["o▁w"]));
    for text in [
        "hello world",
        "hello  world hello world",
        "  hello   wor ld",
        "hellow ow o w",
        "héllo wörld",
    ] {
        assert_eq!(
            t.encode(text, false, false),
            encode_whole_text(&mut t, text),
            "{text:?}"
        );
    }
    let ids = t.encode("hello world", false, false);
    assert!(texts(&t, &ids).contains(&"o▁w".to_owned()));
    Ok(())
}

#[test]
fn word_starts() {
    let mut words = Vec::new();
    let text = "▁a▁▁bc▁d>▁</x";
    spm::words(text, &[">▁</".to_owned()], &mut words);
    let got: Vec<&str> = words.iter().map(|r| &text[r.clone()]).collect();
    assert_eq!(got, ["▁a", "▁▁bc", "▁d>▁</x"]);
    assert!(spm::spans_word_start(">▁</"));
    assert!(!spm::spans_word_start("▁▁a"));
}

#[test]
fn tokenizer_is_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Tokenizer>();
    shareable::<Detokenizer>();
}
