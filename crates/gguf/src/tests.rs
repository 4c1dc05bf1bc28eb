//! Round trips through the writer and the reader, and the type table.

use crate::{Array, GgmlType, GgufError, GgufFile, GgufWriter, Value};

/// Writes `value` under one key, reads the file back and checks the value and its type name.
#[track_caller]
fn check(value: impl Into<Value>, expected_type: &str) {
    let value = value.into();
    let mut writer = GgufWriter::new();
    writer.add_metadata("test.key", value.clone());
    let file = GgufFile::from_bytes(writer.to_bytes()).expect("a written file parses");
    assert_eq!(file.metadata().len(), 1);
    assert_eq!(file.get("test.key"), Some(&value));
    assert_eq!(value.type_name(), expected_type);
}

#[test]
fn scalar_values_round_trip() {
    check(0xabu8, "u8");
    check(-5i8, "i8");
    check(0xbeefu16, "u16");
    check(-30000i16, "i16");
    check(0xdead_beefu32, "u32");
    check(i32::MIN, "i32");
    check(-1.5f32, "f32");
    check(f32::INFINITY, "f32");
    check(u64::MAX, "u64");
    check(i64::MIN, "i64");
    check(std::f64::consts::PI, "f64");
    check(true, "bool");
    check(false, "bool");
    check("", "string");
    check("héllo, wörld ✓ 🦀", "string");
    check("a\0b".to_owned(), "string");
}

#[test]
fn array_values_round_trip() {
    check(vec![1u8, 2, 255], "array of u8");
    check(vec![-1i8, 0, 1], "array of i8");
    check(vec![1u16, 65535], "array of u16");
    check(vec![-2i16, 2], "array of i16");
    check(vec![7u32; 5], "array of u32");
    check(vec![-1i32, 1, i32::MAX], "array of i32");
    check(vec![0.5f32, -0.25, 1e30], "array of f32");
    check(vec![u64::MAX, 0], "array of u64");
    check(vec![i64::MIN, i64::MAX], "array of i64");
    check(vec![1e-300f64, -2.0], "array of f64");
    check(vec![true, false, true], "array of bool");
    check(Array::from(vec!["a", "", "ünïcode"]), "array of string");
    check(Vec::<u32>::new(), "array of u32");
    check(Vec::<String>::new(), "array of string");
}

#[test]
fn nested_arrays_round_trip() {
    let nested = Array::Array(vec![
        Array::U32(vec![1, 2, 3]),
        Array::from(vec!["x", "y"]),
        Array::Array(vec![Array::Bool(vec![true]), Array::Array(vec![])]),
        Array::F64(vec![]),
    ]);
    check(nested, "array of array");

    // Eight levels are allowed, nine are not.
    let deep =
        |levels: usize| (1..levels).fold(Array::U8(vec![1]), |inner, _| Array::Array(vec![inner]));
    check(deep(crate::MAX_ARRAY_DEPTH), "array of array");
    let mut writer = GgufWriter::new();
    writer.add_metadata("too.deep", deep(crate::MAX_ARRAY_DEPTH + 1));
    let err = GgufFile::from_bytes(writer.to_bytes()).unwrap_err();
    assert!(
        matches!(err, GgufError::ArrayTooDeep { ref key, max_depth: 8, .. } if key == "too.deep"),
        "{err}"
    );
}

#[test]
fn metadata_keeps_file_order() {
    let mut writer = GgufWriter::new();
    writer
        .add_metadata("b", 1u32)
        .add_metadata("a", 2u32)
        .add_metadata("c", "three");
    let file = GgufFile::from_bytes(writer.to_bytes()).unwrap();
    let keys: Vec<&str> = file
        .metadata()
        .iter()
        .map(|(key, _)| key.as_str())
        .collect();
    assert_eq!(keys, ["b", "a", "c"]);
    assert_eq!(file.get("a"), Some(&Value::U32(2)));
    assert_eq!(file.get("missing"), None);
}

