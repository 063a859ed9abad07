//! The store's trust rule, and the only way the library opens, creates, renames and
//! deletes anything inside a store.
//!
//! **The rule.** The store directory, and every directory and file the library creates or
//! opens in it, belong to the current user (the effective uid) and are writable by nobody
//! else (no group or other write bit). Anything else is [`Error::StoreNotPrivate`], which
//! names the path, its owner and mode and the command that fixes it. Group- or
//! other-*readable* is accepted: 0.1.2 creates its stores with the process umask (0755 and
//! 0644 with the usual 022), and reading them must keep working; everything this crate
//! creates is 0700 (directories) or 0600 (files) whatever the umask (an explicit `fchmod`
//! after creation).
//!
//! **No symlink is followed inside a store.** The path *to* the store is the user's
//! choice and may pass through symbolic links (a symlinked `~/.allye_secrets` works; a
//! symlink as its last component must belong to the user or to root, as the kernel's
//! `protected_symlinks` asks of sticky directories). It is checked on every operation, and
//! the store directory's descriptor is reused while the path names that very directory
//! (see [`TrustedDir::open_root`]). Everything below it is reached from that handle one
//! component at a time: with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` on Linux kernels that have it (5.6+), else `openat(O_NOFOLLOW)`
//! (a kernel without `openat2` answers `ENOSYS` once, and the fallback is used from then
//! on). Renames and deletes are `renameat`/`unlinkat` relative to such handles: they act
//! on the entry itself, never on what a symbolic link names. Every handle is checked with
//! `fstat` on the descriptor, not on the path, so what was checked is what is used.
//!
//! Windows keeps the store in the user's profile, whose ACL is the user's: there the
//! handle is the path and nothing is checked.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Store directories, and directories walked beneath them (a namespace's), whose
/// descriptor a process keeps open for reuse (see [`TrustedDir::open_root`] and
/// [`TrustedDir::walk`]).
pub const ROOT_CACHE: usize = 64;

/// What the rule is applied to: the fix it suggests differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory (the store or one inside it).
    Dir,
    /// A file inside the store.
    File,
    /// A shared-memory segment (or a store record), which must also be unreadable by others.
    Segment,
}

/// How a file inside the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and append, created (0600) if missing.
    Append,
    /// Write, created (0600); fails with `AlreadyExists` if it exists.
    CreateNew,
    /// Read and write, created (0600); fails with `AlreadyExists` if it exists.
    CreateNewReadWrite,
    /// Write, created (0600) if missing, truncated.
    Truncate,
}

/// What a directory entry is (as `readdir` says, without following it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// Anything else.
    Other,
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name.
    pub name: std::ffi::OsString,
    /// Its kind.
    pub kind: EntryKind,
}

/// What `stat` (without following a symlink) says of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryStat {
    /// Its kind.
    pub kind: EntryKind,
    /// Its size in bytes.
    pub len: u64,
    /// Its modification time.
    pub modified: std::time::SystemTime,
}

/// What a name in a directory leads to, next to a file a caller holds open
/// ([`TrustedDir::compare_held`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Nothing of that name.
    Gone,
    /// Another file, a link, or something the held file cannot be compared with here:
    /// open the name again through the trust rule.
    Other,
    /// The very file held (same device and inode, a regular file that passes the trust
    /// rule), now `len` bytes long.
    Same {
        /// Its length now.
        len: u64,
    },
}

/// The `StoreNotPrivate` error for `path` with `owner` and `mode`.
pub fn not_private(path: &Path, kind: Kind, owner: Option<u32>, mode: Option<u32>, reason: String) -> Error {
    let shown = path.display();
    let fix = match (kind, owner, mode) {
        (Kind::Segment, _, _) => {
            "shared memory is only used when it is yours and private; remove the segment if it is stale (adc cleanup), or use a store of your own".to_string()
        }
        (_, Some(uid), _) if uid != current_uid() => format!(
            "it belongs to someone else: use a store of your own (secret_dir= or ALLYE_SECRET_DIR), or have it given to you (chown -R {} {shown})",
            current_uid()
        ),
        (_, _, None) => format!("replace it with the real directory or file, or remove it ({shown})"),
        (Kind::Dir, _, _) => format!("fix with: chmod 700 {shown} (and chmod -R go-w {shown} for what is inside)"),
        (Kind::File, _, _) => format!("fix with: chmod 600 {shown}"),
    };
    Error::StoreNotPrivate { path: path.to_path_buf(), owner, mode, reason, fix }
}

