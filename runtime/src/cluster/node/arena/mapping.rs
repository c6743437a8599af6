//! One mapping of an arena file into a process, and what identifies the file and its host.

use std::fs::File;

use crate::error::{Error, ErrorKind, Result};

/// One mapping of an arena file into this process.
pub(super) struct Mapping {
    base: *mut u8,
    pub(super) len: usize,
    pub(super) file: File,
}

// SAFETY: the mapping is plain shared memory; who may touch which bytes is ruled by blocks.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    #[cfg(target_os = "linux")]
    pub(super) fn map(file: File, len: u64) -> Result<Mapping> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(len).map_err(|_| system("the arena is larger than memory"))?;
        // SAFETY: a fresh shared mapping of a file we hold open; checked for failure below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(system(format!(
                "cannot map the object arena: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Mapping {
            base: base.cast(),
            len,
            file,
        })
    }

    /// The bytes at `offset..offset + len`.
    ///
    /// # Safety
    /// No one may write them while the slice lives.
    pub(super) unsafe fn slice(&self, offset: u64, len: usize) -> &[u8] {
        let offset = offset as usize;
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.len));
        // SAFETY: in bounds (checked above); the caller rules out writers.
        unsafe { std::slice::from_raw_parts(self.base.add(offset), len) }
    }

    /// The bytes at `offset..offset + len`, to write.
    ///
    /// # Safety
    /// No one else may read or write them while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn slice_mut(&self, offset: u64, len: usize) -> &mut [u8] {
        let offset = offset as usize;
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.len));
        // SAFETY: in bounds (checked above); the caller makes the range exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(offset), len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        // SAFETY: unmaps exactly the mapping `map` made; nothing borrows it any more (every
        // slice borrows `self`).
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

/// The host's boot id.
pub(super) fn boot_id() -> Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .map_err(|e| system(format!("cannot read this host's boot id: {e}")))
}

/// A file's device and inode.
#[cfg(unix)]
pub(super) fn identity(file: &File) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = file
        .metadata()
        .map_err(|e| system(format!("cannot stat the object arena: {e}")))?;
    Ok((meta.dev(), meta.ino()))
}

/// An error of the system's making (a syscall that failed), saying `message`.
pub(super) fn system(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::System, message.into())
}
