use super::*;

fn cleaned(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    clean_up_spaces(&mut bytes);
    String::from_utf8(bytes).unwrap_or_default()
}

#[test]
fn clean_up_spaces_as_llama_cpp() {
    assert_eq!(cleaned("Hello , world !"), "Hello, world!");
    assert_eq!(cleaned("it ' s"), "it's");
    assert_eq!(
        cleaned("he 's here , I 'm sure they 're"),
        "he's here, I'm sure they're"
    );
    assert_eq!(cleaned("don 't I 'll"), "don 't I 'll");
    assert_eq!(cleaned(""), "");
    assert_eq!(cleaned(" ."), ".");
}

#[test]
fn byte_token_text() {
    assert_eq!(byte_of_byte_token("<0x0A>"), 0x0A);
    assert_eq!(byte_of_byte_token("<0xFF>"), 0xFF);
    assert_eq!(byte_of_byte_token("<0x"), 0);
    assert_eq!(byte_of_byte_token("ab"), 0);
}

#[test]
fn byte_level_decoding() {
    let mut out = Vec::new();
    decode_byte_level("ĠhelloĊ", &mut out);
    assert_eq!(out, b" hello\n");
    out.clear();
    decode_byte_level("a中", &mut out);
    assert_eq!(out, "a[UNK_BYTE_0xe4b8ada中]".as_bytes());
}
