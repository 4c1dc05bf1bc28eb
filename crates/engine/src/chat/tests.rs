use super::*;

const QWEN25: &str = include_str!("qwen2.5.jinja");
const SMOLLM2: &str = include_str!("smollm2.jinja");

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

fn check(kind: &TemplateKind, messages: &[Message], expected: &str) {
    assert_eq!(render_chat(kind, messages, true), expected);
}

#[test]
fn detects_families() {
    let qwen = TemplateKind::detect(Some(QWEN25), "qwen2");
    assert_eq!(
        qwen,
        TemplateKind::ChatMl {
            default_system: Some(
                "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.".into()
            )
        }
    );
    let smol = TemplateKind::detect(Some(SMOLLM2), "llama");
    assert_eq!(
        smol,
        TemplateKind::ChatMl {
            default_system: Some(
                "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into()
            )
        }
    );
    assert_eq!(TemplateKind::detect(None, "gemma3"), TemplateKind::Gemma);
    assert_eq!(
        TemplateKind::detect(Some("{{ '<start_of_turn>' + role }}"), "llama"),
        TemplateKind::Gemma
    );
    assert_eq!(
        TemplateKind::detect(Some("<|start_header_id|>"), "llama"),
        TemplateKind::Llama3
    );
    assert_eq!(TemplateKind::detect(None, "llama"), TemplateKind::Plain);
    assert_eq!(
        TemplateKind::detect(Some("{{ messages }}"), "phi3"),
        TemplateKind::Plain
    );
    assert_eq!(
        TemplateKind::detect(Some("<|im_start|>{{ role }}"), "qwen3"),
        TemplateKind::ChatMl {
            default_system: None
        }
    );
}

// Expected texts are what the models' own Jinja templates render (checked with jinja2).
#[test]
fn qwen25_matches_its_template() {
    let kind = TemplateKind::detect(Some(QWEN25), "qwen2");
    check(
        &kind,
        &[user("Hi")],
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    check(
        &kind,
        &conversation(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
    );
}

#[test]
fn smollm2_matches_its_template() {
    let kind = TemplateKind::detect(Some(SMOLLM2), "llama");
    check(
        &kind,
        &[user("Hi")],
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    check(
        &kind,
        &conversation(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
    );
}

#[test]
fn gemma() {
    check(
        &TemplateKind::Gemma,
        &[user(" Hi \n")],
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    );
    check(
        &TemplateKind::Gemma,
        &conversation(),
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n",
    );
}

#[test]
fn llama3() {
    check(
        &TemplateKind::Llama3,
        &conversation(),
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
}

#[test]
fn plain() {
    check(
        &TemplateKind::Plain,
        &conversation(),
        "Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:",
    );
}

#[test]
fn without_generation_prompt() {
    let text = render_chat(&TemplateKind::Gemma, &[user("Hi")], false);
    assert_eq!(text, "<start_of_turn>user\nHi<end_of_turn>\n");
}

#[test]
fn earlier_turns_render_the_same_so_the_cache_prefix_is_reused() {
    for kind in [
        TemplateKind::detect(Some(QWEN25), "qwen2"),
        TemplateKind::Gemma,
        TemplateKind::Llama3,
        TemplateKind::Plain,
    ] {
        let all = conversation();
        let first = render_chat(&kind, &all[..3], false);
        let whole = render_chat(&kind, &all, true);
        assert!(whole.starts_with(&first), "{kind:?}");
    }
}
