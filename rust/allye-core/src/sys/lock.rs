//! The writers' lock: an exclusive lock on `<store>/manifest.lock`, taken exactly as
//! 0.1.2 takes it (POSIX `flock(LOCK_EX)`; Windows `msvcrt.locking(fd, LK_LOCK, 1)`,
//! i.e. a lock on byte 0), so its writers and ours exclude each other.
//! Readers never take it.

use std::fs::File;

use crate::error::{IoContext, Result};
use crate::sys::trust::{Open, TrustedDir};

/// Held while appending to the manifest (or rewriting it); released on drop,
/// and by the OS if the process dies.
pub struct ManifestLock {
    file: File,
}

/// The lock file `name` in `dir`, created owner-only if missing (and checked against the
/// trust rule if it exists).
fn open_lock_file(dir: &TrustedDir, name: &str) -> Result<File> {
    Ok(dir.open(name, Open::Append)?.expect("an append open creates the file"))
}

impl ManifestLock {
    /// Blocks until the exclusive lock on the lock file `name` of `dir` is held.
    pub fn acquire(dir: &TrustedDir, name: &str) -> Result<Self> {
        let file = open_lock_file(dir, name)?;
        sys::lock(&file).ctx(|| format!("cannot lock {}", dir.path().join(name).display()))?;
        Ok(ManifestLock { file })
    }

    /// The lock `name` of `dir` if no one holds it now, else `None` (never waits).
    pub fn try_acquire(dir: &TrustedDir, name: &str) -> Result<Option<Self>> {
        let file = open_lock_file(dir, name)?;
        let held = sys::try_lock(&file).ctx(|| format!("cannot lock {}", dir.path().join(name).display()))?;
        Ok(held.then_some(ManifestLock { file }))
    }

    /// Releases the lock and hands back the lock file's descriptor (a duplicate, on the
    /// same open file description) and its metadata, for a caller that keeps it open to
    /// lock again later (see `manifest::append`).
    pub(crate) fn release_keeping_file(self) -> Result<(File, std::fs::Metadata)> {
        let ctx = || "cannot keep the lock file open".to_string();
        let file = self.file.try_clone().ctx(ctx)?;
        drop(self);
        let meta = file.metadata().ctx(ctx)?;
        Ok((file, meta))
    }
}

/// The same lock taken through a lock file kept open by its caller (see
/// [`ManifestLock::release_keeping_file`]); released on drop, the file kept.
#[cfg(unix)]
pub(crate) struct HeldLock<'a>(&'a File);

#[cfg(unix)]
impl<'a> HeldLock<'a> {
    /// Blocks until the exclusive lock on `file` (the lock file `name` of `dir`) is held.
    pub(crate) fn acquire(file: &'a File, dir: &TrustedDir, name: &str) -> Result<Self> {
        sys::lock(file).ctx(|| format!("cannot lock {}", dir.path().join(name).display()))?;
        Ok(HeldLock(file))
    }
}

#[cfg(unix)]
impl Drop for HeldLock<'_> {
    fn drop(&mut self) {
        let _ = sys::unlock(self.0);
    }
}

impl Drop for ManifestLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first keeps the window short.
        let _ = sys::unlock(&self.file);
    }
}

#[cfg(unix)]
mod sys {
    use rustix::fs::{flock, FlockOperation};
    use std::fs::File;

    pub fn lock(f: &File) -> std::io::Result<()> {
        loop {
            match flock(f, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    pub fn unlock(f: &File) -> std::io::Result<()> {
        flock(f, FlockOperation::Unlock).map_err(Into::into)
    }
    /// True when locked; false when another open file description holds the lock.
    pub fn try_lock(f: &File) -> std::io::Result<bool> {
        loop {
            match flock(f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(true),
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(windows)]
mod sys {
    //! `LockFileEx` on byte 0, length 1: the byte range `msvcrt.locking(fd, LK_LOCK, 1)`
    //! locks after `seek(0)`. Blocking (msvcrt retries for 10 s; we wait as long as needed).
    use std::fs::File;
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        LockFileEx, UnlockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
    };
    use windows_sys::Win32::System::IO::OVERLAPPED;

    pub fn lock(f: &File) -> std::io::Result<()> {
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        let ok = unsafe { LockFileEx(f.as_raw_handle() as _, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &mut ov) };
        if ok == 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
    pub fn unlock(f: &File) -> std::io::Result<()> {
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        let ok = unsafe { UnlockFileEx(f.as_raw_handle() as _, 0, 1, 0, &mut ov) };
        if ok == 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
    /// True when locked; false when another handle holds byte 0 (ERROR_LOCK_VIOLATION).
    pub fn try_lock(f: &File) -> std::io::Result<bool> {
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        let flags = LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY;
        let ok = unsafe { LockFileEx(f.as_raw_handle() as _, flags, 0, 1, 0, &mut ov) };
        if ok != 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(33) {
            Ok(false)
        } else {
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn excludes_threads_of_one_process() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().to_path_buf();
        let inside = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, inside, max_seen) = (path.clone(), inside.clone(), max_seen.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let dir = TrustedDir::open_root(&path).unwrap().unwrap();
                        let _g = ManifestLock::acquire(&dir, "manifest.lock").unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // flock locks belong to the open file description, so two opens in one
        // process exclude each other just like two processes do.
        assert_eq!(max_seen.load(Ordering::SeqCst), 1);
    }
}