/// The effective uid of this process (0 off Unix).
pub fn current_uid() -> u32 {
    #[cfg(unix)]
    {
        rustix::process::geteuid().as_raw()
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Applies the rule to what `fstat` said of `path`: owned by this user; no group or
/// other write bit (for a segment: no group or other bit at all).
pub fn check_owner_mode(path: &Path, kind: Kind, uid: u32, mode: u32) -> Result<()> {
    check_owner_mode_as(current_uid(), path, kind, uid, mode)
}

/// [`check_owner_mode`] for the user `me` (an operation asks the kernel who it is once).
fn check_owner_mode_as(me: u32, path: &Path, kind: Kind, uid: u32, mode: u32) -> Result<()> {
    let perm = mode & 0o7777;
    if uid != me {
        return Err(not_private(
            path,
            kind,
            Some(uid),
            Some(perm),
            format!("belongs to uid {uid}, not to you (uid {me}); mode {perm:04o}"),
        ));
    }
    let forbidden = if kind == Kind::Segment { 0o077 } else { 0o022 };
    if perm & forbidden != 0 {
        let who = match (perm & forbidden & 0o070 != 0, perm & forbidden & 0o007 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            _ => "others",
        };
        let what = if kind == Kind::Segment { "readable or writable" } else { "writable" };
        return Err(not_private(path, kind, Some(uid), Some(perm), format!("is {what} by {who} (mode {perm:04o})")));
    }
    Ok(())
}

fn symlink_error(path: &Path, kind: Kind) -> Error {
    not_private(
        path,
        kind,
        None,
        None,
        "is a symbolic link, and nothing inside a store is reached through one (another user could have planted it)"
            .into(),
    )
}

/// `name` as one plain path component (not empty, not `.`/`..`, no separator).
fn component(name: &Path) -> Result<&OsStr> {
    let mut parts = name.components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(c)), None) => Ok(c),
        _ => Err(Error::InvalidArgument(format!(
            "{} is not a plain name inside the store (no '/', '.' or '..')",
            name.display()
        ))),
    }
}

/// The plain components of `rel` (a path relative to a store directory).
pub fn components(rel: &Path) -> Result<Vec<&OsStr>> {
    rel.components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(c) => Ok(c),
            _ => Err(Error::InvalidArgument(format!("{} is not a path inside the store", rel.display()))),
        })
        .collect()
}

/// A directory of a store, opened without following symbolic links and checked against
/// the rule. Everything inside it is opened, created, renamed and deleted through it.
#[derive(Debug)]
pub struct TrustedDir {
    path: PathBuf,
    /// Shared: a store directory's handle is cached per process (see `open_root`).
    #[cfg(unix)]
    fd: std::sync::Arc<rustix::fd::OwnedFd>,
    /// The user everything below is checked against: the effective uid when the store
    /// directory was opened for this operation.
    #[cfg(unix)]
    uid: u32,
}

#[cfg(unix)]
mod imp {
    use std::sync::atomic::{AtomicBool, Ordering};

    use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
    use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
    use rustix::io::Errno;

    use super::*;

    /// The per-process cache of store directories' descriptors (see `TrustedDir::open_root`).
    mod roots {

        use std::path::Path;
        use std::sync::{Arc, Mutex};

        use rustix::fd::OwnedFd;

        type Entry = ((u64, u64), Arc<OwnedFd>, u64);

        fn cache() -> &'static Mutex<(crate::sys::fs::PathMap<Entry>, u64)> {
            static CACHE: crate::sys::fork::ForkLocal<Mutex<(crate::sys::fs::PathMap<Entry>, u64)>> =
                crate::sys::fork::ForkLocal::new(Default::default);
            CACHE.get()
        }

        /// The cached descriptor of `path` when it is of the directory `id` (device, inode).
        pub(super) fn get(path: &Path, id: (u64, u64)) -> Option<Arc<OwnedFd>> {
            let mut guard = cache().lock().unwrap_or_else(|e| e.into_inner());
            let (map, clock) = &mut *guard;
            *clock += 1;
            let now = *clock;
            let entry = map.get_mut(crate::sys::fs::key(path)).filter(|e| e.0 == id)?;
            entry.2 = now;
            Some(entry.1.clone())
        }

        /// The cached descriptor of `path`, whatever directory it is of (the caller checks
        /// the path's identity, then asks [`get`] with it).
        pub(super) fn get_any(path: &Path) -> Option<Arc<OwnedFd>> {
            let guard = cache().lock().unwrap_or_else(|e| e.into_inner());
            guard.0.get(crate::sys::fs::key(path)).map(|e| e.1.clone())
        }

