//! The GGUF file format (versions 2 and 3): read a file through a read-only memory map,
//! validate every count, length, offset and type against the file's real size, and write
//! files (used by tests and tools).
//!
//! This crate knows nothing of models or kernels: tensors are names, shapes, ggml type
//! ids and byte ranges.
//!
//! Planned API (filled in by the reader):
//! - `GgufFile::open(path)`, `GgufFile::from_bytes(Vec<u8>)`
//! - `GgufFile::{version, metadata, get, tensors, tensor, tensor_data, alignment}`
//! - `Value` / `Array` for the metadata value types, `TensorInfo`, `GgmlType`
//! - `GgufError` naming what is wrong and where
//! - `GgufWriter` to build files
