//! Text to token ids and back from GGUF metadata alone: byte-level BPE with the named
//! pre-tokenizer, SentencePiece as llama.cpp runs it, special tokens, and incremental
//! detokenization that only ever emits valid UTF-8.
//!
//! The goal is llama.cpp's ids, exactly (b11312, `src/llama-vocab.cpp` and
//! `src/unicode.cpp`): [`Tokenizer::encode`] is `llama_tokenize`,
//! [`Tokenizer::token_to_piece`] is `llama_token_to_piece` and [`Tokenizer::decode`] is
//! `llama_detokenize`. This crate knows nothing of a model's weights; it reads the
//! `tokenizer.*` keys of a GGUF file ([`Tokenizer::from_gguf`]), or the same values in a
//! plain [`Vocab`] ([`Tokenizer::from_vocab`]).
//!
//! Main types: [`Tokenizer`] (load once, share freely), [`Detokenizer`] (one per stream),
//! [`Vocab`] (the metadata a tokenizer is built from), [`TokenizerError`].
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let file = gguf::GgufFile::open("model.gguf")?;
//! let tokenizer = tokenizer::Tokenizer::from_gguf(&file)?;
//! let ids = tokenizer.encode("<|im_start|>user\nHi<|im_end|>", true, true);
//! let mut detokenizer = tokenizer::Detokenizer::new();
//! for &id in &ids {
//!     print!("{}", detokenizer.push(&tokenizer, id));
//! }
//! print!("{}", detokenizer.flush());
//! # Ok(())
//! # }
//! ```

mod attr;
mod bpe;
mod detokenizer;
mod error;
mod fxhash;
mod gguf_load;
mod load;
mod piece;
mod pre_names;
mod pretokenize;
mod special;
mod spm;
mod token_table;
mod unicode;
mod vocab;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::ops::Range;

pub use detokenizer::Detokenizer;
pub use error::TokenizerError;
pub use vocab::{SpecialTokenIds, Vocab};

use bpe::{BpeScratch, MergeMap};
use fxhash::FxHasher;
use load::Ids;
use pretokenize::PreTokenizer;
use special::{Fragment, SpecialTokens};
use spm::{SpmScratch, SpmVocab};
use token_table::TokenTable;

/// What the vocabulary knows of one token besides its text.
#[derive(Clone, Copy, Debug)]
struct TokenData {
    score: f32,
    /// llama.cpp's `llama_token_attr` bits, see [`attr`].
    attr: u16,
}

/// Byte-level BPE state.
struct Bpe {
    pre: PreTokenizer,
    merges: MergeMap,
    /// The token of each byte's GPT-2 character.
    byte_tokens: [Option<u32>; 256],
    /// Take a word that is a token as a whole without merging (Llama 3).
    ignore_merges: bool,
}

/// SentencePiece state.
struct Spm {
    /// The `<0xXX>` token of each byte.
    byte_tokens: [Option<u32>; 256],
    /// Tokens that span the start of a word ([`spm::words`]), or `None` when there are too
    /// many to split text into words.
    spanning: Option<Vec<String>>,
}

/// Token ids of words already tokenized in one call of [`Tokenizer::encode`]: text that
/// repeats a word (most text does) is merged once per word. Keys borrow the text.
struct WordCache<'a> {
    ranges: HashMap<&'a str, Range<usize>, BuildHasherDefault<FxHasher>>,
    ids: Vec<u32>,
}

impl<'a> WordCache<'a> {
    fn new() -> WordCache<'a> {
        WordCache {
            ranges: HashMap::default(),
            ids: Vec::new(),
        }
    }

    /// Appends the tokens of `word`, from the cache or from `tokenize`.
    fn encode(&mut self, word: &'a str, out: &mut Vec<u32>, tokenize: impl FnOnce(&mut Vec<u32>)) {
        if let Some(range) = self.ranges.get(word) {
            out.extend_from_slice(&self.ids[range.clone()]);
            return;
        }
        let start = self.ids.len();
        tokenize(&mut self.ids);
        out.extend_from_slice(&self.ids[start..]);
        self.ranges.insert(word, start..self.ids.len());
    }
}

enum Kind {
    Bpe(Bpe),
    Spm(Spm),
}

/// A model's tokenizer: text to token ids and back, as llama.cpp does it.
///
/// Built once per model ([`Tokenizer::from_vocab`]); all methods take `&self`, so one
/// tokenizer serves any number of threads.
pub struct Tokenizer {
    /// Indexed by token id.
    tokens: Vec<TokenData>,
    /// Token texts, by id and by text.
    table: TokenTable,
    kind: Kind,
    special: SpecialTokens,
    ids: Ids,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
    /// End-of-generation ids, sorted.
    eog: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Bpe(bpe) => format!("BPE ({:?} pre-tokenizer)", bpe.pre),
            Kind::Spm(_) => "SentencePiece".to_owned(),
        };
        f.debug_struct("Tokenizer")
            .field("kind", &kind)
            .field("n_vocab", &self.n_vocab())
            .field("bos", &self.ids.bos)
            .field("eos", &self.ids.eos)
            .field("add_bos", &self.add_bos)
            .field("eog", &self.eog)
            .finish()
    }
}

impl Tokenizer {
    /// Builds a tokenizer from a model's tokenizer metadata, checking all of it.
    pub fn from_vocab(vocab: &Vocab) -> Result<Tokenizer, TokenizerError> {
        load::build(&vocab.as_ref())
    }