        /// Caches `fd` for `path`, dropping the least recently used entry when full.
        pub(super) fn put(path: &Path, id: (u64, u64), fd: &Arc<OwnedFd>) {
            let mut guard = cache().lock().unwrap_or_else(|e| e.into_inner());
            let (map, clock) = &mut *guard;
            *clock += 1;
            if map.len() >= super::super::ROOT_CACHE && !map.contains_key(crate::sys::fs::key(path)) {
                if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.2).map(|(p, _)| p.clone()) {
                    map.remove(&oldest);
                }
            }
            map.insert(path.into(), (id, fd.clone(), *clock));
        }
    }

    /// Set once `openat2` answered `ENOSYS` (a kernel before 5.6, or a seccomp filter that
    /// does not know it): the `openat(O_NOFOLLOW)` fallback is used from then on.
    static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

    /// Makes every later open use the `openat(O_NOFOLLOW)` fallback (tests of the fallback).
    #[doc(hidden)]
    pub fn force_openat_fallback(on: bool) {
        NO_OPENAT2.store(on, Ordering::Relaxed);
    }

    /// Opens the single component `name` relative to `dir`, never through a symbolic link.
    pub(super) fn open_beneath(
        dir: BorrowedFd<'_>,
        name: &OsStr,
        flags: OFlags,
        mode: Mode,
    ) -> rustix::io::Result<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // openat2 refuses a mode without O_CREAT (EINVAL).
        let mode = if flags.contains(OFlags::CREATE) { mode } else { Mode::empty() };
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            use rustix::fs::ResolveFlags;
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            loop {
                match rustix::fs::openat2(dir, name, flags, mode, resolve) {
                    Err(Errno::NOSYS) => {
                        NO_OPENAT2.store(true, Ordering::Relaxed);
                        break;
                    }
                    // openat2 asks the caller to retry when a rename raced the lookup.
                    Err(Errno::AGAIN) => continue,
                    other => return other,
                }
            }
        }
        rustix::fs::openat(dir, name, flags, mode)
    }

    fn kind_of(ft: FileType) -> EntryKind {
        match ft {
            FileType::RegularFile => EntryKind::File,
            FileType::Directory => EntryKind::Dir,
            FileType::Symlink => EntryKind::Symlink,
            _ => EntryKind::Other,
        }
    }

    fn io_err(context: String, e: Errno) -> Error {
        Error::io(context, e.into())
    }

    /// Applies the rule to an open descriptor.
    pub(super) fn check_fd(me: u32, fd: BorrowedFd<'_>, path: &Path, kind: Kind) -> Result<()> {
        let st = rustix::fs::fstat(fd).map_err(|e| io_err(format!("cannot stat {}", path.display()), e))?;
        check_owner_mode_as(me, path, kind, st.st_uid, st.st_mode as u32)
    }

    impl TrustedDir {
        /// The store directory at `path`, opened and checked; `Ok(None)` when it does not exist.
        ///
        /// Every call checks the path as it is now: one `lstat` (and a `stat` when it is a
        /// symbolic link, which must be the user's or root's: another user's link in a
        /// shared directory could point the store anywhere), then the rule on what it
        /// names. The descriptor itself is opened once per process and store directory and
        /// reused while the path still names that directory (same device and inode; the
        /// cached descriptor keeps the inode alive, so its number cannot be reused by
        /// another directory meanwhile), which saves an open, an `fstat` and a close per
        /// call; the cache holds at most [`ROOT_CACHE`] stores.
        pub fn open_root(path: &Path) -> Result<Option<TrustedDir>> {
            let me = current_uid();
            let st = match rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(Error::StoreUnusable { path: path.to_path_buf(), reason: e.to_string() }),
            };
            let st = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                if st.st_uid != me && st.st_uid != 0 {
                    return Err(not_private(
                        path,
                        Kind::Dir,
                        Some(st.st_uid),
                        None,
                        format!("is a symbolic link that belongs to uid {}, not to you", st.st_uid),
                    ));
                }
                match rustix::fs::stat(path) {
                    Ok(st) => st,
                    Err(Errno::NOENT) => return Ok(None),
                    Err(e) => return Err(Error::StoreUnusable { path: path.to_path_buf(), reason: e.to_string() }),
                }
            } else {
                st
            };
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(Error::StoreUnusable {
                    path: path.to_path_buf(),
                    reason: "it exists but is not a directory; pass another secret_dir=".into(),
                });
            }
            check_owner_mode_as(me, path, Kind::Dir, st.st_uid, st.st_mode as u32)?;
            let id = (st.st_dev as u64, st.st_ino as u64);
            if let Some(fd) = roots::get(path, id) {
                return Ok(Some(TrustedDir { path: path.to_path_buf(), fd, uid: me }));
            }
            let fd = match rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::NOTDIR) => {
                    return Err(Error::StoreUnusable {
                        path: path.to_path_buf(),
                        reason: "it exists but is not a directory; pass another secret_dir=".into(),
                    })
                }
                Err(e) => return Err(Error::StoreUnusable { path: path.to_path_buf(), reason: e.to_string() }),
            };
            // What was opened is checked itself (the path may have changed since the stat).
            let opened = rustix::fs::fstat(&fd).map_err(|e| io_err(format!("cannot stat {}", path.display()), e))?;
            check_owner_mode_as(me, path, Kind::Dir, opened.st_uid, opened.st_mode as u32)?;
            let fd = std::sync::Arc::new(fd);
            roots::put(path, (opened.st_dev as u64, opened.st_ino as u64), &fd);
            Ok(Some(TrustedDir { path: path.to_path_buf(), fd, uid: me }))
        }

        /// The store directory at `path`, created (0700, its missing parents too) if
        /// missing, then opened and checked.
        pub fn create_root(path: &Path) -> Result<TrustedDir> {
            if let Some(dir) = Self::open_root(path)? {
                return Ok(dir);
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::sys::fs::create_private_dir(parent).map_err(|e| Error::StoreUnusable {
                    path: path.to_path_buf(),
                    reason: format!("cannot create {}: {e}", parent.display()),
                })?;
            }
            let created = match rustix::fs::mkdir(path, Mode::RWXU) {
                Ok(()) => true,
                Err(Errno::EXIST) => false,
                Err(e) => {
                    return Err(Error::StoreUnusable {
                        path: path.to_path_buf(),
                        reason: format!("cannot create store directory: {e}"),
                    })
                }
            };
            let dir = Self::open_root(path)?.ok_or_else(|| Error::StoreUnusable {
                path: path.to_path_buf(),
                reason: "it vanished right after it was created".into(),
            })?;
            if created {
                // 0700 whatever the umask (mkdir's mode is masked by it).
                let _ = rustix::fs::fchmod(&dir.fd, Mode::RWXU);
            }
            Ok(dir)
        }

        /// The directory `name` in this one, opened without following a symlink and
        /// checked; `Ok(None)` when it does not exist.
        pub fn open_dir(&self, name: impl AsRef<Path>) -> Result<Option<TrustedDir>> {
            let name = component(name.as_ref())?;
            let path = self.path.join(name);
            match open_beneath(self.fd.as_fd(), name, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
                Ok(fd) => {
                    check_fd(self.uid, fd.as_fd(), &path, Kind::Dir)?;
                    Ok(Some(TrustedDir { path, fd: std::sync::Arc::new(fd), uid: self.uid }))
                }
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(self.refused(name, path, Kind::Dir, e)),
            }
        }

        /// The directory `name` in this one, created (0700) if missing.
        pub fn create_dir(&self, name: impl AsRef<Path>) -> Result<TrustedDir> {
            let name = component(name.as_ref())?;
            if let Some(dir) = self.open_dir(name)? {
                return Ok(dir);
            }
            let created = match rustix::fs::mkdirat(&self.fd, name, Mode::RWXU) {
                Ok(()) => true,
                Err(Errno::EXIST) => false,
                Err(e) => return Err(io_err(format!("cannot create {}", self.path.join(name).display()), e)),
            };
            let dir = self.open_dir(name)?.ok_or_else(|| {
                Error::io(
                    format!("cannot open {}", self.path.join(name).display()),
                    std::io::ErrorKind::NotFound.into(),
                )
            })?;
            if created {
                let _ = rustix::fs::fchmod(&dir.fd, Mode::RWXU);
            }
            Ok(dir)
        }

        /// Opens the directory at `rel` (components below this one), `create`-ing what is missing.
        ///
        /// A directory walked once is remembered per process (with the store roots, see
        /// `open_root`) and reused while `rel` beneath this directory still leads to it:
        /// one `stat` per component (never through a symbolic link, each checked against
        /// the rule) instead of an open, an `fstat` and a close, and reuse only of the very
        /// directory walked before (same device and inode, kept alive by the cached
        /// descriptor, so not a reused number).
        #[allow(clippy::unnecessary_cast)] // the types of `stat`'s fields differ between platforms
        pub fn walk(&self, rel: &Path, create: bool) -> Result<Option<TrustedDir>> {
            let path = self.path.join(rel);
            if let Some(fd) = roots::get_any(&path) {
                if self.still_walks_to(rel, &path)? {
                    return Ok(Some(TrustedDir { path, fd, uid: self.uid }));
                }
            }
            let found = self.walk_each(rel, create)?;
            if let Some(dir) = &found {
                if !rel.as_os_str().is_empty() {
                    if let Ok(st) = rustix::fs::fstat(&*dir.fd) {
                        roots::put(&dir.path, (st.st_dev as u64, st.st_ino as u64), &dir.fd);
                    }
                }
            }
            Ok(found)
        }

        /// Whether `rel` beneath this directory still leads, through directories that are
        /// not symbolic links and pass the rule, to the directory remembered for `path`.
        /// False sends the caller to the full walk (which says what is wrong); a component
        /// that is a directory failing the rule is refused here.
        #[allow(clippy::unnecessary_cast)] // the types of `stat`'s fields differ between platforms
        fn still_walks_to(&self, rel: &Path, path: &Path) -> Result<bool> {
            let mut here = PathBuf::new();
            let mut last = None;
            for part in components(rel)? {
                here.push(part);
                let Ok(st) = rustix::fs::statat(&self.fd, &here, AtFlags::SYMLINK_NOFOLLOW) else { return Ok(false) };
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    return Ok(false);
                }
                check_owner_mode_as(self.uid, &self.path.join(&here), Kind::Dir, st.st_uid, st.st_mode as u32)?;
                last = Some((st.st_dev as u64, st.st_ino as u64));
            }
            Ok(last.is_some_and(|id| roots::get(path, id).is_some()))
        }

        /// [`walk`](Self::walk) component by component, each opened and checked.
        fn walk_each(&self, rel: &Path, create: bool) -> Result<Option<TrustedDir>> {
            let mut dir: Option<TrustedDir> = None;
            for part in components(rel)? {
                let here = dir.as_ref().unwrap_or(self);
                let next = if create { Some(here.create_dir(part)?) } else { here.open_dir(part)? };
                match next {
                    Some(d) => dir = Some(d),
                    None => return Ok(None),
                }
            }
            match dir {
                Some(d) => Ok(Some(d)),
                None => self.try_clone().map(Some),
            }
        }

        /// Another handle on the same directory.
        pub fn try_clone(&self) -> Result<TrustedDir> {
            Ok(TrustedDir { path: self.path.clone(), fd: self.fd.clone(), uid: self.uid })
        }

        /// The error for an entry of type `found` where a `kind` was wanted, as opening or
        /// checking it reports it: a symbolic link, a directory where a file was wanted, or
        /// anything where a directory was (`errno`: what the open said, for the message's
        /// cause). `None` when the type alone says nothing more.
        fn wrong_kind(path: &Path, kind: Kind, found: FileType, errno: Errno) -> Option<Error> {
            match found {
                FileType::Symlink => Some(symlink_error(path, kind)),
                FileType::Directory if kind == Kind::File => {
                    Some(Error::io(format!("{} is a directory", path.display()), errno.into()))
                }
                _ if kind == Kind::Dir => Some(Error::StoreUnusable {
                    path: path.to_path_buf(),
                    reason: "it exists but is not a directory; remove it (the library made it a directory)".into(),
                }),
                _ => None,
            }
        }

        /// Why opening `name` failed, as the error a caller can act on: a symbolic link or
        /// a non-directory where a directory was expected are the store's problem.
        fn refused(&self, name: &OsStr, path: PathBuf, kind: Kind, e: Errno) -> Error {
            if matches!(e, Errno::LOOP | Errno::NOTDIR | Errno::XDEV) {
                if let Ok(st) = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    if let Some(err) = Self::wrong_kind(&path, kind, FileType::from_raw_mode(st.st_mode), e) {
                        return err;
                    }
                }
            }
            io_err(format!("cannot open {}", path.display()), e)
        }

        /// Opens the file `name` in this directory as `how` says, without following a
        /// symbolic link; an existing file is checked against the rule. `Ok(None)` when it
        /// does not exist and `how` does not create it.
        pub fn open(&self, name: impl AsRef<Path>, how: Open) -> Result<Option<File>> {
            Ok(self.open_inner(name.as_ref(), how)?.map(|(f, _)| f))
        }

        /// [`TrustedDir::open`] of an existing (or appended) file, with the metadata its
        /// check read (callers that need the size or identity use it: no second `stat`).
        pub fn open_meta(&self, name: impl AsRef<Path>, how: Open) -> Result<Option<(File, std::fs::Metadata)>> {
            let name = name.as_ref();
            match self.open_inner(name, how)? {
                Some((f, Some(meta))) => Ok(Some((f, meta))),
                Some((f, None)) => {
                    let meta = f
                        .metadata()
                        .map_err(|e| Error::io(format!("cannot stat {}", self.path.join(name).display()), e))?;
                    Ok(Some((f, meta)))
                }
                None => Ok(None),
            }
        }

        fn open_inner(&self, name: &Path, how: Open) -> Result<Option<(File, Option<std::fs::Metadata>)>> {
            use std::os::unix::fs::MetadataExt;
            let name = component(name)?;
            let path = self.path.join(name);
            let (flags, fresh) = match how {
                Open::Read => (OFlags::RDONLY, false),
                Open::ReadWrite => (OFlags::RDWR, false),
                Open::Append => (OFlags::RDWR | OFlags::APPEND | OFlags::CREATE, false),
                Open::CreateNew => (OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, true),
                Open::CreateNewReadWrite => (OFlags::RDWR | OFlags::CREATE | OFlags::EXCL, true),
                Open::Truncate => (OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC, false),
            };
            let fd = match open_beneath(self.fd.as_fd(), name, flags, Mode::RUSR | Mode::WUSR) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if !flags.contains(OFlags::CREATE) => return Ok(None),
                Err(e) => return Err(self.refused(name, path, Kind::File, e)),
            };
            if fresh {
                // 0600 whatever the umask.
                let _ = rustix::fs::fchmod(&fd, Mode::RUSR | Mode::WUSR);
                return Ok(Some((File::from(fd), None)));
            }
            let file = File::from(fd);
            let meta = file.metadata().map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
            if !meta.is_file() {
                return Err(Error::io(
                    format!("{} is not a regular file", path.display()),
                    std::io::ErrorKind::InvalidInput.into(),
                ));
            }
            check_owner_mode_as(self.uid, &path, Kind::File, meta.uid(), meta.mode())?;
            if flags.contains(OFlags::CREATE) && meta.mode() & 0o600 != 0o600 {
                // Created just now under a umask that took the owner's own bits.
                let _ = rustix::fs::fchmod(&file, Mode::RUSR | Mode::WUSR);
            }
            Ok(Some((file, Some(meta))))
        }

        /// Reads the whole file `name`; `Ok(None)` when it does not exist.
        pub fn read(&self, name: impl AsRef<Path>) -> Result<Option<Vec<u8>>> {
            use std::io::Read;
            let name = name.as_ref();
            let Some(mut f) = self.open(name, Open::Read)? else { return Ok(None) };
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .map_err(|e| Error::io(format!("cannot read {}", self.path.join(name).display()), e))?;
            Ok(Some(buf))
        }

        /// Renames `from` in this directory to `to` in `to_dir` (replacing `to`).
        pub fn rename(&self, from: impl AsRef<Path>, to_dir: &TrustedDir, to: impl AsRef<Path>) -> Result<()> {
            let (from, to) = (component(from.as_ref())?, component(to.as_ref())?);
            rustix::fs::renameat(&self.fd, from, &to_dir.fd, to).map_err(|e| {
                io_err(
                    format!("cannot rename {} to {}", self.path.join(from).display(), to_dir.path.join(to).display()),
                    e,
                )
            })
        }

        /// Links `from` in this directory as `to` (same directory); `Ok(false)` when `to`
        /// exists (nothing is replaced).
        pub fn link_new(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<bool> {
            let (from, to) = (component(from.as_ref())?, component(to.as_ref())?);
            match rustix::fs::linkat(&self.fd, from, &self.fd, to, AtFlags::empty()) {
                Ok(()) => Ok(true),
                Err(Errno::EXIST) => Ok(false),
                Err(e) => Err(io_err(format!("cannot link {}", self.path.join(to).display()), e)),
            }
        }

        /// Deletes the entry `name` (a file, or a symbolic link itself, never what it names);
        /// `Ok(false)` when it did not exist.
        pub fn remove_file(&self, name: impl AsRef<Path>) -> Result<bool> {
            let name = component(name.as_ref())?;
            match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
                Ok(()) => Ok(true),
                Err(Errno::NOENT) => Ok(false),
                Err(e) => Err(io_err(format!("cannot remove {}", self.path.join(name).display()), e)),
            }
        }

        /// Deletes the directory `name` and everything in it, following no symbolic link (a
        /// link is removed as an entry); a missing one is fine.
        pub fn remove_dir_all(&self, name: impl AsRef<Path>) -> Result<()> {
            let name = component(name.as_ref())?;
            let path = self.path.join(name);
            match open_beneath(self.fd.as_fd(), name, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
                Ok(fd) => {
                    let sub = TrustedDir { path: path.clone(), fd: std::sync::Arc::new(fd), uid: self.uid };
                    for entry in sub.entries()? {
                        if entry.kind == EntryKind::Dir {
                            sub.remove_dir_all(&entry.name)?;
                        } else {
                            sub.remove_file(&entry.name)?;
                        }
                    }
                    match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
                        Ok(()) | Err(Errno::NOENT) => Ok(()),
                        Err(e) => Err(io_err(format!("cannot remove {}", path.display()), e)),
                    }
                }
                Err(Errno::NOENT) => Ok(()),
                // A symlink or a file where the directory was: remove the entry itself.
                Err(Errno::LOOP | Errno::NOTDIR | Errno::XDEV) => self.remove_file(name).map(drop),
                Err(e) => Err(io_err(format!("cannot open {}", path.display()), e)),
            }
        }

        /// The entries of this directory (without `.` and `..`), unsorted.
        pub fn entries(&self) -> Result<Vec<Entry>> {
            let ctx = |e: Errno| io_err(format!("cannot list {}", self.path.display()), e);
            let mut out = Vec::new();
            // `read_from` reads through its own descriptor of "." (this very directory).
            for entry in rustix::fs::Dir::read_from(&self.fd).map_err(ctx)? {
                let entry = entry.map_err(ctx)?;
                let bytes = entry.file_name().to_bytes();
                if bytes == b"." || bytes == b".." {
                    continue;
                }
                use std::os::unix::ffi::OsStrExt;
                let name = OsStr::from_bytes(bytes).to_os_string();
                let kind = match entry.file_type() {
                    FileType::Unknown => self.stat(&name)?.map_or(EntryKind::Other, |s| s.kind),
                    ft => kind_of(ft),
                };
                out.push(Entry { name, kind });
            }
            Ok(out)
        }

        /// What `name` is, without following a symbolic link; `Ok(None)` when it does not exist.
        pub fn stat(&self, name: impl AsRef<Path>) -> Result<Option<EntryStat>> {
            let name = component(name.as_ref())?;
            match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    let modified = std::time::UNIX_EPOCH
                        + std::time::Duration::new(
                            st.st_mtime.max(0) as u64,
                            st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
                        );
                    Ok(Some(EntryStat {
                        kind: kind_of(FileType::from_raw_mode(st.st_mode)),
                        len: st.st_size.max(0) as u64,
                        modified,
                    }))
                }
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(io_err(format!("cannot stat {}", self.path.join(name).display()), e)),
            }
        }

        /// Whether `name` still leads to the file a caller holds open, `id` being that
        /// file's identity: one `statat`, without following a link, and the trust rule
        /// applied to what it says. Holding the file keeps its inode number from being
        /// given to another file, so an equal identity is the same file: a caller that
        /// keeps a descriptor between uses (a log's reader) checks it this way instead of
        /// opening the name again. A file now failing the rule is refused, as an open is.
        #[allow(clippy::unnecessary_cast)] // the types of `stat`'s fields differ between platforms
        pub(crate) fn compare_held(&self, name: impl AsRef<Path>, id: crate::sys::fs::FileIdentity) -> Result<Held> {
            let name = component(name.as_ref())?;
            match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    let same = crate::sys::fs::FileIdentity::new(st.st_dev as u64, st.st_ino as u64) == id;
                    if !same || FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                        return Ok(Held::Other);
                    }
                    check_owner_mode_as(self.uid, &self.path.join(name), Kind::File, st.st_uid, st.st_mode as u32)?;
                    Ok(Held::Same { len: st.st_size.max(0) as u64 })
                }
                Err(Errno::NOENT) => Ok(Held::Gone),
                Err(e) => Err(io_err(format!("cannot stat {}", self.path.join(name).display()), e)),
            }
        }

        /// Checks `name` (a `kind` entry) as opening it would, without opening it: one
        /// `statat`, without following a link. `Ok(false)` when it does not exist; a link
        /// or an entry failing the trust rule is refused with the error an open gives.
        #[allow(clippy::unnecessary_cast)] // the types of `stat`'s fields differ between platforms
        pub fn check_entry(&self, name: impl AsRef<Path>, kind: Kind) -> Result<bool> {
            let name = component(name.as_ref())?;
            let path = self.path.join(name);
            let st = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => return Ok(false),
                Err(e) => return Err(io_err(format!("cannot stat {}", path.display()), e)),
            };
            match (FileType::from_raw_mode(st.st_mode), kind) {
                (FileType::Directory, Kind::Dir) | (FileType::RegularFile, Kind::File) => {}
                (found, _) => {
                    return Err(Self::wrong_kind(&path, kind, found, Errno::ISDIR).unwrap_or_else(|| {
                        Error::io(
                            format!("{} is not a regular file", path.display()),
                            std::io::ErrorKind::InvalidInput.into(),
                        )
                    }))
                }
            }
            check_owner_mode_as(self.uid, &path, kind, st.st_uid, st.st_mode as u32)?;
            Ok(true)
        }

        /// fsyncs the directory (so a rename in it is durable); best effort.
        pub fn sync(&self) {
            let _ = rustix::fs::fsync(&self.fd);
        }

        /// The `stat` of `name` in this directory when it is a directory passing the rule
        /// (one `statat`, without following a link): enough to tell whether it changed
        /// (identity, modification time) without opening it. `Ok(None)` for anything else
        /// (missing, a link, not a directory): the caller opens it through the rule,
        /// which says what is wrong; a directory failing the rule is refused here.
        #[allow(clippy::unnecessary_cast)] // the types of `stat`'s fields differ between platforms
        pub fn dir_stat(&self, name: impl AsRef<Path>) -> Result<Option<rustix::fs::Stat>> {
            let name = component(name.as_ref())?;
            let Ok(st) = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) else { return Ok(None) };
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Ok(None);
            }
            check_owner_mode_as(self.uid, &self.path.join(name), Kind::Dir, st.st_uid, st.st_mode as u32)?;
            Ok(Some(st))
        }

        /// `fstat` of the directory itself.
        pub fn metadata(&self) -> Result<rustix::fs::Stat> {
            rustix::fs::fstat(&self.fd).map_err(|e| io_err(format!("cannot stat {}", self.path.display()), e))
        }
    }

    impl AsFd for TrustedDir {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.fd.as_fd()
        }
    }
}

