//! A summary of a model file for people (`slm show`), read from its metadata alone.

use std::collections::BTreeMap;
use std::path::Path;

use gguf::GgufFile;

use crate::chat::TemplateKind;
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
    /// The chat format slm uses for the model (from the template, else the architecture).
    pub chat_format: TemplateKind,
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
            n_vocab: file
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .map(|a| a.len()),
            has_chat_template: chat_template.is_some(),
            chat_format: TemplateKind::detect(chat_template.as_deref(), &architecture),
            tool_format: crate::tools::ToolFormat::detect(chat_template.as_deref(), &architecture),
            template_renders_tools: crate::tools::template_renders_tools(chat_template.as_deref()),
            file_size: file.file_size(),
            architecture,
        }
    }
}
