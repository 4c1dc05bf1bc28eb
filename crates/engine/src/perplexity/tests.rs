use super::math::*;

#[test]
fn nll_of_uniform_row_is_ln_n() {
    let logits = [0.5f32; 4];
    let nll = token_nll(&logits, 2).unwrap();
    assert!((nll - 4f64.ln()).abs() < 1e-6);
    assert_eq!(token_nll(&logits, 4), None);
}

#[test]
fn nll_matches_log_softmax() {
    let logits = [1.0f32, 2.0, 3.0];
    let denom: f64 = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).sum();
    let expected = -(3.0f64.exp() / denom).ln();
    assert!((token_nll(&logits, 2).unwrap() - expected).abs() < 1e-6);
    // Large logits do not overflow.
    let big = [1000.0f32, 1000.0];
    assert!((token_nll(&big, 0).unwrap() - 2f64.ln()).abs() < 1e-6);
}

#[test]
fn sums_give_ppl_and_stderr() {
    let mut s = NllSum::default();
    assert_eq!(s.ppl_stderr(), None);
    for v in [1.0, 2.0, 3.0] {
        s.add(v);
    }
    assert!((s.ppl() - 2f64.exp()).abs() < 1e-12);
    // Population variance 2/3; stderr = sqrt(2/3 / 2) * e^2.
    let expected = (2.0f64 / 3.0 / 2.0).sqrt() * 2f64.exp();
    assert!((s.ppl_stderr().unwrap() - expected).abs() < 1e-9);
    let mut flat = NllSum::default();
    flat.add(1.0);
    flat.add(1.0);
    assert_eq!(flat.ppl_stderr(), None);
}
