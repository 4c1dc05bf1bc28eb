//! Pre-tokenizers of byte-level BPE: split text into words before the merges run.
//!
//! llama.cpp (`llm_tokenizer_bpe` and `unicode_regex_split`) gives each pre-tokenizer a list
//! of regexes applied one after the other, each splitting the pieces the previous one made.
//! Two kinds of regex run there, and both are reproduced here exactly, quirks included:
//!
//! - The GPT-2, Llama 3 and Qwen2 regexes have hand-written splitters
//!   (`unicode_regex_split_custom_gpt2` / `_llama3` / `_qwen2`) that work on code point
//!   classes. [`split_gpt2`] and [`split_llama3`] follow them step by step (Qwen2's is
//!   Llama 3's with single digits).
//! - Every other regex runs through C++ `std::regex` (ECMAScript: leftmost match, first
//!   alternative that succeeds, backtracking) over a "collapsed" copy of the text where each
//!   code point of 128 or more is replaced by one byte naming its class
//!   ([`CharClass::collapsed`]). Non-ASCII letters thus match `\p{L}`, non-ASCII whitespace
//!   matches `\s`, and ASCII stays as is. Each such regex is hand-translated below into a
//!   matcher over collapsed bytes that makes the choices the backtracking engine makes.

use std::ops::Range;

use crate::unicode::{classify, CharClass};

/// The regex set of a pre-tokenizer, named after the `tokenizer.ggml.pre` value that uses
/// it in the models slm runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PreTokenizer {
    /// llama.cpp's fallback set (`LLAMA_VOCAB_PRE_TYPE_DEFAULT`): punctuation runs, the GPT-2
    /// regex, number runs, then groups of three ASCII digits.
    Default,
    /// The GPT-2 regex alone (`gpt-2`, `mpt`, `olmo`, `jais`, …).
    Gpt2,
    /// Every number on its own, then the GPT-2 regex (`smollm`, `starcoder`, `refact`, …).
    Smollm,
    /// The Llama 3 regex (`llama-bpe`, `dbrx`, `smaug-bpe`, `chatglm-bpe`, …).
    Llama3,
    /// The Qwen2 regex, which is Llama 3's with single digits (`qwen2`, `stablelm2`, …).
    Qwen2,
}

/// How many digits the Llama 3 family groups: `\p{N}{1,3}` or `\p{N}`.
#[derive(Clone, Copy, Debug)]
enum Digits {
    UpToThree,
    One,
}

/// One regex of a pre-tokenizer's list.
#[derive(Clone, Copy, Debug)]
enum Pass {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (custom).
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (custom), or with `\p{N}`
    /// for `\p{N}{1,3}` (Qwen2, custom too).
    Llama3(Digits),
    /// `\p{N}` (std::regex, collapsed).
    EachNumber,
    /// `\p{N}+` (std::regex, collapsed).
    NumberRun,
    /// `[\p{P}\$\+<=>\^~\|]+` (std::regex, collapsed).
    PunctuationRun,
    /// `[0-9][0-9][0-9]` (std::wregex over code points).
    AsciiDigitTriple,
}

impl PreTokenizer {
    fn passes(self) -> &'static [Pass] {
        match self {
            PreTokenizer::Default => &[
                Pass::PunctuationRun,
                Pass::Gpt2,
                Pass::NumberRun,
                Pass::AsciiDigitTriple,
            ],
            PreTokenizer::Gpt2 => &[Pass::Gpt2],
            PreTokenizer::Smollm => &[Pass::EachNumber, Pass::Gpt2],
            PreTokenizer::Llama3 => &[Pass::Llama3(Digits::UpToThree)],
            PreTokenizer::Qwen2 => &[Pass::Llama3(Digits::One)],
        }
    }

    /// Splits `text` into words, given as byte ranges of `text`, in order, covering it.
    pub(crate) fn split(self, text: &str, words: &mut Vec<Range<usize>>) {
        if text.is_empty() {
            return;
        }
        let prepared = Prepared::new(text);
        let n_chars = prepared.chars.len();
        let mut pieces: Vec<Range<usize>> = Vec::with_capacity(n_chars / 4 + 1);
        pieces.push(0..n_chars);
        let mut next = Vec::new();
        for pass in self.passes() {
            next.clear();
            for piece in &pieces {
                prepared.run(*pass, piece.clone(), &mut next);
            }
            std::mem::swap(&mut pieces, &mut next);
        }
        words.extend(
            pieces
                .into_iter()
                .map(|piece| prepared.byte_offsets[piece.start]..prepared.byte_offsets[piece.end]),
        );
    }
}

/// A text as code points, their classes and their collapsed bytes.
struct Prepared {
    chars: Vec<char>,
    classes: Vec<CharClass>,
    collapsed: Vec<u8>,
    /// Byte offset of each code point, and the text's length at the end.
    byte_offsets: Vec<usize>,
}

