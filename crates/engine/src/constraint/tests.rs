use super::*;

/// Token 0 is the end of generation.
const EOS: u32 = 0;

/// A handmade vocabulary: single characters, a few merges, one special token.
fn tiny() -> (ConstraintCompiler, Vec<Vec<u8>>) {
    let texts = [
        "<|end|>", "{", "}", "\"", "a", "b", ":", ",", " ", "1", "2", "-", ".", "\"a\"", "{\"",
        "\": ", "true", "false", "null", "[", "]", "ab", "x", "\n", "<tag>",
    ];
    let tokens: Vec<(Vec<u8>, bool)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_bytes().to_vec(), i == 0 || *t == "<tag>"))
        .collect();
    let bytes = tokens.iter().map(|(b, _)| b.clone()).collect();
    let vocabulary = TokenVocabulary::new(tokens, vec![EOS]);
    let compiler = ConstraintCompiler::from_vocabulary(vocabulary).expect("tiny vocabulary");
    (compiler, bytes)
}

/// A small deterministic generator so the walks are reproducible.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Walks the grammar with random allowed tokens until it ends; checks at every step that
/// each forbidden token is refused, and returns the text and whether it ended properly.
fn walk(
    compiler: &ConstraintCompiler,
    bytes: &[Vec<u8>],
    grammar: &Grammar,
    seed: u64,
    max_steps: usize,
) -> Option<String> {
    let mut constraint = compiler.compile(grammar).expect("grammar compiles");
    let mut rng = Lcg(seed);
    let mut out = Vec::new();
    for _ in 0..max_steps {
        if constraint.is_finished() {
            return Some(String::from_utf8(out).expect("utf-8"));
        }
        let mask = constraint.compute_mask().expect("mask");
        let allowed: Vec<u32> = (0..bytes.len() as u32)
            .filter(|&t| mask.allows(t))
            .collect();
        assert!(!allowed.is_empty());
        for t in 0..bytes.len() as u32 {
            if !mask.allows(t) && t != EOS {
                let mut probe = constraint.clone();
                assert!(probe.commit(t).is_err(), "masked token {t} was accepted");
            }
        }
        let token = allowed[rng.below(allowed.len())];
        if token == EOS {
            return Some(String::from_utf8(out).expect("utf-8"));
        }
        constraint.commit(token).expect("allowed token is accepted");
        out.extend_from_slice(&bytes[token as usize]);
    }
    None
}

#[test]
fn json_object_walks_parse() {
    let (compiler, bytes) = tiny();
    let mut finished = 0;
    for seed in 0..40 {
        if let Some(text) = walk(&compiler, &bytes, &Grammar::JsonObject, seed, 60) {
            let value: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
            assert!(value.is_object(), "{text}");
            finished += 1;
        }
    }
    assert!(finished > 0);
}

#[test]
fn schema_walks_validate() {
    let (compiler, bytes) = tiny();
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "a": {"type": "integer", "minimum": 0, "maximum": 21},
            "b": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2},
        },
        "required": ["a", "b"],
        "additionalProperties": false,
    });
    let grammar = Grammar::JsonSchema {
        schema,
        strict: true,
    };
    let mut finished = 0;
    for seed in 0..40 {
        let Some(text) = walk(&compiler, &bytes, &grammar, seed, 60) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(&text).expect("parses");
        let a = value["a"].as_i64().expect("integer a");
        assert!((0..=21).contains(&a), "{text}");
        let b = value["b"].as_array().expect("array b");
        assert!(
            b.len() <= 2 && b.iter().all(serde_json::Value::is_boolean),
            "{text}"
        );
        assert_eq!(value.as_object().map(|o| o.len()), Some(2), "{text}");
        finished += 1;
    }
    assert!(finished > 0);
}

#[test]
fn regex_walks_match() {
    let (compiler, bytes) = tiny();
    let grammar = Grammar::Regex("(ab|x){1,3}-[12]".to_string());
    let mut finished = 0;
    for seed in 0..30 {
        if let Some(text) = walk(&compiler, &bytes, &grammar, seed, 20) {
            let body = text.strip_suffix("-1").or(text.strip_suffix("-2"));
            let body = body.unwrap_or_else(|| panic!("{text:?}"));
            assert!(!body.is_empty() && body.replace("ab", "").replace('x', "").is_empty());
            finished += 1;
        }
    }
    assert!(finished > 0);
}

#[test]
fn end_of_generation_only_where_the_grammar_may_end() {
    let (compiler, _) = tiny();
    let mut constraint = compiler
        .compile(&Grammar::Regex("a(b)?".to_string()))
        .expect("compiles");
    let mask = constraint.compute_mask().expect("mask");
    assert!(!mask.allows(EOS));
    assert!(
        mask.allows(4) && mask.allows(21),
        "'a' and 'ab' start the output"
    );
    constraint.commit(4).expect("a");
    let mask = constraint.compute_mask().expect("mask");
    assert!(mask.allows(EOS) && mask.allows(5));
    constraint.commit(5).expect("b");
    assert!(constraint.is_finished(), "nothing more is allowed after ab");
}

#[test]
fn lark_names_special_tokens() {
    let (compiler, _) = tiny();
    let grammar = Grammar::Lark("start: <tag> \"a\" <|end|>".to_string());
    let mut constraint = compiler.compile(&grammar).expect("compiles");
    let mask = constraint.compute_mask().expect("mask");
    assert_eq!(mask.count(), 1);
    assert!(mask.allows(24));
    constraint.commit(24).expect("<tag>");
    constraint.commit(4).expect("a");
    let mask = constraint.compute_mask().expect("mask");
    assert!(mask.allows(EOS));
}

