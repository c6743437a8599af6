//! Executables as content: the hash that names a job's code, and chunked reading for uploads.
//!
//! A driver's executable is identified by the SHA-256 of its bytes, so a node caches each build
//! once and two drivers of the same build share it.
//!
//! An [`ExeCache`] is one directory of such executables (a node's cache, the head's store of
//! uploads) with a size cap, [`CACHE_BYTES_ENV`]: when it holds more, the executables least
//! recently used go first, but never one in use (by a job that has not ended here, and so by
//! any worker process of it).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// Hex SHA-256 of `bytes`.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hex SHA-256 of the file at `path`, read in chunks.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// An incremental hasher, for checking an upload as its chunks arrive.
#[derive(Debug, Default, Clone)]
pub struct ExeHasher(Sha256);

impl ExeHasher {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The hex digest.
    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::System,
        format!("cannot read executable {}: {e}", path.display()),
    )
}

/// The environment variable that caps each executable cache of a daemon, in bytes.
pub const CACHE_BYTES_ENV: &str = "RAYKIT_EXE_CACHE_BYTES";

/// The cap of an executable cache when [`CACHE_BYTES_ENV`] is not set: 1 GiB, a few dozen
/// builds of a typical program.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// The cap of this daemon's executable caches: [`CACHE_BYTES_ENV`], else
/// [`DEFAULT_CACHE_BYTES`]. A value that is not a number of bytes is an error.
pub fn cache_cap() -> Result<u64> {
    parse_cap(std::env::var(CACHE_BYTES_ENV).ok().as_deref())
}

/// The cap [`CACHE_BYTES_ENV`] set to `value` means.
fn parse_cap(value: Option<&str>) -> Result<u64> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => v.parse().map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!("{CACHE_BYTES_ENV}={v}: expected a number of bytes"),
            )
        }),
        None => Ok(DEFAULT_CACHE_BYTES),
    }
}

/// Sets the modification time of `path` to now, without opening it: a file opened for
/// writing cannot be executed meanwhile (`ETXTBSY`), and a worker may be starting from it.
fn touch_file(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string; a null `times` means "now".
    unsafe {
        libc::utimensat(libc::AT_FDCWD, c_path.as_ptr(), std::ptr::null(), 0);
    }
}

/// Whether `name` is a hex SHA-256, the name of a cached executable.
fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A directory of executables named by their hash, at most `cap` bytes of them unless those
/// in use need more: an executable larger than the cap alone is still kept while it is in use
/// (and goes when it no longer is), so a job never fails for the cap.
///
/// Files come in from outside (an upload, a download, a link): the cache counts one when told
/// with [`ExeCache::insert`]. It forgets files others delete only by being told; nothing but
/// the cache deletes them while its daemon runs.
#[derive(Debug)]
pub struct ExeCache {
    dir: PathBuf,
    cap: u64,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    /// The executables in the directory: size and when last used (a tick of `clock`).
    entries: HashMap<String, CacheEntry>,
    /// How many users (jobs) each executable in use has.
    users: HashMap<String, usize>,
    clock: u64,
    bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct CacheEntry {
    bytes: u64,
    used: u64,
}

impl CacheInner {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

impl ExeCache {
    /// The cache in `dir`, capped at `cap` bytes. Executables already there are counted, the
    /// most recently modified as the most recently used.
    pub fn new(dir: PathBuf, cap: u64) -> ExeCache {
        let mut found: Vec<(SystemTime, String, u64)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok().filter(|n| is_hash(n))?;
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                Some((meta.modified().ok()?, name, meta.len()))
            })
            .collect();
        found.sort();
        let mut inner = CacheInner::default();
        for (_, hash, bytes) in found {
            let used = inner.tick();
            inner.bytes += bytes;
            inner.entries.insert(hash, CacheEntry { bytes, used });
        }
        ExeCache {
            dir,
            cap,
            inner: Mutex::new(inner),
        }
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cap, in bytes.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Where the executable `hash` is (or would be) kept.
    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(hash)
    }

