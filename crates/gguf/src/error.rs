//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

use crate::GgmlType;

/// Why a GGUF file could not be opened, parsed or written.
///
/// Each variant carries the facts: the metadata key or tensor name, the byte offset in the
/// file, what was expected and what was found. `what` fields describe the field being read
/// (`length of key of metadata entry 3`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file could not be opened or its size read.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The file could not be memory-mapped.
    #[error("cannot memory-map {}: {source}", path.display())]
    Map {
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// Writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The file does not start with `GGUF`.
    #[error("not a gguf file: it starts with \"{found}\" instead of \"GGUF\"; check the path")]
    BadMagic {
        /// The first bytes of the file, escaped.
        found: String,
    },

    /// The version is not 2 or 3.
    #[error(
        "gguf version {version} is not supported, only versions 2 and 3 are; \
         convert the model again with a recent llama.cpp"
    )]
    UnsupportedVersion {
        /// The version field as read (little-endian).
        version: u32,
    },

    /// The version field reads as 2 or 3 only when taken as big-endian.
    #[error("the gguf file is big-endian (version field {version:#010x}), which is not supported; use a little-endian file")]
    BigEndian {
        /// The version field as read (little-endian).
        version: u32,
    },

    /// A fixed-size field runs past the end of the file.
    #[error(
        "file is truncated: {what} at offset {offset} needs {needed} bytes but only \
         {available} are left; download the file again"
    )]
    Truncated {
        /// The field being read.
        what: String,
        /// Where the field starts.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },

    /// A count or length is larger than the rest of the file could hold.
    #[error(
        "{what} at offset {offset} is {count}, but the {available} bytes left in the file \
         cannot hold that many; the file is truncated or corrupt"
    )]
    LengthTooLarge {
        /// The count or length field.
        what: String,
        /// Where the field starts.
        offset: u64,
        /// The value read.
        count: u64,
        /// Bytes left in the file after the field.
        available: u64,
    },

    /// A key, string value or tensor name is not UTF-8.
    #[error("{what} at offset {offset} is not valid UTF-8; the file is corrupt")]
    InvalidUtf8 {
        /// The string being read.
        what: String,
        /// Where the string's bytes start.
        offset: u64,
    },

    /// A metadata value type id is not one GGUF defines.
    #[error(
        "metadata key {key} has unknown value type {type_id} at offset {offset}; \
         the file is corrupt or newer than this program"
    )]
    UnknownValueType {
        /// The key whose value (or array element type) is bad.
        key: String,
        /// The type id read.
        type_id: u32,
        /// Where the type id starts.
        offset: u64,
    },

    /// Arrays nest deeper than [`crate::MAX_ARRAY_DEPTH`].
    #[error("metadata key {key} nests arrays more than {max_depth} deep at offset {offset}; the file is corrupt")]
    ArrayTooDeep {
        /// The key.
        key: String,
        /// The deepest nesting allowed.
        max_depth: usize,
        /// Where the too-deep array's element type starts.
        offset: u64,
    },

    /// The same metadata key appears twice.
    #[error("metadata key {key} appears twice (again at offset {offset}); the file is corrupt")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the second occurrence starts.
        offset: u64,
    },

    /// `general.alignment` is not an unsigned integer.
    #[error("general.alignment has type {type_name}; it must be an unsigned integer")]
    AlignmentType {
        /// The value's type name.
        type_name: String,
    },

    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment is {alignment}; it must be a non-zero power of two")]
    BadAlignment {
        /// The value read.
        alignment: u64,
    },

    /// The same tensor name appears twice.
    #[error("tensor {name} appears twice (again at offset {offset}); the file is corrupt")]
    DuplicateTensor {
        /// The tensor name.
        name: String,
        /// Where the second tensor info starts.
        offset: u64,
    },

    /// A tensor has more than four dimensions.
    #[error("tensor {tensor} has {n_dims} dimensions (at offset {offset}); gguf allows at most 4")]
    TooManyDims {
        /// The tensor name.
        tensor: String,
        /// The dimension count read.
        n_dims: u32,
        /// Where the count starts.
        offset: u64,
    },

    /// A tensor's type id is not a ggml type.
    #[error(
        "tensor {tensor} has unknown ggml type id {type_id} (at offset {offset}); \
         the file is corrupt or newer than this program"
    )]
    UnknownGgmlType {
        /// The tensor name.
        tensor: String,
        /// The type id read.
        type_id: u32,
        /// Where the type id starts.
        offset: u64,
    },

    /// A tensor's element count or byte size does not fit in 63 bits.
    #[error("tensor {tensor} has shape {dims:?}, whose size overflows; the file is corrupt")]
    ShapeOverflow {
        /// The tensor name.
        tensor: String,
        /// The dimensions read, row length first.
        dims: Vec<u64>,
    },

    /// A tensor's row length is not a whole number of blocks of its type.
    #[error(
        "tensor {tensor} has rows of {row_len} values, not a multiple of the {ggml_type} \
         block size {block_size}; the file is corrupt"
    )]
    RaggedRow {
        /// The tensor name.
        tensor: String,
        /// The first dimension.
        row_len: u64,
        /// The tensor's type.
        ggml_type: GgmlType,
        /// Values per block of that type.
        block_size: usize,
    },

    /// A tensor's offset is not a multiple of the alignment.
    #[error(
        "tensor {tensor} starts at data offset {offset}, not a multiple of the alignment \
         {alignment}; the file is corrupt"
    )]
    MisalignedTensor {
        /// The tensor name.
        tensor: String,
        /// The offset read, relative to the start of the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },

    /// A tensor's bytes run past the end of the file.
    #[error(
        "tensor {tensor} occupies bytes {start}..{end} but the file has {file_size} bytes; \
         the file is truncated or corrupt"
    )]
    TensorOutOfBounds {
        /// The tensor name.
        tensor: String,
        /// First byte (absolute file offset).
        start: u64,
        /// One past the last byte (absolute; saturated if it overflowed).
        end: u64,
        /// The file's size.
        file_size: u64,
    },

    /// Two tensors share bytes.
    #[error(
        "tensors {first} and {second} overlap: {first} ends at byte {first_end} but {second} \
         starts at byte {second_start}; the file is corrupt"
    )]
    OverlappingTensors {
        /// The tensor that starts first.
        first: String,
        /// One past its last byte.
        first_end: u64,
        /// The tensor that starts inside it.
        second: String,
        /// Its first byte.
        second_start: u64,
    },
}
