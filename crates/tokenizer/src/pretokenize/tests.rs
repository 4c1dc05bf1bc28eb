use super::*;

fn check(pre: PreTokenizer, text: &str, expected: &[&str]) {
    let mut words = Vec::new();
    pre.split(text, &mut words);
    let got: Vec<&str> = words.iter().map(|r| &text[r.clone()]).collect();
    assert_eq!(got, expected, "{pre:?} on {text:?}");
}

#[test]
fn gpt2_regex() {
    let p = PreTokenizer::Gpt2;
    check(p, "Hello world", &["Hello", " world"]);
    check(
        p,
        "don't I'll WE'VE",
        &["don", "'t", " I", "'ll", " WE", "'", "VE"],
    );
    check(p, "a   b", &["a", "  ", " b"]);
    check(p, "trailing  ", &["trailing", "  "]);
    check(p, "x\n\ny", &["x", "\n", "\n", "y"]);
    check(p, " 123 !!", &[" 123", " !!"]);
    check(p, "café", &["café"]);
}

#[test]
fn smollm_splits_every_number() {
    let p = PreTokenizer::Smollm;
    check(p, " 123 x", &[" ", "1", "2", "3", " x"]);
    check(p, "v2.0", &["v", "2", ".", "0"]);
}

#[test]
fn llama3_regex() {
    let p = PreTokenizer::Llama3;
    check(p, "Hello world", &["Hello", " world"]);
    check(p, "1234567", &["123", "456", "7"]);
    check(p, "I'M here", &["I", "'M", " here"]);
    check(p, "a  \n\n b", &["a", "  \n\n", " b"]);
    check(p, "(x) {\n", &["(x", ")", " {\n"]);
    check(p, "end ", &["end", " "]);
}

#[test]
fn qwen2_regex() {
    let p = PreTokenizer::Qwen2;
    check(p, "Hello world", &["Hello", " world"]);
    check(p, "1234", &["1", "2", "3", "4"]);
    check(p, "YOU'RE", &["YOU", "'RE"]);
    check(p, "a   b", &["a", "  ", " b"]);
    check(p, "x  \n\n  y", &["x", "  \n\n", " ", " y"]);
    check(p, "(x) {\n\tfoo", &["(x", ")", " {\n", "\tfoo"]);
    // A punctuation character may lead a run of letters.
    check(p, "中文：你好", &["中文", "：你好"]);
    check(p, "tail  ", &["tail", "  "]);
    check(p, " ...", &[" ..."]);
}

#[test]
fn default_regexes() {
    let p = PreTokenizer::Default;
    check(p, "a, b!", &["a", ",", " b", "!"]);
    check(p, "12345", &["123", "45"]);
    check(p, "x `y`", &["x", " `", "y", "`"]);
}
