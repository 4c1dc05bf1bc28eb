//! Pre-tokenizers of byte-level BPE: split text into words before the merges run.
//!
//! llama.cpp (`llm_tokenizer_bpe` and `unicode_regex_split`) gives each pre-tokenizer a list
//! of regexes applied one after the other, each splitting the pieces the previous one made.
//! Two kinds of regex run there, and both are reproduced here exactly, quirks included:
//!
//! - The GPT-2 and Llama 3 regexes have hand-written splitters
//!   (`unicode_regex_split_custom_gpt2` / `_llama3`) that work on code point classes.
//!   [`split_gpt2`] and [`split_llama3`] follow them step by step.
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

/// One regex of a pre-tokenizer's list.
#[derive(Clone, Copy, Debug)]
enum Pass {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (custom).
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (custom).
    Llama3,
    /// The Llama 3 regex with `\p{N}` for `\p{N}{1,3}` (std::regex, collapsed).
    Qwen2,
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
            PreTokenizer::Llama3 => &[Pass::Llama3],
            PreTokenizer::Qwen2 => &[Pass::Qwen2],
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
            Pass::Llama3 => split_llama3(self, start, end, out),
            Pass::Qwen2 => split_by_matches(start, end, out, |p| match_qwen2(col, p, end)),
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

/// `unicode_regex_split_custom_gpt2`.
fn split_gpt2(t: &Prepared, start: usize, end: usize, out: &mut Vec<Range<usize>>) {
    let mut words = Words {
        previous_end: start,
        out,
    };
    let mut pos = start;
    while pos < end {
        let c = t.chars[pos];
        let class = Some(t.classes[pos]);
        // 's|'t|'re|'ve|'m|'ll|'d
        if c == '\'' && pos + 1 < end {
            let next = t.chars[pos + 1];
            if matches!(next, 's' | 't' | 'm' | 'd') {
                pos += 2;
                words.add(pos);
                continue;
            }
            if pos + 2 < end
                && matches!(
                    (next, t.chars[pos + 2]),
                    ('r', 'e') | ('v', 'e') | ('l', 'l')
                )
            {
                pos += 3;
                words.add(pos);
                continue;
            }
        }
        let space = usize::from(c == ' ');
        let class2 = if c == ' ' {
            t.class_in(pos + 1, end)
        } else {
            class
        };
        // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
        let runs: [fn(Option<CharClass>) -> bool; 3] = [letter, number, other];
        if let Some(is_run) = runs.into_iter().find(|is_run| is_run(class2)) {
            pos += space;
            while is_run(t.class_in(pos, end)) {
                pos += 1;
            }
            words.add(pos);
            continue;
        }
        let n_spaces = (pos..end)
            .take_while(|&p| whitespace(t.class_in(p, end)))
            .count();
        // '\s+(?!\S)': leave the last whitespace to the word that follows
        if n_spaces > 1 && pos + n_spaces < end {
            pos += n_spaces - 1;
            words.add(pos);
            continue;
        }
        // '\s+'
        if n_spaces > 0 {
            pos += n_spaces;
            words.add(pos);
            continue;
        }
        pos += 1;
        words.add(pos);
    }
}

/// `unicode_regex_split_custom_llama3`.
fn split_llama3(t: &Prepared, start: usize, end: usize, out: &mut Vec<Range<usize>>) {
    let mut words = Words {
        previous_end: start,
        out,
    };
    let mut pos = start;
    while pos < end {
        let c = t.chars[pos];
        let class = t.classes[pos];
        // (?i:'s|'t|'re|'ve|'m|'ll|'d). llama.cpp lowercases with the full Unicode table,
        // but the only non-ASCII code points that lowercase into ASCII (U+0130, U+212A)
        // become 'i' and 'k', which no contraction uses.
        if c == '\'' && pos + 1 < end {
            let next = t.chars[pos + 1].to_ascii_lowercase();
            if matches!(next, 's' | 't' | 'm' | 'd') {
                pos += 2;
                words.add(pos);
                continue;
            }
            if pos + 2 < end {
                let next_next = t.chars[pos + 2].to_ascii_lowercase();
                if matches!((next, next_next), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    pos += 3;
                    words.add(pos);
                    continue;
                }
            }
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
        // \p{N}{1,3}
        if class.is_number() {
            let mut group_start = pos;
            while number(t.class_in(pos, end)) {
                pos += 1;
                if pos - group_start >= 3 {
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
            words.add(pos);
            continue;
        }
        let mut n_spaces = 0;
        let mut last_newline_end = None;
        while whitespace(t.class_in(pos + n_spaces, end)) {
            if matches!(t.chars[pos + n_spaces], '\r' | '\n') {
                last_newline_end = Some(pos + n_spaces + 1);
            }
            n_spaces += 1;
        }
        // \s*[\r\n]+
        if let Some(newline_end) = last_newline_end {
            pos = newline_end;
            words.add(pos);
            continue;
        }
        // \s+(?!\S)
        if n_spaces > 1 && pos + n_spaces < end {
            pos += n_spaces - 1;
            words.add(pos);
            continue;
        }
        // \s+
        if n_spaces > 0 {
            pos += n_spaces;
            words.add(pos);
            continue;
        }
        pos += 1;
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

/// `\s` of std::regex in the "C" locale, on collapsed bytes (0x0B stands for any non-ASCII
/// whitespace).
fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// Collapsed `\p{L}`: `[\xD2A-Za-z]`.
fn is_letter_byte(b: u8) -> bool {
    b == 0xD2 || b.is_ascii_alphabetic()
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

/// Collapsed `[^\s\p{L}\p{N}]`.
fn is_other_byte(b: u8) -> bool {
    !(is_space_byte(b) || is_letter_byte(b) || is_number_byte(b))
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

/// The Qwen2 regex at `pos`, alternatives tried in order as ECMAScript does:
/// `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
/// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
fn match_qwen2(col: &[u8], pos: usize, end: usize) -> Option<usize> {
    let at = |p: usize| if p < end { col.get(p).copied() } else { None };
    let c = at(pos)?;
    if c == b'\'' {
        let next = at(pos + 1).map(|b| b.to_ascii_lowercase());
        let next_next = at(pos + 2).map(|b| b.to_ascii_lowercase());
        match (next, next_next) {
            (Some(b's' | b't' | b'm' | b'd'), _) => return Some(pos + 2),
            (Some(b'r'), Some(b'e')) | (Some(b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => {
                return Some(pos + 3)
            }
            _ => {}
        }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+ : the optional character is taken when it can be; if the
    // letters then fail, dropping it cannot help, since it was not a letter.
    let letters_from = if !(c == b'\r' || c == b'\n' || is_letter_byte(c) || is_number_byte(c)) {
        pos + 1
    } else {
        pos
    };
    if let Some(letters_end) = run_end(col, letters_from, end, is_letter_byte) {
        return Some(letters_end);
    }
    // \p{N}
    if is_number_byte(c) {
        return Some(pos + 1);
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*' : without the space the class could not start at a space.
    let others_from = if c == b' ' { pos + 1 } else { pos };
    if let Some(others_end) = run_end(col, others_from, end, is_other_byte) {
        let newlines = run_end(col, others_end, end, |b| b == b'\r' || b == b'\n');
        return Some(newlines.unwrap_or(others_end));
    }
    let spaces_end = run_end(col, pos, end, is_space_byte)?;
    // \s*[\r\n]+ : \s* gives back whitespace until a newline follows; the match ends after
    // the last newline of the run.
    if let Some(last_newline) = (pos..spaces_end)
        .rev()
        .find(|&p| matches!(col[p], b'\r' | b'\n'))
    {
        return Some(last_newline + 1);
    }
    // \s+(?!\S) : at the end of the piece the whole run; else all but the last, if that
    // leaves any; else \s+.
    if spaces_end < end && spaces_end - pos > 1 {
        return Some(spaces_end - 1);
    }
    Some(spaces_end)
}

#[cfg(test)]
mod tests;