impl Prepared {
    fn new(text: &str) -> Prepared {
        let n = text.len();
        let mut prepared = Prepared {
            chars: Vec::with_capacity(n),
            classes: Vec::with_capacity(n),
            collapsed: Vec::with_capacity(n),
            byte_offsets: Vec::with_capacity(n + 1),
        };
        for (offset, c) in text.char_indices() {
            let class = classify(c);
            prepared.chars.push(c);
            prepared.classes.push(class);
            prepared.collapsed.push(class.collapsed(c));
            prepared.byte_offsets.push(offset);
        }
        prepared.byte_offsets.push(n);
        prepared
    }

    fn run(&self, pass: Pass, piece: Range<usize>, out: &mut Vec<Range<usize>>) {
        let (start, end) = (piece.start, piece.end);
        let col = &self.collapsed;
        match pass {
            Pass::Gpt2 => split_gpt2(self, start, end, out),
            Pass::Llama3(digits) => split_llama3(self, start, end, digits, out),
            Pass::EachNumber => {
                split_by_matches(start, end, out, |p| is_number_byte(col[p]).then_some(p + 1))
            }
            Pass::NumberRun => {
                split_by_matches(start, end, out, |p| run_end(col, p, end, is_number_byte))
            }
            Pass::PunctuationRun => split_by_matches(start, end, out, |p| {
                run_end(col, p, end, is_punctuation_run_byte)
            }),
            Pass::AsciiDigitTriple => split_by_matches(start, end, out, |p| {
                let digits = self.chars.get(p..p + 3)?;
                (p + 3 <= end && digits.iter().all(char::is_ascii_digit)).then_some(p + 3)
            }),
        }
    }

    /// The class at `pos` if it lies in the piece, as llama.cpp's `_get_flags` (which gives
    /// empty flags outside the piece).
    fn class_in(&self, pos: usize, end: usize) -> Option<CharClass> {
        if pos < end {
            self.classes.get(pos).copied()
        } else {
            None
        }
    }

    fn char_in(&self, pos: usize, end: usize) -> Option<char> {
        if pos < end {
            self.chars.get(pos).copied()
        } else {
            None
        }
    }
}

fn letter(class: Option<CharClass>) -> bool {
    class.is_some_and(CharClass::is_letter)
}

fn number(class: Option<CharClass>) -> bool {
    class.is_some_and(CharClass::is_number)
}

fn whitespace(class: Option<CharClass>) -> bool {
    class.is_some_and(CharClass::is_whitespace)
}

/// In the piece and neither whitespace, letter nor number: `[^\s\p{L}\p{N}]`.
fn other(class: Option<CharClass>) -> bool {
    class.is_some_and(|c| !(c.is_whitespace() || c.is_letter() || c.is_number()))
}

/// Collects consecutive words of a piece, as llama.cpp's `_add_token`.
struct Words<'a> {
    previous_end: usize,
    out: &'a mut Vec<Range<usize>>,
}

