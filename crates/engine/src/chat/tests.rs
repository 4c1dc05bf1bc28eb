use super::fallback::{self, Fallback};
use super::*;

fn user(text: &str) -> Message {
    Message::new(Role::User, text)
}

fn conversation() -> Vec<Message> {
    vec![
        Message::new(Role::System, "Be brief."),
        user("Hi"),
        Message::new(Role::Assistant, "Hello!"),
        user("Bye"),
    ]
}

fn tokens(bos: &str, strip_bos: bool) -> SpecialTokens {
    SpecialTokens {
        bos_token: bos.to_owned(),
        eos_token: "</s>".to_owned(),
        strip_bos,
    }
}

fn builtin(fallback: Fallback) -> ChatTemplate {
    ChatTemplate::new(
        fallback.source,
        None,
        TemplateOrigin::Fallback(fallback.name),
        tokens("<bos>", true),
    )
    .unwrap()
}

fn render(template: &ChatTemplate, messages: &[Message]) -> String {
    template.render(messages, &[], true).unwrap()
}

fn source(text: &str) -> ChatTemplate {
    ChatTemplate::new(text, None, TemplateOrigin::Override, tokens("<s>", false)).unwrap()
}

#[test]
fn picks_builtin_templates_by_architecture_and_vocabulary() {
    let none = |_: &str| false;
    assert_eq!(fallback::for_model("gemma3", none), fallback::GEMMA);
    assert_eq!(fallback::for_model("qwen2", none), fallback::CHATML);
    assert_eq!(
        fallback::for_model("llama", |t| t == "<|im_start|>"),
        fallback::CHATML
    );
    assert_eq!(
        fallback::for_model("llama", |t| t == "<|start_header_id|>"),
        fallback::LLAMA3
    );
    assert_eq!(fallback::for_model("phi3", none), fallback::PLAIN);
}

// The built-in templates render plain conversations as the families' own templates do.
#[test]
fn builtin_gemma() {
    let gemma = builtin(fallback::GEMMA);
    assert_eq!(
        render(&gemma, &[user(" Hi \n")]),
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        render(&gemma, &conversation()),
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        gemma.render(&[user("Hi")], &[], false).unwrap(),
        "<start_of_turn>user\nHi<end_of_turn>\n"
    );
}

