//! Building a [`Tokenizer`] from a vocabulary's metadata, step for step as llama.cpp's
//! `llama_vocab::impl::load`: model type and its defaults, token attributes, merges,
//! special ids and flags, tokens recognised by their text, end-of-generation set, and the
//! special-token matcher.

use crate::bpe::{byte_tokens, parse_merges};
use crate::pre_names::{self, PreSettings};
use crate::special::{SpecialToken, SpecialTokens};
use crate::spm;
use crate::token_table::{Duplicate, TokenTable};
use crate::vocab::{SpecialTokenIds, VocabRef};
use crate::{attr, Bpe, Kind, Spm, TokenData, Tokenizer, TokenizerError};

/// Which tokenizer algorithm, with the settings that depend on it.
enum Algorithm {
    Bpe(PreSettings),
    Spm,
}

/// Special ids as llama.cpp keeps them: `None` is `LLAMA_TOKEN_NULL`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ids {
    pub(crate) bos: Option<u32>,
    pub(crate) eos: Option<u32>,
    pub(crate) eot: Option<u32>,
    pub(crate) eom: Option<u32>,
    pub(crate) unk: Option<u32>,
    pub(crate) sep: Option<u32>,
    pub(crate) pad: Option<u32>,
    pub(crate) mask: Option<u32>,
    pub(crate) fim_pre: Option<u32>,
    pub(crate) fim_suf: Option<u32>,
    pub(crate) fim_mid: Option<u32>,
    pub(crate) fim_pad: Option<u32>,
    pub(crate) fim_rep: Option<u32>,
    pub(crate) fim_sep: Option<u32>,
}

pub(crate) fn build(vocab: &VocabRef<'_>) -> Result<Tokenizer, TokenizerError> {
    let algorithm = algorithm(vocab)?;
    let n_tokens = vocab.tokens.len();
    if n_tokens == 0 {
        return Err(TokenizerError::EmptyVocabulary);
    }
    let n_tokens_u32 = u32::try_from(n_tokens).map_err(|_| TokenizerError::ShortArray {
        key: "tokenizer.ggml.tokens (more than 2^32 tokens)",
        found: n_tokens,
        n_tokens,
    })?;
    let (mut tokens, table) = token_table(vocab)?;
    let token_id = |text: &str| table.get(text);
    let kind = match algorithm {
        Algorithm::Bpe(settings) => {
            let merges = vocab.merges.ok_or(TokenizerError::MissingKey {
                key: "tokenizer.ggml.merges",
            })?;
            Kind::Bpe(Bpe {
                pre: settings.pre,
                merges: parse_merges(merges, token_id)?,
                byte_tokens: byte_tokens(token_id),
                ignore_merges: settings.ignore_merges,
            })
        }
        Algorithm::Spm => Kind::Spm(Spm {
            byte_tokens: spm_byte_tokens(token_id),
            spanning: spanning_tokens(vocab.tokens),
        }),
    };
    let mut ids = default_ids(&algorithm);
    apply_metadata_ids(&mut ids, &vocab.special, n_tokens_u32);
    let flags = flags(&algorithm, vocab, &ids)?;
    detect_by_text(&mut ids, &mut tokens, &table);
    let eog = end_of_generation(&ids, &mut tokens, &table);
    apply_model_attributes(vocab, &mut tokens, &table);
    let special = special_matcher(&tokens, &table);
    Ok(Tokenizer {
        tokens,
        table,
        kind,
        special,
        ids,
        add_bos: flags.add_bos,
        add_eos: flags.add_eos,
        add_space_prefix: flags.add_space_prefix,
        clean_spaces: flags.clean_spaces,
        eog,
    })
}

fn algorithm(vocab: &VocabRef<'_>) -> Result<Algorithm, TokenizerError> {
    match vocab.model {
        "llama" => Ok(Algorithm::Spm),
        "gpt2" => {
            let name = vocab.pre.unwrap_or("default");
            let settings =
                pre_names::lookup(name).ok_or_else(|| TokenizerError::UnsupportedPreTokenizer {
                    name: name.to_owned(),
                    supported: pre_names::supported_names(),
                })?;
            Ok(Algorithm::Bpe(settings))
        }
        "no_vocab" | "none" | "bert" | "t5" | "rwkv" | "test" | "plamo2" | "gemma4"
        | "hybriddna" | "whitespace" => {
            Err(TokenizerError::UnsupportedModel(vocab.model.to_owned()))
        }
        other => Err(TokenizerError::UnknownModel(other.to_owned())),
    }
}