impl Words<'_> {
    fn add(&mut self, end: usize) {
        if end > self.previous_end {
            self.out.push(self.previous_end..end);
        }
        self.previous_end = end;
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d` at `pos`: the length of the contraction. With `any_case`,
/// `(?i:…)` as llama.cpp's Llama 3 splitter does it: it lowercases with the full Unicode
/// table, but the only non-ASCII code points that lowercase into ASCII (U+0130, U+212A)
/// become 'i' and 'k', which no contraction uses, so ASCII lowercasing is the same.
fn contraction(t: &Prepared, pos: usize, end: usize, any_case: bool) -> Option<usize> {
    let at = |p: usize| {
        t.char_in(p, end)
            .map(|c| if any_case { c.to_ascii_lowercase() } else { c })
    };
    if t.char_in(pos, end) != Some('\'') || pos + 1 >= end {
        return None;
    }
    match (at(pos + 1), at(pos + 2)) {
        (Some('s' | 't' | 'm' | 'd'), _) => Some(2),
        (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => Some(3),
        _ => None,
    }
}

/// The end of the whitespace rules at `pos`, shared by both splitters:
/// `\s*[\r\n]+` (Llama 3 only: `newlines`), then `\s+(?!\S)`, which leaves the last
/// whitespace of a run to the word that follows, then `\s+`, and when `pos` is not
/// whitespace at all, the single character.
fn whitespace_end(t: &Prepared, pos: usize, end: usize, newlines: bool) -> usize {
    let n_spaces = (pos..end)
        .take_while(|&p| whitespace(t.class_in(p, end)))
        .count();
    if newlines {
        let last_newline = (pos..pos + n_spaces)
            .rev()
            .find(|&p| matches!(t.chars[p], '\r' | '\n'));
        if let Some(last_newline) = last_newline {
            return last_newline + 1;
        }
    }
    if n_spaces > 1 && pos + n_spaces < end {
        pos + n_spaces - 1
    } else {
        pos + n_spaces.max(1)
    }
}

/// `unicode_regex_split_custom_gpt2`.
fn split_gpt2(t: &Prepared, start: usize, end: usize, out: &mut Vec<Range<usize>>) {
    let mut words = Words {
        previous_end: start,
        out,
    };
    let mut pos = start;
    while pos < end {
        let c = t.chars[pos];
        // 's|'t|'re|'ve|'m|'ll|'d
        if let Some(len) = contraction(t, pos, end, false) {
            pos += len;
            words.add(pos);
            continue;
        }
        // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+', the class taken after a space.
        let class = if c == ' ' {
            t.class_in(pos + 1, end)
        } else {
            Some(t.classes[pos])
        };
        let runs: [fn(Option<CharClass>) -> bool; 3] = [letter, number, other];
        if let Some(is_run) = runs.into_iter().find(|is_run| is_run(class)) {
            pos += usize::from(c == ' ');
            while is_run(t.class_in(pos, end)) {
                pos += 1;
            }
        } else {
            pos = whitespace_end(t, pos, end, false);
        }
        words.add(pos);
    }
}

/// `unicode_regex_split_custom_llama3`, and with single digits `_qwen2`.
fn split_llama3(
    t: &Prepared,
    start: usize,
    end: usize,
    digits: Digits,
    out: &mut Vec<Range<usize>>,
) {
    let group = match digits {
        Digits::UpToThree => 3,
        Digits::One => 1,
    };
    let mut words = Words {
        previous_end: start,
        out,
    };
    let mut pos = start;
    while pos < end {
        let c = t.chars[pos];
        let class = t.classes[pos];
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if let Some(len) = contraction(t, pos, end, true) {
            pos += len;
            words.add(pos);
            continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(c == '\r' || c == '\n' || class.is_number())
            && (class.is_letter() || letter(t.class_in(pos + 1, end)))
        {
            pos += 1;
            while letter(t.class_in(pos, end)) {
                pos += 1;
            }
            words.add(pos);
            continue;
        }
        // \p{N}{1,3} or \p{N}
        if class.is_number() {
            let mut group_start = pos;
            while number(t.class_in(pos, end)) {
                pos += 1;
                if pos - group_start >= group {
                    words.add(pos);
                    group_start = pos;
                }
            }
            words.add(pos);
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'. llama.cpp tests the first class on the character
        // after a space, which may lie outside the piece: then only the space is taken.
        let class2 = if c == ' ' {
            t.class_in(pos + 1, end)
        } else {
            Some(class)
        };
        if !(whitespace(class2) || letter(class2) || number(class2)) {
            pos += usize::from(c == ' ');
            while other(t.class_in(pos, end)) {
                pos += 1;
            }
            while matches!(t.char_in(pos, end), Some('\r' | '\n')) {
                pos += 1;
            }
        } else {
            pos = whitespace_end(t, pos, end, true);
        }
        words.add(pos);
    }
}

/// `std::regex_iterator` over a piece: the leftmost match from the current position, the
/// text between matches kept as words of its own. `matcher(p)` is the end of the match that
/// the regex finds starting at `p` (never empty), if any.
fn split_by_matches(
    start: usize,
    end: usize,
    out: &mut Vec<Range<usize>>,
    mut matcher: impl FnMut(usize) -> Option<usize>,
) {
    let mut previous_end = start;
    let mut pos = start;
    while pos < end {
        match matcher(pos) {
            Some(match_end) if match_end > pos => {
                if pos > previous_end {
                    out.push(previous_end..pos);
                }
                out.push(pos..match_end);
                previous_end = match_end;
                pos = match_end;
            }
            _ => pos += 1,
        }
    }
    if previous_end < end {
        out.push(previous_end..end);
    }
}

/// Collapsed `\p{N}`: `[\xD10-9]`.
fn is_number_byte(b: u8) -> bool {
    b == 0xD1 || b.is_ascii_digit()
}

/// Collapsed `[\p{P}\$\+<=>\^~\|]`: non-ASCII punctuation (0xD3), the ASCII characters
/// llama.cpp lists for `\p{P}` (all ASCII punctuation but '$', '+', '<', '=', '>', '^', '`',
/// '|', '~') and the symbols the regex adds. Only '`' is left out.
fn is_punctuation_run_byte(b: u8) -> bool {
    b == 0xD3 || (b.is_ascii_punctuation() && b != b'`')
}

/// End of the run of bytes from `pos` (before `end`) that satisfy `member`, if non-empty.
fn run_end(col: &[u8], pos: usize, end: usize, member: fn(u8) -> bool) -> Option<usize> {
    let len = col
        .get(pos..end)?
        .iter()
        .take_while(|&&b| member(b))
        .count();
    (len > 0).then_some(pos + len)
}

#[cfg(test)]
mod tests;
