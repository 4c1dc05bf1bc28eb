//! Integration tests of the kernels crate (one binary, one module per area).

mod simd;
