//! End-to-end tests of `slm`: the real binary (and the engine it drives) against llama.cpp's
//! golden outputs. Tests that load a real model run only with SLM_TEST_MODELS=1.

mod bench;
mod common;
mod errors;
mod grammar;
mod greedy;
mod perplexity;
mod sampling;
mod serve;
mod tokenize;
