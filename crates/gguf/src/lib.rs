//! The GGUF file format, versions 2 and 3 (little-endian): read a file through a read-only
//! memory map, validate every count, length, offset and type against the file's real
//! size, and write files (used by tests and tools).
//!
//! This crate knows nothing of models or kernels: tensors are names, shapes, ggml types
//! and byte ranges.
//!
//! - [`GgufFile`] opens ([`GgufFile::open`], memory-mapped) or parses
//!   ([`GgufFile::from_bytes`]) a file; tensor data is a slice of the map, never copied.
//! - [`Value`] and [`Array`] are the metadata value types; [`TensorInfo`] is one tensor's
//!   name, shape, [`GgmlType`] and byte range.
//! - [`GgufError`] says what is wrong and where (key or tensor name, file offset).
//! - [`GgufWriter`] builds a version 3 file.
//!
//! The reader never panics and never allocates by a size read from the file before
//! checking that the rest of the file could hold that much.
//!
//! ```no_run
//! # fn main() -> Result<(), gguf::GgufError> {
//! let file = gguf::GgufFile::open("model.gguf")?;
//! let architecture = file.get("general.architecture").and_then(|v| v.as_str());
//! for tensor in file.tensors() {
//!     let bytes: &[u8] = file.tensor_data(tensor); // a view into the map
//!     println!("{} {} {:?} {} bytes", tensor.name, tensor.ggml_type, tensor.dims, bytes.len());
//! }
//! # let _ = architecture;
//! # Ok(())
//! # }
//! ```

mod cursor;
mod error;
mod file;
mod ggml_type;
mod mapped;
mod metadata;
mod tensors;
mod value;
mod writer;

#[cfg(test)]
mod tests;

pub use error::GgufError;
pub use file::{GgufFile, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
pub use ggml_type::GgmlType;
pub use mapped::MappedBytes;
pub use metadata::MAX_ARRAY_DEPTH;
pub use tensors::{TensorInfo, MAX_DIMS};
pub use value::{Array, Value};
pub use writer::GgufWriter;