#[test]
fn tensors_round_trip() {
    let embd: Vec<u8> = (0..4 * 3 * 4).map(|i| i as u8).collect();
    let q8: Vec<u8> = (0..2 * 34).map(|i| (i * 7) as u8).collect();
    let mut writer = GgufWriter::new();
    writer
        .add_metadata("general.architecture", "llama")
        .add_tensor("token_embd.weight", GgmlType::F32, &[4, 3], embd.clone())
        .add_tensor("blk.0.attn_q.weight", GgmlType::Q8_0, &[32, 2], q8.clone())
        .add_tensor("scalar", GgmlType::F16, &[], vec![0x00, 0x3c]);
    let file = GgufFile::from_bytes(writer.to_bytes()).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.tensors().len(), 3);
    assert!(!file.is_mapped());

    let embd_info = file.tensor("token_embd.weight").unwrap();
    assert_eq!(embd_info.dims, [4, 3]);
    assert_eq!(embd_info.ggml_type, GgmlType::F32);
    assert_eq!(embd_info.n_bytes, 48);
    assert_eq!(
        (
            embd_info.row_len(),
            embd_info.n_rows(),
            embd_info.n_elements()
        ),
        (4, 3, 12)
    );
    assert_eq!(embd_info.offset, file.data_offset());
    assert_eq!(file.tensor_data(embd_info), embd);

    let q8_info = file.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(q8_info.n_bytes, 68);
    assert_eq!(q8_info.offset % 32, 0);
    assert_eq!(file.tensor_data(q8_info), q8);

    let scalar = file.tensor("scalar").unwrap();
    assert_eq!(
        (scalar.dims.len(), scalar.n_elements(), scalar.n_bytes),
        (0, 1, 2)
    );
    assert_eq!(file.tensor_data(scalar), [0x00, 0x3c]);
    assert!(file.tensor("missing").is_none());
}

#[test]
fn tensor_data_of_a_foreign_info_is_empty() {
    let mut writer = GgufWriter::new();
    writer.add_tensor("t", GgmlType::F32, &[1], vec![0; 4]);
    let file = GgufFile::from_bytes(writer.to_bytes()).unwrap();
    let mut info = file.tensors()[0].clone();
    info.offset = u64::MAX - 1;
    assert!(file.tensor_data(&info).is_empty());
    info.offset = 0;
    info.n_bytes = u64::MAX;
    assert!(file.tensor_data(&info).is_empty());
}

#[test]
fn custom_alignment_is_used() {
    let mut writer = GgufWriter::new();
    writer
        .add_metadata("general.alignment", 256u32)
        .add_tensor("a", GgmlType::I8, &[3], vec![1, 2, 3])
        .add_tensor("b", GgmlType::I8, &[1], vec![4]);
    let file = GgufFile::from_bytes(writer.to_bytes()).unwrap();
    assert_eq!(file.alignment(), 256);
    assert_eq!(file.data_offset() % 256, 0);
    let b = file.tensor("b").unwrap();
    assert_eq!(b.offset, file.data_offset() + 256);
    assert_eq!(file.tensor_data(b), [4]);
}

#[test]
fn version_2_reads_and_others_are_refused() {
    let mut writer = GgufWriter::new();
    writer.set_version(2).add_metadata("k", 1u8);
    assert_eq!(
        GgufFile::from_bytes(writer.to_bytes()).unwrap().version(),
        2
    );

    for version in [0, 1, 4, 99] {
        writer.set_version(version);
        let err = GgufFile::from_bytes(writer.to_bytes()).unwrap_err();
        assert!(
            matches!(err, GgufError::UnsupportedVersion { version: v } if v == version),
            "{err}"
        );
    }
    writer.set_version(3u32.swap_bytes());
    let err = GgufFile::from_bytes(writer.to_bytes()).unwrap_err();
    assert!(matches!(err, GgufError::BigEndian { .. }), "{err}");
    assert!(err.to_string().contains("big-endian"));
}

#[test]
fn open_maps_a_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let mut writer = GgufWriter::new();
    writer
        .add_metadata("general.name", "mapped")
        .add_tensor("w", GgmlType::F32, &[2], vec![9; 8]);
    writer.write(&path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    assert!(file.is_mapped());
    assert_eq!(file.file_size(), std::fs::metadata(&path).unwrap().len());
    assert_eq!(file.tensor_data(&file.tensors()[0]), [9; 8]);

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        GgufFile::open(&empty),
        Err(GgufError::Truncated { .. })
    ));
    let missing = GgufFile::open(dir.path().join("missing.gguf")).unwrap_err();
    assert!(matches!(missing, GgufError::Open { .. }));
    assert!(missing.to_string().contains("missing.gguf"), "{missing}");
}