/// Token scores and attributes, and the token texts with their index.
fn token_table(vocab: &VocabRef<'_>) -> Result<(Vec<TokenData>, TokenTable), TokenizerError> {
    let n_tokens = vocab.tokens.len();
    let check_len = |key: &'static str, found: usize| {
        if found < n_tokens {
            Err(TokenizerError::ShortArray {
                key,
                found,
                n_tokens,
            })
        } else {
            Ok(())
        }
    };
    if let Some(scores) = &vocab.scores {
        check_len("tokenizer.ggml.scores", scores.len())?;
    }
    if let Some(types) = &vocab.token_types {
        check_len("tokenizer.ggml.token_type", types.len())?;
    }
    // llama.cpp names an empty token "[EMPTY_<id>]".
    let empty_names: Vec<(usize, String)> = vocab
        .tokens
        .iter()
        .enumerate()
        .filter(|(_, text)| text.is_empty())
        .map(|(i, _)| (i, format!("[EMPTY_{i}]")))
        .collect();
    let texts = vocab.tokens.iter().enumerate().map(|(i, text)| {
        if text.is_empty() {
            let at = empty_names.partition_point(|(j, _)| *j < i);
            empty_names.get(at).map_or("", |(_, name)| name.as_str())
        } else {
            text.as_str()
        }
    });
    let table = TokenTable::new(texts).map_err(|Duplicate(text, first, second)| {
        TokenizerError::DuplicateToken {
            text,
            first,
            second,
        }
    })?;
    let tokens = (0..n_tokens)
        .map(|i| {
            let score = vocab.scores.as_ref().map_or(0.0, |s| s[i]);
            // -0.0 and 0.0 are equal to llama.cpp's comparisons; make them equal to
            // total_cmp too.
            let score = if score == 0.0 { 0.0 } else { score };
            let attr = vocab
                .token_types
                .as_ref()
                .map_or(attr::NORMAL, |t| attr::from_token_type(t[i]));
            TokenData { score, attr }
        })
        .collect();
    Ok((tokens, table))
}

/// `llama_vocab::byte_to_token` for SentencePiece: `<0xXX>`, else the byte as text.
fn spm_byte_tokens(token_id: impl Fn(&str) -> Option<u32>) -> [Option<u32>; 256] {
    let mut tokens = [None; 256];
    for (byte, slot) in tokens.iter_mut().enumerate() {
        *slot = token_id(&format!("<0x{byte:02X}>")).or_else(|| {
            let b = byte as u8;
            b.is_ascii()
                .then(|| token_id(&(b as char).to_string()))
                .flatten()
        });
    }
    tokens
}

/// The tokens that span a word start, if few enough to split text into words.
fn spanning_tokens(texts: &[String]) -> Option<Vec<String>> {
    let spanning: Vec<String> = texts
        .iter()
        .filter(|text| spm::spans_word_start(text))
        .take(spm::MAX_SPANNING_TOKENS + 1)
        .cloned()
        .collect();
    (spanning.len() <= spm::MAX_SPANNING_TOKENS).then_some(spanning)
}

fn default_ids(algorithm: &Algorithm) -> Ids {
    match algorithm {
        Algorithm::Spm => Ids {
            bos: Some(1),
            eos: Some(2),
            unk: Some(0),
            ..Ids::default()
        },
        Algorithm::Bpe(settings) => Ids {
            bos: (!settings.no_default_bos).then_some(11),
            eos: Some(11),
            ..Ids::default()
        },
    }
}

