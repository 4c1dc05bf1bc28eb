//! Integration tests of the model crate: loading and its errors, the forward pass's
//! bookkeeping on tiny synthetic models, and golden checks against llama.cpp on real
//! models (when `SLM_TEST_MODELS=1`).

mod batch;
mod golden;
mod load;
mod packcache;
mod pool;
mod real;
mod tiny;
