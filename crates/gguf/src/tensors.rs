//! Reading tensor infos and checking where their data lies.

use std::collections::HashMap;

use crate::cursor::Cursor;
use crate::{GgmlType, GgufError};

/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// Smallest possible tensor info: an empty name (8-byte length), a dimension count (4), a
/// type id (4) and an offset (8). Used to reject absurd tensor counts before allocating.
pub(crate) const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 4 + 8;

/// One tensor: its name, shape, type and where its bytes lie in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, `ne[0]` first: `dims[0]` is the row length (contiguous values).
    /// At most four; a tensor with no dimensions holds one value.
    pub dims: Vec<u64>,
    /// The element type.
    pub ggml_type: GgmlType,
    /// Absolute file offset of the first byte.
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Total number of values (product of the dimensions).
    pub fn n_elements(&self) -> u64 {
        // The reader checked that the product fits in 63 bits; saturating keeps a
        // hand-built info from panicking.
        self.dims
            .iter()
            .fold(1u64, |acc, &dim| acc.saturating_mul(dim))
    }

    /// Values per row: `dims[0]`, or 1 for a tensor with no dimensions.
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows: the product of all dimensions but the first.
    pub fn n_rows(&self) -> u64 {
        self.dims
            .iter()
            .skip(1)
            .fold(1u64, |acc, &dim| acc.saturating_mul(dim))
    }
}

/// The tensor infos in file order and each name's index.
pub(crate) struct Tensors {
    pub(crate) infos: Vec<TensorInfo>,
    pub(crate) index: HashMap<String, usize>,
}

/// Reads `n_tensors` tensor infos. Offsets are stored relative to the data section for now;
/// [`place_tensors`] makes them absolute once the data section's start is known.
pub(crate) fn read_tensor_infos(
    cursor: &mut Cursor<'_>,
    n_tensors: u64,
    count_offset: u64,
) -> Result<Tensors, GgufError> {
    let what = || "tensor count".to_owned();
    let n_tensors = cursor.check_fits(n_tensors, MIN_TENSOR_INFO_BYTES, count_offset, &what)?;
    let mut infos = Vec::with_capacity(n_tensors);
    let mut index = HashMap::with_capacity(n_tensors);
    for tensor_idx in 0..n_tensors {
        let info_offset = cursor.offset();
        let name = cursor.string(&|| format!("name of tensor {tensor_idx}"))?;
        if index.contains_key(&name) {
            return Err(GgufError::DuplicateTensor {
                name,
                offset: info_offset,
            });
        }
        let info = read_tensor_info(cursor, name)?;
        index.insert(info.name.clone(), tensor_idx);
        infos.push(info);
    }
    Ok(Tensors { infos, index })
}

/// Reads the rest of one tensor info, after its name.
fn read_tensor_info(cursor: &mut Cursor<'_>, name: String) -> Result<TensorInfo, GgufError> {
    let dims_offset = cursor.offset();
    let n_dims = cursor.u32(&|| format!("dimension count of tensor {name}"))?;
    if n_dims as usize > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            tensor: name,
            n_dims,
            offset: dims_offset,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for dim_idx in 0..n_dims {
        dims.push(cursor.u64(&|| format!("dimension {dim_idx} of tensor {name}"))?);
    }
    let type_offset = cursor.offset();
    let type_id = cursor.u32(&|| format!("type of tensor {name}"))?;
    let Some(ggml_type) = GgmlType::from_id(type_id) else {
        return Err(GgufError::UnknownGgmlType {
            tensor: name,
            type_id,
            offset: type_offset,
        });
    };
    let offset = cursor.u64(&|| format!("data offset of tensor {name}"))?;

    // ggml keeps sizes in int64_t, so the element count must fit in 63 bits.
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &dim| acc.checked_mul(dim))
        .filter(|&n| n <= i64::MAX as u64);
    let Some(n_elements) = n_elements else {
        return Err(GgufError::ShapeOverflow { tensor: name, dims });
    };
    let row_len = dims.first().copied().unwrap_or(1);
    let block_size = ggml_type.block_size();
    if !row_len.is_multiple_of(block_size as u64) {
        return Err(GgufError::RaggedRow {
            tensor: name,
            row_len,
            ggml_type,
            block_size,
        });
    }
    let Some(n_bytes) = ggml_type
        .bytes_for(n_elements)
        .filter(|&n| n <= i64::MAX as u64)
    else {
        return Err(GgufError::ShapeOverflow { tensor: name, dims });
    };
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
        n_bytes,
    })
}

/// Turns the tensors' relative offsets into absolute ones, given where the data section
/// starts, and checks that each tensor is aligned, lies inside the file and overlaps no
/// other tensor.
pub(crate) fn place_tensors(
    infos: &mut [TensorInfo],
    data_offset: u64,
    alignment: u64,
    file_size: u64,
) -> Result<(), GgufError> {
    for info in infos.iter_mut() {
        if !info.offset.is_multiple_of(alignment) {
            return Err(GgufError::MisalignedTensor {
                tensor: info.name.clone(),
                offset: info.offset,
                alignment,
            });
        }
        let start = data_offset.checked_add(info.offset);
        let end = start.and_then(|start| start.checked_add(info.n_bytes));
        match (start, end) {
            (Some(start), Some(end)) if end <= file_size => info.offset = start,
            _ => {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: info.name.clone(),
                    start: data_offset.saturating_add(info.offset),
                    end: data_offset
                        .saturating_add(info.offset)
                        .saturating_add(info.n_bytes),
                    file_size,
                })
            }
        }
    }
    check_overlaps(infos)
}

/// Checks that no two tensors share a byte.
fn check_overlaps(infos: &[TensorInfo]) -> Result<(), GgufError> {
    // Sorting by (start, end) puts an empty tensor before a tensor that starts at the same
    // byte, so touching is not taken for overlapping.
    let mut order: Vec<&TensorInfo> = infos.iter().collect();
    order.sort_unstable_by_key(|info| (info.offset, info.n_bytes));
    let mut furthest: Option<&TensorInfo> = None;
    for info in order {
        if let Some(previous) = furthest {
            // Offsets plus sizes were checked against the file size in `place_tensors`.
            let previous_end = previous.offset + previous.n_bytes;
            if previous_end > info.offset {
                return Err(GgufError::OverlappingTensors {
                    first: previous.name.clone(),
                    first_end: previous_end,
                    second: info.name.clone(),
                    second_start: info.offset,
                });
            }
        }
        let end = info.offset + info.n_bytes;
        if furthest.is_none_or(|f| f.offset + f.n_bytes <= end) {
            furthest = Some(info);
        }
    }
    Ok(())
}
