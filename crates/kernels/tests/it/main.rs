//! Integration tests of the kernels crate (one binary, one module per area).

mod scalar;
mod simd;
