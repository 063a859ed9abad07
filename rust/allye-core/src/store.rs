//! The store directory ("secret dir") and the paths inside it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::protocol::{LOCK_FILE, MANIFEST_FILE, PAYLOAD_DIR, READS_DIR, STORE_ENV, STORE_KEY_FILE};
use crate::sys::trust::{Open, TrustedDir};

/// A store directory: where the manifest, its lock and the payload files live.
///
/// Everything inside it is reached through [`TrustedDir`] handles (see `crate::sys::trust`):
/// the store directory is opened and checked against the trust rule, and what lies below
/// it is opened from that handle without following symbolic links.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// For a store inside another (a namespace of named objects): the outer store's
    /// directory, the only part of `root` opened by path; the rest is walked beneath it.
    anchor: Option<PathBuf>,
    /// The outer directory's handle (the store's own, or its anchor's), held by a store
    /// pinned for one operation ([`Store::pin`]).
    pinned: Option<std::sync::Arc<TrustedDir>>,
    /// For a pinned store inside another: its own directory, walked (and checked) once
    /// beneath the pinned outer one, for the rest of the operation.
    pinned_own: Option<std::sync::Arc<TrustedDir>>,
}

/// Stores are the same store when they name the same directory (pinned or not).
impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root && self.anchor == other.anchor
    }
}
impl Eq for Store {}

