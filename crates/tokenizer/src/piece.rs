//! Token ids back to bytes: `llama_token_to_piece` and `llama_detokenize`.

use crate::unicode::char_to_byte;
use crate::{attr, Kind, Tokenizer};

impl Tokenizer {
    /// The bytes a token stands for, as `llama_token_to_piece` with no stripping.
    ///
    /// Byte-level BPE tokens are mapped back from GPT-2 characters to bytes;
    /// SentencePiece tokens get '▁' back to ' ' and `<0xXX>` to its byte. Control and
    /// unknown tokens give their text only when `special` is set, nothing otherwise;
    /// user-defined tokens always give their text. A piece need not be valid UTF-8 on its
    /// own: a character may be split over several tokens.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Vec<u8> {
        let mut piece = Vec::new();
        self.append_piece(id, special, &mut piece);
        piece
    }

    pub(crate) fn append_piece(&self, id: u32, special: bool, out: &mut Vec<u8>) {
        let (Some(token), Some(text)) = (self.tokens.get(id as usize), self.table.text(id)) else {
            return;
        };
        let a = token.attr;
        if !special && a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return;
        }
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(text.as_bytes());
        } else if a & attr::NORMAL != 0 {
            match &self.kind {
                Kind::Spm(_) => {
                    for c in text.chars() {
                        let mut buf = [0u8; 4];
                        let c = if c == '▁' { ' ' } else { c };
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
                Kind::Bpe(_) => decode_byte_level(text, out),
            }
        } else if a & attr::BYTE != 0 {
            out.push(byte_of_byte_token(text));
        }
        // Other types (unused, undefined) render as nothing, as in llama.cpp.
    }

    /// Token ids to text, as `llama_detokenize` without special text: control tokens
    /// vanish, the space a SentencePiece model prefixes is removed from the first token,
    /// and tokenizers that ask for it get their spaces before punctuation cleaned. Bytes
    /// that are not valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        let mut remove_space = self.add_space_prefix;
        for &id in ids {
            let start = bytes.len();
            self.append_piece(id, false, &mut bytes);
            if remove_space && bytes.get(start) == Some(&b' ') {
                bytes.remove(start);
            }
            remove_space = false;
        }
        if self.clean_spaces {
            clean_up_spaces(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// `llama_decode_text`: GPT-2 characters back to bytes. A character outside the map is
/// written as `[UNK_BYTE_0x…<token text>]`, as llama.cpp does.
fn decode_byte_level(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// `token_to_byte`: the hex digits at 3..5 of `<0xXX>` (C `strtol`: leading hex digits, 0
/// when there are none).
fn byte_of_byte_token(text: &str) -> u8 {
    let digits = text.as_bytes().get(3..).unwrap_or_default();
    digits
        .iter()
        .take(2)
        .map_while(|&d| char::from(d).to_digit(16))
        .fold(0u8, |acc, d| (acc << 4) | d as u8)
}

/// `clean_up_tokenization_spaces`, the three passes of `llama_detokenize`, done in place
/// on the bytes exactly as llama.cpp does (each pass reads what the pass has written).
fn clean_up_spaces(text: &mut Vec<u8>) {
    // " ?", " !", " .", " ,": drop the space.
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
    // " ' ": drop both spaces around a lone apostrophe.
    let n = text.len();
    let mut total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);
    // " 's", " 'm", " 're", " 've": drop the space; " 't", " 'd", " 'll" keep it.
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            let x2 = text.get(i + 2).copied().filter(|_| i + 2 < n);
            let drop = matches!(x1, b's' | b'm')
                || (!matches!(x1, b't' | b'd')
                    && matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e'))));
            if drop {
                total -= 1;
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

#[cfg(test)]
mod tests;
