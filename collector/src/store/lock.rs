//! The data directory and its lock: one process at a time may use a data directory. The lock
//! is an exclusive advisory lock on `plumbline.lock` inside it, released when the process
//! ends (even by a crash), so a stale lock never needs cleaning up.

use super::StoreError;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "plumbline.lock";

/// A data directory this process holds.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Takes the directory, creating it first when `create` is set.
    pub fn acquire(path: &Path, create: bool) -> Result<DataDir, StoreError> {
        let io = |source| StoreError::Io {
            dir: path.to_path_buf(),
            source,
        };
        if path.exists() && !path.is_dir() {
            return Err(StoreError::NotADirectory {
                dir: path.to_path_buf(),
            });
        }
        if create {
            fs::create_dir_all(path).map_err(io)?;
        } else if !path.is_dir() {
            return Err(StoreError::Missing {
                dir: path.to_path_buf(),
            });
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(DataDir {
                path: path.to_path_buf(),
                _lock: file,
            }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
                dir: path.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(io(source)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempDir;

    #[test]
    fn a_held_data_directory_is_refused_to_a_second_holder() {
        let dir = TempDir::new("lock");
        let first = DataDir::acquire(dir.path(), true).unwrap();
        let second = DataDir::acquire(dir.path(), true).unwrap_err();
        assert!(matches!(second, StoreError::Locked { .. }), "{second}");
        assert!(second.to_string().contains("in use by a running collector"));
        drop(first);
        assert!(DataDir::acquire(dir.path(), false).is_ok());
    }

    #[test]
    fn a_file_given_as_the_data_directory_is_refused_as_not_a_directory() {
        // Before: "does not exist" when reading, "File exists (os error 17)" when serving.
        let dir = TempDir::new("not-a-dir");
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        for create in [false, true] {
            let err = DataDir::acquire(&file, create).unwrap_err();
            assert!(
                err.to_string().ends_with("plain is not a directory"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_missing_directory_is_not_created_unless_asked() {
        let dir = TempDir::new("missing");
        let inner = dir.path().join("nope");
        let err = DataDir::acquire(&inner, false).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
