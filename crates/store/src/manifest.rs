//! The manifest written beside each pulled model: what it is and that its sha256 was checked.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

/// `<stem>.json` beside `<stem>.gguf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// The catalog name.
    pub name: String,
    /// The file stem.
    pub stem: String,
    /// The sha256 the file had when it was checked (lower-case hex).
    pub sha256: String,
    /// The size in bytes when it was checked.
    pub size: u64,
    /// Where it came from: `package==version:member` per part, or "local" for a file that
    /// was found in place and checked.
    pub sources: Vec<String>,
}

/// The manifest path for a model file path.
pub(crate) fn manifest_path(model_path: &Path) -> PathBuf {
    model_path.with_extension("json")
}

/// Reads a manifest; `None` when absent or unreadable (a manifest is a cache of a check, and a
/// missing one only means the check is redone).
pub(crate) fn read(path: &Path) -> Option<Manifest> {
    let text = fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(manifest) => Some(manifest),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable manifest");
            None
        }
    }
}

/// Writes a manifest atomically (temporary file, then rename).
pub(crate) fn write(path: &Path, manifest: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(manifest)
        .expect("a manifest of strings and integers serializes");
    let temporary = path.with_extension("json.tmp");
    fs::write(&temporary, text).map_err(StoreError::io("write", &temporary))?;
    fs::rename(&temporary, path).map_err(StoreError::io("rename into place", path))
}