#[cfg(unix)]
pub use imp::force_openat_fallback;

#[cfg(not(unix))]
mod imp {
    //! Windows: the store lives in the user's profile, whose ACL is the user's. The handle
    //! is the path; operations are the plain path-based ones.
    use std::fs::{self, OpenOptions};

    use super::*;
    use crate::error::IoContext;

    impl TrustedDir {
        /// The store directory at `path`; `Ok(None)` when it does not exist.
        pub fn open_root(path: &Path) -> Result<Option<TrustedDir>> {
            match fs::metadata(path) {
                Ok(m) if m.is_dir() => Ok(Some(TrustedDir { path: path.to_path_buf() })),
                Ok(_) => Err(Error::StoreUnusable {
                    path: path.to_path_buf(),
                    reason: "it exists but is not a directory; pass another secret_dir=".into(),
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::StoreUnusable { path: path.to_path_buf(), reason: e.to_string() }),
            }
        }

        /// The store directory at `path`, created if missing.
        pub fn create_root(path: &Path) -> Result<TrustedDir> {
            crate::sys::fs::create_private_dir(path)
                .map_err(|e| Error::StoreUnusable { path: path.to_path_buf(), reason: e.to_string() })?;
            Self::open_root(path)?.ok_or_else(|| Error::StoreUnusable {
                path: path.to_path_buf(),
                reason: "it vanished right after it was created".into(),
            })
        }

        /// The directory `name` in this one; `Ok(None)` when missing.
        pub fn open_dir(&self, name: impl AsRef<Path>) -> Result<Option<TrustedDir>> {
            let path = self.path.join(component(name.as_ref())?);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => Ok(Some(TrustedDir { path })),
                Ok(m) if m.file_type().is_symlink() => Err(symlink_error(&path, Kind::Dir)),
                Ok(_) => Err(Error::StoreUnusable { path, reason: "it exists but is not a directory".into() }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(format!("cannot open {}", path.display()), e)),
            }
        }

