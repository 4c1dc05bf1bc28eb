use serde_json::{json, Value};

use super::*;
use crate::chat::{Message, Role, ToolSpec};

const QWEN25: &str = include_str!("templates/Qwen-Qwen2.5-7B-Instruct.jinja");
const HERMES3: &str = include_str!("templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja");
const LLAMA32: &str = include_str!("templates/meta-llama-Llama-3.2-3B-Instruct.jinja");
const MISTRAL: &str = include_str!("templates/mistralai-Mistral-Nemo-Instruct-2407.jinja");
const GEMMA2: &str = include_str!("templates/google-gemma-2-2b-it.jinja");

#[test]
fn detects_formats() {
    let cases = [
        (Some(QWEN25), "qwen2", ToolFormat::Hermes),
        (Some(HERMES3), "llama", ToolFormat::Hermes),
        (Some(LLAMA32), "llama", ToolFormat::Llama3),
        (Some(MISTRAL), "llama", ToolFormat::Mistral),
        (Some("{{ '<|tool_call|>' }}"), "phi3", ToolFormat::Phi4Mini),
        (Some(GEMMA2), "gemma2", ToolFormat::Fenced),
        (None, "gemma3", ToolFormat::Fenced),
        (None, "qwen2", ToolFormat::Hermes),
        (Some("<|im_start|>{{ m }}"), "llama", ToolFormat::Fenced),
    ];
    for (template, arch, expected) in cases {
        assert_eq!(ToolFormat::detect(template, arch), expected, "{arch}");
    }
    assert!(template_renders_tools(Some(QWEN25)));
    assert!(!template_renders_tools(Some(GEMMA2)));
    assert!(!template_renders_tools(None));
}

/// (name, arguments) of each call.
fn calls_of(output: &ParsedOutput) -> Vec<(String, Value)> {
    output
        .calls
        .iter()
        .map(|c| (c.name.clone(), c.arguments.clone()))
        .collect()
}

fn check(format: ToolFormat, text: &str, content: &str, calls: &[(&str, Value)]) {
    let parsed = parse(format, text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(parsed.content, content, "{text:?}");
    let expected: Vec<(String, Value)> = calls
        .iter()
        .map(|(n, a)| ((*n).to_owned(), a.clone()))
        .collect();
    assert_eq!(calls_of(&parsed), expected, "{text:?}");
    check_streamed(format, text, &parsed);
}

/// Streams `text` in random splits (several seeds, one-byte pieces included) and checks
/// the same calls and content come out.
fn check_streamed(format: ToolFormat, text: &str, whole: &ParsedOutput) {
    for seed in 0..24u64 {
        let mut rng = crate::rng::Rng::new(seed);
        let mut parser = StreamParser::new(format);
        let mut events = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let max = if seed == 0 {
                1
            } else {
                1 + (rng.next_u64() % 12) as usize
            };
            let mut cut = max.min(rest.len());
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            events.extend(parser.push(&rest[..cut]));
            rest = &rest[cut..];
        }
        events.extend(parser.finish());
        let streamed = assemble(&events);
        assert_eq!(
            streamed.content.trim(),
            whole.content,
            "seed {seed}: {text:?}"
        );
        assert_eq!(
            calls_of(&streamed),
            calls_of(whole),
            "seed {seed}: {text:?}"
        );
    }
}

/// What a client rebuilds from the events: text, and calls from starts and fragments
/// (checked against the end events).
fn assemble(events: &[StreamEvent]) -> ParsedOutput {
    let mut content = String::new();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut ended = Vec::new();
    for event in events {
        match event {
            StreamEvent::Text(text) => content.push_str(text),
            StreamEvent::CallStart { index, id, name } => {
                assert_eq!(*index, calls.len());
                calls.push((id.clone(), name.clone(), String::new()));
            }
            StreamEvent::CallArguments { index, fragment } => {
                calls[*index].2.push_str(fragment);
            }
            StreamEvent::CallEnd { index, call } => {
                assert_eq!(call.id, calls[*index].0);
                ended.push(call.clone());
            }
            StreamEvent::Invalid { text, .. } => content.push_str(text),
        }
    }
    assert_eq!(
        ended.len(),
        calls.len(),
        "every started call ends: {events:?}"
    );
    let calls = calls
        .into_iter()
        .zip(ended)
        .map(|((id, name, arguments), end)| {
            let arguments: Value = serde_json::from_str(&arguments)
                .unwrap_or_else(|e| panic!("arguments {arguments:?}: {e}"));
            assert_eq!(arguments, end.arguments);
            crate::chat::ToolCall {
                id,
                name,
                arguments,
            }
        })
        .collect();
    ParsedOutput { content, calls }
}

