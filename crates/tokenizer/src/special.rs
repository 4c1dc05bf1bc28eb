//! Splitting special-token text out of the input, as llama.cpp's `tokenizer_st_partition`.
//!
//! llama.cpp takes the special tokens (control, user-defined and unknown) longest first, and
//! for each one cuts every occurrence out of the text that is still raw, left to right.
//! Control and unknown tokens take part only when the caller asks to parse special tokens;
//! user-defined ones always do. Doing that literally costs one scan of the text per special
//! token (Gemma 3 has over six thousand), so here one pass of a trie finds every occurrence
//! of every special token, and the occurrences are then accepted in llama.cpp's order
//! (token priority, then position) when all their bytes are still raw. That accepts exactly
//! the occurrences llama.cpp cuts: an occurrence is found by its search if and only if it
//! lies inside one raw fragment, that is, if none of its bytes was taken before.

use std::ops::Range;

/// A piece of the input after partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// A special token matched in the text.
    Token(u32),
    /// Raw text, as a byte range of the input.
    Text(Range<usize>),
}

/// One special token in priority order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpecialToken {
    pub(crate) id: u32,
    /// Taken part only when parsing special tokens (control and unknown tokens).
    pub(crate) needs_parse_special: bool,
    /// Whitespace left of a match is dropped (`LLAMA_TOKEN_ATTR_LSTRIP`).
    pub(crate) lstrip: bool,
    /// Whitespace right of a match is dropped (`LLAMA_TOKEN_ATTR_RSTRIP`).
    pub(crate) rstrip: bool,
}

/// A byte trie over the special tokens' texts.
#[derive(Default)]
struct Node {
    /// Children, sorted by byte.
    children: Vec<(u8, u32)>,
    /// Index into [`SpecialTokens::tokens`] of the token ending here.
    token: Option<u32>,
}

/// The special tokens of a vocabulary and a matcher for them.
pub(crate) struct SpecialTokens {
    /// In llama.cpp's order: longer texts first (ties by id).
    tokens: Vec<SpecialToken>,
    /// Byte length of each token's text.
    lengths: Vec<usize>,
    nodes: Vec<Node>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteState {
    Raw,
    Token,
    Dropped,
}

impl SpecialTokens {
    /// Builds the matcher from `(text, token)` pairs, in any order.
    pub(crate) fn new(mut tokens: Vec<(String, SpecialToken)>) -> SpecialTokens {
        tokens.sort_by(|(a, ta), (b, tb)| b.len().cmp(&a.len()).then(ta.id.cmp(&tb.id)));
        let mut nodes = vec![Node::default()];
        for (index, (text, _)) in tokens.iter().enumerate() {
            let mut node = 0usize;
            for &b in text.as_bytes() {
                node = match nodes[node].children.binary_search_by_key(&b, |&(c, _)| c) {
                    Ok(at) => nodes[node].children[at].1 as usize,
                    Err(at) => {
                        let child = nodes.len();
                        nodes[node].children.insert(at, (b, child as u32));
                        nodes.push(Node::default());
                        child
                    }
                };
            }
            // Texts are unique, so each end node gets one token.
            nodes[node].token = Some(index as u32);
        }
        SpecialTokens {
            lengths: tokens.iter().map(|(text, _)| text.len()).collect(),
            tokens: tokens.into_iter().map(|(_, token)| token).collect(),
            nodes,
        }
    }

    /// Every `(priority, start)` of an enabled special token in `text`.
    fn occurrences(&self, text: &[u8], parse_special: bool) -> Vec<(u32, usize)> {
        let mut found = Vec::new();
        let root = &self.nodes[0];
        if root.children.is_empty() {
            return found;
        }
        for start in 0..text.len() {
            let mut node = root;
            for &b in &text[start..] {
                let Ok(at) = node.children.binary_search_by_key(&b, |&(c, _)| c) else {
                    break;
                };
                node = &self.nodes[node.children[at].1 as usize];
                if let Some(priority) = node.token {
                    if parse_special || !self.tokens[priority as usize].needs_parse_special {
                        found.push((priority, start));
                    }
                }
            }
        }
        found
    }

    /// Splits `text` into raw text and special tokens.
    pub(crate) fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        let bytes = text.as_bytes();
        if bytes.is_empty() {
            return Vec::new();
        }
        let mut occurrences = self.occurrences(bytes, parse_special);
        if occurrences.is_empty() {
            return vec![Fragment::Text(0..bytes.len())];
        }
        occurrences.sort_unstable();
        let mut state = vec![ByteState::Raw; bytes.len()];
        // For each accepted occurrence's start: its token.
        let mut token_at = Vec::new();
        for (priority, start) in occurrences {
            let end = start + self.lengths[priority as usize];
            if state[start..end].iter().any(|&s| s != ByteState::Raw) {
                continue;
            }
            state[start..end].fill(ByteState::Token);
            let token = self.tokens[priority as usize];
            token_at.push((start, token.id));
            if token.lstrip {
                drop_whitespace(&mut state, bytes, (0..start).rev());
            }
            if token.rstrip {
                drop_whitespace(&mut state, bytes, end..bytes.len());
            }
        }
        token_at.sort_unstable();
        let mut fragments = Vec::new();
        let mut tokens = token_at.into_iter().peekable();
        let mut pos = 0;
        while pos < bytes.len() {
            match state[pos] {
                ByteState::Dropped => pos += 1,
                ByteState::Token => {
                    // Bytes of a token are reached only at its start.
                    if let Some((start, id)) = tokens.next() {
                        debug_assert_eq!(start, pos);
                        fragments.push(Fragment::Token(id));
                    }
                    while pos < bytes.len() && state[pos] == ByteState::Token {
                        pos += 1;
                        if tokens.peek().is_some_and(|&(start, _)| start == pos) {
                            break;
                        }
                    }
                }
                ByteState::Raw => {
                    let start = pos;
                    while pos < bytes.len() && state[pos] == ByteState::Raw {
                        pos += 1;
                    }
                    fragments.push(Fragment::Text(start..pos));
                }
            }
        }
        fragments
    }
}

/// Marks the raw whitespace next to a match as dropped, moving away from it (C `isspace`).
fn drop_whitespace(state: &mut [ByteState], bytes: &[u8], positions: impl Iterator<Item = usize>) {
    for p in positions {
        if state[p] != ByteState::Raw
            || !matches!(bytes[p], b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
        {
            break;
        }
        state[p] = ByteState::Dropped;
    }
}

#[cfg(test)]
mod tests;