/// Defaults out of range are dropped; the file's ids replace them when in range (an id out
/// of range is ignored, as llama.cpp does with a warning).
fn apply_metadata_ids(ids: &mut Ids, meta: &SpecialTokenIds, n_tokens: u32) {
    let pairs: [(&mut Option<u32>, Option<u64>); 14] = [
        (&mut ids.bos, meta.bos),
        (&mut ids.eos, meta.eos),
        (&mut ids.eot, meta.eot),
        (&mut ids.eom, meta.eom),
        (&mut ids.unk, meta.unk),
        (&mut ids.sep, meta.sep),
        (&mut ids.pad, meta.pad),
        (&mut ids.mask, meta.mask),
        (&mut ids.fim_pre, meta.fim_pre),
        (&mut ids.fim_suf, meta.fim_suf),
        (&mut ids.fim_mid, meta.fim_mid),
        (&mut ids.fim_pad, meta.fim_pad),
        (&mut ids.fim_rep, meta.fim_rep),
        (&mut ids.fim_sep, meta.fim_sep),
    ];
    for (id, from_file) in pairs {
        if id.is_some_and(|id| id >= n_tokens) {
            *id = None;
        }
        if let Some(new) = from_file.and_then(|v| u32::try_from(v).ok()) {
            if new < n_tokens {
                *id = Some(new);
            }
        }
    }
}

struct Flags {
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
}

fn flags(algorithm: &Algorithm, vocab: &VocabRef<'_>, ids: &Ids) -> Result<Flags, TokenizerError> {
    let (add_bos, add_sep, add_space_prefix, clean_spaces) = match algorithm {
        Algorithm::Bpe(s) => (s.add_bos, s.add_sep, false, s.clean_spaces),
        Algorithm::Spm => (true, false, true, false),
    };
    let flags = Flags {
        add_bos: vocab.add_bos.unwrap_or(add_bos),
        add_eos: vocab.add_eos.unwrap_or(false),
        add_space_prefix: vocab.add_space_prefix.unwrap_or(add_space_prefix),
        clean_spaces,
    };
    let add_sep = vocab.add_sep.unwrap_or(add_sep);
    let checks = [
        (
            flags.add_bos,
            ids.bos,
            "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.bos_token_id",
        ),
        (
            flags.add_eos,
            ids.eos,
            "tokenizer.ggml.add_eos_token",
            "tokenizer.ggml.eos_token_id",
        ),
        (
            add_sep,
            ids.sep,
            "tokenizer.ggml.add_sep_token",
            "tokenizer.ggml.seperator_token_id",
        ),
    ];
    for (wanted, id, flag_key, id_key) in checks {
        if wanted && id.is_none() {
            return Err(TokenizerError::MissingSpecialToken { flag_key, id_key });
        }
    }
    Ok(flags)
}

/// Token texts by which llama.cpp recognises end-of-turn and fill-in-the-middle tokens
/// that the file does not name. The first match makes the id; it becomes a control token.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// The lowest id among tokens with one of these texts.
fn lowest_with_text(table: &TokenTable, texts: &[&str]) -> Option<u32> {
    texts.iter().filter_map(|text| table.get(text)).min()
}

/// Fills unnamed end-of-turn and FIM ids from token texts. llama.cpp walks its hash map,
/// so with several candidates its pick depends on hashing; here the lowest id wins.
fn detect_by_text(ids: &mut Ids, tokens: &mut [TokenData], table: &TokenTable) {
    let slots: [(&mut Option<u32>, &[&str]); 8] = [
        (&mut ids.eot, EOT_TEXTS),
        (&mut ids.eom, EOM_TEXTS),
        (&mut ids.fim_pre, FIM_PRE_TEXTS),
        (&mut ids.fim_suf, FIM_SUF_TEXTS),
        (&mut ids.fim_mid, FIM_MID_TEXTS),
        (&mut ids.fim_pad, FIM_PAD_TEXTS),
        (&mut ids.fim_rep, FIM_REP_TEXTS),
        (&mut ids.fim_sep, FIM_SEP_TEXTS),
    ];
    for (slot, texts) in slots {
        if slot.is_some() {
            continue;
        }
        if let Some(id) = lowest_with_text(table, texts) {
            *slot = Some(id);
            tokens[id as usize].attr |= attr::CONTROL;
        }
    }
    // Control tokens named "unused" are unused (Gemma's <unusedN>).
    for (id, token) in tokens.iter_mut().enumerate() {
        if token.attr & attr::CONTROL != 0
            && table.text(id as u32).is_some_and(|t| t.contains("unused"))
        {
            token.attr |= attr::UNUSED;
        }
    }
}