#[test]
fn hermes_calls() {
    let f = ToolFormat::Hermes;
    check(f, "Hello there.", "Hello there.", &[]);
    check(
        f,
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        "",
        &[("get_weather", json!({"city": "Paris"}))],
    );
    check(
        f,
        "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, {\"y\": \"}\\\"{\"}]}}\n</tool_call>\n<tool_call>\n{\"arguments\": {}, \"name\": \"b\"}\n</tool_call>",
        "Let me check.",
        &[("a", json!({"x": [1, {"y": "}\"{"}]})), ("b", json!({}))],
    );
    // Arguments written as a JSON string, a missing closer at the end, a lone "<".
    check(
        f,
        "x < y <tool_call>{\"name\": \"c\", \"arguments\": \"{\\\"k\\\": 2}\"}",
        "x < y",
        &[("c", json!({"k": 2}))],
    );
    check(
        f,
        "<tool_call>\n{\"name\": \"d\"}\n</tool_call>",
        "",
        &[("d", json!({}))],
    );
    check(f, "é<tool_callé", "é<tool_callé", &[]);
    // Small models sometimes leave out the tags around a first call.
    check(
        f,
        "{\"arguments\": {\"city\": \"Rome\"}, \"name\": \"get_weather\"}",
        "",
        &[("get_weather", json!({"city": "Rome"}))],
    );
}

#[test]
fn llama3_calls() {
    let f = ToolFormat::Llama3;
    check(
        f,
        "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
        "",
        &[("get_weather", json!({"city": "Oslo"}))],
    );
    check(
        f,
        "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"n\": 1}}",
        "",
        &[("a", json!({})), ("b", json!({"n": 1}))],
    );
    // JSON that is not a call is an answer.
    check(f, " {\"answer\": 42}", "{\"answer\": 42}", &[]);
    check(f, "The answer is {x}.", "The answer is {x}.", &[]);
}

#[test]
fn mistral_and_phi_calls() {
    check(
        ToolFormat::Mistral,
        "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"q\": \"x\"}}, {\"name\": \"b\", \"arguments\": {}}]",
        "",
        &[("a", json!({"q": "x"})), ("b", json!({}))],
    );
    check(
        ToolFormat::Phi4Mini,
        "Sure. <|tool_call|>[{\"name\": \"a\", \"arguments\": {\"q\": 1.5}}]<|/tool_call|>",
        "Sure.",
        &[("a", json!({"q": 1.5}))],
    );
}

#[test]
fn fenced_calls() {
    let f = ToolFormat::Fenced;
    check(
        f,
        "```tool_call\n{\"name\": \"convert\", \"arguments\": {\"value\": 3, \"from\": \"km\"}}\n```",
        "",
        &[("convert", json!({"value": 3, "from": "km"}))],
    );
    check(
        f,
        "```python\nprint(1)\n```",
        "```python\nprint(1)\n```",
        &[],
    );
}

#[test]
fn malformed_calls_say_why() {
    let cases = [
        (
            ToolFormat::Hermes,
            "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": }}\n</tool_call>",
            "not valid JSON",
        ),
        (
            ToolFormat::Hermes,
            "<tool_call>\n{\"arguments\": {}}\n</tool_call>",
            "no \"name\"",
        ),
        (
            ToolFormat::Hermes,
            "<tool_call>{\"name\": \"a\", \"arguments\": 3}</tool_call>",
            "not a JSON object",
        ),
        (
            ToolFormat::Hermes,
            "<tool_call>{\"name\": \"a\"} trailing",
            "not closed",
        ),
        (ToolFormat::Hermes, "<tool_call>", "is empty"),
        (
            ToolFormat::Mistral,
            "[TOOL_CALLS]{\"name\": \"a\"}",
            "not a JSON array",
        ),
    ];
    for (format, text, reason) in cases {
        let err = parse(format, text).expect_err(text).to_string();
        assert!(err.contains(reason), "{text:?}: {err}");
    }
}

