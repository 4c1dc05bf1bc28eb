//! Integration tests of the engine: sessions and the serving loop, on real models (when
//! `SLM_TEST_MODELS=1`).

mod common;
mod serve_real;
mod session;
