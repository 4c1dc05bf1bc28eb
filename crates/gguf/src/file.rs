//! An opened GGUF file: its header, metadata and tensor infos, and its bytes.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::cursor::Cursor;
use crate::metadata::{read_metadata, MIN_ENTRY_BYTES};
use crate::tensors::{place_tensors, read_tensor_infos, MIN_TENSOR_INFO_BYTES};
use crate::{GgufError, TensorInfo, Value};

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// The metadata key that sets the alignment of tensor data.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// A parsed and validated GGUF file.
///
/// Tensor data is never copied: [`GgufFile::tensor_data`] returns a slice of the memory
/// map (or of the buffer given to [`GgufFile::from_bytes`]).
pub struct GgufFile {
    bytes: Bytes,
    version: u32,
    metadata: Vec<(String, Value)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

/// Where the file's bytes live.
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Owned(vec) => vec,
        }
    }
}

impl GgufFile {
    /// Opens and validates the file at `path`, memory-mapped read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| GgufError::Open {
            path: path.to_owned(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| GgufError::Open {
                path: path.to_owned(),
                source,
            })?
            .len();
        if len == 0 {
            // Mapping zero bytes fails on some systems; an empty file is simply truncated.
            return GgufFile::from_bytes(Vec::new());
        }
        // SAFETY: the map is read-only and private to this process. Another process
        // changing or truncating the file while it is mapped would change the bytes under
        // us (or fault on access); like every program that maps model weights, we accept
        // that a model file is not modified while it is in use.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| GgufError::Map {
            path: path.to_owned(),
            source,
        })?;
        GgufFile::parse(Bytes::Mapped(map))
    }

    /// Parses and validates a file held in memory; the buffer is kept, not copied.
    ///
    /// Tensor data is then only as aligned as the allocator placed the buffer (a memory
    /// map starts on a page), so readers of tensor bytes must not assume more than byte
    /// alignment.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        GgufFile::parse(Bytes::Owned(bytes))
    }

    fn parse(bytes: Bytes) -> Result<GgufFile, GgufError> {
        let slice = bytes.as_slice();
        let file_size = slice.len() as u64;
        let mut cursor = Cursor::new(slice);
        let version = read_magic_and_version(&mut cursor)?;
        let tensor_count_offset = cursor.offset();
        let n_tensors = cursor.u64(&|| "tensor count".to_owned())?;
        let n_entries = cursor.count(MIN_ENTRY_BYTES, &|| "metadata entry count".to_owned())?;
        // Check the tensor count now too, so an absurd one is reported before the metadata.
        cursor.check_fits(
            n_tensors,
            MIN_TENSOR_INFO_BYTES,
            tensor_count_offset,
            &|| "tensor count".to_owned(),
        )?;

        let metadata = read_metadata(&mut cursor, n_entries)?;
        let alignment = match metadata.index.get(ALIGNMENT_KEY) {
            Some(&idx) => alignment_from(&metadata.entries[idx].1)?,
            None => DEFAULT_ALIGNMENT,
        };
        let mut tensors = read_tensor_infos(&mut cursor, n_tensors, tensor_count_offset)?;
        // The data section starts at the first aligned offset after the tensor infos. When
        // that overflows no tensor can be placed, and `place_tensors` says so.
        let data_offset = cursor
            .offset()
            .div_ceil(alignment)
            .saturating_mul(alignment);
        place_tensors(&mut tensors.infos, data_offset, alignment, file_size)?;

        Ok(GgufFile {
            bytes,
            version,
            metadata: metadata.entries,
            metadata_index: metadata.index,
            tensors: tensors.infos,
            tensor_index: tensors.index,
            alignment,
            data_offset,
        })
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// All metadata entries, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of metadata key `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata_index
            .get(key)
            .map(|&idx| &self.metadata[idx].1)
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&idx| &self.tensors[idx])
    }

    /// The bytes of a tensor of this file (`info.n_bytes` of them, starting at
    /// `info.offset`). For an info that does not describe bytes inside this file (one built
    /// by hand, or taken from another file) the slice is empty.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        let range = usize::try_from(info.offset)
            .ok()
            .zip(usize::try_from(info.n_bytes).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?));
        range
            .and_then(|range| self.bytes().get(range))
            .unwrap_or(&[])
    }

    /// The alignment of tensor data, from `general.alignment` or the default of 32.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset where the tensor data section starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The file's size in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Tells the system that this process no longer needs `data`, a slice of this file's
    /// bytes, resident (after its weights were copied elsewhere): its pages leave the
    /// process's resident set but stay in the page cache, and a later read of them faults
    /// the same bytes back in. Nothing happens for owned bytes or a slice from elsewhere;
    /// pages at the ends that the slice shares with its neighbours are released too (they
    /// come back as quickly).
    pub fn release(&self, data: &[u8]) {
        #[cfg(unix)]
        if let Bytes::Mapped(map) = &self.bytes {
            let base = map.as_ptr() as usize;
            let start = data.as_ptr() as usize;
            if data.is_empty() || start < base || start + data.len() > base + map.len() {
                return;
            }
            // SAFETY: the map is read-only and private and this process never writes it,
            // so it holds no copy-on-write pages: MADV_DONTNEED only unmaps the range, and
            // the next access reads the same file bytes back from the page cache. Slices
            // borrowed from the range stay valid and keep their contents.
            let released = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start - base,
                    data.len(),
                )
            };
            // Advice only: a system that declines it keeps the pages resident.
            let _ = released;
        }
        #[cfg(not(unix))]
        let _ = data;
    }

    /// Whether the bytes are memory-mapped (from [`GgufFile::open`]) rather than owned.
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped(_))
    }
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("file_size", &self.file_size())
            .field("n_metadata", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .finish_non_exhaustive()
    }
}

/// Reads and checks the magic and the version.
fn read_magic_and_version(cursor: &mut Cursor<'_>) -> Result<u32, GgufError> {
    let magic: [u8; 4] = cursor.array(&|| "magic".to_owned())?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic {
            found: magic.escape_ascii().to_string(),
        });
    }
    let version = cursor.u32(&|| "version".to_owned())?;
    match version {
        2 | 3 => Ok(version),
        _ if matches!(version.swap_bytes(), 1..=3) => Err(GgufError::BigEndian { version }),
        _ => Err(GgufError::UnsupportedVersion { version }),
    }
}

/// The alignment a `general.alignment` value sets.
fn alignment_from(value: &Value) -> Result<u64, GgufError> {
    let alignment = match *value {
        Value::U8(v) => u64::from(v),
        Value::U16(v) => u64::from(v),
        Value::U32(v) => u64::from(v),
        Value::U64(v) => v,
        _ => {
            return Err(GgufError::AlignmentType {
                type_name: value.type_name(),
            })
        }
    };
    if !alignment.is_power_of_two() {
        return Err(GgufError::BadAlignment { alignment });
    }
    Ok(alignment)
}