#[test]
fn value_accessors() {
    assert_eq!(Value::I8(-1).as_u64(), None);
    assert_eq!(Value::I32(7).as_u64(), Some(7));
    assert_eq!(Value::U64(u64::MAX).as_i64(), None);
    assert_eq!(Value::U16(9).as_i64(), Some(9));
    assert_eq!(Value::F32(1.0).as_u64(), None);
    assert_eq!(Value::F64(0.5).as_f32(), Some(0.5));
    assert_eq!(Value::U32(1).as_f32(), None);
    assert_eq!(Value::Bool(true).as_bool(), Some(true));
    assert_eq!(Value::from("s").as_str(), Some("s"));
    assert_eq!(Value::U8(1).as_str(), None);
    let strings = Value::from(Array::from(vec!["a", "b"]));
    let array = strings.as_array().unwrap();
    assert_eq!((array.len(), array.is_empty()), (2, false));
    assert_eq!(array.as_strings().map(<[String]>::len), Some(2));
    assert_eq!(array.as_f32s(), None);
    assert_eq!(Array::I32(vec![3]).as_i32s(), Some(&[3][..]));
    assert_eq!(Array::F32(vec![]).as_f32s(), Some(&[][..]));
}

#[test]
fn ggml_type_table() {
    for ggml_type in GgmlType::ALL {
        assert_eq!(GgmlType::from_id(ggml_type.id()), Some(ggml_type));
        assert_eq!(ggml_type.to_string(), ggml_type.name());
        assert_eq!(format!("{ggml_type:?}"), ggml_type.name());
    }
    for removed in [4, 5, 31, 32, 33, 36, 37, 38, 40, u32::MAX] {
        assert_eq!(GgmlType::from_id(removed), None, "id {removed}");
    }
    // Sizes from the block structs of ggml-common.h.
    let expected = [
        (GgmlType::Q4_K, 256, 144),
        (GgmlType::Q6_K, 256, 210),
        (GgmlType::Q8_0, 32, 34),
        (GgmlType::IQ2_XXS, 256, 66),
        (GgmlType::IQ1_M, 256, 56),
        (GgmlType::IQ4_XS, 256, 136),
        (GgmlType::TQ1_0, 256, 54),
        (GgmlType::MXFP4, 32, 17),
        (GgmlType::BF16, 1, 2),
    ];
    for (ggml_type, block_size, type_size) in expected {
        assert_eq!(
            (ggml_type.block_size(), ggml_type.type_size()),
            (block_size, type_size),
            "{ggml_type}"
        );
    }
    assert_eq!(GgmlType::Q4_K.bytes_for(512), Some(288));
    assert_eq!(GgmlType::Q4_K.bytes_for(100), None);
    assert_eq!(GgmlType::F64.bytes_for(u64::MAX), None);
    assert!(GgmlType::Q2_K.is_quantized() && !GgmlType::F16.is_quantized());
}

#[test]
fn a_file_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GgufFile>();
    assert_send_sync::<GgufError>();
}

/// Resident kibibytes of the mapping that holds `addr` (Linux: /proc/self/smaps).
#[cfg(target_os = "linux")]
fn resident_kib(addr: usize) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
                continue;
            }
        }
        if inside {
            if let Some(kib) = line.strip_prefix("Rss:") {
                return kib.trim().trim_end_matches("kB").trim().parse().ok();
            }
        }
    }
    None
}

#[cfg(target_os = "linux")]
#[test]
fn release_drops_a_tensors_pages_and_keeps_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let mut writer = GgufWriter::new();
    writer.add_tensor("w", GgmlType::F32, &[1 << 18], data.clone());
    writer.write(&path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    let tensor = file.tensor_data(&file.tensors()[0]);
    let addr = tensor.as_ptr() as usize;
    assert_eq!(tensor, &data[..]);
    let before = resident_kib(addr).unwrap();
    assert!(before >= 1000, "{before} KiB resident after reading 1 MiB");
    file.release(tensor);
    let after = resident_kib(addr).unwrap();
    assert!(after < 100, "{after} KiB still resident after release");
    // Read again: the same bytes come back from the file.
    assert_eq!(file.tensor_data(&file.tensors()[0]), &data[..]);
    // Slices the map does not hold, and owned files, are left alone.
    file.release(&data);
    let owned = GgufFile::from_bytes(std::fs::read(&path).unwrap()).unwrap();
    owned.release(owned.tensor_data(&owned.tensors()[0]));
    assert_eq!(owned.tensor_data(&owned.tensors()[0]), &data[..]);
}