        /// The directory `name` in this one, created if missing.
        pub fn create_dir(&self, name: impl AsRef<Path>) -> Result<TrustedDir> {
            let path = self.path.join(component(name.as_ref())?);
            crate::sys::fs::create_private_dir(&path).ctx(|| format!("cannot create {}", path.display()))?;
            self.open_dir(name)?
                .ok_or_else(|| Error::io(path.display().to_string(), std::io::ErrorKind::NotFound.into()))
        }

        /// Opens the directory at `rel`, `create`-ing what is missing.
        pub fn walk(&self, rel: &Path, create: bool) -> Result<Option<TrustedDir>> {
            let mut dir = self.try_clone()?;
            for part in components(rel)? {
                let next = if create { Some(dir.create_dir(part)?) } else { dir.open_dir(part)? };
                match next {
                    Some(d) => dir = d,
                    None => return Ok(None),
                }
            }
            Ok(Some(dir))
        }

        /// Another handle on the same directory.
        pub fn try_clone(&self) -> Result<TrustedDir> {
            Ok(TrustedDir { path: self.path.clone() })
        }

        /// Opens the file `name` as `how` says.
        pub fn open(&self, name: impl AsRef<Path>, how: Open) -> Result<Option<File>> {
            let path = self.path.join(component(name.as_ref())?);
            let mut opts = OpenOptions::new();
            match how {
                Open::Read => opts.read(true),
                Open::ReadWrite => opts.read(true).write(true),
                Open::Append => opts.read(true).append(true).create(true),
                Open::CreateNew => opts.write(true).create_new(true),
                Open::CreateNewReadWrite => opts.read(true).write(true).create_new(true),
                Open::Truncate => opts.write(true).create(true).truncate(true),
            };
            match opts.open(&path) {
                Ok(f) => Ok(Some(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && matches!(how, Open::Read | Open::ReadWrite) => {
                    Ok(None)
                }
                Err(e) => Err(Error::io(format!("cannot open {}", path.display()), e)),
            }
        }

        /// [`TrustedDir::open`] with the file's metadata.
        pub fn open_meta(&self, name: impl AsRef<Path>, how: Open) -> Result<Option<(File, std::fs::Metadata)>> {
            let name = name.as_ref();
            match self.open(name, how)? {
                Some(f) => {
                    let meta = f.metadata().ctx(|| format!("cannot stat {}", self.path.join(name).display()))?;
                    Ok(Some((f, meta)))
                }
                None => Ok(None),
            }
        }

        /// Reads the whole file `name`; `Ok(None)` when it does not exist.
        pub fn read(&self, name: impl AsRef<Path>) -> Result<Option<Vec<u8>>> {
            let path = self.path.join(component(name.as_ref())?);
            match fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
            }
        }

        /// Renames `from` in this directory to `to` in `to_dir`.
        pub fn rename(&self, from: impl AsRef<Path>, to_dir: &TrustedDir, to: impl AsRef<Path>) -> Result<()> {
            let (a, b) = (self.path.join(component(from.as_ref())?), to_dir.path.join(component(to.as_ref())?));
            fs::rename(&a, &b).ctx(|| format!("cannot rename {} to {}", a.display(), b.display()))
        }

        /// Links `from` as `to`; `Ok(false)` when `to` exists.
        pub fn link_new(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<bool> {
            let (a, b) = (self.path.join(component(from.as_ref())?), self.path.join(component(to.as_ref())?));
            match fs::hard_link(&a, &b) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(Error::io(format!("cannot link {}", b.display()), e)),
            }
        }

        /// Deletes the file `name`; `Ok(false)` when it did not exist.
        pub fn remove_file(&self, name: impl AsRef<Path>) -> Result<bool> {
            let path = self.path.join(component(name.as_ref())?);
            match fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
            }
        }

