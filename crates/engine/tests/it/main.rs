//! Integration tests of the engine: sessions on a real model, the serving loop on a tiny
//! synthetic model and on real models (when `SLM_TEST_MODELS=1`).

mod common;
mod grammar;
mod prefix;
mod serve;
mod serve_real;
mod session;
mod templates;
mod tiny;
