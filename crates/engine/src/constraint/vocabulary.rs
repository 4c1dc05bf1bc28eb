//! The token environment llguidance needs: every token's bytes, special tokens marked,
//! and the end-of-generation tokens.

use toktrie::{TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use super::ConstraintError;
use tokenizer::Tokenizer;

/// Every token of a vocabulary as bytes, in id order, and the tokens that end generation.
///
/// A special token is stored as llguidance expects it: the byte 0xFF, then its name
/// (`\xff<|im_end|>`), so grammars can name it (`<|im_end|>` or `<[151645]>` in Lark) and
/// no text rule ever matches it.
#[derive(Debug, Clone, Default)]
pub struct TokenVocabulary {
    tokens: Vec<Vec<u8>>,
    end_of_generation: Vec<u32>,
}

impl TokenVocabulary {
    /// A vocabulary from raw parts; `special` tokens get the 0xFF marker.
    pub fn new(tokens: Vec<(Vec<u8>, bool)>, end_of_generation: Vec<u32>) -> TokenVocabulary {
        let tokens = tokens
            .into_iter()
            .map(|(bytes, special)| if special { marked(&bytes) } else { bytes })
            .collect();
        TokenVocabulary {
            tokens,
            end_of_generation,
        }
    }

    /// The vocabulary of a model's tokenizer. Byte-level BPE tokens become the bytes
    /// they stand for, SentencePiece pieces get '▁' as a space and `<0xNN>` as their
    /// byte. Control and unknown tokens are special, and so are user-defined tokens
    /// written like tags (`<tool_call>`), which chat formats use as markers; other
    /// user-defined tokens stay plain text.
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> TokenVocabulary {
        let n_vocab = tokenizer.n_vocab();
        let mut tokens = Vec::with_capacity(n_vocab);
        for id in 0..n_vocab as u32 {
            let text = tokenizer.token_text(id).unwrap_or("");
            let tag = text.len() > 2 && text.starts_with('<') && text.ends_with('>');
            let special = tokenizer.is_control(id) || (tokenizer.is_special(id) && tag);
            if special {
                tokens.push(marked(text.as_bytes()));
            } else {
                tokens.push(tokenizer.token_to_piece(id, false));
            }
        }
        TokenVocabulary {
            tokens,
            end_of_generation: tokenizer.eog_tokens().to_vec(),
        }
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The trie and tokenize functions llguidance works with.
    pub(super) fn into_env(self) -> Result<TokenEnv, ConstraintError> {
        let n_vocab = u32::try_from(self.tokens.len())
            .map_err(|_| ConstraintError::Vocabulary("too many tokens".to_string()))?;
        if n_vocab == 0 {
            return Err(ConstraintError::Vocabulary(
                "the vocabulary is empty".to_string(),
            ));
        }
        let eog: Vec<u32> = self
            .end_of_generation
            .iter()
            .copied()
            .filter(|&t| t < n_vocab)
            .collect();
        // Without an end-of-generation token a grammar can still complete: the
        // sequence then ends when nothing more is allowed.
        let eos = eog.first().copied().unwrap_or(toktrie::INVALID_TOKEN);
        let mut trie = TokTrie::from(&TokRxInfo::new(n_vocab, eos), &self.tokens);
        if !eog.is_empty() {
            trie = trie.with_eos_tokens(&eog);
        }
        Ok(TokenEnv { trie })
    }
}

/// A special token's bytes: the 0xFF marker, then its name.
fn marked(name: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(TokTrie::SPECIAL_TOKEN_MARKER);
    bytes.extend_from_slice(name);
    bytes
}

/// llguidance's view of the vocabulary.
pub(super) struct TokenEnv {
    trie: TokTrie,
}

impl TokenizerEnv for TokenEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        // Only used to force tokens llguidance can predict; greedy is a valid
        // tokenization, if not the model's own, so forcing is left off (see below).
        self.trie.greedy_tokenize(s)
    }

    fn tokenize_is_canonical(&self) -> bool {
        false
    }
}
