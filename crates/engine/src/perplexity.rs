//! Perplexity of a model on a text, exactly as llama.cpp's `llama-perplexity` computes it.

pub mod math;
#[cfg(test)]
mod tests;

pub use math::{token_nll, NllSum};
