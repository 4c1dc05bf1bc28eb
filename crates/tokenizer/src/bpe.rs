//! Byte-level BPE as llama.cpp's `llm_tokenizer_bpe_session` runs it.
//!
//! Each word of the pre-tokenizer is turned into one symbol per byte (the byte's GPT-2
//! character), then the pair of neighbours with the lowest merge rank is merged, the
//! leftmost first among equal ranks, until no neighbouring pair has a merge. llama.cpp does
//! this on strings; here symbols are token ids and merges map id pairs to (rank, result),
//! which gives the same result because every merge's parts and result were checked at load
//! to be tokens.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasherDefault;

use crate::fxhash::FxHasher;
use crate::unicode::byte_to_char;
use crate::TokenizerError;

/// Merge rank and resulting token for each pair of tokens.
pub(crate) type MergeMap = HashMap<(u32, u32), Merge, BuildHasherDefault<FxHasher>>;

/// One entry of `tokenizer.ggml.merges`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Merge {
    /// Its index in the list: lower merges first.
    pub(crate) rank: u32,
    /// The token the pair becomes.
    pub(crate) result: u32,
}

/// Parses the merges ("left right", ranked by index) against the vocabulary.
///
/// llama.cpp splits at the first space after the first character and keeps the first
/// rank of a repeated pair; a merge whose parts or result are not tokens could never
/// produce a token there, so it is refused here as a damaged file.
pub(crate) fn parse_merges(
    merges: &[String],
    token_id: impl Fn(&str) -> Option<u32>,
) -> Result<MergeMap, TokenizerError> {
    let mut map = MergeMap::with_capacity_and_hasher(merges.len(), Default::default());
    let mut joined = String::new();
    for (index, merge) in merges.iter().enumerate() {
        let split = merge
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == ' ')
            .map(|(at, _)| at);
        let Some(at) = split else {
            return Err(TokenizerError::MalformedMerge {
                index,
                merge: merge.clone(),
            });
        };
        let (left, right) = (&merge[..at], &merge[at + 1..]);
        joined.clear();
        joined.push_str(left);
        joined.push_str(right);
        let lookup = |text: &str| {
            token_id(text).ok_or_else(|| TokenizerError::MergeUnknownToken {
                index,
                merge: merge.clone(),
                token: text.to_owned(),
            })
        };
        let key = (lookup(left)?, lookup(right)?);
        let result = lookup(&joined)?;
        let rank = u32::try_from(index).unwrap_or(u32::MAX);
        map.entry(key).or_insert(Merge { rank, result });
    }
    Ok(map)
}

/// The token of each byte's GPT-2 character, where the vocabulary has it.
pub(crate) fn byte_tokens(token_id: impl Fn(&str) -> Option<u32>) -> [Option<u32>; 256] {
    let mut tokens = [None; 256];
    let mut buf = [0u8; 4];
    for (byte, slot) in tokens.iter_mut().enumerate() {
        let c = byte_to_char(byte as u8);
        *slot = token_id(c.encode_utf8(&mut buf));
    }
    tokens
}

/// The GPT-2 characters of a word's bytes, as they appear in the vocabulary.
pub(crate) fn byte_encode(word: &[u8], out: &mut String) {
    out.clear();
    out.extend(word.iter().map(|&b| byte_to_char(b)));
}

#[derive(Clone, Copy)]
struct Symbol {
    /// `None` for a byte whose character is not a token: it never merges.
    token: Option<u32>,
    prev: Option<usize>,
    next: Option<usize>,
    /// False once merged into its left neighbour.
    alive: bool,
}

/// Reusable buffers for [`merge_word`].
#[derive(Default)]
pub(crate) struct BpeScratch {
    symbols: Vec<Symbol>,
    /// (rank, left symbol, right symbol): the lowest rank, then the leftmost, comes first.
    queue: BinaryHeap<Reverse<(u32, usize, usize)>>,
}

/// Merges one word and appends its tokens to `out`.
pub(crate) fn merge_word(
    word: &[u8],
    byte_tokens: &[Option<u32>; 256],
    merges: &MergeMap,
    scratch: &mut BpeScratch,
    out: &mut Vec<u32>,
) {
    let symbols = &mut scratch.symbols;
    let queue = &mut scratch.queue;
    symbols.clear();
    queue.clear();
    let n = word.len();
    symbols.extend(word.iter().enumerate().map(|(i, &b)| Symbol {
        token: byte_tokens[b as usize],
        prev: i.checked_sub(1),
        next: (i + 1 < n).then_some(i + 1),
        alive: true,
    }));
    let pair = |symbols: &[Symbol], left: usize, right: usize| -> Option<Merge> {
        let key = (symbols[left].token?, symbols[right].token?);
        merges.get(&key).copied()
    };
    for left in 1..n {
        if let Some(merge) = pair(symbols, left - 1, left) {
            queue.push(Reverse((merge.rank, left - 1, left)));
        }
    }
    while let Some(Reverse((rank, left, right))) = queue.pop() {
        // A queued pair is outdated once either side has merged with something else.
        let (l, r) = (symbols[left], symbols[right]);
        if !l.alive || !r.alive || l.next != Some(right) {
            continue;
        }
        let Some(merge) = pair(symbols, left, right).filter(|m| m.rank == rank) else {
            continue;
        };
        symbols[left].token = Some(merge.result);
        symbols[left].next = r.next;
        symbols[right].alive = false;
        if let Some(next) = r.next {
            symbols[next].prev = Some(left);
        }
        if let Some(prev) = symbols[left].prev {
            if let Some(m) = pair(symbols, prev, left) {
                queue.push(Reverse((m.rank, prev, left)));
            }
        }
        if let Some(next) = symbols[left].next {
            if let Some(m) = pair(symbols, left, next) {
                queue.push(Reverse((m.rank, left, next)));
            }
        }
    }
    // A byte whose character is not a token is dropped: llama.cpp looks its single UTF-8
    // bytes up as tokens, which never succeeds for a character of two bytes and is the
    // lookup that already failed for one of one byte.
    let mut i = (n > 0).then_some(0);
    while let Some(at) = i {
        if let Some(token) = symbols[at].token {
            out.push(token);
        }
        i = symbols[at].next;
    }
}
