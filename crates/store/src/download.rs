//! HTTP with retries, and resumable file downloads (`Range: bytes=N-`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::thread;
use std::time::Duration;

use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::Body;

use crate::store::RetryPolicy;
use crate::{Progress, Result, StoreError};

/// Copy buffer size for downloads.
const BUFFER_SIZE: usize = 256 << 10;

/// Give up connecting after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection that delivers nothing for this long is treated as broken (and resumed).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP client with the store's retry policy.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
    retry: RetryPolicy,
}

impl Http {
    /// A client that retries transient failures as `retry` says.
    pub(crate) fn new(retry: RetryPolicy) -> Http {
        // The system's roots, as curl and pip use: a machine behind a TLS-inspecting proxy
        // trusts the proxy's CA there, and Mozilla's bundled list would reject it.
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::PlatformVerifier)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .user_agent(concat!("slm/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
            retry,
        }
    }

    /// Sends `GET url`, with `Range: bytes=<from>-` when `range_from` is given. Any status is
    /// returned as a response; only transport failures are errors.
    pub(crate) fn get(&self, url: &str, range_from: Option<u64>) -> Result<Response<Body>> {
        let mut request = self.agent.get(url);
        if let Some(from) = range_from {
            request = request.header("Range", format!("bytes={from}-"));
        }
        request.call().map_err(|e| StoreError::Network {
            url: url.to_owned(),
            message: e.to_string(),
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy's attempts run out.
    pub(crate) fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut tries = 1;
        loop {
            match attempt() {
                Err(e) if e.is_transient() && tries < self.retry.attempts => {
                    let delay = self.retry.delay.saturating_mul(tries);
                    tracing::warn!(error = %e, ?delay, "transfer failed, retrying");
                    thread::sleep(delay);
                    tries += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

/// A file to download: where from, how large, and (for the caller) what it hashes to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remote<'a> {
    /// The URL.
    pub url: &'a str,
    /// The expected size in bytes.
    pub size: u64,
    /// A name for people (progress and errors).
    pub label: &'a str,
}

/// Downloads `remote` into `partial`, resuming from the bytes already there, retrying
/// transient failures. On success `partial` holds exactly `remote.size` bytes.
pub(crate) fn download_resumable(
    http: &Http,
    remote: Remote<'_>,
    partial: &Path,
    progress: &mut dyn Progress,
) -> Result<()> {
    http.retrying(|| download_once(http, remote, partial, progress))
}

/// One attempt: continue `partial` from its current length.
fn download_once(
    http: &Http,
    remote: Remote<'_>,
    partial: &Path,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut have = match fs::metadata(partial) {
        Ok(metadata) => metadata.len(),
        Err(_) => 0,
    };
    if have > remote.size {
        tracing::warn!(file = %partial.display(), "partial download is too long, restarting");
        have = 0;
        truncate(partial)?;
    }
    if have == remote.size {
        return Ok(());
    }
    let range_from = (have > 0).then_some(have);
    let mut response = http.get(remote.url, range_from)?;
    let status = response.status().as_u16();
    match status {
        200 => {
            if have > 0 {
                tracing::info!(
                    url = remote.url,
                    "server ignored the range request, restarting"
                );
                have = 0;
                truncate(partial)?;
            }
        }
        206 => {
            if content_range_start(&response) != Some(have) {
                truncate(partial)?;
                return Err(network(
                    remote.url,
                    "the server sent a different range than asked",
                ));
            }
            tracing::info!(url = remote.url, from = have, "resuming download");
        }
        416 => {
            // The partial file does not fit the remote file; start over on the next attempt.
            truncate(partial)?;
            return Err(network(
                remote.url,
                "the server refused to resume (HTTP 416)",
            ));
        }
        _ => {
            return Err(StoreError::HttpStatus {
                url: remote.url.to_owned(),
                status,
            })
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(partial)
        .map_err(StoreError::io("open", partial))?;
    progress.start(remote.label, Some(remote.size));
    progress.advance(have);
    let outcome = copy_body(&mut response, &mut file, remote, have, partial, progress);
    progress.finish();
    let written = outcome?;
    file.sync_all().map_err(StoreError::io("write", partial))?;
    let total = have.saturating_add(written);
    if total < remote.size {
        return Err(network(
            remote.url,
            &format!(
                "the connection closed after {total} of {} bytes",
                remote.size
            ),
        ));
    }
    Ok(())
}

/// Appends the response body to `file`; returns the bytes written. Stops with an error if the
/// body would make the file longer than `remote.size`.
fn copy_body(
    response: &mut Response<Body>,
    file: &mut File,
    remote: Remote<'_>,
    have: u64,
    partial: &Path,
    progress: &mut dyn Progress,
) -> Result<u64> {
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut written = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(written),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(network(remote.url, &e.to_string())),
        };
        written = written.saturating_add(n as u64);
        if have.saturating_add(written) > remote.size {
            truncate(partial)?;
            return Err(StoreError::SizeMismatch {
                what: remote.label.to_owned(),
                expected: remote.size,
                actual: have.saturating_add(written),
            });
        }
        let chunk = buffer.get(..n).unwrap_or_default();
        file.write_all(chunk)
            .map_err(StoreError::io("write", partial))?;
        progress.advance(n as u64);
    }
}

/// The first byte position of a 206 response's `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(response: &Response<Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = range.split_once('-')?;
    start.trim().parse().ok()
}

fn truncate(path: &Path) -> Result<()> {
    File::create(path)
        .map(drop)
        .map_err(StoreError::io("truncate", path))
}

fn network(url: &str, message: &str) -> StoreError {
    StoreError::Network {
        url: url.to_owned(),
        message: message.to_owned(),
    }
}