#[test]
fn mask_apply_forbids_masked_and_padding() {
    let (compiler, _) = tiny();
    let mut constraint = compiler
        .compile(&Grammar::Regex("x".to_string()))
        .expect("compiles");
    let mask = constraint.compute_mask().expect("mask");
    let mut logits = vec![1.0f32; 40];
    mask.apply(&mut logits);
    for (id, &logit) in logits.iter().enumerate() {
        assert_eq!(logit.is_finite(), id == 22, "token {id}");
    }
}

#[test]
fn invalid_grammars_are_refused() {
    let (compiler, _) = tiny();
    let bad = [
        Grammar::Regex("(".to_string()),
        Grammar::Lark("start: undefined_rule".to_string()),
        Grammar::Lark("start: <|nope|>".to_string()),
        Grammar::JsonSchema {
            schema: serde_json::json!("not a schema"),
            strict: true,
        },
        Grammar::JsonSchema {
            schema: serde_json::json!({"type": "nonsense"}),
            strict: true,
        },
    ];
    for grammar in bad {
        let error = compiler.compile(&grammar).expect_err("refused");
        assert!(matches!(error, ConstraintError::Invalid(_)), "{error}");
    }
}

/// The Qwen2.5 vocabulary from the test model's file, when real models are enabled.
fn qwen_tokenizer(test: &str) -> Option<Tokenizer> {
    if std::env::var("SLM_TEST_MODELS").as_deref() != Ok("1") {
        eprintln!("skipped {test}: set SLM_TEST_MODELS=1 to run tests that load real models");
        return None;
    }
    let home = std::env::var_os("SLM_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/slm")))
        .expect("SLM_HOME or HOME is set");
    let path = home.join("models/qwen2.5-coder-0.5b.gguf");
    Some(crate::load_tokenizer(&path).expect("the test model's tokenizer loads"))
}

/// Walks a grammar over a real vocabulary, choosing among the allowed tokens with the
/// most bytes first (so the walk ends), and returns the text with special tokens named.
fn walk_real(tokenizer: &Tokenizer, grammar: &Grammar, seed: u64) -> String {
    let compiler = ConstraintCompiler::new(tokenizer).expect("vocabulary");
    let mut constraint = compiler.compile(grammar).expect("grammar compiles");
    let mut rng = Lcg(seed);
    let mut out = Vec::new();
    for _ in 0..200 {
        if constraint.is_finished() {
            break;
        }
        let mask = constraint.compute_mask().expect("mask");
        let allowed: Vec<u32> = (0..tokenizer.n_vocab() as u32)
            .filter(|&t| mask.allows(t))
            .collect();
        if allowed.iter().any(|&t| tokenizer.is_eog(t)) && rng.below(3) == 0 {
            break;
        }
        // A few forbidden tokens are refused.
        for _ in 0..8 {
            let t = rng.below(tokenizer.n_vocab()) as u32;
            if !mask.allows(t) {
                assert!(constraint.clone().commit(t).is_err(), "masked {t} accepted");
            }
        }
        let token = allowed[rng.below(allowed.len())];
        if tokenizer.is_eog(token) {
            break;
        }
        constraint.commit(token).expect("allowed token is accepted");
        out.extend(tokenizer.token_to_piece(token, true));
    }
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn qwen_vocabulary_schema_output_validates() {
    let Some(tokenizer) = qwen_tokenizer("qwen_vocabulary_schema_output_validates") else {
        return;
    };
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 9},
            "tag": {"enum": ["x", "y"]},
        },
        "required": ["n", "tag"],
        "additionalProperties": false,
    });
    let grammar = Grammar::JsonSchema {
        schema,
        strict: true,
    };
    for seed in 0..3 {
        let text = walk_real(&tokenizer, &grammar, seed);
        let value: serde_json::Value = serde_json::from_str(&text).expect("parses");
        let n = value["n"].as_i64().expect("n");
        assert!((1..=9).contains(&n), "{text}");
        assert!(value["tag"] == "x" || value["tag"] == "y", "{text}");
    }
}

#[test]
fn qwen_vocabulary_tool_call_grammar() {
    let Some(tokenizer) = qwen_tokenizer("qwen_vocabulary_tool_call_grammar") else {
        return;
    };
    let lark = r#"
start: <tool_call> "\n" call "\n" </tool_call> <|im_end|>
call: %json {
  "x-guidance": {"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "},
  "type": "object",
  "properties": {
    "name": {"const": "get_weather"},
    "arguments": {
      "type": "object",
      "properties": {"city": {"type": "string", "maxLength": 12}},
      "required": ["city"],
      "additionalProperties": false
    }
  },
  "required": ["name", "arguments"],
  "additionalProperties": false
}
"#;
    let text = walk_real(&tokenizer, &Grammar::Lark(lark.to_string()), 7);
    let body = text
        .strip_prefix("<tool_call>\n")
        .and_then(|t| t.strip_suffix("\n</tool_call>"))
        .unwrap_or_else(|| panic!("{text:?}"));
    let value: serde_json::Value = serde_json::from_str(body).expect("arguments parse");
    assert_eq!(value["name"], "get_weather");
    assert!(value["arguments"]["city"].is_string(), "{body}");
}
