//! llama.cpp's token attributes (`llama_token_attr`), derived from GGUF token types.

/// A normal token.
pub(crate) const NORMAL: u16 = 1 << 2;
/// The unknown token.
pub(crate) const UNKNOWN: u16 = 1 << 0;
/// Declared unused, or a control token named "unused".
pub(crate) const UNUSED: u16 = 1 << 1;
/// A control token: rendered only as special text, matched only when parsing special text.
pub(crate) const CONTROL: u16 = 1 << 3;
/// A user-defined token: always rendered and always matched in text.
pub(crate) const USER_DEFINED: u16 = 1 << 4;
/// A byte token (`<0xXX>`).
pub(crate) const BYTE: u16 = 1 << 5;
/// Whitespace left of the token is dropped when it is matched in text.
pub(crate) const LSTRIP: u16 = 1 << 7;
/// Whitespace right of the token is dropped when it is matched in text.
pub(crate) const RSTRIP: u16 = 1 << 8;
/// The tokens `tokenizer_st_partition` looks for.
pub(crate) const SPECIAL: u16 = CONTROL | USER_DEFINED | UNKNOWN;

/// The attribute of a GGUF token type (`tokenizer.ggml.token_type`): 1 normal, 2 unknown,
/// 3 control, 4 user-defined, 5 unused, 6 byte; anything else is undefined (no bits).
pub(crate) fn from_token_type(token_type: i32) -> u16 {
    match token_type {
        1 => NORMAL,
        2 => UNKNOWN,
        3 => CONTROL,
        4 => USER_DEFINED,
        5 => UNUSED,
        6 => BYTE,
        _ => 0,
    }
}
