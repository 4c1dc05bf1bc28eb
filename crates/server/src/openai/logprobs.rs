//! OpenAI's two log-probability shapes: chat's `logprobs.content[{token, logprob, bytes,
//! top_logprobs}]` and completions' `logprobs.{tokens, token_logprobs, top_logprobs,
//! text_offset}`.

use engine::TokenLogprob;
use serde_json::{json, Map, Value};

/// One entry of chat's `logprobs.content`.
pub fn chat_entry(lp: &TokenLogprob) -> Value {
    let top: Vec<Value> = lp
        .top
        .iter()
        .map(|(_, text, bytes, logprob)| {
            json!({ "token": text, "logprob": logprob, "bytes": bytes })
        })
        .collect();
    json!({
        "token": lp.text,
        "logprob": lp.logprob,
        "bytes": lp.bytes,
        "top_logprobs": top,
    })
}

/// Chat's `logprobs` object for these tokens.
pub fn chat(logprobs: &[TokenLogprob]) -> Value {
    let content: Vec<Value> = logprobs.iter().map(chat_entry).collect();
    json!({ "content": content, "refusal": null })
}

/// Completions' `logprobs` object; `offset` is where the first token's text starts in the
/// prompt and completion together, in characters (OpenAI counts from the prompt's start).
pub fn completion(logprobs: &[TokenLogprob], mut offset: usize) -> Value {
    let mut tokens = Vec::with_capacity(logprobs.len());
    let mut token_logprobs = Vec::with_capacity(logprobs.len());
    let mut top_logprobs = Vec::with_capacity(logprobs.len());
    let mut text_offset = Vec::with_capacity(logprobs.len());
    for lp in logprobs {
        tokens.push(Value::from(lp.text.clone()));
        token_logprobs.push(Value::from(lp.logprob));
        let mut top = Map::new();
        for (_, text, _, logprob) in &lp.top {
            // Two alternatives with the same text (rare: different ids, same piece) keep
            // the more probable, which comes first.
            top.entry(text.clone()).or_insert(Value::from(*logprob));
        }
        top_logprobs.push(Value::Object(top));
        text_offset.push(Value::from(offset));
        offset += lp.text.chars().count();
    }
    json!({
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": text_offset,
    })
}