    /// Turns text into token ids, as `llama_tokenize`.
    ///
    /// `add_special` adds BOS (and EOS) where the model asks for them. `parse_special`
    /// turns control-token text in `text` (such as `<|im_start|>`) into those tokens;
    /// without it such text is tokenized as plain text. User-defined tokens are always
    /// matched.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.ids.bos);
        }
        let fragments = self.special.partition(text, parse_special);
        match &self.kind {
            Kind::Bpe(bpe) => self.encode_bpe(bpe, text, &fragments, &mut out),
            Kind::Spm(spm) => self.encode_spm(spm, text, &fragments, &mut out),
        }
        if add_special && self.add_eos {
            out.extend(self.ids.eos);
        }
        out
    }

    fn encode_bpe(&self, bpe: &Bpe, text: &str, fragments: &[Fragment], out: &mut Vec<u32>) {
        let mut words: Vec<Range<usize>> = Vec::new();
        let mut scratch = BpeScratch::default();
        let mut encoded = String::new();
        let mut cache = WordCache::new();
        for fragment in fragments {
            let range = match fragment {
                Fragment::Token(id) => {
                    out.push(*id);
                    continue;
                }
                Fragment::Text(range) => range.clone(),
            };
            let fragment_text = &text[range];
            words.clear();
            bpe.pre.split(fragment_text, &mut words);
            for word in &words {
                let word = &fragment_text[word.clone()];
                cache.encode(word, out, |ids| {
                    if bpe.ignore_merges {
                        bpe::byte_encode(word.as_bytes(), &mut encoded);
                        if let Some(id) = self.table.get(&encoded) {
                            ids.push(id);
                            return;
                        }
                    }
                    bpe::merge_word(
                        word.as_bytes(),
                        &bpe.byte_tokens,
                        &bpe.merges,
                        &mut scratch,
                        ids,
                    );
                });
            }
        }
    }

    fn encode_spm(&self, spm: &Spm, text: &str, fragments: &[Fragment], out: &mut Vec<u32>) {
        // Escape all text fragments first, so that cached words can borrow from it.
        let mut escaped = String::with_capacity(text.len() + text.len() / 2);
        let mut pieces = Vec::with_capacity(fragments.len());
        // llama.cpp prefixes a space to the first text and to text after a special token.
        let mut previous_is_special = true;
        for fragment in fragments {
            match fragment {
                Fragment::Token(id) => {
                    pieces.push(Fragment::Token(*id));
                    previous_is_special = true;
                }
                Fragment::Text(range) => {
                    let start = escaped.len();
                    if self.add_space_prefix && previous_is_special {
                        escaped.push('▁');
                    }
                    for c in text[range.clone()].chars() {
                        escaped.push(if c == ' ' { '▁' } else { c });
                    }
                    pieces.push(Fragment::Text(start..escaped.len()));
                    previous_is_special = false;
                }
            }
        }
        let vocab = SpmView {
            tokenizer: self,
            spm,
        };
        let mut scratch = SpmScratch::default();
        let mut cache = WordCache::new();
        let mut words = Vec::new();
        for piece in pieces {
            let range = match piece {
                Fragment::Token(id) => {
                    out.push(id);
                    continue;
                }
                Fragment::Text(range) => range,
            };
            let piece_text = &escaped[range];
            words.clear();
            match &spm.spanning {
                Some(spanning) => spm::words(piece_text, spanning, &mut words),
                None => words.push(0..piece_text.len()),
            }
            for word in &words {
                let word = &piece_text[word.clone()];
                cache.encode(word, out, |ids| {
                    spm::tokenize(word, &vocab, &mut scratch, ids)
                });
            }
        }
    }

    /// The number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.tokens.len()
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.ids.bos
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.ids.eos
    }

    /// The end-of-turn token, named by the file or recognised by its text.
    pub fn eot(&self) -> Option<u32> {
        self.ids.eot
    }

    /// Whether [`Tokenizer::encode`] with `add_special` puts BOS first.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether [`Tokenizer::encode`] with `add_special` puts EOS last.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// Whether the token ends generation: EOS, EOT, and the end-of-turn tokens llama.cpp
    /// recognises by their text (`<|im_end|>`, `<end_of_turn>`, `<|eot_id|>`, …).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The end-of-generation tokens, sorted.
    pub fn eog_tokens(&self) -> &[u32] {
        &self.eog
    }

    /// Whether the token is a control token (rendered only when asked for special text).
    pub fn is_control(&self, id: u32) -> bool {
        self.attr(id) & attr::CONTROL != 0
    }

    /// Whether the token is matched as a whole in text before tokenizing (control,
    /// user-defined and unknown tokens): a constrained decoder names such tokens by their
    /// text (`<|im_end|>`) instead of spelling them out.
    pub fn is_special(&self, id: u32) -> bool {
        self.attr(id) & attr::SPECIAL != 0
    }

    /// The token with exactly this text in the vocabulary.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.table.get(text)
    }

    /// The text of a token as stored in the vocabulary (GPT-2 characters, '▁', `<0xXX>`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.table.text(id)
    }

    fn attr(&self, id: u32) -> u16 {
        self.tokens.get(id as usize).map_or(0, |t| t.attr)
    }
}

/// The vocabulary as the SentencePiece loop sees it.
struct SpmView<'a> {
    tokenizer: &'a Tokenizer,
    spm: &'a Spm,
}

impl SpmVocab for SpmView<'_> {
    fn token_id(&self, text: &str) -> Option<u32> {
        self.tokenizer.table.get(text)
    }

    fn score(&self, id: u32) -> f32 {
        self.tokenizer
            .tokens
            .get(id as usize)
            .map_or(0.0, |t| t.score)
    }

    fn byte_token(&self, byte: u8) -> Option<u32> {
        self.spm.byte_tokens[byte as usize]
    }
}

#[cfg(test)]
mod tests;
