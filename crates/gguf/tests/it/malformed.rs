//! Malformed files: truncations and corrupted fields, each refused with the right error.

use gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Value};

use crate::{find, sample, sample_writer};

/// Parses `bytes`, expecting an error whose variant is `variant` and whose message names
/// `needle`; checks the message style too.
#[track_caller]
fn check(bytes: Vec<u8>, variant: &str, needle: &str) {
    let err = match GgufFile::from_bytes(bytes) {
        Ok(_) => panic!("expected a {variant} error, the file parsed"),
        Err(err) => err,
    };
    let debug = format!("{err:?}");
    let message = err.to_string();
    assert!(
        debug.starts_with(variant),
        "expected {variant}, got {debug}"
    );
    assert!(
        message.contains(needle),
        "{message:?} does not mention {needle:?}"
    );
    check_style(&message);
}

/// Error messages are lower case and have no final period.
#[track_caller]
fn check_style(message: &str) {
    assert!(!message.ends_with('.'), "{message:?} ends with a period");
    assert!(
        !message.starts_with(char::is_uppercase),
        "{message:?} starts upper case"
    );
}

fn put_u32(bytes: &mut [u8], pos: usize, value: u32) {
    bytes[pos..pos + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], pos: usize, value: u64) {
    bytes[pos..pos + 8].copy_from_slice(&value.to_le_bytes());
}

/// The sample with one u64 at `pos` replaced.
fn with_u64(pos: usize, value: u64) -> Vec<u8> {
    let mut bytes = sample();
    put_u64(&mut bytes, pos, value);
    bytes
}

/// The sample with one u32 at `pos` replaced.
fn with_u32(pos: usize, value: u32) -> Vec<u8> {
    let mut bytes = sample();
    put_u32(&mut bytes, pos, value);
    bytes
}

/// Where the metadata entry `key` lies in the sample.
struct KeyAt {
    /// The key's length field.
    len: usize,
    /// The value type field.
    value_type: usize,
    /// The value (for an array: its element type).
    value: usize,
}

fn key_at(key: &str) -> KeyAt {
    let start = find(&sample(), key.as_bytes());
    let value_type = start + key.len();
    KeyAt {
        len: start - 8,
        value_type,
        value: value_type + 4,
    }
}

/// Where the tensor info `name` lies in the sample.
struct TensorAt {
    name: usize,
    n_dims: usize,
    dims: usize,
    ggml_type: usize,
    offset: usize,
}

fn tensor_at(name: &str) -> TensorAt {
    let bytes = sample();
    let start = find(&bytes, name.as_bytes());
    let n_dims_pos = start + name.len();
    let n_dims = u32::from_le_bytes(bytes[n_dims_pos..n_dims_pos + 4].try_into().unwrap()) as usize;
    let ggml_type = n_dims_pos + 4 + 8 * n_dims;
    TensorAt {
        name: start,
        n_dims: n_dims_pos,
        dims: n_dims_pos + 4,
        ggml_type,
        offset: ggml_type + 4,
    }
}

/// Offset of the end of the last tensor's data in the sample; past it is only padding.
fn data_end() -> usize {
    let file = GgufFile::from_bytes(sample()).unwrap();
    file.tensors()
        .iter()
        .map(|t| (t.offset + t.n_bytes) as usize)
        .max()
        .unwrap()
}

#[test]
fn sample_is_valid() {
    let file = GgufFile::from_bytes(sample()).unwrap();
    assert_eq!(file.tensors().len(), 3);
    assert_eq!(file.metadata().len(), 8);
    let tokens = file
        .get("tokenizer.ggml.tokens")
        .and_then(Value::as_array)
        .unwrap();
    assert_eq!(tokens.as_strings().unwrap()[3], "wörld");
}

#[test]
fn every_truncation_is_refused() {
    let bytes = sample();
    let data_end = data_end();
    for len in 0..bytes.len() {
        let result = GgufFile::from_bytes(bytes[..len].to_vec());
        if len < data_end {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("truncated to {len} bytes, the file parsed"));
            check_style(&err.to_string());
        } else {
            // Only the padding after the last tensor is gone: still a whole file.
            assert!(
                result.is_ok(),
                "truncated to {len} bytes: {:?}",
                result.err()
            );
        }
    }
}

#[test]
fn truncations_say_what_was_cut() {
    let bytes = sample();
    check(bytes[..3].to_vec(), "Truncated", "magic");
    check(bytes[..6].to_vec(), "Truncated", "version");
    check(bytes[..12].to_vec(), "Truncated", "tensor count");
    let tokens = key_at("tokenizer.ggml.tokens");
    check(
        bytes[..tokens.value + 2].to_vec(),
        "Truncated",
        "array element type of key tokenizer.ggml.tokens",
    );
    let q = tensor_at("blk.0.attn_q.weight");
    check(
        bytes[..q.dims + 3].to_vec(),
        "Truncated",
        "dimension 0 of tensor blk.0.attn_q.weight",
    );
    check(
        bytes[..data_end() - 1].to_vec(),
        "TensorOutOfBounds",
        "output.weight",
    );
}