#[test]
fn lenient_parse_keeps_calls_before_a_cut_one() {
    let text = "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"argu";
    let (parsed, error) = parse_lenient(ToolFormat::Hermes, text);
    assert_eq!(calls_of(&parsed), vec![("a".to_owned(), json!({}))]);
    assert!(
        parsed.content.starts_with("<tool_call>\n{\"name\": \"b\""),
        "{}",
        parsed.content
    );
    assert!(
        matches!(error, Some(ToolParseError::Json { index: 1, .. })),
        "{error:?}"
    );
}

#[test]
fn streamed_malformed_call_comes_back_as_text() {
    let mut parser = StreamParser::new(ToolFormat::Hermes);
    let mut events =
        parser.push("<tool_call>\n{\"name\": \"a\", \"arguments\": 3}\n</tool_call> after");
    events.extend(parser.finish());
    let invalid = events.iter().find_map(|e| match e {
        StreamEvent::Invalid { text, reason } => Some((text.clone(), reason.clone())),
        _ => None,
    });
    let (text, reason) = invalid.expect("an invalid event");
    assert!(text.starts_with("<tool_call>"), "{text}");
    assert!(reason.contains("not a JSON object"), "{reason}");
    let mut cut = StreamParser::new(ToolFormat::Hermes);
    let mut events = cut.push("<tool_call>\n{\"name\": \"a\", \"argu");
    events.extend(cut.finish());
    assert!(
        matches!(events.last(), Some(StreamEvent::Invalid { .. })),
        "{events:?}"
    );
}

#[test]
fn streaming_releases_text_early_and_holds_openers() {
    let mut parser = StreamParser::new(ToolFormat::Hermes);
    assert_eq!(parser.push("Hi <to"), vec![StreamEvent::Text("Hi ".into())]);
    let events = parser.push("ol_call>\n{\"name\": \"f\", \"arguments\": {\"a\": ");
    assert!(
        matches!(&events[..], [StreamEvent::CallStart { index: 0, name, .. }, StreamEvent::CallArguments { fragment, .. }] if name == "f" && fragment == "{\"a\": "),
        "{events:?}"
    );
    let events = parser.push("1}}\n</tool_call>");
    assert!(
        matches!(&events[..], [StreamEvent::CallArguments { fragment, .. }, StreamEvent::CallEnd { .. }] if fragment == "1}"),
        "{events:?}"
    );
}

#[test]
fn call_ids_are_fresh() {
    let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_call_id()).collect();
    assert_eq!(ids.len(), 1000);
    for id in ids.iter().take(5) {
        assert!(id.starts_with("call_") && id.len() == 29, "{id}");
        assert!(id[5..].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    }
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "get_weather".into(),
            description: Some("Weather in a city".into()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        },
        ToolSpec {
            name: "noop".into(),
            description: None,
            parameters: json!({}),
        },
    ]
}