        /// Deletes the directory `name` and everything in it.
        pub fn remove_dir_all(&self, name: impl AsRef<Path>) -> Result<()> {
            let path = self.path.join(component(name.as_ref())?);
            match fs::remove_dir_all(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
            }
        }

        /// The entries of this directory.
        pub fn entries(&self) -> Result<Vec<Entry>> {
            let rd = fs::read_dir(&self.path).ctx(|| format!("cannot list {}", self.path.display()))?;
            Ok(rd
                .flatten()
                .map(|e| {
                    let kind = match e.file_type() {
                        Ok(t) if t.is_symlink() => EntryKind::Symlink,
                        Ok(t) if t.is_dir() => EntryKind::Dir,
                        Ok(t) if t.is_file() => EntryKind::File,
                        _ => EntryKind::Other,
                    };
                    Entry { name: e.file_name(), kind }
                })
                .collect())
        }

        /// What `name` is, without following a symbolic link.
        pub fn stat(&self, name: impl AsRef<Path>) -> Result<Option<EntryStat>> {
            let path = self.path.join(component(name.as_ref())?);
            match fs::symlink_metadata(&path) {
                Ok(m) => Ok(Some(EntryStat {
                    kind: if m.file_type().is_symlink() {
                        EntryKind::Symlink
                    } else if m.is_dir() {
                        EntryKind::Dir
                    } else if m.is_file() {
                        EntryKind::File
                    } else {
                        EntryKind::Other
                    },
                    len: m.len(),
                    modified: m.modified().unwrap_or(std::time::UNIX_EPOCH),
                })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(format!("cannot stat {}", path.display()), e)),
            }
        }

        /// Nothing to sync on Windows.
        /// Never compared here (no inode through std): the caller opens the name again.
        pub(crate) fn compare_held(&self, name: impl AsRef<Path>, _id: crate::sys::fs::FileIdentity) -> Result<Held> {
            component(name.as_ref())?;
            Ok(Held::Other)
        }

        /// Checks `name` by opening it (see the Unix version).
        pub fn check_entry(&self, name: impl AsRef<Path>, kind: Kind) -> Result<bool> {
            match kind {
                Kind::Dir => Ok(self.open_dir(name)?.is_some()),
                _ => Ok(self.open(name, Open::Read)?.is_some()),
            }
        }

        pub fn sync(&self) {}
    }
}

impl TrustedDir {
    /// The directory's path (for messages and locators; never opened again by it).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(all(test, unix))]
mod tests;
