//! Random corruption: the reader may accept or refuse, but never panics.

use gguf::GgufFile;
use proptest::prelude::*;

use crate::sample;

/// Parses `bytes` and, when it parses, touches everything a caller could read.
fn parse_and_walk(bytes: Vec<u8>) {
    if let Ok(file) = GgufFile::from_bytes(bytes) {
        for info in file.tensors() {
            let data = file.tensor_data(info);
            assert_eq!(data.len() as u64, info.n_bytes);
            assert_eq!(
                info.offset % file.alignment(),
                file.data_offset() % file.alignment()
            );
        }
        for (key, value) in file.metadata() {
            assert_eq!(file.get(key), Some(value));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn overwritten_bytes_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = sample();
        let len = bytes.len();
        for (index, byte) in edits {
            bytes[index.index(len)] = byte;
        }
        parse_and_walk(bytes);
    }

    #[test]
    fn flipped_bits_in_the_header_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sample();
        let header_len = GgufFile::from_bytes(bytes.clone()).unwrap().data_offset() as usize;
        for (index, bit) in flips {
            bytes[index.index(header_len)] ^= 1 << bit;
        }
        let cut = cut.index(bytes.len() + 1);
        bytes.truncate(cut.max(header_len / 2));
        parse_and_walk(bytes);
    }

    #[test]
    fn overwritten_words_never_panic(
        pos in any::<prop::sample::Index>(),
        word in prop_oneof![Just(u64::MAX), Just(1u64 << 40), Just(0), any::<u64>(), 0u64..64],
    ) {
        let mut bytes = sample();
        let pos = pos.index(bytes.len() - 8);
        bytes[pos..pos + 8].copy_from_slice(&word.to_le_bytes());
        parse_and_walk(bytes);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = b"GGUF\x03\x00\x00\x00".to_vec();
        bytes.extend_from_slice(&tail);
        parse_and_walk(bytes);
    }
}
