//! Making sled's writes durable before an append is acknowledged.
//!
//! What sled 0.34.7 does (read in its source, `pagecache/iobuf.rs` and
//! `pagecache/blob_io.rs`): `Db::flush` writes the log buffers with `pwrite`
//! and then calls `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on the
//! `db` file. That starts and waits for write-back of those pages but neither
//! flushes the drive's volatile cache nor writes the file's metadata (e.g. its
//! size after it grew), so a power cut can still lose "flushed" data. Values
//! too large for a log segment go to files under `blobs/`, which sled writes
//! with `write_all` and never syncs, nor their directory entries.
//!
//! So in `fsync` mode the store calls `fdatasync` on the `db` file after every
//! group's flush, and `fdatasync`s every blob file it has not synced yet plus
//! the `blobs` directory. A crash of the process alone (SIGKILL) is survived by
//! the `flush` mode too, since the data is in the kernel's page cache.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// How hard the store works to keep an acknowledged append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// sled flush, then `fdatasync` of sled's files: survives power loss.
    #[default]
    Fsync,
    /// sled flush only (`sync_file_range`): survives a process crash.
    Flush,
    /// No flush before acknowledging: for tests and benchmarks only.
    None,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fsync" => Ok(Self::Fsync),
            "flush" => Ok(Self::Flush),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown durability {other:?}; expected fsync, flush or none"
            )),
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fsync => "fsync",
            Self::Flush => "flush",
            Self::None => "none",
        })
    }
}

/// Syncs sled's data file and blob files.
pub(crate) struct DiskSyncer {
    db_file: File,
    blobs_dir: PathBuf,
    synced_blobs: HashSet<std::ffi::OsString>,
}

impl DiskSyncer {
    pub(crate) fn open(data_dir: &Path) -> io::Result<Self> {
        let db_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(data_dir.join("db"))?;
        // The data dir's own entries (db, conf, blobs/) were just created by
        // sled: make them durable once.
        File::open(data_dir)?.sync_all()?;
        Ok(Self {
            db_file,
            blobs_dir: data_dir.join("blobs"),
            synced_blobs: HashSet::new(),
        })
    }

    /// Makes everything sled has flushed durable.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.db_file.sync_data()?;
        let mut new_blob = false;
        let mut present = HashSet::new();
        match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry?;
                    let name = entry.file_name();
                    if !self.synced_blobs.contains(&name) {
                        match File::open(entry.path()) {
                            Ok(f) => f.sync_data()?,
                            // sled removes blobs it no longer needs.
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(e),
                        }
                        new_blob = true;
                    }
                    present.insert(name);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if new_blob {
            File::open(&self.blobs_dir)?.sync_all()?;
        }
        self.synced_blobs = present;
        Ok(())
    }
}
