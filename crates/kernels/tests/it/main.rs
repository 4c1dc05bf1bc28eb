//! Integration tests of the kernels crate, one module per area.

mod scalar;