impl Store {
    /// Resolves the store directory: `explicit`, else `$ALLYE_SECRET_DIR`, else `~/.allye_secrets`.
    /// A relative path is taken from the working directory, now. Does not touch the file system.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        let root = match explicit {
            Some(p) => expand_home(p),
            None => match std::env::var_os(STORE_ENV).filter(|v| !v.is_empty()) {
                Some(v) => expand_home(Path::new(&v)),
                None => home_dir()
                    .ok_or_else(|| Error::StoreUnusable {
                        path: PathBuf::from("~/.allye_secrets"),
                        reason: "the home directory is unknown; pass secret_dir= or set ALLYE_SECRET_DIR".into(),
                    })?
                    .join(".allye_secrets"),
            },
        };
        Ok(Store { root: absolute(root), anchor: None, pinned: None, pinned_own: None })
    }

    /// A store at exactly this path (a relative one from the working directory, now).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Store { root: absolute(root.into()), anchor: None, pinned: None, pinned_own: None }
    }

    /// A store inside this one at `rel` (its directory is reached from this store's
    /// handle, never through a symbolic link).
    pub fn inner(&self, rel: impl AsRef<Path>) -> Self {
        Store {
            root: self.root.join(rel),
            anchor: Some(self.anchor.clone().unwrap_or_else(|| self.root.clone())),
            pinned: self.pinned.clone(),
            pinned_own: None,
        }
    }

    /// This store, its directory checked once, now, and its handle held for the rest of
    /// one operation (a send, a get: its half-dozen opens then skip the per-open check of
    /// the store path). `create` makes the store if missing; without it, a store that does
    /// not exist is returned unpinned (its opens then say it is missing). Only for values
    /// that live no longer than the call: a later call must see a store deleted and made
    /// again at the same path.
    ///
    /// A store inside another (a namespace) pins its own directory as well, walked once
    /// beneath the outer one: the half-dozen opens of a put or a get in a namespace
    /// would otherwise each walk `objects/<namespace>/` again. An already pinned store
    /// is returned as it is; a store made by [`Store::inner`] of a pinned one walks its
    /// own directory beneath the outer handle it inherited (the store path is not
    /// checked twice in one operation).
    pub fn pin(&self, create: bool) -> Result<Store> {
        if self.pinned.is_some() && (self.anchor.is_none() || self.pinned_own.is_some()) {
            return Ok(self.clone());
        }
        let anchor = self.anchor.as_deref().unwrap_or(&self.root);
        let outer = match &self.pinned {
            Some(outer) => Some(outer.clone()),
            None if create => Some(std::sync::Arc::new(TrustedDir::create_root(anchor)?)),
            None => TrustedDir::open_root(anchor)?.map(std::sync::Arc::new),
        };
        let own = match (&outer, &self.anchor) {
            (Some(outer), Some(anchor)) => {
                outer.walk(self.root.strip_prefix(anchor).unwrap_or(Path::new("")), create)?.map(std::sync::Arc::new)
            }
            _ => None,
        };
        Ok(Store { pinned: outer, pinned_own: own, ..self.clone() })
    }

    /// The outer directory: the pinned handle, else opened (and checked) now.
    fn outer(&self, create: bool) -> Result<Option<TrustedDir>> {
        if let Some(p) = &self.pinned {
            return p.try_clone().map(Some);
        }
        let anchor = self.anchor.as_deref().unwrap_or(&self.root);
        if create {
            TrustedDir::create_root(anchor).map(Some)
        } else {
            TrustedDir::open_root(anchor)
        }
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `<store>/manifest.jsonl`.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }
    /// `<store>/manifest.lock`, the writers' lock.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }
    /// `<store>/payloads/`, where file payloads live.
    pub fn payload_dir(&self) -> PathBuf {
        self.root.join(PAYLOAD_DIR)
    }
    /// `<store>/reads/`, read markers of `shm_unlink_on_read` segments.
    pub fn reads_dir(&self) -> PathBuf {
        self.root.join(READS_DIR)
    }

    /// Opens the store directory and checks it (`StoreNotPrivate`); `Ok(None)` when it
    /// does not exist. Readers use this: they never create anything.
    pub fn open_dir(&self) -> Result<Option<TrustedDir>> {
        if let Some(own) = &self.pinned_own {
            return own.try_clone().map(Some);
        }
        let Some(outer) = self.outer(false)? else { return Ok(None) };
        match &self.anchor {
            None => Ok(Some(outer)),
            Some(anchor) => outer.walk(self.root.strip_prefix(anchor).unwrap_or(Path::new("")), false),
        }
    }

    /// Creates the store (0700) if missing and opens it, checked.
    pub fn create_dir(&self) -> Result<TrustedDir> {
        if let Some(own) = &self.pinned_own {
            return own.try_clone();
        }
        let outer = self.outer(true)?.expect("created");
        match &self.anchor {
            None => Ok(outer),
            Some(anchor) => {
                let rel = self.root.strip_prefix(anchor).unwrap_or(Path::new(""));
                Ok(outer.walk(rel, true)?.expect("walk with create finds every directory"))
            }
        }
    }

    /// Creates the store (0700) and its payload directory if missing, and checks both
    /// against the trust rule. Used by writers; readers never create anything. Returns the
    /// store directory's handle.
    pub fn ensure(&self) -> Result<TrustedDir> {
        let root = self.create_dir()?;
        // Made once; every later send only checks it (a `statat`, not an open).
        if !root.check_entry(PAYLOAD_DIR, crate::sys::trust::Kind::Dir)? {
            root.create_dir(PAYLOAD_DIR)?;
        }
        Ok(root)
    }

    /// [`Store::ensure`], returning the handle of `payloads/` (where file payloads are written).
    pub fn ensure_payloads(&self) -> Result<TrustedDir> {
        self.create_dir()?.create_dir(PAYLOAD_DIR)
    }

    /// The path of `path` relative to the store directory (`path` as built from
    /// [`Store::root`], or already relative).
    fn relative<'a>(&self, path: &'a Path) -> Result<&'a Path> {
        if path.is_relative() {
            return Ok(path);
        }
        path.strip_prefix(&self.root).map_err(|_| {
            Error::InvalidArgument(format!("{} is not inside the store {}", path.display(), self.root.display()))
        })
    }

    /// The directory at `path` inside the store (a path under [`Store::root`], or relative
    /// to it), opened component by component without following symbolic links, each
    /// checked; `create` makes the missing ones (0700). `Ok(None)` when it (or the store)
    /// does not exist and `create` is false.
    pub fn dir_at(&self, path: &Path, create: bool) -> Result<Option<TrustedDir>> {
        let rel = self.relative(path)?;
        let root = if create { Some(self.create_dir()?) } else { self.open_dir()? };
        match root {
            None => Ok(None),
            Some(root) if rel.as_os_str().is_empty() => Ok(Some(root)),
            Some(root) => root.walk(rel, create),
        }
    }

    /// The directory holding `path` (inside the store) and `path`'s file name.
    pub fn parent_of(&self, path: &Path, create: bool) -> Result<Option<(TrustedDir, std::ffi::OsString)>> {
        let rel = self.relative(path)?;
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(Error::InvalidArgument(format!("{} names no file inside the store", path.display())));
        };
        Ok(self.dir_at(parent, create)?.map(|d| (d, name.to_os_string())))
    }

    /// Opens the file at `path` inside the store (see [`Store::dir_at`]) as `how` says;
    /// `Ok(None)` when it, its directory or the store does not exist (and `how` creates nothing).
    pub fn open_file(&self, path: &Path, how: Open) -> Result<Option<fs::File>> {
        let creates = !matches!(how, Open::Read | Open::ReadWrite);
        match self.parent_of(path, creates)? {
            Some((dir, name)) => dir.open(&name, how),
            None => Ok(None),
        }
    }

    /// [`Store::open_file`] with the metadata its check read (no second `stat`).
    pub fn open_file_meta(&self, path: &Path, how: Open) -> Result<Option<(fs::File, fs::Metadata)>> {
        let creates = !matches!(how, Open::Read | Open::ReadWrite);
        match self.parent_of(path, creates)? {
            Some((dir, name)) => dir.open_meta(&name, how),
            None => Ok(None),
        }
    }

    /// Deletes the file at `path` inside the store (the entry itself, never what a
    /// symbolic link names); `Ok(false)` when it did not exist.
    pub fn remove_file(&self, path: &Path) -> Result<bool> {
        match self.parent_of(path, false)? {
            Some((dir, name)) => dir.remove_file(&name),
            None => Ok(false),
        }
    }

    /// Whether `path` inside the store still leads to the file a caller holds open, of
    /// identity `id` (see [`crate::sys::trust::TrustedDir::compare_held`]); `Held::Gone`
    /// when it, its directory or the store does not exist.
    pub(crate) fn compare_held(
        &self,
        path: &Path,
        id: crate::sys::fs::FileIdentity,
    ) -> Result<crate::sys::trust::Held> {
        match self.parent_of(path, false)? {
            Some((dir, name)) => dir.compare_held(&name, id),
            None => Ok(crate::sys::trust::Held::Gone),
        }
    }

    /// What the entry at `path` inside the store is, without following a symbolic link.
    pub fn stat(&self, path: &Path) -> Result<Option<crate::sys::trust::EntryStat>> {
        match self.parent_of(path, false)? {
            Some((dir, name)) => dir.stat(&name),
            None => Ok(None),
        }
    }

    /// Reads the whole file at `path` inside the store; `Ok(None)` when it does not exist.
    pub fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match self.parent_of(path, false)? {
            Some((dir, name)) => dir.read(&name),
            None => Ok(None),
        }
    }

    /// Writes `data` to the file at `rel` inside the store (its directories made 0700 if
    /// missing), atomically: into a temporary file (0600) renamed over it. With
    /// `exclusive`, an existing file is kept and `Ok(false)` returned (first writer wins).
    pub fn write_file(&self, rel: &Path, data: &[u8], exclusive: bool) -> Result<bool> {
        use std::io::Write;
        let (dir, name) = self.parent_of(rel, true)?.expect("the directories were created");
        let tmp =
            format!(".{}.tmp-{}-{}", name.to_string_lossy(), std::process::id(), crate::sys::ids::new_v4().simple());
        let written = (|| -> Result<bool> {
            let mut f = dir.open(&tmp, Open::CreateNew)?.expect("an exclusive create makes the file");
            f.write_all(data)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(format!("cannot write {}", dir.path().join(&tmp).display()), e))?;
            if exclusive {
                dir.link_new(&tmp, &name)
            } else {
                dir.rename(&tmp, &dir, &name).map(|()| true)
            }
        })();
        let _ = dir.remove_file(&tmp);
        if written.is_ok() {
            dir.sync();
        }
        written
    }

    /// The store's secret key ([`STORE_KEY_FILE`]): 32 random bytes no other user can
    /// read, which make the names this store gives shared memory unpredictable to them.
    /// `create` makes the store and the key if missing (the first of several processes
    /// racing to make it wins: the others read its key); without it, `Ok(None)` when there
    /// is none.
    pub fn key(&self, create: bool) -> Result<Option<[u8; 32]>> {
        let dir = if create {
            self.create_dir()?
        } else {
            match self.open_dir()? {
                Some(d) => d,
                None => return Ok(None),
            }
        };
        if let Some(bytes) = dir.read(STORE_KEY_FILE)? {
            return parse_key(&bytes).map(Some).ok_or_else(|| Error::StoreUnusable {
                path: dir.path().join(STORE_KEY_FILE),
                reason: "the store key is not 64 hex digits; delete it (shared arrays made with it must then be created again)"
                    .into(),
            });
        }
        if !create {
            return Ok(None);
        }
        // Written under a temporary name, then linked into place: a key is complete when
        // it appears, and a key another process linked first is never replaced.
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(crate::sys::ids::new_v4().as_bytes());
        key[16..].copy_from_slice(crate::sys::ids::new_v4().as_bytes());
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = format!("{STORE_KEY_FILE}.tmp-{}-{}", std::process::id(), crate::sys::ids::new_v4().simple());
        let made = (|| -> Result<()> {
            use std::io::Write;
            let mut f = dir.open(&tmp, Open::CreateNew)?.expect("an exclusive create makes the file");
            f.write_all(hex.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(format!("cannot write {}", dir.path().join(&tmp).display()), e))?;
            dir.link_new(&tmp, STORE_KEY_FILE).map(drop)
        })();
        let _ = dir.remove_file(&tmp);
        made?;
        let bytes = dir.read(STORE_KEY_FILE)?.unwrap_or_default();
        parse_key(&bytes).map(Some).ok_or_else(|| Error::StoreUnusable {
            path: dir.path().join(STORE_KEY_FILE),
            reason: "the store key is not 64 hex digits; delete it".into(),
        })
    }

    /// True when `path` names a file directly inside this store's `payloads/` directory.
    /// gc deletes nothing else.
    pub fn owns_payload_file(&self, path: &Path) -> bool {
        let Some(parent) = path.parent() else { return false };
        let Some(name) = path.file_name() else { return false };
        if name == ".." || name == "." {
            return false;
        }
        let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canon(parent) == canon(&self.payload_dir())
    }
}

