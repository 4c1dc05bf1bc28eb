//! Streaming token ids to text that is always valid UTF-8.

use crate::Tokenizer;

/// Turns a stream of token ids into text, one token at a time, emitting only complete
/// UTF-8: bytes of a character split over several tokens wait until it is complete.
/// Bytes that can never become valid UTF-8 are emitted as U+FFFD.
///
/// Tokens are rendered as [`Tokenizer::token_to_piece`], by default without special
/// text: control tokens (such as `<|im_end|>`) produce nothing. No leading space is
/// removed: the stream continues a prompt.
#[derive(Debug, Default, Clone)]
pub struct Detokenizer {
    /// Bytes of an incomplete character at the end of what was pushed.
    pending: Vec<u8>,
    /// Render control tokens as their text.
    special: bool,
}

impl Detokenizer {
    /// A detokenizer at the start of a stream.
    pub fn new() -> Detokenizer {
        Detokenizer::default()
    }

    /// A detokenizer that also renders control tokens as their text (`[TOOL_CALLS]`,
    /// `<|tool_call|>`: markers a reader of the output must see).
    pub fn with_special_text() -> Detokenizer {
        Detokenizer {
            special: true,
            ..Detokenizer::default()
        }
    }

    /// Adds a token; returns the text it completes (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        tokenizer.append_piece(id, self.special, &mut self.pending);
        self.take_complete()
    }

    /// Ends the stream: returns what is still pending, an incomplete character as U+FFFD.
    pub fn flush(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }

    /// Takes the valid UTF-8 from the front of `pending`, replacing invalid sequences, and
    /// keeps an incomplete sequence at the end.
    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        // The end is the start of a character that may still complete.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(len) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = after.get(len..).unwrap_or_default();
                        }
                    }
                }
            }
        }
        let kept = rest.len();
        let start = self.pending.len() - kept;
        self.pending.drain(..start);
        out
    }
}

#[cfg(test)]
mod tests;
