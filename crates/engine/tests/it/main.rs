//! Sessions on a real model (SmolLM2 135M): cache reuse across turns, limits, stop strings.
//! Run only with SLM_TEST_MODELS=1.

mod session;
