//! Another process's view of a node's arena: the same file mapped again, to read and write
//! the blocks the node names.

use std::fmt;

use super::mapping::{boot_id, identity, system, Mapping};
use super::ArenaLocation;
use crate::error::{Error, ErrorKind, Result};

/// Another process's view of a node's arena: a mapping of the same file, to write the blocks
/// the node allocates for this process.
pub struct ArenaView {
    mapping: Mapping,
}

impl fmt::Debug for ArenaView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaView")
            .field("len", &self.mapping.len)
            .finish()
    }
}

impl ArenaView {
    /// Maps the arena at `location`, or says why this process cannot (another host, another
    /// pid namespace, another user, no `/proc`).
    #[cfg(target_os = "linux")]
    pub fn attach(location: &ArenaLocation) -> Result<ArenaView> {
        if boot_id()? != location.boot_id {
            return Err(Error::new(
                ErrorKind::Config,
                "the node's object arena is on another host",
            ));
        }
        let path = format!("/proc/{}/fd/{}", location.pid, location.fd);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| system(format!("cannot open the node's object arena {path}: {e}")))?;
        if identity(&file)? != (location.device, location.inode) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{path} is not the node's object arena (another pid namespace?)"),
            ));
        }
        Ok(ArenaView {
            mapping: Mapping::map(file, location.capacity)?,
        })
    }

    /// No arenas on this system.
    #[cfg(not(target_os = "linux"))]
    pub fn attach(_location: &ArenaLocation) -> Result<ArenaView> {
        Err(Error::new(
            ErrorKind::Config,
            "object arenas need Linux (memfd_create)",
        ))
    }

    /// The `len` bytes at `offset`, to read a value the node put there, or a protocol error
    /// when the range is not inside the arena.
    ///
    /// # Safety
    /// The node must keep these bytes unchanged while the slice lives.
    pub unsafe fn block(&self, offset: u64, len: u64) -> Result<&[u8]> {
        self.check(offset, len)?;
        // SAFETY: in bounds; the caller rules out writers.
        Ok(unsafe { self.mapping.slice(offset, len as usize) })
    }

    /// The `len` bytes at `offset`, to write a value into, or a protocol error when the range
    /// is not inside the arena.
    ///
    /// # Safety
    /// The node must have allocated this range to this process, not sealed yet: nothing else
    /// reads or writes it meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn block_mut(&self, offset: u64, len: usize) -> Result<&mut [u8]> {
        self.check(offset, len as u64)?;
        // SAFETY: in bounds; the caller owns the range.
        Ok(unsafe { self.mapping.slice_mut(offset, len) })
    }

    fn check(&self, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.mapping.len as u64 => Ok(()),
            _ => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "a value at {offset}+{len} lies outside the node's {}-byte arena",
                    self.mapping.len
                ),
            )),
        }
    }
}
