//! A summary of a model file for people (`slm show`), read from its metadata alone.

use std::collections::BTreeMap;
use std::path::Path;

use gguf::GgufFile;

use crate::chat::fallback::{self, Fallback};
use crate::error::EngineError;

/// What a GGUF file holds, in numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `general.name`, if set.
    pub name: Option<String>,
    /// `general.architecture`.
    pub architecture: String,
    /// Total number of weights (elements of all tensors).
    pub n_params: u64,
    /// How many tensors have each ggml type, by type name.
    pub tensor_types: BTreeMap<String, usize>,
    /// `<arch>.context_length`: the training context.
    pub context_length: Option<u64>,
    /// `<arch>.block_count`.
    pub n_layers: Option<u64>,
    /// `<arch>.attention.head_count`.
    pub n_heads: Option<u64>,
    /// `<arch>.attention.head_count_kv`.
    pub n_kv_heads: Option<u64>,
    /// `<arch>.embedding_length`.
    pub n_embd: Option<u64>,
    /// Number of tokens in the vocabulary.
    pub n_vocab: Option<usize>,
    /// Whether the file carries `tokenizer.chat_template`.
    pub has_chat_template: bool,
    /// The file's `tokenizer.chat_template`: the Jinja source slm renders chats with.
    pub chat_template: Option<String>,
    /// The file's `tokenizer.chat_template.tool_use`, used instead when tools are given.
    pub chat_template_tool_use: Option<String>,
    /// The built-in template used when the file has none (from the architecture and the
    /// vocabulary).
    pub fallback_template: Fallback,
    /// How the model writes tool calls (from the template, else the architecture).
    pub tool_format: crate::tools::ToolFormat,
    /// Whether the chat template renders a request's tools itself.
    pub template_renders_tools: bool,
    /// The file's size in bytes.
    pub file_size: u64,
}

impl ModelInfo {
    /// Reads the summary of the GGUF file at `path` (no weights are touched).
    pub fn read(path: impl AsRef<Path>) -> Result<ModelInfo, EngineError> {
        let path = path.as_ref();
        let file = GgufFile::open(path).map_err(|source| EngineError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ModelInfo::from_file(&file))
    }

    /// The summary of an open file.
    pub fn from_file(file: &GgufFile) -> ModelInfo {
        let string = |key: &str| file.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let architecture = string("general.architecture").unwrap_or_default();
        let number = |suffix: &str| {
            file.get(&format!("{architecture}.{suffix}"))
                .and_then(|v| v.as_u64())
        };
        let chat_template = string("tokenizer.chat_template");
        let tokens = file
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .and_then(|a| a.as_strings());
        let mut tensor_types = BTreeMap::new();
        let mut n_params = 0u64;
        for tensor in file.tensors() {
            n_params = n_params.saturating_add(tensor.n_elements());
            *tensor_types
                .entry(tensor.ggml_type.name().to_string())
                .or_insert(0) += 1;
        }
        ModelInfo {
            name: string("general.name"),
            n_params,
            tensor_types,
            context_length: number("context_length"),
            n_layers: number("block_count"),
            n_heads: number("attention.head_count"),
            n_kv_heads: number("attention.head_count_kv"),
            n_embd: number("embedding_length"),
            n_vocab: tokens.map(<[String]>::len),
            has_chat_template: chat_template.is_some(),
            tool_format: crate::tools::ToolFormat::detect(chat_template.as_deref(), &architecture),
            template_renders_tools: crate::tools::template_renders_tools(chat_template.as_deref()),
            chat_template_tool_use: string("tokenizer.chat_template.tool_use"),
            fallback_template: fallback::for_model(&architecture, |text| {
                tokens.is_some_and(|tokens| tokens.iter().any(|t| t == text))
            }),
            chat_template,
            file_size: file.file_size(),
            architecture,
        }
    }

    /// The Jinja source of the chat template slm uses for the file (without a
    /// `--chat-template` override): the file's own, else the built-in one.
    pub fn chat_template_source(&self) -> &str {
        self.chat_template
            .as_deref()
            .unwrap_or(self.fallback_template.source)
    }
}
