//! SentencePiece BPE as llama.cpp's `llm_tokenizer_spm_session` runs it.
//!
//! The text (spaces already escaped to '▁') starts as one symbol per UTF-8 character.
//! Every pair of neighbours whose joined text is a token is queued with that token's score;
//! the best score is merged first (the leftmost among equal scores), its new neighbours are
//! queued, and so on. A symbol left over that is not a token is written as byte tokens
//! (`<0xXX>`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;

/// What the merge loop needs from the vocabulary.
pub(crate) trait SpmVocab {
    /// The token with this exact text.
    fn token_id(&self, text: &str) -> Option<u32>;
    /// The score of a token (higher merges first).
    fn score(&self, id: u32) -> f32;
    /// The token for one raw byte (`<0xXX>`, or the byte itself as text).
    fn byte_token(&self, byte: u8) -> Option<u32>;
}

/// Tokens that contain a '▁' right after another character, such as Gemma's `>▁</`: the
/// only tokens that can span the start of a word. More than this many and words are not
/// split.
pub(crate) const MAX_SPANNING_TOKENS: usize = 64;

/// Whether a token's text spans the start of a word: a '▁' after some other character.
pub(crate) fn spans_word_start(text: &str) -> bool {
    let mut previous = None;
    for c in text.chars() {
        if c == '▁' && previous.is_some_and(|p| p != '▁') {
            return true;
        }
        previous = Some(c);
    }
    false
}

/// Splits escaped text into words that can be tokenized one by one with the same result.
///
/// A word starts at each '▁' that follows another character. No pair of neighbouring
/// symbols across such a start can merge unless some token spans it, and merges inside one
/// word never touch another, while the merge order within a word (best score, then
/// leftmost) is the order the whole text would use. So tokenizing word by word gives the
/// tokens of the whole, and repeated words can be looked up instead of merged again. Word
/// starts inside an occurrence of a `spanning` token are not split.
pub(crate) fn words(text: &str, spanning: &[String], out: &mut Vec<Range<usize>>) {
    let mut blocked: Vec<Range<usize>> = Vec::new();
    for token in spanning {
        let mut from = 0;
        while let Some(at) = text.get(from..).and_then(|rest| rest.find(token.as_str())) {
            let start = from + at;
            blocked.push(start..start + token.len());
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    let mut start = 0;
    let mut previous = None;
    for (at, c) in text.char_indices() {
        if c == '▁'
            && previous.is_some_and(|p| p != '▁')
            && !blocked.iter().any(|b| b.start < at && at < b.end)
        {
            out.push(start..at);
            start = at;
        }
        previous = Some(c);
    }
    if start < text.len() {
        out.push(start..text.len());
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    /// Byte range of the symbol in the text.
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(Clone, Copy)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    /// Byte length of the joined text when queued.
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bigram {
    /// The greatest is the one merged first: highest score, then leftmost. Scores were
    /// normalized at load (no -0.0), so `total_cmp` orders them as C++'s `<` does.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// Reusable buffers for [`tokenize`].
#[derive(Default)]
pub(crate) struct SpmScratch {
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram>,
}

/// Tokenizes `text` (already escaped) and appends the tokens to `out`.
pub(crate) fn tokenize(
    text: &str,
    vocab: &impl SpmVocab,
    scratch: &mut SpmScratch,
    out: &mut Vec<u32>,
) {
    let symbols = &mut scratch.symbols;
    let queue = &mut scratch.queue;
    symbols.clear();
    queue.clear();
    let mut offsets = text.char_indices().map(|(at, _)| at).peekable();
    while let Some(start) = offsets.next() {
        let end = offsets.peek().copied().unwrap_or(text.len());
        let index = symbols.len();
        symbols.push(Symbol {
            start,
            len: end - start,
            prev: index.checked_sub(1),
            next: (end < text.len()).then_some(index + 1),
        });
    }
    let try_add = |symbols: &[Symbol], queue: &mut BinaryHeap<Bigram>, left, right| {
        let (l, r): (&Symbol, &Symbol) = (&symbols[left], &symbols[right]);
        let joined = &text[l.start..r.start + r.len];
        if let Some(id) = vocab.token_id(joined) {
            queue.push(Bigram {
                score: vocab.score(id),
                left,
                right,
                len: joined.len(),
            });
        }
    };
    for right in 1..symbols.len() {
        try_add(symbols, queue, right - 1, right);
    }
    while let Some(bigram) = queue.pop() {
        let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
        // Skip pairs of which one side already merged into something else.
        if l.len == 0 || r.len == 0 || l.len + r.len != bigram.len {
            continue;
        }
        symbols[bigram.left].len += r.len;
        symbols[bigram.right].len = 0;
        symbols[bigram.left].next = r.next;
        if let Some(next) = r.next {
            symbols[next].prev = Some(bigram.left);
        }
        if let Some(prev) = l.prev {
            try_add(symbols, queue, prev, bigram.left);
        }
        if let Some(next) = r.next {
            try_add(symbols, queue, bigram.left, next);
        }
    }
    let mut i = (!symbols.is_empty()).then_some(0);
    while let Some(at) = i {
        let symbol = symbols[at];
        let piece = &text[symbol.start..symbol.start + symbol.len];
        match vocab.token_id(piece) {
            Some(id) => out.push(id),
            // Merged symbols are always tokens, so this is a single character that is not
            // a token (llama.cpp's `resegment` finds no merge to undo for it): write its
            // bytes. A byte with no token is skipped; llama.cpp would throw there.
            None => out.extend(piece.bytes().filter_map(|b| vocab.byte_token(b))),
        }
        i = symbol.next;
    }
}
