use super::*;

#[test]
fn ascii_table_agrees_with_general_categories() {
    for b in 0u8..128 {
        let c = b as char;
        let expected = match get_general_category(c) {
            Gc::UppercaseLetter | Gc::LowercaseLetter => CharClass::LETTER,
            Gc::DecimalNumber => CharClass::NUMBER,
            Gc::MathSymbol | Gc::CurrencySymbol | Gc::ModifierSymbol => CharClass::SYMBOL,
            Gc::ConnectorPunctuation
            | Gc::DashPunctuation
            | Gc::OpenPunctuation
            | Gc::ClosePunctuation
            | Gc::OtherPunctuation => CharClass::PUNCTUATION,
            _ if c.is_ascii_whitespace() || b == 0x0B => CharClass::WHITESPACE,
            _ => 0,
        };
        assert_eq!(classify(c).0, expected, "{c:?}");
    }
}

#[test]
fn non_ascii_classes() {
    assert!(classify('é').is_letter());
    assert!(classify('中').is_letter());
    assert!(classify('²').is_number());
    assert!(classify('\u{3000}').is_whitespace());
    assert!(classify('\u{a0}').is_whitespace());
    assert_eq!(classify('\u{200b}'), CharClass::OTHER);
    assert_eq!(classify('😀').collapsed('😀'), 0xD5);
    assert_eq!(classify('\u{301}').collapsed('\u{301}'), 0xD4);
    assert_eq!(classify('，').collapsed('，'), 0xD3);
    assert_eq!(classify('\u{2EBF0}').collapsed('\u{2EBF0}'), 0xD2);
    assert_eq!(classify('\u{E000}').collapsed('\u{E000}'), 0xD0);
    assert_eq!(classify('\u{2003}').collapsed('\u{2003}'), 0x0B);
}

#[test]
fn gpt2_byte_map_round_trips() {
    for b in 0..=255u8 {
        assert_eq!(char_to_byte(byte_to_char(b)), Some(b));
    }
    assert_eq!(byte_to_char(b' '), 'Ġ');
    assert_eq!(byte_to_char(b'\n'), 'Ċ');
    assert_eq!(byte_to_char(b'A'), 'A');
    assert_eq!(char_to_byte('中'), None);
    assert_eq!(char_to_byte('\u{ad}'), None);
}