#[test]
fn absurd_counts_are_refused() {
    for huge in [u64::MAX, 1 << 40, 1 << 32] {
        check(with_u64(8, huge), "LengthTooLarge", "tensor count");
        check(with_u64(16, huge), "LengthTooLarge", "metadata entry count");
        let arch = key_at("general.architecture");
        check(
            with_u64(arch.len, huge),
            "LengthTooLarge",
            "length of key of metadata entry 0",
        );
        check(
            with_u64(arch.value, huge),
            "LengthTooLarge",
            "length of value of key general.architecture",
        );
        let tokens = key_at("tokenizer.ggml.tokens");
        check(
            with_u64(tokens.value + 4, huge),
            "LengthTooLarge",
            "array length of key tokenizer.ggml.tokens",
        );
        let name = tensor_at("output.weight").name;
        check(
            with_u64(name - 8, huge),
            "LengthTooLarge",
            "name of tensor 2",
        );
    }
}

#[test]
fn array_lengths_are_checked_against_element_size() {
    // An array of i32 one element longer than the rest of the file could hold.
    let bytes = sample();
    let token_type = key_at("tokenizer.ggml.token_type");
    let len_pos = token_type.value + 4;
    let left = (bytes.len() - len_pos - 8) as u64;
    check(
        with_u64(len_pos, left / 4 + 1),
        "LengthTooLarge",
        "tokenizer.ggml.token_type",
    );
    // A string element whose length runs past the end.
    let element = find(&bytes, b"hello") - 8;
    check(
        with_u64(element, 1 << 40),
        "LengthTooLarge",
        "element 2 of key tokenizer.ggml.tokens",
    );
}

#[test]
fn unknown_value_types_are_refused() {
    check(
        with_u32(key_at("llama.context_length").value_type, 13),
        "UnknownValueType",
        "llama.context_length",
    );
    check(
        with_u32(key_at("tokenizer.ggml.tokens").value, 99),
        "UnknownValueType",
        "tokenizer.ggml.tokens",
    );
    check(
        with_u32(key_at("test.nested").value + 12, u32::MAX),
        "UnknownValueType",
        "test.nested",
    );
}

#[test]
fn bad_header_is_refused() {
    let mut bytes = sample();
    bytes[..4].copy_from_slice(b"GGML");
    check(bytes, "BadMagic", "GGML");
    check(b"\x7fELF\x02\x01\x01\x00".to_vec(), "BadMagic", "\\x7fELF");
    check(with_u32(4, 1), "UnsupportedVersion", "version 1");
    check(with_u32(4, 3u32.swap_bytes()), "BigEndian", "big-endian");
}

#[test]
fn invalid_utf8_is_refused() {
    let mut bytes = sample();
    bytes[key_at("llama.context_length").len + 8] = 0xff;
    check(bytes, "InvalidUtf8", "key of metadata entry 1");
    let mut bytes = sample();
    bytes[key_at("general.architecture").value + 8] = 0xc3;
    check(bytes, "InvalidUtf8", "value of key general.architecture");
    let mut bytes = sample();
    let world = find(&bytes, "wörld".as_bytes());
    bytes[world + 1] = 0x80;
    check(
        bytes,
        "InvalidUtf8",
        "element 3 of key tokenizer.ggml.tokens",
    );
    let mut bytes = sample();
    bytes[tensor_at("output.weight").name] = 0xfe;
    check(bytes, "InvalidUtf8", "name of tensor 2");
}

#[test]
fn duplicates_are_refused() {
    let mut writer = sample_writer();
    writer.add_metadata("llama.context_length", 4096u32);
    check(writer.to_bytes(), "DuplicateKey", "llama.context_length");
    let mut writer = sample_writer();
    writer.add_tensor("token_embd.weight", GgmlType::F32, &[1], vec![0; 4]);
    check(writer.to_bytes(), "DuplicateTensor", "token_embd.weight");
}

