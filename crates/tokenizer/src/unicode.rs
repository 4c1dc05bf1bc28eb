//! Code point classes as llama.cpp's `unicode.cpp` sees them, and the GPT-2 byte map.
//!
//! llama.cpp classifies each code point by its Unicode general category (its table is
//! generated from Unicode 15.1) plus the White_Space property. The categories come from the
//! `unicode-general-category` crate (Unicode 15.0), with the 627 code points that Unicode
//! 15.1 added patched in below, so every code point gets the class llama.cpp gives it.
//! The pre-tokenizers only ever ask "letter, number, punctuation, symbol, mark, whitespace
//! or something else", so control, format, private-use, separator and unassigned code
//! points all share [`CharClass::OTHER`]: llama.cpp's splitters treat them alike.

use unicode_general_category::{get_general_category, GeneralCategory as Gc};

/// The class of one code point, as a small set of flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CharClass(u8);

impl CharClass {
    /// Control, format, private use, separator, surrogate or unassigned (`\p{C}`, `\p{Z}`).
    pub(crate) const OTHER: CharClass = CharClass(0);
    const LETTER: u8 = 1;
    const NUMBER: u8 = 2;
    const PUNCTUATION: u8 = 4;
    const SYMBOL: u8 = 8;
    const MARK: u8 = 16;
    const WHITESPACE: u8 = 32;

    /// `\p{L}`.
    pub(crate) fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }

    /// `\p{N}`.
    pub(crate) fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }

    /// The White_Space property (llama.cpp's `\s`).
    pub(crate) fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }

    /// The byte llama.cpp's `unicode_regex_split` puts in place of a code point of 128 or
    /// more before it runs `std::regex` over the "collapsed" text: 0x0B (a `\s` for
    /// std::regex) for whitespace, 0xD1..0xD5 for number, letter, punctuation, mark and
    /// symbol, 0xD0 for anything else.
    pub(crate) fn collapsed(self, c: char) -> u8 {
        if c.is_ascii() {
            return c as u8;
        }
        if self.is_whitespace() {
            return 0x0B;
        }
        match self.0 {
            Self::NUMBER => 0xD1,
            Self::LETTER => 0xD2,
            Self::PUNCTUATION => 0xD3,
            Self::MARK => 0xD4,
            Self::SYMBOL => 0xD5,
            _ => 0xD0,
        }
    }
}

/// Classes of the ASCII range, the hot path: letters, digits, the punctuation and symbol
/// characters of Unicode's categories P and S, and the six ASCII White_Space characters.
const ASCII_CLASSES: [CharClass; 128] = {
    let mut table = [CharClass::OTHER; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        table[i] = if c.is_ascii_alphabetic() {
            CharClass(CharClass::LETTER)
        } else if c.is_ascii_digit() {
            CharClass(CharClass::NUMBER)
        } else if matches!(
            c,
            b'$' | b'+' | b'<' | b'=' | b'>' | b'^' | b'`' | b'|' | b'~'
        ) {
            CharClass(CharClass::SYMBOL)
        } else if c.is_ascii_punctuation() {
            CharClass(CharClass::PUNCTUATION)
        } else if matches!(c, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ') {
            CharClass(CharClass::WHITESPACE)
        } else {
            CharClass::OTHER
        };
        i += 1;
    }
    table
};

/// The class of a code point.
pub(crate) fn classify(c: char) -> CharClass {
    let cp = c as u32;
    if cp < 128 {
        return ASCII_CLASSES[cp as usize];
    }
    if is_non_ascii_whitespace(cp) {
        return CharClass(CharClass::WHITESPACE);
    }
    let bits = match get_general_category(c) {
        Gc::UppercaseLetter
        | Gc::LowercaseLetter
        | Gc::TitlecaseLetter
        | Gc::ModifierLetter
        | Gc::OtherLetter => CharClass::LETTER,
        Gc::DecimalNumber | Gc::LetterNumber | Gc::OtherNumber => CharClass::NUMBER,
        Gc::ConnectorPunctuation
        | Gc::DashPunctuation
        | Gc::OpenPunctuation
        | Gc::ClosePunctuation
        | Gc::InitialPunctuation
        | Gc::FinalPunctuation
        | Gc::OtherPunctuation => CharClass::PUNCTUATION,
        Gc::MathSymbol | Gc::CurrencySymbol | Gc::ModifierSymbol | Gc::OtherSymbol => {
            CharClass::SYMBOL
        }
        Gc::NonspacingMark | Gc::SpacingMark | Gc::EnclosingMark => CharClass::MARK,
        Gc::Unassigned => return unicode_15_1_addition(cp),
        _ => return CharClass::OTHER,
    };
    CharClass(bits)
}

/// White_Space code points above ASCII (Unicode PropList.txt).
fn is_non_ascii_whitespace(cp: u32) -> bool {
    matches!(
        cp,
        0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    )
}

/// Code points that Unicode 15.1 assigned, which the 15.0 table still calls unassigned:
/// ideographic description characters (So), one CJK stroke (So) and CJK Extension I (Lo).
fn unicode_15_1_addition(cp: u32) -> CharClass {
    match cp {
        0x2FFC..=0x2FFF | 0x31EF => CharClass(CharClass::SYMBOL),
        0x2EBF0..=0x2EE5D => CharClass(CharClass::LETTER),
        _ => CharClass::OTHER,
    }
}

/// Is this byte printed as itself by the GPT-2 byte map? ('!'..='~', '¡'..='¬', '®'..='ÿ')
const fn maps_to_itself(byte: u8) -> bool {
    matches!(byte, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The GPT-2 byte-to-unicode map: bytes that are printable stand for themselves, the 68
/// others are given the code points 256, 257, … in byte order.
const BYTE_TO_CHAR: [char; 256] = {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let cp = if maps_to_itself(b as u8) {
            b as u32
        } else {
            n += 1;
            255 + n
        };
        table[b] = match char::from_u32(cp) {
            Some(c) => c,
            None => panic!("the GPT-2 map only uses code points below 324"),
        };
        b += 1;
    }
    table
};

/// The inverse of [`BYTE_TO_CHAR`] for the code points 256..324.
const SHIFTED_TO_BYTE: [u8; 68] = {
    let mut table = [0u8; 68];
    let mut b = 0usize;
    while b < 256 {
        let cp = BYTE_TO_CHAR[b] as u32;
        if cp >= 256 {
            table[(cp - 256) as usize] = b as u8;
        }
        b += 1;
    }
    table
};

/// The character that stands for `byte` in a byte-level BPE vocabulary.
pub(crate) fn byte_to_char(byte: u8) -> char {
    BYTE_TO_CHAR[byte as usize]
}

/// The byte a character of a byte-level BPE vocabulary stands for, if it is one of the 256.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    if cp < 256 {
        let byte = cp as u8;
        return maps_to_itself(byte).then_some(byte);
    }
    SHIFTED_TO_BYTE.get((cp - 256) as usize).copied()
}

#[cfg(test)]
mod tests;
