//! Building GGUF files in memory.

use std::path::Path;

use crate::{Array, GgmlType, GgufError, Value, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};

/// Builds a GGUF file (version 3 unless told otherwise): metadata, tensor infos, then the
/// tensor data, each tensor starting at a multiple of the alignment.
///
/// The writer writes what it is given and checks nothing (a tensor's data need not match
/// its shape, keys may repeat), so tests can build malformed files with it too. The
/// alignment used for the layout is `general.alignment` when that metadata is a non-zero
/// integer, else 32.
///
/// ```
/// use gguf::{GgmlType, GgufFile, GgufWriter};
///
/// let mut writer = GgufWriter::new();
/// writer.add_metadata("general.architecture", "llama");
/// writer.add_tensor("output_norm.weight", GgmlType::F32, &[2], 1f32.to_le_bytes().repeat(2));
/// let file = GgufFile::from_bytes(writer.to_bytes()).unwrap();
/// assert_eq!(file.get("general.architecture").and_then(|v| v.as_str()), Some("llama"));
/// ```
#[derive(Debug, Clone)]
pub struct GgufWriter {
    version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
}

/// A tensor waiting to be written.
#[derive(Debug, Clone)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    data: Vec<u8>,
}

impl Default for GgufWriter {
    fn default() -> GgufWriter {
        GgufWriter::new()
    }
}

impl GgufWriter {
    /// An empty version 3 file.
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: 3,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the version written in the header. Versions 2 and 3 share one layout; any
    /// other number makes a file readers refuse (useful in tests).
    pub fn set_version(&mut self, version: u32) -> &mut GgufWriter {
        self.version = version;
        self
    }

    /// Appends a metadata entry.
    pub fn add_metadata(
        &mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> &mut GgufWriter {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Appends a tensor. `dims` is row length first (`ne[0]`); `data` is written as given.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ggml_type: GgmlType,
        dims: &[u64],
        data: impl Into<Vec<u8>>,
    ) -> &mut GgufWriter {
        self.add_tensor_with_type_id(name, ggml_type.id(), dims, data)
    }

    /// Appends a tensor with a raw type id, which need not be a known ggml type.
    pub fn add_tensor_with_type_id(
        &mut self,
        name: impl Into<String>,
        type_id: u32,
        dims: &[u64],
        data: impl Into<Vec<u8>>,
    ) -> &mut GgufWriter {
        self.tensors.push(PendingTensor {
            name: name.into(),
            dims: dims.to_vec(),
            type_id,
            data: data.into(),
        });
        self
    }

    /// The alignment the layout uses.
    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .rev()
            .find(|(key, _)| key == ALIGNMENT_KEY)
            .and_then(|(_, value)| value.as_u64())
            .filter(|&alignment| alignment > 0)
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// The whole file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let alignment = self.alignment();
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        put_u64(&mut out, self.tensors.len());
        put_u64(&mut out, self.metadata.len());
        for (key, value) in &self.metadata {
            put_string(&mut out, key);
            out.extend_from_slice(&value.type_id().to_le_bytes());
            put_value(&mut out, value);
        }

        let mut data_offset = 0u64;
        for tensor in &self.tensors {
            put_string(&mut out, &tensor.name);
            out.extend_from_slice(&(tensor.dims.len() as u32).to_le_bytes());
            for dim in &tensor.dims {
                out.extend_from_slice(&dim.to_le_bytes());
            }
            out.extend_from_slice(&tensor.type_id.to_le_bytes());
            out.extend_from_slice(&data_offset.to_le_bytes());
            data_offset = align_up(data_offset + tensor.data.len() as u64, alignment);
        }

        // Like ggml's writer, pad the info section and every tensor to the alignment.
        if !self.tensors.is_empty() {
            pad_to(&mut out, alignment);
        }
        for tensor in &self.tensors {
            out.extend_from_slice(&tensor.data);
            pad_to(&mut out, alignment);
        }
        out
    }

    /// Writes the file to `path`, replacing any file there.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), GgufError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes()).map_err(|source| GgufError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

fn align_up(offset: u64, alignment: u64) -> u64 {
    offset.div_ceil(alignment) * alignment
}

fn pad_to(out: &mut Vec<u8>, alignment: u64) {
    let len = out.len() as u64;
    out.resize(align_up(len, alignment) as usize, 0);
}

fn put_u64(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(v) => put_string(out, v),
        Value::Array(array) => put_array(out, array),
    }
}

/// Writes an array: element type, length, elements.
fn put_array(out: &mut Vec<u8>, array: &Array) {
    out.extend_from_slice(&array.element_type_id().to_le_bytes());
    put_u64(out, array.len());
    macro_rules! numbers {
        ($values:expr) => {
            for v in $values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        };
    }
    match array {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => numbers!(v),
        Array::U16(v) => numbers!(v),
        Array::I16(v) => numbers!(v),
        Array::U32(v) => numbers!(v),
        Array::I32(v) => numbers!(v),
        Array::F32(v) => numbers!(v),
        Array::U64(v) => numbers!(v),
        Array::I64(v) => numbers!(v),
        Array::F64(v) => numbers!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => v.iter().for_each(|s| put_string(out, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(out, inner)),
    }
}