#[test]
fn bad_shapes_and_types_are_refused() {
    let q = tensor_at("blk.0.attn_q.weight");
    check(with_u32(q.n_dims, 5), "TooManyDims", "blk.0.attn_q.weight");
    check(
        with_u32(q.n_dims, u32::MAX),
        "TooManyDims",
        "blk.0.attn_q.weight",
    );
    check(
        with_u64(q.dims, 33),
        "RaggedRow",
        "blk.0.attn_q.weight has rows of 33 values",
    );
    check(
        with_u64(q.dims + 8, 1 << 40),
        "TensorOutOfBounds",
        "blk.0.attn_q.weight",
    );
    // 2^32 * 2^32 overflows u64; 2^31 * 2^32 fits u64 but not ggml's int64.
    let mut bytes = with_u64(q.dims, 1 << 32);
    put_u64(&mut bytes, q.dims + 8, 1 << 32);
    check(bytes, "ShapeOverflow", "blk.0.attn_q.weight");
    let embd = tensor_at("token_embd.weight");
    let mut bytes = with_u64(embd.dims, 1 << 31);
    put_u64(&mut bytes, embd.dims + 8, 1 << 32);
    check(bytes, "ShapeOverflow", "token_embd.weight");
    for type_id in [4, 31, 38, 40, u32::MAX] {
        check(
            with_u32(q.ggml_type, type_id),
            "UnknownGgmlType",
            &format!("type id {type_id}"),
        );
    }
    // A known type whose block size the row length is not a multiple of.
    check(
        with_u32(
            tensor_at("token_embd.weight").ggml_type,
            GgmlType::Q4_0.id(),
        ),
        "RaggedRow",
        "Q4_0",
    );
}

#[test]
fn bad_offsets_are_refused() {
    let out = tensor_at("output.weight");
    let original = GgufFile::from_bytes(sample()).unwrap();
    let rel = original.tensor("output.weight").unwrap().offset - original.data_offset();
    check(
        with_u64(out.offset, rel + 1),
        "MisalignedTensor",
        "output.weight",
    );
    check(
        with_u64(out.offset, rel + 32 * 1024),
        "TensorOutOfBounds",
        "output.weight",
    );
    check(
        with_u64(out.offset, u64::MAX - 31),
        "TensorOutOfBounds",
        "output.weight",
    );
    // Moved onto the start of the previous tensor.
    let q_rel = original.tensor("blk.0.attn_q.weight").unwrap().offset - original.data_offset();
    check(
        with_u64(out.offset, q_rel),
        "OverlappingTensors",
        "blk.0.attn_q.weight",
    );
    // Moved so it starts inside the first tensor (its data is 128 bytes).
    check(
        with_u64(out.offset, 64),
        "OverlappingTensors",
        "token_embd.weight",
    );
}

#[test]
fn bad_alignment_is_refused() {
    for (alignment, variant) in [
        (0u32, "BadAlignment"),
        (3, "BadAlignment"),
        (48, "BadAlignment"),
    ] {
        let mut writer = sample_writer();
        writer.add_metadata("general.alignment", alignment);
        check(
            writer.to_bytes(),
            variant,
            &format!("general.alignment is {alignment}"),
        );
    }
    let mut writer = sample_writer();
    writer.add_metadata("general.alignment", 32.0f32);
    check(writer.to_bytes(), "AlignmentType", "f32");
    let mut writer = sample_writer();
    writer.add_metadata("general.alignment", -32i32);
    check(writer.to_bytes(), "AlignmentType", "i32");

    // A valid alignment that the tensor offsets written for 32 do not follow.
    let mut writer = sample_writer();
    writer.add_metadata("general.alignment", 64u32);
    let mut bytes = writer.to_bytes();
    let q_offset = {
        let name = find(&bytes, b"blk.0.attn_q.weight") + "blk.0.attn_q.weight".len();
        name + 4 + 16 + 4
    };
    put_u64(&mut bytes, q_offset, 160);
    check(bytes, "MisalignedTensor", "alignment 64");
}

#[test]
fn a_file_without_tensors_needs_no_data_section() {
    let mut writer = GgufWriter::new();
    writer.add_metadata("general.name", "empty");
    let bytes = writer.to_bytes();
    let file = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert!(file.tensors().is_empty());
    assert!(file.data_offset() >= file.file_size());
    // Header only: no metadata, no tensors.
    let file = GgufFile::from_bytes(GgufWriter::new().to_bytes()).unwrap();
    assert_eq!((file.metadata().len(), file.file_size()), (0, 24));
}

#[test]
fn errors_carry_the_facts() {
    let out = tensor_at("output.weight");
    let err = GgufFile::from_bytes(with_u32(out.ggml_type, 77)).unwrap_err();
    match err {
        GgufError::UnknownGgmlType {
            tensor,
            type_id,
            offset,
        } => {
            assert_eq!(
                (tensor.as_str(), type_id, offset),
                ("output.weight", 77, out.ggml_type as u64)
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = GgufFile::from_bytes(with_u64(16, 1 << 40)).unwrap_err();
    match err {
        GgufError::LengthTooLarge { offset, count, .. } => {
            assert_eq!((offset, count), (16, 1 << 40))
        }
        other => panic!("unexpected {other:?}"),
    }
}
