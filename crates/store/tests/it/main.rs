//! Integration tests of the store against a fake package index on 127.0.0.1.

mod fixtures;
mod local;
mod pull;
mod real;
mod server;
