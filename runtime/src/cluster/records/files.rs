//! The private files of [`home`](super::home): a directory created with mode 0700 that must
//! belong to this user, and JSON files written to a temporary name and renamed, with mode
//! 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::home;
use crate::error::{Error, ErrorKind, Result};

pub(super) fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn io_err(what: String, e: std::io::Error) -> Error {
    Error::new(ErrorKind::System, format!("{what}: {e}"))
}

/// Creates `dir` (mode 0700) and checks that it belongs to this user: it may sit in a shared
/// `/tmp`, and another user's directory must not receive our token.
fn private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(io_err(format!("cannot create {}", dir.display()), e)),
    }
    let meta =
        fs::metadata(dir).map_err(|e| io_err(format!("cannot read {}", dir.display()), e))?;
    if meta.uid() != current_uid() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "{} belongs to another user; set RAYKIT_HOME to a directory of yours",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// The directory for detached daemons' logs, created if needed.
pub fn logs_dir() -> Result<PathBuf> {
    private_dir(&home())?;
    let dir = home().join("logs");
    private_dir(&dir)?;
    Ok(dir)
}

pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    private_dir(&home())?;
    write_json_in(path, value)
}

/// [`write_json`] for a file whose directory is created (private) if needed, wherever it is.
pub(super) fn write_json_in<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::serialization(&format!("writing {}", path.display()), e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&text))
        .and_then(|()| fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(format!("cannot write {}", path.display()), e)
    })
}

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::serialization(&format!("reading {}", path.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("cannot read {}", path.display()), e)),
    }
}