fn parse_key(bytes: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

fn home_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    let var = "HOME";
    #[cfg(windows)]
    let var = "USERPROFILE";
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `p` from the working directory when relative: the store's paths (manifest, payloads) are
/// built from its root, and a relative one would be taken as relative to the store itself
/// when opened inside it.
fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        return p;
    }
    std::path::absolute(&p).unwrap_or(p)
}

fn expand_home(p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = home_dir() {
            return home.join(rest);
        }
    }
    p.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dirs_and_refuses_files() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().join("s"));
        store.ensure().unwrap();
        assert!(store.payload_dir().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.root()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        let file = tmp.path().join("f");
        fs::write(&file, b"x").unwrap();
        let err = Store::at(&file).ensure().unwrap_err();
        assert!(matches!(err, Error::StoreUnusable { .. }), "{err}");
    }

    #[test]
    fn a_relative_store_path_is_taken_from_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let store = Store::resolve(Some(Path::new("rel/store"))).unwrap();
        assert_eq!(store.root(), cwd.join("rel/store"));
        assert_eq!(store.manifest_path(), cwd.join("rel/store").join(MANIFEST_FILE));
        assert_eq!(Store::at("s").root(), cwd.join("s"));
    }

    #[test]
    fn owns_only_direct_payload_children() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        store.ensure().unwrap();
        assert!(store.owns_payload_file(&store.payload_dir().join("x.arrow")));
        assert!(!store.owns_payload_file(&tmp.path().join("x.arrow")));
        assert!(!store.owns_payload_file(Path::new("/etc/passwd")));
        assert!(!store.owns_payload_file(&store.payload_dir().join("..")));
    }
}
