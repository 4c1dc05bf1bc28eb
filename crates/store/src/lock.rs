//! A lock file so that two pulls of the same model do not write the same partial files.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::{Result, StoreError};

/// Held while a pull runs; the lock file is removed on drop.
#[derive(Debug)]
pub(crate) struct PullLock {
    path: PathBuf,
}

impl PullLock {
    /// Creates `path` exclusively, writing our process id into it. A lock left behind by a
    /// process that no longer runs is taken over; any other existing lock is an error.
    pub(crate) fn acquire(path: &Path, name: &str) -> Result<PullLock> {
        // Two tries: the second follows the removal of a stale lock.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    // The pid only helps to detect stale locks; a failed write leaves an empty
                    // lock file, which still locks.
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(PullLock {
                        path: path.to_owned(),
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if !is_stale(path) {
                        break;
                    }
                    tracing::warn!(lock = %path.display(), "removing a stale lock file");
                    fs::remove_file(path).map_err(StoreError::io("remove stale lock", path))?;
                }
                Err(e) => return Err(StoreError::io("create lock file", path)(e)),
            }
        }
        Err(StoreError::Locked {
            name: name.to_owned(),
            lock: path.to_owned(),
        })
    }
}

impl Drop for PullLock {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!(lock = %self.path.display(), error = %e, "cannot remove lock file");
        }
    }
}

/// Whether the lock at `path` names a process that no longer runs (or is a zombie: killed,
/// not yet reaped). Only decidable where `/proc` lists processes (Linux); elsewhere every
/// lock counts as live.
fn is_stale(path: &Path) -> bool {
    let Ok(text) = fs::read_to_string(path) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return false;
    }
    match fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
        // The state letter follows the parenthesized command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X')),
        Err(_) => true,
    }
}
