//! Chat templates rendered by minijinja against what transformers' jinja2 renders: every
//! fixture template (tests/templates/*.jinja, the catalog models' and llama.cpp's) over
//! every conversation of cases.json, byte for byte with expected/<template>.json.
//! scripts/make-template-golden.py makes the fixtures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use engine::{
    ChatTemplate, Message, Role, SpecialTokens, TemplateError, TemplateOrigin, ToolCall, ToolSpec,
};
use serde_json::Value;

/// The one known difference from jinja2: minijinja iterates `none` as an empty sequence
/// where Python raises this (the Hermes tool-use templates loop over `tools` without
/// checking; slm only picks a tool-use template when tools are given).
const NONE_NOT_ITERABLE: &str = "TypeError: 'NoneType' object is not iterable";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/templates")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn message(v: &Value) -> Message {
    let role = match v["role"].as_str().unwrap() {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => panic!("unknown role {other}"),
    };
    let mut message = Message::new(role, text(v, "content"));
    for call in v["tool_calls"].as_array().into_iter().flatten() {
        message.tool_calls.push(ToolCall {
            id: text(call, "id"),
            name: text(&call["function"], "name"),
            arguments: call["function"]["arguments"].clone(),
        });
    }
    message.tool_call_id = v["tool_call_id"].as_str().map(str::to_owned);
    message.name = v["name"].as_str().map(str::to_owned);
    message
}

fn tool(v: &Value) -> ToolSpec {
    let function = &v["function"];
    ToolSpec {
        name: text(function, "name"),
        description: function["description"].as_str().map(str::to_owned),
        parameters: function["parameters"].clone(),
    }
}

struct Conversation {
    name: String,
    messages: Vec<Message>,
    tools: Vec<ToolSpec>,
    add_generation_prompt: bool,
}

fn conversations(cases: &Value) -> Vec<Conversation> {
    let all = cases["conversations"].as_object().unwrap();
    all.iter()
        .map(|(name, c)| Conversation {
            name: name.clone(),
            messages: c["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(message)
                .collect(),
            tools: c["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .map(tool)
                .collect(),
            add_generation_prompt: c["add_generation_prompt"].as_bool().unwrap(),
        })
        .collect()
}

fn template(cases: &Value, name: &str) -> ChatTemplate {
    let source = std::fs::read_to_string(fixtures().join(format!("{name}.jinja"))).unwrap();
    let spec = &cases["templates"][name];
    let tokens = SpecialTokens {
        bos_token: text(spec, "bos_token"),
        eos_token: text(spec, "eos_token"),
        strip_bos: false,
    };
    ChatTemplate::new(source, None, TemplateOrigin::Model, tokens)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .with_fixed_time(cases["now_unix"].as_i64().unwrap())
}

#[test]
fn templates_render_as_transformers_does() {
    let cases = read_json(&fixtures().join("cases.json"));
    let conversations = conversations(&cases);
    let names: Vec<&String> = cases["templates"].as_object().unwrap().keys().collect();
    assert!(names.len() >= 15, "fixture templates are missing");
    let mut failures = Vec::new();
    for name in names {
        let template = template(&cases, name);
        let expected = read_json(&fixtures().join(format!("expected/{name}.json")));
        for c in &conversations {
            let want = &expected[&c.name];
            let got = template.render(&c.messages, &c.tools, c.add_generation_prompt);
            let ok = match (&got, want.get("text")) {
                (Ok(text), Some(want_text)) => want_text.as_str() == Some(text.as_str()),
                (Err(TemplateError::Raised { message }), None) if want["raised"] == true => {
                    want["error"].as_str() == Some(message.as_str())
                }
                (Err(_), None) => want["raised"] == false,
                (Ok(_), None) => want["error"] == NONE_NOT_ITERABLE,
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{name} / {}:\n  expected {want}\n  rendered {got:?}",
                    c.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Rendering a long conversation: prints the time (never asserted).
#[test]
fn long_conversation_render_time() {
    let cases = read_json(&fixtures().join("cases.json"));
    let template = template(&cases, "Qwen-Qwen2.5-7B-Instruct");
    let mut messages = vec![Message::new(Role::System, "You are a helpful assistant.")];
    for turn in 0..50 {
        messages.push(Message::new(
            Role::User,
            format!("Question {turn}: what is {turn} squared? Explain briefly, with an example."),
        ));
        messages.push(Message::new(
            Role::Assistant,
            format!(
                "{turn} squared is {}. For example, a square of side {turn} has that area.",
                turn * turn
            ),
        ));
    }
    let rounds = 200;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes += template.render(&messages, &[], true).unwrap().len();
    }
    let per_render = start.elapsed() / rounds;
    eprintln!(
        "rendered {} messages ({} bytes) in {per_render:?} per render",
        messages.len(),
        bytes / rounds as usize
    );
}
