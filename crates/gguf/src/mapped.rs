//! A read-only memory map of a whole file, for caches that sit beside model files.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

/// The bytes of a file, memory-mapped read-only (an empty file maps to no bytes).
#[derive(Debug)]
pub struct MappedBytes {
    map: Option<Mmap>,
}

impl MappedBytes {
    /// Maps the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<MappedBytes> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(MappedBytes { map: None });
        }
        // SAFETY: as for model files (`GgufFile::open`): the map is read-only and private;
        // a file changed by another process while mapped is not supported.
        let map = unsafe { Mmap::map(&file) }?;
        Ok(MappedBytes { map: Some(map) })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

impl AsRef<[u8]> for MappedBytes {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}
