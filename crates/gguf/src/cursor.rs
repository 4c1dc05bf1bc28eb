//! A bounds-checked little-endian reader over the file's bytes.
//!
//! Every read checks the bytes left first, and every count read from the file is checked
//! against the bytes left before anything is allocated for it.

use crate::GgufError;

/// Reads little-endian fields from `bytes`, front to back.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    /// Current position, as a file offset.
    pub(crate) fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left after the current position.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes; `what` names the field for the error.
    pub(crate) fn take(
        &mut self,
        n: usize,
        what: &dyn Fn() -> String,
    ) -> Result<&'a [u8], GgufError> {
        match self.bytes.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(GgufError::Truncated {
                what: what(),
                offset: self.offset(),
                needed: n as u64,
                available: self.remaining() as u64,
            }),
        }
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &dyn Fn() -> String,
    ) -> Result<[u8; N], GgufError> {
        let slice = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a count of items that each take at least `min_item_bytes` bytes, and checks
    /// that the rest of the file could hold that many.
    pub(crate) fn count(
        &mut self,
        min_item_bytes: usize,
        what: &dyn Fn() -> String,
    ) -> Result<usize, GgufError> {
        let offset = self.offset();
        let count = self.u64(what)?;
        self.check_fits(count, min_item_bytes, offset, what)
    }

    /// Checks that `count` items of at least `min_item_bytes` bytes each fit in the bytes
    /// left; `offset` is where the count was read.
    pub(crate) fn check_fits(
        &self,
        count: u64,
        min_item_bytes: usize,
        offset: u64,
        what: &dyn Fn() -> String,
    ) -> Result<usize, GgufError> {
        let available = self.remaining() as u64;
        let fits = count
            .checked_mul(min_item_bytes as u64)
            .is_some_and(|bytes| bytes <= available);
        match usize::try_from(count) {
            Ok(count) if fits => Ok(count),
            _ => Err(GgufError::LengthTooLarge {
                what: what(),
                offset,
                count,
                available,
            }),
        }
    }

    /// A GGUF string: a u64 byte length, then that many bytes of UTF-8.
    pub(crate) fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.count(1, &|| format!("length of {}", what()))?;
        let offset = self.offset();
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 {
                what: what(),
                offset,
            }),
        }
    }
}
