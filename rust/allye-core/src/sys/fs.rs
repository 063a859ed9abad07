//! File-system plumbing shared by the store, the manifest and the payloads: the store's
//! parent directories, positional reads, file identity. Everything inside a store is
//! opened through `crate::sys::trust`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// A map keyed by paths, as every per-process cache of a store (manifest indexes, open
/// logs, trusted directories, trackers) is: keyed by [`PathKey`] (a path's bytes) and
/// hashed with FxHash, not std's SipHash over each component (`Path`'s own `Hash` walks
/// its components): the keys are the store's own paths, nothing an attacker chooses, and
/// a put looks up a dozen of them; hashing them was a tenth of a small put's instructions.
/// Look a path up with [`key`].
pub type PathMap<V> = std::collections::HashMap<PathKey, V, rustc_hash::FxBuildHasher>;

/// A path as a map key, hashed and compared by its bytes: the same path spelled two ways
/// (`a//b`, `a/b`) is two keys, which these caches never meet (their paths are made by
/// one `join` of the store's resolved root).
#[derive(Debug, Clone)]
pub struct PathKey(PathBuf);

impl PartialEq for PathKey {
    fn eq(&self, other: &Self) -> bool {
        key(&self.0) == key(&other.0)
    }
}

impl Eq for PathKey {}

impl std::hash::Hash for PathKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        key(&self.0).hash(state)
    }
}

impl std::borrow::Borrow<[u8]> for PathKey {
    fn borrow(&self) -> &[u8] {
        key(&self.0)
    }
}

impl From<PathBuf> for PathKey {
    fn from(path: PathBuf) -> Self {
        PathKey(path)
    }
}

impl From<&Path> for PathKey {
    fn from(path: &Path) -> Self {
        PathKey(path.to_path_buf())
    }
}

/// What a [`PathMap`] is looked up by: the path's bytes.
pub fn key(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

pub(crate) fn read_at(file: &File, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut now = vec![0u8; len];
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(&mut now, at)?;
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < now.len() {
            let n = file.seek_read(&mut now[done..], at + done as u64)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
    }
    Ok(now)
}

/// Which file a path names: device and inode (on Windows, a stand-in: see [`identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    /// The identity of device `dev`, inode `ino` (as `stat` gives them).
    #[cfg(unix)]
    pub(crate) fn new(dev: u64, ino: u64) -> Self {
        FileIdentity { dev, ino }
    }
}

/// What tells a small file's versions apart without reading it: modification time (ns,
/// as `os.stat`'s `st_mtime_ns`: an i64 holds it until 2262), size and inode number (0
/// where there is none), `None` when nothing is at `path` (the path's link followed, as
/// `os.stat` does). The settings of a store are cached by it.
pub fn stamp(path: &Path) -> Option<(i64, u64, u64)> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec()), meta.len(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let since = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH);
        let ns = since.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Some((ns, meta.len(), 0))
    }
}

pub(crate) fn identity(meta: &std::fs::Metadata) -> FileIdentity {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileIdentity { dev: meta.dev(), ino: meta.ino() }
    }
    #[cfg(not(unix))]
    {
        // No stable inode through std on Windows: the creation time stands in for it.
        let created = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        FileIdentity { dev: 0, ino: created }
    }
}

/// Creates `dir` and its parents, private to this user (0700 before the umask); the
/// store directory itself is made by `crate::sys::trust::TrustedDir::create_root`.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
