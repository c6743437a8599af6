//! The blocks of a node's arena: one value's part of it, freed when dropped, and the blocks
//! lent to another process to write into.

use std::fmt;
use std::sync::Arc;

use super::Arena;

/// A part of the arena holding (or about to hold) one value. Freed when dropped.
pub struct Block {
    pub(super) arena: Arc<Arena>,
    pub(super) offset: u64,
    pub(super) len: u64,
    pub(super) reserved: u64,
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
