//! A node's shared-memory arena for large objects (Ray's plasma store).
//!
//! The node daemon creates one anonymous shared-memory file (`memfd_create`) at start, maps it
//! once, and hands out blocks of it. Another process on the same host (a driver) maps the
//! same file through `/proc/<pid>/fd/<fd>` and writes a large value straight into a block the
//! node allocated for it: the value crosses from one process to the other without a socket
//! and without a second copy.
//!
//! Freed blocks go back to the free list with their pages: the next large object reuses
//! memory that is already backed and mapped, so a program putting large values over and over
//! pays for page faults once, not on every put (on a small VM, faulting fresh memory costs
//! more than copying into it). The file is sparse: only pages once used hold memory, up to the
//! capacity.
//!
//! The arena never reads a block while a writer may still write it: a block belongs to its
//! writer until sealed, and to the object store after. It is freed when the store lets go of
//! it (its last `Arc`), never while a reader holds it.
//!
//! Linux only (`memfd_create`, `fallocate`); elsewhere a node has no arena and large values
//! travel over the socket as before.
//!
//! The parts: the [`Arena`] and its free list are here; `mapping` maps the file into a
//! process, `block` holds the [`Block`]s handed out (and those [`Lent`] to other processes),
//! and `view` is another process's [`ArenaView`].

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

mod block;
mod mapping;
#[cfg(test)]
mod tests;
mod view;

pub use block::{Block, Lent, ORPHAN_GRACE};
use mapping::{boot_id, identity, system, Mapping};
pub use view::ArenaView;

/// Values at least this large go to the arena when the writer can reach it; smaller ones are
/// cheaper to send than to allocate for.
pub const ARENA_MIN_VALUE: usize = 1 << 20;

/// Blocks start and end on page boundaries, so two blocks never share a page.
const PAGE: u64 = 4096;

/// Where another process on the same host finds a node's arena.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaLocation {
    /// The host's boot id (`/proc/sys/kernel/random/boot_id`): a process on another host (or
    /// the same host after a reboot) must not try to map it.
    pub boot_id: String,
    /// The node daemon's process id.
    pub pid: u32,
    /// The arena's file descriptor in that process.
    pub fd: i32,
    /// The file's device and inode: what a process that opened `/proc/<pid>/fd/<fd>` checks it
    /// got the node's arena (a process in another pid namespace sees another process there).
    pub device: u64,
    /// See `device`.
    pub inode: u64,
    /// The size of the file in bytes.
    pub capacity: u64,
}

/// The free ranges of an arena, by offset, merged with their neighbours when freed.
#[derive(Debug, Default)]
struct FreeList {
    ranges: BTreeMap<u64, u64>,
}

impl FreeList {
    /// First fit: the lowest free range that holds `len` bytes (keeps the used part of the
    /// file, and so its backed pages, compact).
    fn take(&mut self, len: u64) -> Option<u64> {
        let (&offset, &size) = self.ranges.iter().find(|(_, &size)| size >= len)?;
        self.ranges.remove(&offset);
        if size > len {
            self.ranges.insert(offset + len, size - len);
        }
        Some(offset)
    }

    fn give(&mut self, mut offset: u64, mut len: u64) {
        if let Some((&before, &size)) = self.ranges.range(..offset).next_back() {
            if before + size == offset {
                self.ranges.remove(&before);
                offset = before;
                len += size;
            }
        }
        if let Some(&size) = self.ranges.get(&(offset + len)) {
            self.ranges.remove(&(offset + len));
            len += size;
        }
        self.ranges.insert(offset, len);
    }

    fn free_bytes(&self) -> u64 {
        self.ranges.values().sum()
    }
}

/// A node's arena: the file, its mapping in the node, and what is free.
pub struct Arena {
    mapping: Mapping,
    free: Mutex<FreeList>,
    /// Every byte below this offset has memory reserved: blocks there need no `fallocate`.
    reserved: Mutex<u64>,
    location: ArenaLocation,
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("capacity", &self.location.capacity)
            .field("free", &self.free.lock().free_bytes())
            .finish()
    }
}

impl Arena {
    /// A new arena of `capacity` bytes (rounded down to pages), or the reason this system
    /// offers none (then large values go over sockets).
    #[cfg(target_os = "linux")]
    pub fn create(capacity: u64) -> Result<Arc<Arena>> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let capacity = capacity / PAGE * PAGE;
        if capacity == 0 {
            return Err(Error::new(ErrorKind::Config, "an object arena of 0 bytes"));
        }
        // SAFETY: a NUL-terminated name; the result is checked before use.
        let fd = unsafe { libc::memfd_create(c"raykit-objects".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(system(format!(
                "cannot create the object arena: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(capacity)
            .map_err(|e| system(format!("cannot size the object arena: {e}")))?;
        let (device, inode) = identity(&file)?;
        let location = ArenaLocation {
            boot_id: boot_id()?,
            pid: std::process::id(),
            fd: file.as_raw_fd(),
            device,
            inode,
            capacity,
        };
        let mut free = FreeList::default();
        free.give(0, capacity);
        Ok(Arc::new(Arena {
            mapping: Mapping::map(file, capacity)?,
            free: Mutex::new(free),
            reserved: Mutex::new(0),
            location,
        }))
    }

    /// No arena on this system.
    #[cfg(not(target_os = "linux"))]
    pub fn create(_capacity: u64) -> Result<Arc<Arena>> {
        Err(Error::new(
            ErrorKind::Config,
            "object arenas need Linux (memfd_create)",
        ))
    }

    /// Where other processes of this host find the arena.
    pub fn location(&self) -> &ArenaLocation {
        &self.location
    }

    /// A block for a value of `len` bytes, its memory reserved (so writing it never faults
    /// for want of memory), or `None` when the arena has no room.
    pub fn alloc(self: &Arc<Self>, len: u64) -> Option<Block> {
        let reserved = len.max(1).div_ceil(PAGE).checked_mul(PAGE)?;
        let offset = self.free.lock().take(reserved)?;
        // Reserve the pages now: a shared mapping of a file with no room left would kill the
        // writer with SIGBUS instead of failing here. Memory once reserved stays (freed blocks
        // keep their pages), so only the part past the high-water mark needs the call; first
        // fit keeps what lies below it in use.
        let end = offset + reserved;
        let mut high = self.reserved.lock();
        if end > *high {
            if let Err(e) = self.reserve(*high, end - *high) {
                drop(high);
                tracing::debug!("no memory for a {len}-byte object in the arena: {e}");
                self.free.lock().give(offset, reserved);
                return None;
            }
            *high = end;
        }
        drop(high);
        Some(Block {
            arena: self.clone(),
            offset,
            len,
            reserved,
        })
    }

    #[cfg(target_os = "linux")]
    fn reserve(&self, offset: u64, len: u64) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a descriptor we own.
        let rc = unsafe {
            libc::fallocate(
                self.mapping.file.as_raw_fd(),
                0,
                offset as libc::off_t,
                len as libc::off_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn reserve(&self, _offset: u64, _len: u64) -> std::io::Result<()> {
        Ok(())
    }

    /// Bytes not in any block.
    pub fn free_bytes(&self) -> u64 {
        self.free.lock().free_bytes()
    }
}

/// The arena size a node gets unless told otherwise (`RAYKIT_OBJECT_STORE_BYTES`): 30% of the
/// host's memory, as Ray sizes its object store. Only what is used takes memory.
pub fn default_capacity() -> u64 {
    if let Some(bytes) = std::env::var("RAYKIT_OBJECT_STORE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return bytes;
    }
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4 << 30, |kib| kib * 1024);
    total / 10 * 3
}