    /// The bytes of the executables the cache holds.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    /// Whether the cache holds `hash`; a file put there without [`ExeCache::insert`] is
    /// counted now.
    pub fn has(&self, hash: &str) -> bool {
        if self.inner.lock().entries.contains_key(hash) {
            return true;
        }
        is_hash(hash) && self.path(hash).is_file() && self.insert(hash).is_ok()
    }

    /// `hash` was used: it becomes the most recently used.
    pub fn touch(&self, hash: &str) {
        let mut inner = self.inner.lock();
        let now = inner.tick();
        if let Some(e) = inner.entries.get_mut(hash) {
            e.used = now;
        }
    }

    /// A user (a job) needs `hash` from now on: it is not evicted until every user released
    /// it. The file need not be there yet.
    pub fn acquire(&self, hash: &str) {
        let mut inner = self.inner.lock();
        *inner.users.entry(hash.to_owned()).or_insert(0) += 1;
        let now = inner.tick();
        if let Some(e) = inner.entries.get_mut(hash) {
            e.used = now;
        }
        drop(inner);
        // On disk too, for a cache opened on this directory later.
        touch_file(&self.path(hash));
    }

    /// A user of `hash` no longer needs it; once none does, it may be evicted, and the cache
    /// is brought back under its cap. Returns the executables evicted.
    pub fn release(&self, hash: &str) -> Vec<String> {
        let mut inner = self.inner.lock();
        match inner.users.get_mut(hash) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                inner.users.remove(hash);
            }
            None => {}
        }
        self.trim(&mut inner)
    }

    /// The executable `hash` is now in the directory: it is counted as the most recently
    /// used, and executables not in use are evicted, least recently used first, until the
    /// cache is under its cap again. Returns the executables evicted.
    pub fn insert(&self, hash: &str) -> Result<Vec<String>> {
        let path = self.path(hash);
        let bytes = std::fs::metadata(&path)
            .map_err(|e| io_error(&path, e))?
            .len();
        let mut inner = self.inner.lock();
        let used = inner.tick();
        let old = inner
            .entries
            .insert(hash.to_owned(), CacheEntry { bytes, used });
        inner.bytes = inner.bytes - old.map_or(0, |e| e.bytes) + bytes;
        Ok(self.trim(&mut inner))
    }

    /// Evicts executables not in use, least recently used first, while the cache holds more
    /// than its cap.
    fn trim(&self, inner: &mut CacheInner) -> Vec<String> {
        let mut evicted = Vec::new();
        while inner.bytes > self.cap {
            let victim = inner
                .entries
                .iter()
                .filter(|(hash, _)| !inner.users.contains_key(*hash))
                .min_by_key(|(_, e)| e.used)
                .map(|(hash, e)| (hash.clone(), e.bytes));
            let Some((hash, bytes)) = victim else {
                tracing::warn!(
                    dir = %self.dir.display(),
                    bytes = inner.bytes,
                    cap = self.cap,
                    "the executables in use need more than the cache's cap; they are kept"
                );
                break;
            };
            match std::fs::remove_file(self.path(&hash)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(exe = %hash, "cannot evict a cached executable: {e}");
                    break;
                }
            }
            inner.entries.remove(&hash);
            inner.bytes -= bytes;
            tracing::info!(exe = %hash, bytes, cap = self.cap, "cached executable evicted");
            evicted.push(hash);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("raykit-exe-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn hash(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    /// Puts an executable of `bytes` bytes named `hash(n)` into the cache's directory.
    fn put(cache: &ExeCache, n: u8, bytes: usize) -> String {
        let h = hash(n);
        std::fs::write(cache.path(&h), vec![0u8; bytes]).unwrap();
        h
    }

    fn held(cache: &ExeCache) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(cache.dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn inserting_past_the_cap_evicts_the_least_recently_used_executables_not_in_use() {
        let dir = scratch("lru");
        let cache = ExeCache::new(dir.clone(), 300);
        let (a, b, c) = (hash(1), hash(2), hash(3));
        for (n, h) in [(1, &a), (2, &b), (3, &c)] {
            cache.acquire(h);
            put(&cache, n, 100);
            assert_eq!(cache.insert(h).unwrap(), Vec::<String>::new());
            cache.release(h);
        }
        assert_eq!(cache.bytes(), 300);
        // `a` is used again, so `b` is now the least recently used.
        cache.touch(&a);
        let d = hash(4);
        cache.acquire(&d);
        put(&cache, 4, 100);
        assert_eq!(cache.insert(&d).unwrap(), vec![b.clone()]);
        assert_eq!(cache.bytes(), 300);
        let mut want = vec![a.clone(), c.clone(), d.clone()];
        want.sort();
        assert_eq!(held(&cache), want);
        // A larger one takes the room of two.
        let e = hash(5);
        cache.acquire(&e);
        put(&cache, 5, 150);
        assert_eq!(cache.insert(&e).unwrap(), vec![c.clone(), a.clone()]);
        assert!(cache.bytes() <= 300);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn executables_in_use_are_never_evicted_even_past_the_cap() {
        let dir = scratch("in-use");
        let cache = ExeCache::new(dir.clone(), 100);
        let (a, b) = (hash(1), hash(2));
        // Two jobs use `a`.
        cache.acquire(&a);
        cache.acquire(&a);
        put(&cache, 1, 80);
        cache.insert(&a).unwrap();
        // `b` alone is larger than the cap: allowed while in use, and `a` stays too.
        cache.acquire(&b);
        put(&cache, 2, 150);
        assert_eq!(cache.insert(&b).unwrap(), Vec::<String>::new());
        assert_eq!(cache.bytes(), 230);
        assert_eq!(held(&cache).len(), 2);
        // One job of `a` ends: still in use.
        assert_eq!(cache.release(&a), Vec::<String>::new());
        // `b`'s job ends: it goes, even though it is the most recently used, as `a` is in use.
        assert_eq!(cache.release(&b), vec![b.clone()]);
        assert_eq!(held(&cache), vec![a.clone()]);
        assert_eq!(cache.bytes(), 80);
        // Under the cap, an executable nobody uses stays cached.
        assert_eq!(cache.release(&a), Vec::<String>::new());
        assert_eq!(held(&cache), vec![a.clone()]);
        assert!(cache.has(&a));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_cache_opened_on_a_directory_counts_what_is_there_oldest_first() {
        let dir = scratch("reopen");
        let first = ExeCache::new(dir.clone(), u64::MAX);
        let (a, b) = (put(&first, 1, 10), put(&first, 2, 10));
        std::fs::write(dir.join("not-an-executable"), b"x").unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        let f = std::fs::File::options()
            .append(true)
            .open(first.path(&b))
            .unwrap();
        f.set_modified(old).unwrap();
        drop(f);
        let cache = ExeCache::new(dir.clone(), 15);
        assert_eq!(cache.bytes(), 20);
        assert!(cache.has(&a) && cache.has(&b));
        // The next insert brings it under the cap: `b` was modified longest ago.
        cache.acquire(&a);
        assert_eq!(cache.insert(&a).unwrap(), vec![b]);
        assert_eq!(cache.bytes(), 10);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_cap_is_a_number_of_bytes_and_defaults_to_a_gibibyte() {
        assert_eq!(parse_cap(None).unwrap(), DEFAULT_CACHE_BYTES);
        assert_eq!(parse_cap(Some(" ")).unwrap(), DEFAULT_CACHE_BYTES);
        assert_eq!(parse_cap(Some(" 4096 ")).unwrap(), 4096);
        assert_eq!(parse_cap(Some("0")).unwrap(), 0);
        let err = parse_cap(Some("1G")).unwrap_err();
        assert!(err.to_string().contains(CACHE_BYTES_ENV), "{err}");
    }
}
