//! Special tokens, end-of-generation sets and whole-file tokenization of the real models.

use std::time::Instant;

use tokenizer::Detokenizer;

use crate::common::{enabled, load, shared_data, MODELS};

/// BOS, EOS, add-BOS and the end-of-generation set llama.cpp derives for each model:
/// EOS, the tokens it recognises by text (<|endoftext|>, <|im_end|>, <end_of_turn>, and
/// "</s>", even where that is a normal token) and the FIM pad/repo/separator tokens.
#[test]
fn special_tokens_as_llama_cpp() {
    if !enabled() {
        return;
    }
    // (stem, BOS, EOS, adds BOS, end-of-generation tokens)
    type Expected<'a> = (&'a str, Option<u32>, Option<u32>, bool, &'a [u32]);
    let expected: [Expected; 4] = [
        ("smollm2-135m", Some(1), Some(2), false, &[0, 2, 4]),
        ("gemma3-270m", Some(2), Some(1), true, &[1, 106, 212]),
        (
            "qwen2.5-coder-0.5b",
            Some(151643),
            Some(151645),
            false,
            &[128247, 151643, 151645, 151662, 151663, 151664],
        ),
        (
            "qwen2.5-coder-1.5b",
            Some(151643),
            Some(151645),
            false,
            &[128247, 151643, 151645, 151662, 151663, 151664],
        ),
    ];
    for (stem, bos, eos, add_bos, eog) in expected {
        let t = load(stem);
        assert_eq!(
            (t.bos(), t.eos(), t.add_bos()),
            (bos, eos, add_bos),
            "{stem}"
        );
        assert_eq!(t.eog_tokens(), eog, "{stem}");
    }
    let gemma = load("gemma3-270m");
    let end_of_turn = gemma.token_id("<end_of_turn>");
    assert_eq!(end_of_turn, Some(106));
    assert!(gemma.is_eog(106));
    assert!(gemma.token_to_piece(106, false).is_empty());
    assert_eq!(gemma.token_to_piece(106, true), b"<end_of_turn>");
    // A byte token renders as its byte.
    let newline_byte = gemma.token_id("<0x0A>").unwrap_or(0);
    assert_eq!(gemma.token_to_piece(newline_byte, false), b"\n");
}

/// The 1.2 MB wikitext file (as llama-perplexity reads it) tokenizes in one piece and
/// decodes back to itself; the time is printed (no timing is asserted).
#[test]
fn wikitext_round_trips() {
    if !enabled() {
        return;
    }
    let path = shared_data().join("wikitext-2-test.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = text.strip_suffix('\n').unwrap_or(&text);
    for (stem, _) in MODELS {
        let start = Instant::now();
        let t = load(stem);
        let loaded = start.elapsed();
        let start = Instant::now();
        let ids = t.encode(text, true, false);
        let encoded = start.elapsed();
        eprintln!(
            "{stem}: tokenizer loaded in {loaded:?}; wikitext: {} tokens in {encoded:?}",
            ids.len()
        );
        let ids = &ids[usize::from(t.add_bos())..];
        assert_eq!(t.decode(ids), text, "{stem}");
        let mut detokenizer = Detokenizer::new();
        let streamed: usize = ids.iter().map(|&id| detokenizer.push(&t, id).len()).sum();
        assert_eq!(streamed + detokenizer.flush().len(), text.len(), "{stem}");
    }
}
