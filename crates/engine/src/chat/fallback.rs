//! Built-in templates for models whose file carries none (base models such as Gemma 3
//! 270M), chosen from the architecture and the vocabulary:
//!
//! - `gemma`: `gemma*` architectures, or a vocabulary with `<start_of_turn>`: Gemma's
//!   turns, the system text opening the first user turn, the assistant called `model`;
//! - `chatml`: `qwen2`/`qwen3`, or a vocabulary with `<|im_start|>` (SmolLM and other
//!   llama-family ChatML models): `<|im_start|>role\n…<|im_end|>\n`;
//! - `llama3`: a vocabulary with `<|start_header_id|>`: Llama 3's headers;
//! - `plain`: anything else, a transcript (`User: …`, `Assistant: …`, a system text first).

/// A built-in template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// Its short name (`chatml`, `gemma`, `llama3`, `plain`).
    pub name: &'static str,
    /// Its Jinja source.
    pub source: &'static str,
}

/// ChatML, without a default system message.
pub const CHATML: Fallback = Fallback {
    name: "chatml",
    source: "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
};

/// Gemma's turns (as Gemma 3's own template renders plain conversations).
pub const GEMMA: Fallback = Fallback {
    name: "gemma",
    source: "{{ bos_token }}\
{% if messages and messages[0]['role'] == 'system' %}\
{% set first_user_prefix = messages[0]['content'] + '\\n\\n' %}\
{% set loop_messages = messages[1:] %}\
{% else %}\
{% set first_user_prefix = '' %}\
{% set loop_messages = messages %}\
{% endif %}\
{% for message in loop_messages %}\
{% set role = 'model' if message['role'] == 'assistant' else 'user' %}\
{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}\
{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
};

/// Llama 3's headers.
pub const LLAMA3: Fallback = Fallback {
    name: "llama3",
    source: "{{ bos_token }}\
{% for message in messages %}\
{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}\
{{ message['content'] | trim }}{{ '<|eot_id|>' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
};

/// A plain transcript.
pub const PLAIN: Fallback = Fallback {
    name: "plain",
    source: "{% for message in messages %}\
{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}\
{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '\\n' }}\
{% elif message['role'] == 'tool' %}{{ 'Tool: ' + message['content'] + '\\n' }}\
{% else %}{{ 'User: ' + message['content'] + '\\n' }}\
{% endif %}\
{% endfor %}\
{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}",
};

/// The built-in template for a model of `architecture` whose vocabulary holds the tokens
/// for which `has_token` is true.
pub fn for_model(architecture: &str, has_token: impl Fn(&str) -> bool) -> Fallback {
    if architecture.starts_with("gemma") || has_token("<start_of_turn>") {
        GEMMA
    } else if matches!(architecture, "qwen2" | "qwen3") || has_token("<|im_start|>") {
        CHATML
    } else if has_token("<|start_header_id|>") {
        LLAMA3
    } else {
        PLAIN
    }
}
