//! A file cache of repacked weights, so that a model loads without repacking again.
//!
//! The cache holds every packed matrix of one model file, in the order
//! [`Weights::pack`] visits them, behind a header that names the layout version and a
//! key computed from the model file (its size, every matrix's type and shape, and
//! samples of every matrix's bytes). A file whose header, key or entries do not match is
//! ignored and rewritten; it is written under a temporary name and renamed, so a reader
//! never sees half a file.
//!
//! Layout: `SLMPACK\0`, version u32, reserved u32, key u64, count u64, then per matrix
//! (format u32, reserved u32, n_rows u64, n_cols u64, offset u64, len u64); data at
//! 4096-byte aligned offsets. All little-endian.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gguf::{GgufFile, MappedBytes};
use kernels::{PackedFormat, PackedMatrix, SharedBytes};

use crate::weights::Weights;

const MAGIC: &[u8; 8] = b"SLMPACK\0";
const HEADER: usize = 32;
const ENTRY: usize = 40;
const ALIGN: usize = 4096;

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

/// The cache key of `file`'s matrices.
pub(crate) fn key(file: &GgufFile, weights: &mut Weights) -> u64 {
    let mut h = Fnv::new();
    h.u64(u64::from(kernels::packed::LAYOUT_VERSION));
    h.u64(file.file_size());
    for m in weights.matmul_matrices() {
        h.u64(m.dtype as u64);
        h.u64(m.n_rows as u64);
        h.u64(m.n_cols as u64);
        let data = m.view(file).data;
        let n = data.len();
        let sample = 4096.min(n);
        h.bytes(&data[..sample]);
        h.bytes(&data[n / 2 - sample / 2..n / 2 + sample.div_ceil(2).min(n - n / 2)]);
        h.bytes(&data[n - sample..]);
    }
    h.0
}

/// The cache file for `name_hint` and `key` in `dir`.
pub(crate) fn path(dir: &Path, name_hint: &str, key: u64) -> PathBuf {
    dir.join(format!("{name_hint}-{key:016x}.slmpack"))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?)).ok()
}

/// Points every packable matrix of `weights` at the cache file `path`; returns the bytes
/// used, or `None` (changing nothing) when the file is absent or does not match.
pub(crate) fn load(path: &Path, key: u64, weights: &mut Weights) -> Option<usize> {
    let mapped = MappedBytes::open(path).ok()?;
    let shared: Arc<dyn SharedBytes> = Arc::new(mapped);
    let b = (*shared).as_ref();
    if b.get(..8)? != MAGIC
        || u32_at(b, 8)? != kernels::packed::LAYOUT_VERSION
        || u64_at(b, 16)? as u64 != key
    {
        return None;
    }
    let count = u64_at(b, 24)?;
    let mut packed = Vec::new();
    let mut total = 0;
    for (i, m) in weights.matmul_matrices().enumerate() {
        let Some(format) = PackedFormat::for_dtype(m.dtype) else {
            continue;
        };
        let at = HEADER + ENTRY * packed.len();
        if packed.len() >= count || PackedFormat::from_id(u32_at(b, at)?)? != format {
            return None;
        }
        let (n_rows, n_cols) = (u64_at(b, at + 8)?, u64_at(b, at + 16)?);
        let (offset, len) = (u64_at(b, at + 24)?, u64_at(b, at + 32)?);
        if (n_rows, n_cols) != (m.n_rows, m.n_cols) {
            return None;
        }
        let matrix =
            PackedMatrix::from_shared(format, n_rows, n_cols, Arc::clone(&shared), offset)?;
        if matrix.size_bytes() != len {
            return None;
        }
        total += len;
        packed.push((i, matrix));
    }
    if packed.len() != count {
        return None;
    }
    let mut packed = packed.into_iter().peekable();
    for (i, m) in weights.matmul_matrices().enumerate() {
        if packed.peek().is_some_and(|(j, _)| *j == i) {
            let (_, matrix) = packed.next()?;
            m.packed = Some(Arc::new(matrix));
        }
    }
    Some(total)
}

/// Writes the packed matrices of `weights` to `path` (through a temporary file).
pub(crate) fn save(path: &Path, key: u64, weights: &mut Weights) -> std::io::Result<()> {
    let matrices: Vec<Arc<PackedMatrix>> = weights
        .matmul_matrices()
        .filter_map(|m| m.packed.clone())
        .collect();
    let mut header = Vec::with_capacity(HEADER + ENTRY * matrices.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&kernels::packed::LAYOUT_VERSION.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&key.to_le_bytes());
    header.extend_from_slice(&(matrices.len() as u64).to_le_bytes());
    let mut offset = (HEADER + ENTRY * matrices.len()).next_multiple_of(ALIGN);
    let mut offsets = Vec::with_capacity(matrices.len());
    for m in &matrices {
        header.extend_from_slice(&m.format().id().to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        for v in [m.n_rows(), m.n_cols(), offset, m.size_bytes()] {
            header.extend_from_slice(&(v as u64).to_le_bytes());
        }
        offsets.push(offset);
        offset = (offset + m.size_bytes()).next_multiple_of(ALIGN);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        out.write_all(&header)?;
        let mut at = header.len();
        for (m, &start) in matrices.iter().zip(&offsets) {
            out.write_all(&vec![0u8; start - at])?;
            out.write_all(m.data())?;
            at = start + m.size_bytes();
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes other caches of `name_hint` in `dir` (older keys), keeping `keep`.
pub(crate) fn remove_stale(dir: &Path, name_hint: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{name_hint}-");
    for entry in entries.flatten() {
        let p = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if p != keep && name.starts_with(&prefix) && name.ends_with(".slmpack") {
            let _ = std::fs::remove_file(&p);
        }
    }
}
