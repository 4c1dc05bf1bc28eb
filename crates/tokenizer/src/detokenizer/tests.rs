use crate::tests::spm_vocab;
use crate::{Detokenizer, Tokenizer, TokenizerError};

fn byte(t: &Tokenizer, b: u8) -> u32 {
    t.token_id(&format!("<0x{b:02X}>")).unwrap_or(0)
}

#[test]
fn characters_split_over_tokens_wait_until_complete() -> Result<(), TokenizerError> {
    let t = Tokenizer::from_vocab(&spm_vocab(&[("▁hi", -1.0)]))?;
    let mut d = Detokenizer::new();
    let hi = t.token_id("▁hi").unwrap_or(0);
    assert_eq!(d.push(&t, hi), " hi");
    // U+1F600 is F0 9F 98 80.
    assert_eq!(d.push(&t, byte(&t, 0xF0)), "");
    assert_eq!(d.push(&t, byte(&t, 0x9F)), "");
    assert_eq!(d.push(&t, byte(&t, 0x98)), "");
    assert_eq!(d.push(&t, byte(&t, 0x80)), "😀");
    // é is C3 A9.
    assert_eq!(d.push(&t, byte(&t, 0xC3)), "");
    assert_eq!(d.push(&t, byte(&t, 0xA9)), "é");
    assert_eq!(d.flush(), "");
    Ok(())
}

#[test]
fn invalid_bytes_become_replacement_characters() -> Result<(), TokenizerError> {
    let t = Tokenizer::from_vocab(&spm_vocab(&[("a", -1.0)]))?;
    let a = t.token_id("a").unwrap_or(0);
    let mut d = Detokenizer::new();
    // A lone continuation byte can never start a character.
    assert_eq!(d.push(&t, byte(&t, 0x80)), "\u{FFFD}");
    // A lead byte followed by a non-continuation byte is invalid at once.
    assert_eq!(d.push(&t, byte(&t, 0xE2)), "");
    assert_eq!(d.push(&t, a), "\u{FFFD}a");
    // An incomplete character at the end of the stream.
    assert_eq!(d.push(&t, byte(&t, 0xE2)), "");
    assert_eq!(d.push(&t, byte(&t, 0x82)), "");
    assert_eq!(d.flush(), "\u{FFFD}");
    assert_eq!(d.push(&t, byte(&t, 0xFF)), "\u{FFFD}");
    Ok(())
}

#[test]
fn control_tokens_render_as_nothing() -> Result<(), TokenizerError> {
    let t = Tokenizer::from_vocab(&spm_vocab(&[("a", -1.0)]))?;
    let mut d = Detokenizer::new();
    assert_eq!(d.push(&t, 2), "");
    assert_eq!(d.push(&t, u32::MAX), "");
    Ok(())
}