#[test]
fn builtin_chatml_llama3_plain() {
    assert_eq!(
        render(&builtin(fallback::CHATML), &conversation()),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        render(&builtin(fallback::LLAMA3), &conversation()),
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(
        render(&builtin(fallback::PLAIN), &conversation()),
        "Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:"
    );
}

#[test]
fn earlier_turns_render_the_same_so_the_cache_prefix_is_reused() {
    for fallback in [
        fallback::CHATML,
        fallback::GEMMA,
        fallback::LLAMA3,
        fallback::PLAIN,
    ] {
        let template = builtin(fallback);
        let all = conversation();
        let first = template.render(&all[..3], &[], false).unwrap();
        let whole = render(&template, &all);
        assert!(whole.starts_with(&first), "{}", fallback.name);
    }
}

#[test]
fn strips_a_leading_bos_only_when_the_tokenizer_adds_one() {
    let text = "{{ bos_token }}{{ messages[0]['content'] }}";
    let strip = ChatTemplate::new(text, None, TemplateOrigin::Override, tokens("<s>", true));
    assert_eq!(render(&strip.unwrap(), &[user("x")]), "x");
    assert_eq!(render(&source(text), &[user("x")]), "<s>x");
}

#[test]
fn raise_exception_is_a_typed_error_with_the_template_message() {
    let template = source("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok");
    let err = template
        .render(&[Message::new(Role::System, "x")], &[], true)
        .unwrap_err();
    assert_eq!(
        err,
        TemplateError::Raised {
            message: "System role not supported".into()
        }
    );
    assert_eq!(render(&template, &[user("x")]), "ok");
}

#[test]
fn syntax_and_render_errors_are_typed_errors() {
    let err = ChatTemplate::new(
        "{% for %}",
        None,
        TemplateOrigin::Override,
        SpecialTokens::default(),
    )
    .unwrap_err();
    assert!(matches!(err, TemplateError::Syntax { .. }), "{err}");
    let err = source("{{ messages[0].content.missing.deeper }}")
        .render(&[user("x")], &[], true)
        .unwrap_err();
    assert!(matches!(err, TemplateError::Render { .. }), "{err}");
}

#[test]
fn tojson_is_pythons_json_dumps() {
    let template = source(concat!(
        "{{ tools | tojson }}|{{ tools[0].function.parameters | tojson(indent=2) }}|",
        "{{ {'b': 1.5, 'a': [true, none, 1.0]} | tojson(separators=(',', ':'), sort_keys=true) }}|",
        "{{ 'é\"<>&\\n' | tojson }}|{{ 'é' | tojson(ensure_ascii=true) }}"
    ));
    let tool = ToolSpec {
        name: "f".into(),
        description: None,
        parameters: serde_json::json!({"type": "object", "properties": {"z": {}, "a": {}}}),
    };
    let text = template.render(&[user("x")], &[tool], true).unwrap();
    assert_eq!(
        text,
        concat!(
            "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": ",
            "{\"type\": \"object\", \"properties\": {\"z\": {}, \"a\": {}}}}}]|",
            "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"z\": {},\n    \"a\": {}\n  }\n}|",
            "{\"a\":[true,null,1.0],\"b\":1.5}|\"é\\\"<>&\\n\"|\"\\u00e9\""
        )
    );
}

#[test]
fn prints_values_as_python_does() {
    let template = source(concat!(
        "{{ none }} {{ true }} {{ [1, 'a', \"it's\"] }} {{ {'k': false} }} {{ 2.0 }} {{ missing }}|",
        "{{ '  x  '.strip() }}{{ 'a,b'.split(',') }}{{ 'Hi'.upper() }}{{ 'abc'.startswith('ab') }}",
        "{{ 'v1.2'.removeprefix('v') }}{{ 'a b c'.rsplit(' ', 1) }}"
    ));
    assert_eq!(
        render(&template, &[user("x")]),
        "None True [1, 'a', \"it's\"] {'k': False} 2.0 |x['a', 'b']HITrue1.2['a b', 'c']"
    );
}

#[test]
fn trims_and_strips_blocks_and_supports_loop_controls() {
    let template = source(
        "{% for m in messages %}\n    {% if loop.index > 1 %}{% break %}{% endif %}\n{{ m.content }}\n{% endfor %}",
    );
    assert_eq!(render(&template, &[user("a"), user("b")]), "a\n");
}

#[test]
fn messages_carry_tool_calls_and_tool_results() {
    let template = source(concat!(
        "{% for m in messages %}{{ m.role }}:{{ m.content }}",
        "{% for c in m.tool_calls %}[{{ c.id }} {{ c.type }} {{ c.function.name }} {{ c.function.arguments | tojson }}]{% endfor %}",
        "{% if m.tool_call_id is defined %}({{ m.tool_call_id }} {{ m.name }}){% endif %};{% endfor %}",
        "{{ tools is none }}"
    ));
    let mut call = Message::new(Role::Assistant, "");
    call.tool_calls.push(ToolCall {
        id: "c1".into(),
        name: "f".into(),
        arguments: serde_json::json!({"x": "ü"}),
    });
    let mut result = Message::new(Role::Tool, "42");
    result.tool_call_id = Some("c1".into());
    result.name = Some("f".into());
    assert_eq!(
        render(&template, &[user("q"), call, result]),
        "user:q;assistant:[c1 function f {\"x\": \"ü\"}];tool:42(c1 f);True"
    );
}

#[test]
fn uses_the_tool_use_template_when_tools_are_given() {
    let template = ChatTemplate::new(
        "plain",
        Some("tools: {{ tools | length }}".into()),
        TemplateOrigin::Model,
        SpecialTokens::default(),
    )
    .unwrap();
    let tool = ToolSpec {
        name: "f".into(),
        description: Some("d".into()),
        parameters: serde_json::json!({}),
    };
    assert_eq!(render(&template, &[user("x")]), "plain");
    assert_eq!(
        template.render(&[user("x")], &[tool], true).unwrap(),
        "tools: 1"
    );
}

#[test]
fn strftime_now_uses_the_pinned_time() {
    let template = source("{{ strftime_now('%d %b %Y') }}").with_fixed_time(1_768_469_400);
    assert_eq!(render(&template, &[]), "15 Jan 2026");
}