/// Token texts that end generation, in llama.cpp's list.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// The end-of-generation set: FIM pad/repo/separator, every token with an EOG text (made a
/// control token), EOS, EOT and EOM; then llama.cpp's two exceptions for vocabularies
/// where `<|end|>` or `</s>` is an ordinary token.
fn end_of_generation(ids: &Ids, tokens: &mut [TokenData], table: &TokenTable) -> Vec<u32> {
    let mut eog: Vec<u32> = [ids.fim_pad, ids.fim_rep, ids.fim_sep]
        .into_iter()
        .flatten()
        .collect();
    for id in EOG_TEXTS.iter().filter_map(|text| table.get(text)) {
        eog.push(id);
        tokens[id as usize].attr |= attr::CONTROL;
    }
    // gpt-oss: these structure tokens are always rendered.
    for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(id) = table.get(text) {
            tokens[id as usize].attr = attr::USER_DEFINED;
        }
    }
    eog.extend([ids.eos, ids.eot, ids.eom].into_iter().flatten());
    eog.sort_unstable();
    eog.dedup();
    let find = |eog: &[u32], text: &str| table.get(text).filter(|id| eog.contains(id));
    let has = |eog: &[u32], text: &str| find(eog, text).is_some();
    // o200k_harmony and solar-open: <|end|> ends a message, not the generation.
    if let Some(end) = find(&eog, "<|end|>") {
        let call = has(&eog, "<|call|>") || has(&eog, "<|calls|>");
        if call && (has(&eog, "<|return|>") || has(&eog, "<|flush|>")) {
            eog.retain(|&id| id != end);
            tokens[end as usize].attr = attr::USER_DEFINED;
        }
    }
    // Gemma 4 and PLaMo: </s> is an ordinary token there.
    if let Some(s) = find(&eog, "</s>") {
        if has(&eog, "<|tool_response>") || has(&eog, "<|plamo:eos|>") {
            eog.retain(|&id| id != s);
            tokens[s as usize].attr = attr::NORMAL;
        }
    }
    eog
}

/// Per-token attributes llama.cpp sets by model or pre-tokenizer name.
fn apply_model_attributes(vocab: &VocabRef<'_>, tokens: &mut [TokenData], table: &TokenTable) {
    let pre = vocab.pre.unwrap_or("");
    let name = vocab.model_name.unwrap_or("").to_lowercase();
    let set = |tokens: &mut [TokenData], text: &str, bit: u16, on: bool| {
        if let Some(id) = table.get(text) {
            let token = &mut tokens[id as usize];
            token.attr = if on {
                token.attr | bit
            } else {
                token.attr & !bit
            };
        }
    };
    if ["jina-v2-de", "jina-v2-es", "jina-v2-code"]
        .iter()
        .any(|p| pre.contains(p))
    {
        set(tokens, "<mask>", attr::LSTRIP, true);
    } else if name.contains("phi-3") || name.contains("phi3") {
        for token in tokens.iter_mut() {
            if token.attr & attr::SPECIAL != 0 {
                token.attr |= attr::RSTRIP;
            }
        }
        set(tokens, "</s>", attr::RSTRIP, true);
        for text in ["<unk>", "<s>", "<|endoftext|>"] {
            set(tokens, text, attr::RSTRIP, false);
        }
    } else if name.contains("modern-bert") {
        set(tokens, "[MASK]", attr::LSTRIP, true);
    }
}

/// Control, user-defined and unknown tokens, for `tokenizer_st_partition`.
fn special_matcher(tokens: &[TokenData], table: &TokenTable) -> SpecialTokens {
    let special = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| t.attr & attr::SPECIAL != 0)
        .map(|(id, t)| {
            let token = SpecialToken {
                id: id as u32,
                needs_parse_special: t.attr & (attr::CONTROL | attr::UNKNOWN) != 0,
                lstrip: t.attr & attr::LSTRIP != 0,
                rstrip: t.attr & attr::RSTRIP != 0,
            };
            (table.text(id as u32).unwrap_or_default().to_owned(), token)
        })
        .collect();
    SpecialTokens::new(special)
}
