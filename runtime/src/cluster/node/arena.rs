//! A node's shared-memory arena for large objects (Ray's plasma store, in one file).
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

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

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

/// One mapping of an arena file into this process.
struct Mapping {
    base: *mut u8,
    len: usize,
    file: File,
}

// SAFETY: the mapping is plain shared memory; who may touch which bytes is ruled by blocks.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    #[cfg(target_os = "linux")]
    fn map(file: File, len: u64) -> Result<Mapping> {
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
    unsafe fn slice(&self, offset: u64, len: usize) -> &[u8] {
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
    unsafe fn slice_mut(&self, offset: u64, len: usize) -> &mut [u8] {
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

/// A part of the arena holding (or about to hold) one value. Freed when dropped.
pub struct Block {
    arena: Arc<Arena>,
    offset: u64,
    len: u64,
    reserved: u64,
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

impl Block {
    /// Where the block starts in the arena file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The value's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value's bytes. Only a sealed block is read (its writer is done with it).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: blocks never overlap, and a block is read only once its writer sealed it.
        unsafe { self.arena.mapping.slice(self.offset, self.len as usize) }
    }

    /// The block's bytes, to write the value into (in this process).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: blocks never overlap and `&mut self` is the only handle to this one.
        unsafe { self.arena.mapping.slice_mut(self.offset, self.len as usize) }
    }
}

impl AsMut<[u8]> for Block {
    fn as_mut(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.arena.free.lock().give(self.offset, self.reserved);
    }
}

/// How long a block lent to a writer that left without sealing it stays allocated: the
/// writer's process may still be copying into it (its connection is gone, not necessarily the
/// process), and a block handed to someone else meanwhile would get two writers.
pub const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Blocks lent to another process to write into, by what it writes (an object, an output
/// slot). Dropped with blocks still in it (the writer left before sealing them), it frees them
/// only after [`ORPHAN_GRACE`].
#[derive(Debug)]
pub struct Lent<K> {
    blocks: std::collections::HashMap<K, Block>,
}

impl<K> Default for Lent<K> {
    fn default() -> Self {
        Lent {
            blocks: std::collections::HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> Lent<K> {
    /// Lends `block` for `key`; a block already lent for it is returned.
    pub fn lend(&mut self, key: K, block: Block) -> Option<Block> {
        self.blocks.insert(key, block)
    }

    /// Whether a block is lent for `key`.
    pub fn is_lent(&self, key: &K) -> bool {
        self.blocks.contains_key(key)
    }

    /// The block lent for `key`, now written.
    pub fn take(&mut self, key: &K) -> Option<Block> {
        self.blocks.remove(key)
    }
}

impl<K> Drop for Lent<K> {
    fn drop(&mut self) {
        if self.blocks.is_empty() {
            return;
        }
        let orphans: Vec<Block> = self.blocks.drain().map(|(_, b)| b).collect();
        let later = async move {
            tokio::time::sleep(ORPHAN_GRACE).await;
            drop(orphans);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn(later)),
            // No runtime to wait on (a test, a runtime shutting down): keep them for good
            // rather than risk two writers.
            Err(_) => std::mem::forget(later),
        }
    }
}

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

/// The host's boot id.
fn boot_id() -> Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .map_err(|e| system(format!("cannot read this host's boot id: {e}")))
}

/// A file's device and inode.
#[cfg(unix)]
fn identity(file: &File) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = file
        .metadata()
        .map_err(|e| system(format!("cannot stat the object arena: {e}")))?;
    Ok((meta.dev(), meta.ino()))
}

fn system(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::System, message.into())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ranges_merge_and_first_fit() {
        let mut free = FreeList::default();
        free.give(0, 100 * PAGE);
        let a = free.take(10 * PAGE).unwrap();
        let b = free.take(10 * PAGE).unwrap();
        let c = free.take(10 * PAGE).unwrap();
        assert_eq!((a, b, c), (0, 10 * PAGE, 20 * PAGE));
        free.give(b, 10 * PAGE);
        // A smaller block reuses the hole; a larger one goes after `c`.
        assert_eq!(free.take(5 * PAGE), Some(10 * PAGE));
        assert_eq!(free.take(20 * PAGE), Some(30 * PAGE));
        free.give(10 * PAGE, 5 * PAGE);
        free.give(a, 10 * PAGE);
        free.give(c, 10 * PAGE);
        free.give(30 * PAGE, 20 * PAGE);
        assert_eq!(free.ranges.len(), 1, "{:?}", free.ranges);
        assert_eq!(free.free_bytes(), 100 * PAGE);
        assert_eq!(free.take(101 * PAGE), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_value_written_through_a_view_is_read_from_the_block() {
        let arena = Arena::create(64 * PAGE).unwrap();
        let view = ArenaView::attach(arena.location()).unwrap();
        let block = arena.alloc(3 * PAGE + 5).unwrap();
        // SAFETY: the block was just allocated for this write and is not read meanwhile.
        let dst = unsafe { view.block_mut(block.offset(), block.len() as usize) }.unwrap();
        for (i, b) in dst.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        assert!(block
            .bytes()
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8));
        assert_eq!(arena.free_bytes(), 60 * PAGE);
        drop(block);
        assert_eq!(arena.free_bytes(), 64 * PAGE);
        assert!(arena.alloc(65 * PAGE).is_none(), "larger than the arena");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_lent_block_is_freed_when_taken_back_not_when_its_writer_leaves() {
        let arena = Arena::create(16 * PAGE).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut lent = Lent::default();
            assert!(lent.lend(1, arena.alloc(PAGE).unwrap()).is_none());
            assert!(lent.lend(2, arena.alloc(PAGE).unwrap()).is_none());
            drop(lent.take(&1));
            assert_eq!(arena.free_bytes(), 15 * PAGE);
            // The writer of block 2 left without sealing it: it stays allocated for now.
            drop(lent);
            assert_eq!(arena.free_bytes(), 15 * PAGE);
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_view_of_another_file_is_refused() {
        let arena = Arena::create(16 * PAGE).unwrap();
        let mut wrong = arena.location().clone();
        wrong.inode += 1;
        assert!(ArenaView::attach(&wrong).is_err());
        wrong = arena.location().clone();
        wrong.boot_id = "another-host".into();
        assert!(ArenaView::attach(&wrong).is_err());
    }
}
