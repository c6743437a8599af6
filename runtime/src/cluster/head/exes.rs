//! The jobs' executables at the head: a driver's upload, written to a file and checked
//! against its hash as it arrives ([`ExeWriter`], which nodes use for what the head sends them
//! too), and sending one to a node that runs the job's work.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Head;
use crate::cluster::node::exe::ExeHasher;
use crate::cluster::proto::{Connection, Message, EXE_CHUNK};
use crate::error::{Error, ErrorKind, Result};

/// Whether `hash` looks like a hex SHA-256 (it names a file, so nothing else may pass).
pub(super) fn valid_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::new(ErrorKind::System, format!("{what}: {e}"))
}

/// Creates `dir` and its parents, private to this user.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error(format!("cannot create {}", dir.display()), e))
}

/// An executable being uploaded: written to a temporary file, hashed as it arrives.
struct Upload {
    file: std::fs::File,
    tmp: PathBuf,
    hasher: ExeHasher,
    written: u64,
}

/// Writes the executable `hash` from a stream of chunks into `dir`: a temporary file, checked
/// against the hash, made executable and renamed into place.
pub(crate) struct ExeWriter {
    dir: PathBuf,
    hash: String,
    upload: Option<Upload>,
}

impl ExeWriter {
    /// A writer of executable `hash` into `dir`.
    pub(crate) fn new(dir: &Path, hash: &str) -> ExeWriter {
        ExeWriter {
            dir: dir.to_owned(),
            hash: hash.to_owned(),
            upload: None,
        }
    }

    /// Adds one chunk at `offset`; after the `last` one returns the stored file's path.
    pub(crate) fn chunk(
        &mut self,
        offset: u64,
        bytes: &[u8],
        last: bool,
    ) -> Result<Option<PathBuf>> {
        if self.upload.is_none() {
            private_dir(&self.dir)?;
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let tmp = self.dir.join(format!(
                "{}.tmp{}-{}",
                self.hash,
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o700)
                .open(&tmp)
                .map_err(|e| io_error(format!("cannot create {}", tmp.display()), e))?;
            self.upload = Some(Upload {
                file,
                tmp,
                hasher: ExeHasher::default(),
                written: 0,
            });
        }
        let Some(up) = self.upload.as_mut() else {
            return Err(Error::new(ErrorKind::System, "no upload in progress"));
        };
        if offset != up.written {
            let error = Error::new(
                ErrorKind::Protocol,
                format!(
                    "executable chunk at offset {offset}, expected {}",
                    up.written
                ),
            );
            self.abort();
            return Err(error);
        }
        if let Err(e) = up.file.write_all(bytes) {
            let error = io_error(format!("cannot write {}", up.tmp.display()), e);
            self.abort();
            return Err(error);
        }
        up.hasher.update(bytes);
        up.written += bytes.len() as u64;
        if !last {
            return Ok(None);
        }
        let Some(up) = self.upload.take() else {
            return Err(Error::new(ErrorKind::System, "no upload in progress"));
        };
        let Upload {
            file, tmp, hasher, ..
        } = up;
        let got = hasher.finish();
        if got != self.hash {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "the executable's bytes hash to {got}, not {}: upload rejected",
                    self.hash
                ),
            ));
        }
        let done = file
            .sync_all()
            .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(&self.hash)));
        drop(file);
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(
                format!("cannot store executable {}", self.hash),
                e,
            ));
        }
        Ok(Some(self.dir.join(&self.hash)))
    }

    fn abort(&mut self) {
        if let Some(up) = self.upload.take() {
            let _ = std::fs::remove_file(&up.tmp);
        }
    }
}

impl Drop for ExeWriter {
    fn drop(&mut self) {
        self.abort();
    }
}

impl Head {
    /// Where the executable `hash` is (or would be) stored.
    fn exe_path(&self, hash: &str) -> PathBuf {
        self.exes.path(hash)
    }

    /// Sends the executable `hash` to a node in [`EXE_CHUNK`]-sized chunks.
    pub async fn send_exe(&self, conn: &mut Connection, hash: &str) -> Result<()> {
        let path = self.exe_path(hash);
        let file = if valid_hash(hash) {
            std::fs::File::open(&path).ok()
        } else {
            None
        };
        let Some(mut file) = file else {
            let error = Error::new(
                ErrorKind::Config,
                format!("the head has no executable {hash}"),
            );
            return conn.send(&Message::Failed { error }).await;
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut sent = 0u64;
        loop {
            let mut buf = vec![0u8; EXE_CHUNK];
            let n = tokio::task::block_in_place(|| read_full(&mut file, &mut buf))
                .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
            buf.truncate(n);
            sent += n as u64;
            let last = n < EXE_CHUNK || sent >= size;
            conn.send(&Message::ExeChunk { bytes: buf, last }).await?;
            if last {
                return Ok(());
            }
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
