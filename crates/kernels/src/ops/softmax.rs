//! Softmax.

/// Softmax of a row in place, as ggml's `ggml_compute_forward_soft_max_f32`: subtract the
/// maximum, exponentiate, sum in f64, multiply by the f32 reciprocal of the sum.
/// A row whose values are all `-inf` becomes all zeros rather than NaN.
pub fn softmax(x: &mut [f32] /* [n] */) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        x.fill(0.0);
        return;
    }
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}
