//! Reading the metadata key-value section.

use std::collections::HashMap;

use crate::cursor::Cursor;
use crate::value::type_id;
use crate::{Array, GgufError, Value};

/// How deep arrays of arrays may nest. GGUF files in use nest at most once; the bound
/// keeps a crafted file from recursing without end.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Smallest possible metadata entry: an empty key (8-byte length), a value type (4) and a
/// one-byte value. Used to reject absurd entry counts before allocating.
pub(crate) const MIN_ENTRY_BYTES: usize = 8 + 4 + 1;

/// The metadata entries in file order, and each key's index.
pub(crate) struct Metadata {
    pub(crate) entries: Vec<(String, Value)>,
    pub(crate) index: HashMap<String, usize>,
}

/// Reads `n_entries` key-value pairs (the count was already checked against the file).
pub(crate) fn read_metadata(
    cursor: &mut Cursor<'_>,
    n_entries: usize,
) -> Result<Metadata, GgufError> {
    let mut entries = Vec::with_capacity(n_entries);
    let mut index = HashMap::with_capacity(n_entries);
    for entry_idx in 0..n_entries {
        let key_offset = cursor.offset();
        let key = cursor.string(&|| format!("key of metadata entry {entry_idx}"))?;
        if index.contains_key(&key) {
            return Err(GgufError::DuplicateKey {
                key,
                offset: key_offset,
            });
        }
        let type_offset = cursor.offset();
        let value_type = cursor.u32(&|| format!("value type of key {key}"))?;
        let value = read_value(cursor, value_type, type_offset, &key)?;
        index.insert(key.clone(), entry_idx);
        entries.push((key, value));
    }
    Ok(Metadata { entries, index })
}

/// Reads one value of type `value_type`, whose id was read at `type_offset`.
fn read_value(
    cursor: &mut Cursor<'_>,
    value_type: u32,
    type_offset: u64,
    key: &str,
) -> Result<Value, GgufError> {
    let what = || format!("value of key {key}");
    Ok(match value_type {
        type_id::U8 => Value::U8(u8::from_le_bytes(cursor.array(&what)?)),
        type_id::I8 => Value::I8(i8::from_le_bytes(cursor.array(&what)?)),
        type_id::U16 => Value::U16(u16::from_le_bytes(cursor.array(&what)?)),
        type_id::I16 => Value::I16(i16::from_le_bytes(cursor.array(&what)?)),
        type_id::U32 => Value::U32(u32::from_le_bytes(cursor.array(&what)?)),
        type_id::I32 => Value::I32(i32::from_le_bytes(cursor.array(&what)?)),
        type_id::F32 => Value::F32(f32::from_le_bytes(cursor.array(&what)?)),
        type_id::U64 => Value::U64(u64::from_le_bytes(cursor.array(&what)?)),
        type_id::I64 => Value::I64(i64::from_le_bytes(cursor.array(&what)?)),
        type_id::F64 => Value::F64(f64::from_le_bytes(cursor.array(&what)?)),
        // ggml reads a bool as one byte and takes any non-zero byte as true.
        type_id::BOOL => Value::Bool(cursor.array::<1>(&what)?[0] != 0),
        type_id::STRING => Value::String(cursor.string(&what)?),
        type_id::ARRAY => Value::Array(read_array(cursor, key, 1)?),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: key.to_owned(),
                type_id: value_type,
                offset: type_offset,
            })
        }
    })
}

/// Smallest encoding of one element of type `value_type`, or `None` for an unknown type.
fn min_element_bytes(value_type: u32) -> Option<usize> {
    Some(match value_type {
        type_id::U8 | type_id::I8 | type_id::BOOL => 1,
        type_id::U16 | type_id::I16 => 2,
        type_id::U32 | type_id::I32 | type_id::F32 => 4,
        type_id::U64 | type_id::I64 | type_id::F64 => 8,
        // A string is at least its 8-byte length.
        type_id::STRING => 8,
        // An array is at least its element type (4) and its length (8).
        type_id::ARRAY => 12,
        _ => return None,
    })
}

/// Reads an array (element type, length, elements) nested `depth` deep (1 for a value
/// that is itself an array).
fn read_array(cursor: &mut Cursor<'_>, key: &str, depth: usize) -> Result<Array, GgufError> {
    let type_offset = cursor.offset();
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::ArrayTooDeep {
            key: key.to_owned(),
            max_depth: MAX_ARRAY_DEPTH,
            offset: type_offset,
        });
    }
    let element_type = cursor.u32(&|| format!("array element type of key {key}"))?;
    let Some(min_bytes) = min_element_bytes(element_type) else {
        return Err(GgufError::UnknownValueType {
            key: key.to_owned(),
            type_id: element_type,
            offset: type_offset,
        });
    };
    let len = cursor.count(min_bytes, &|| format!("array length of key {key}"))?;
    let what = || format!("array elements of key {key}");
    // For fixed-size elements `min_bytes` is the element size, and `count` checked that
    // `len * min_bytes` bytes are left, so the product cannot overflow.
    Ok(match element_type {
        type_id::U8 => Array::U8(cursor.take(len, &what)?.to_vec()),
        type_id::I8 => Array::I8(decode(cursor.take(len, &what)?, i8::from_le_bytes)),
        type_id::U16 => Array::U16(decode(cursor.take(len * 2, &what)?, u16::from_le_bytes)),
        type_id::I16 => Array::I16(decode(cursor.take(len * 2, &what)?, i16::from_le_bytes)),
        type_id::U32 => Array::U32(decode(cursor.take(len * 4, &what)?, u32::from_le_bytes)),
        type_id::I32 => Array::I32(decode(cursor.take(len * 4, &what)?, i32::from_le_bytes)),
        type_id::F32 => Array::F32(decode(cursor.take(len * 4, &what)?, f32::from_le_bytes)),
        type_id::U64 => Array::U64(decode(cursor.take(len * 8, &what)?, u64::from_le_bytes)),
        type_id::I64 => Array::I64(decode(cursor.take(len * 8, &what)?, i64::from_le_bytes)),
        type_id::F64 => Array::F64(decode(cursor.take(len * 8, &what)?, f64::from_le_bytes)),
        type_id::BOOL => Array::Bool(cursor.take(len, &what)?.iter().map(|&b| b != 0).collect()),
        type_id::STRING => {
            let mut strings = Vec::with_capacity(len);
            for element_idx in 0..len {
                strings.push(cursor.string(&|| format!("element {element_idx} of key {key}"))?);
            }
            Array::String(strings)
        }
        // Only arrays are left: `min_element_bytes` refused unknown types above.
        _ => {
            let mut arrays = Vec::with_capacity(len);
            for _ in 0..len {
                arrays.push(read_array(cursor, key, depth + 1)?);
            }
            Array::Array(arrays)
        }
    })
}

/// Decodes little-endian numbers of `N` bytes each.
fn decode<const N: usize, T>(bytes: &[u8], from_le_bytes: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut element = [0u8; N];
            element.copy_from_slice(chunk);
            from_le_bytes(element)
        })
        .collect()
}
