//! The writers' lock: an exclusive lock on `<store>/manifest.lock`, taken exactly as
//! 0.1.2 takes it (POSIX `flock(LOCK_EX)`; Windows `msvcrt.locking(fd, LK_LOCK, 1)`,
//! i.e. a lock on byte 0), so its writers and ours exclude each other.
//! Readers never take it.

use std::fs::{File, OpenOptions};

use std::path::Path;

use crate::error::{IoContext, Result};

/// Held while appending to the manifest (or rewriting it); released on drop,
/// and by the OS if the process dies.
pub struct ManifestLock {
    file: File,
}

/// The lock file at `path`, created owner-only if missing (its directory must exist).
fn open_lock_file(path: &Path) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).ctx(|| format!("cannot open lock file {}", path.display()))
}

impl ManifestLock {
    /// Blocks until the exclusive lock on the lock file at `path` is held. Its
    /// directory must exist.
    pub fn acquire(path: &Path) -> Result<Self> {
        let file = open_lock_file(path)?;
        sys::lock(&file).ctx(|| format!("cannot lock {}", path.display()))?;
        Ok(ManifestLock { file })
    }

    /// The lock at `path` if no one holds it now, else `None` (never waits).
    pub fn try_acquire(path: &Path) -> Result<Option<Self>> {
        let file = open_lock_file(path)?;
        let held = sys::try_lock(&file).ctx(|| format!("cannot lock {}", path.display()))?;
        Ok(held.then_some(ManifestLock { file }))
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
        let path = tmp.path().join("manifest.lock");
        let inside = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, inside, max_seen) = (path.clone(), inside.clone(), max_seen.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _g = ManifestLock::acquire(&path).unwrap();
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
