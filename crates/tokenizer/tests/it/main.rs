//! Integration tests of the tokenizer on the real models, against llama.cpp's outputs.
//!
//! They need the model files and the golden data, so they run only with
//! `SLM_TEST_MODELS=1` (in an optimized build: `cargo test --release -p tokenizer`); without
//! it each test returns at once and says it was skipped.

mod b11312;
mod common;
mod golden;
mod real_models;
