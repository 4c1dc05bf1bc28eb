//! Integration tests of the server's router without a loaded model: request checks and
//! error shapes, auth, body limits, probes, metrics and the page. The real server with real
//! models and real clients is tested by the Python suite in `tests/python/`.

mod common;
mod errors;
mod routes;