#[test]
fn grammars_for_each_choice() {
    let options = GrammarOptions {
        opener_token: Some(151657),
        closer_token: Some(151658),
        parallel: false,
    };
    let required = lark_grammar(ToolFormat::Hermes, &tools(), &ToolChoice::Required, options)
        .expect("grammar")
        .expect("some grammar");
    assert!(
        required.starts_with("start: calls\ncalls: <[151657]> \"\\n\" call \"\\n\" <[151658]>\n"),
        "{required}"
    );
    assert!(required.contains("call: call_0 | call_1\n"), "{required}");
    assert!(
        required.contains(
            "call_0: \"{\\\"name\\\": \\\"get_weather\\\", \\\"arguments\\\": \" args_0 \"}\""
        ),
        "{required}"
    );
    assert!(
        required.contains("args_1: %json {\"type\":\"object\",\"x-guidance\":"),
        "{required}"
    );
    // Declared properties close the object; whitespace is bounded.
    assert!(
        required.contains("\"additionalProperties\":false"),
        "{required}"
    );
    let named = lark_grammar(
        ToolFormat::Mistral,
        &tools(),
        &ToolChoice::Function("noop".into()),
        GrammarOptions {
            parallel: true,
            ..GrammarOptions::default()
        },
    )
    .expect("grammar")
    .expect("some grammar");
    assert!(
        named.contains("calls: \"[TOOL_CALLS]\" \"[\" call (\", \" call){0,7} \"]\""),
        "{named}"
    );
    assert!(
        named.contains("call: call_0\n") && named.contains("noop"),
        "{named}"
    );
    let auto = lark_grammar(ToolFormat::Llama3, &tools(), &ToolChoice::Auto, options)
        .expect("grammar")
        .expect("some grammar");
    assert!(auto.starts_with("start: TEXT | calls\nTEXT: /(?s:.+)/ & ~/(?s:.*<\\|python_tag\\|>.*)/ & ~/(?s:\\s*\\{.*)/\n"), "{auto}");
    let hermes_auto = lark_grammar(ToolFormat::Hermes, &tools(), &ToolChoice::Auto, options)
        .expect("grammar")
        .expect("some grammar");
    assert!(
        hermes_auto.starts_with("start: TEXT | calls | call\n"),
        "{hermes_auto}"
    );
    assert_eq!(
        lark_grammar(ToolFormat::Hermes, &tools(), &ToolChoice::None, options),
        Ok(None)
    );
    assert_eq!(
        lark_grammar(ToolFormat::Hermes, &[], &ToolChoice::Auto, options),
        Ok(None)
    );
    assert_eq!(
        lark_grammar(
            ToolFormat::Hermes,
            &tools(),
            &ToolChoice::Function("nope".into()),
            options
        ),
        Err(ToolGrammarError::UnknownFunction {
            name: "nope".into()
        })
    );
    assert_eq!(
        lark_grammar(ToolFormat::Hermes, &[], &ToolChoice::Required, options),
        Err(ToolGrammarError::NoTools)
    );
}

#[test]
fn written_calls_parse_back() {
    let arguments = json!({"a": [1, 2], "b": {"c": "d"}});
    for format in [
        ToolFormat::Hermes,
        ToolFormat::Llama3,
        ToolFormat::Mistral,
        ToolFormat::Phi4Mini,
        ToolFormat::Fenced,
    ] {
        let text = format.write_call("f", &arguments);
        check(format, &text, "", &[("f", arguments.clone())]);
    }
}

#[test]
fn fallback_prompt_and_history() {
    let call = crate::chat::ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: json!({"city": "Paris"}),
    };
    let mut assistant = Message::new(Role::Assistant, "");
    assistant.tool_calls = vec![call];
    let mut result = Message::new(Role::Tool, "18 C");
    result.tool_call_id = Some("call_1".into());
    result.name = Some("get_weather".into());
    let messages = vec![
        Message::new(Role::System, "Be brief."),
        Message::new(Role::User, "Weather in Paris?"),
        assistant,
        result,
    ];
    let out = with_tool_prompt(ToolFormat::Fenced, &messages, &tools());
    assert_eq!(out.len(), 4);
    assert!(
        out[0].content.starts_with("Be brief.\n\n# Tools"),
        "{}",
        out[0].content
    );
    assert!(
        out[0].content.contains("\"name\":\"get_weather\""),
        "{}",
        out[0].content
    );
    assert!(
        out[0].content.contains("```tool_call\n{"),
        "{}",
        out[0].content
    );
    assert_eq!(
        out[2].content,
        ToolFormat::Fenced.write_call("get_weather", &json!({"city": "Paris"}))
    );
    assert_eq!(out[3].role, Role::User);
    assert_eq!(out[3].content, "Result of get_weather:\n18 C");
    let no_system = with_tool_prompt(ToolFormat::Hermes, &messages[1..2], &tools());
    assert_eq!(no_system[0].role, Role::System);
}
