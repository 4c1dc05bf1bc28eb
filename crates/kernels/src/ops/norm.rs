//! RMS normalization.

/// `out = x / sqrt(mean(x²) + eps) * weight` over one row, as ggml's
/// `ggml_compute_forward_rms_norm_f32` followed by `ggml_mul`: the sum of squares is
/// accumulated in f64 (ggml's `ggml_float`), each square rounded to f32 first; the mean
/// and the scale are f32; the row is scaled first and multiplied by the weight after.
pub fn rms_norm(
    x: &[f32],      // [n]
    weight: &[f32], // [n]
    eps: f32,
    out: &mut [f32], // [n]
) {
    assert_eq!(x.len(), weight.len());
    assert_eq!(x.len(), out.len());
    let scale = rms_scale(x, eps);
    for ((o, &xi), &wi) in out.iter_mut().zip(x).zip(weight) {
        *o = (xi * scale) * wi;
    }
}

/// [`rms_norm`] in place.
pub fn rms_norm_in_place(
    x: &mut [f32],  // [n]
    weight: &[f32], // [n]
    eps: f32,
) {
    assert_eq!(x.len(), weight.len());
    let scale = rms_scale(x, eps);
    for (xi, &wi) in x.iter_mut().zip(weight) {
        *xi = (*xi * scale) * wi;
    }
}

/// `1 / sqrt(mean(x²) + eps)`, computed as ggml computes it.
fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let sum: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
    // An empty row has no scale; 1 keeps it empty rather than NaN.
    if x.is_empty() {
        return 1.0;
    }
    let mean = (sum / x.len() as f64) as f32;
    1.0 / (mean + eps).sqrt()
}
