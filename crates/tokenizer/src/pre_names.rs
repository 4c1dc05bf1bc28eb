//! The `tokenizer.ggml.pre` names slm knows, with the settings llama.cpp's
//! `llama_vocab::impl::load` gives each: a flat table of uniform entries.

use crate::pretokenize::PreTokenizer;

/// Settings of a BPE vocabulary that follow from its pre-tokenizer name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreSettings {
    pub(crate) pre: PreTokenizer,
    /// Undo a space before punctuation when detokenizing (`clean_up_tokenization_spaces`).
    pub(crate) clean_spaces: bool,
    /// A word that is a token as a whole is taken as is, without merges.
    pub(crate) ignore_merges: bool,
    /// Add BOS by default (the file's `add_bos_token` still wins).
    pub(crate) add_bos: bool,
    /// Add SEP by default (the file's `add_sep_token` still wins).
    pub(crate) add_sep: bool,
    /// The default BOS id does not apply (ChatGLM).
    pub(crate) no_default_bos: bool,
}

const fn settings(pre: PreTokenizer, clean_spaces: bool) -> PreSettings {
    PreSettings {
        pre,
        clean_spaces,
        ignore_merges: false,
        add_bos: false,
        add_sep: false,
        no_default_bos: false,
    }
}

use PreTokenizer::{Default, Gpt2, Llama3, Qwen2, Smollm};

const LLAMA3: PreSettings = PreSettings {
    ignore_merges: true,
    add_bos: true,
    ..settings(Llama3, true)
};
const ROBERTA: PreSettings = PreSettings {
    add_sep: true,
    ..settings(Gpt2, true)
};
const CHATGLM: PreSettings = PreSettings {
    no_default_bos: true,
    ..settings(Llama3, true)
};
const GLM4: PreSettings = PreSettings {
    ignore_merges: true,
    ..CHATGLM
};

/// Every name slm accepts. A BPE file without `tokenizer.ggml.pre` gets "default", as in
/// llama.cpp (which warns that generation quality will suffer).
const TABLE: &[(&str, PreSettings)] = &[
    ("default", settings(Default, true)),
    ("llama3", LLAMA3),
    ("llama-v3", LLAMA3),
    ("llama-bpe", LLAMA3),
    ("falcon3", LLAMA3),
    ("falcon-h1", LLAMA3),
    ("pixtral", LLAMA3),
    ("midm-2.0", LLAMA3),
    ("lfm2", LLAMA3),
    ("jina-v5-nano", LLAMA3),
    ("dbrx", settings(Llama3, true)),
    ("smaug-bpe", settings(Llama3, true)),
    ("chatglm-bpe", CHATGLM),
    ("glm4", GLM4),
    ("glm5", GLM4),
    ("gpt-2", settings(Gpt2, true)),
    ("phi-2", settings(Gpt2, true)),
    ("jina-es", settings(Gpt2, true)),
    ("jina-de", settings(Gpt2, true)),
    ("gigachat", settings(Gpt2, true)),
    ("jina-v2-es", settings(Gpt2, true)),
    ("jina-v2-de", settings(Gpt2, true)),
    ("a.x-4.0", settings(Gpt2, true)),
    ("mellum", settings(Gpt2, true)),
    ("modern-bert", settings(Gpt2, true)),
    ("exaone4", settings(Gpt2, true)),
    ("mpt", settings(Gpt2, true)),
    ("olmo", settings(Gpt2, true)),
    ("jais", settings(Gpt2, true)),
    ("trillion", settings(Gpt2, false)),
    ("granite-docling", settings(Gpt2, false)),
    ("jina-v1-en", ROBERTA),
    ("jina-v2-code", ROBERTA),
    ("roberta-bpe", ROBERTA),
    ("starcoder", settings(Smollm, true)),
    ("refact", settings(Smollm, true)),
    ("command-r", settings(Smollm, false)),
    ("smollm", settings(Smollm, false)),
    ("codeshell", settings(Smollm, true)),
    ("exaone", settings(Smollm, true)),
    ("minerva-7b", settings(Smollm, true)),
    ("mellum2", settings(Smollm, true)),
    ("qwen2", settings(Qwen2, false)),
    ("deepseek-r1-qwen", settings(Qwen2, false)),
    ("kormo", settings(Qwen2, false)),
    ("f2llmv2", settings(Qwen2, false)),
    ("megrez", settings(Qwen2, true)),
    ("stablelm2", settings(Qwen2, true)),
    ("hunyuan", settings(Qwen2, false)),
    ("solar-open", settings(Qwen2, false)),
    ("grok-2", settings(Qwen2, false)),
];

/// The settings for a pre-tokenizer name, if slm supports it.
pub(crate) fn lookup(name: &str) -> Option<PreSettings> {
    TABLE.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The supported names, for error messages.
pub(crate) fn supported_names() -> String {
    TABLE.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}
