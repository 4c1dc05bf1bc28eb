//! Streaming sha256 of files.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Progress, Result, StoreError};

/// Read buffer size: large enough that syscalls do not dominate, small enough to stay in cache.
const BUFFER_SIZE: usize = 1 << 20;

/// The sha256 of the file at `path` as lower-case hex, reported to `progress` as `what`.
pub(crate) fn sha256_file(path: &Path, what: &str, progress: &mut dyn Progress) -> Result<String> {
    let mut file = File::open(path).map_err(StoreError::io("open", path))?;
    let total = file.metadata().ok().map(|m| m.len());
    progress.start(what, total);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let outcome = loop {
        match file.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                let chunk = buffer.get(..n).unwrap_or_default();
                hasher.update(chunk);
                progress.advance(n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(StoreError::io("read", path)(e)),
        }
    };
    progress.finish();
    outcome?;
    Ok(to_hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}
