use super::*;

#[test]
fn sum_words_adds_every_word_whatever_the_length() {
    for n in [0, 1, LANES - 1, LANES, LANES + 1, 3 * LANES + 5] {
        let words: Vec<u64> = (0..n as u64)
            .map(|i| i.wrapping_mul(u64::MAX / 7))
            .collect();
        let expected = words.iter().fold(0u64, |acc, &w| acc.wrapping_add(w));
        assert_eq!(sum_words(&words), expected, "n = {n}");
    }
}

#[test]
fn every_pass_reads_every_word() {
    let result = measure_read_bandwidth(1 << 20, 3);
    let n_words = (result.buffer_bytes / 8) as u64;
    assert_eq!(result.buffer_bytes, 1 << 20);
    // The buffer holds 0, 1, 2, ... n_words - 1.
    assert_eq!(result.checksum, n_words * (n_words - 1) / 2);
    assert_eq!(result.passes_gbs.len(), 3);
    assert!(result.passes_gbs.iter().all(|&g| g > 0.0));
    assert!(result.median_gbs() <= result.best_gbs());
}

#[test]
fn a_tiny_buffer_is_one_line() {
    let result = measure_read_bandwidth(3, 1);
    assert_eq!(result.buffer_bytes, LANES * 8);
}
