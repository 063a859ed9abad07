//! Appending one line under the writers' lock.

use crate::sys::fs::PathMap;
use std::io::Write;
#[cfg(not(unix))]
use std::io::{Read, Seek, SeekFrom};

use crate::error::{IoContext, Result};
use crate::manifest::Event;
use crate::protocol::{LOCK_FILE, MANIFEST_FILE};
use crate::store::Store;
use crate::sys::lock::ManifestLock;
use crate::sys::trust::{Open, TrustedDir};

/// Appends one event as one line, under the writers' lock. With `durable`, the manifest
/// is fsync'ed before the lock is released. Returns the log's length just after the line
/// (every line ending there or before was appended by then).
pub fn append(store: &Store, event: &Event, durable: bool) -> Result<u64> {
    let line = event.to_line_bytes()?;
    #[cfg(unix)]
    {
        let mut written = line.clone();
        written.push(b'\n');
        let (end, file) = open_logs::append_to(&store.create_dir()?, MANIFEST_FILE, LOCK_FILE, line, durable)?;
        // This process's lookups learn the line from here, not by reading it back.
        crate::manifest::index::note_appended(store, file, end, written, event);
        Ok(end)
    }
    #[cfg(not(unix))]
    append_line(&store.create_dir()?, MANIFEST_FILE, LOCK_FILE, line, durable)
}

/// Appends `line` (without its `\n`) as one whole line to the log `log` of `dir`, under
/// the `flock` of `lock` (in the same directory), closing off a torn tail a killed writer
/// left. Streams' chunk logs (`crate::streams`) are appended by this same code.
///
/// On Unix the lock's and the log's descriptors are kept open between appends (see
/// [`open_logs`]): an append then costs the lock, two `stat`s that check both names
/// still lead to the files held, the write and the unlock. Returns the log's length just
/// after the line.
pub fn append_line(dir: &TrustedDir, log: &str, lock: &str, line: Vec<u8>, durable: bool) -> Result<u64> {
    #[cfg(unix)]
    return open_logs::append(dir, log, lock, line, durable);
    #[cfg(not(unix))]
    {
        let _lock = ManifestLock::acquire(dir, lock)?;
        write_at_log_end(dir, log, line, durable)
    }
}

/// [`append_line`]'s write, for a caller that holds the log's lock already (a stream's
/// append decides what its line says under the lock).
pub fn write_line(dir: &TrustedDir, log: &str, line: Vec<u8>, durable: bool) -> Result<()> {
    write_at_log_end(dir, log, line, durable).map(|_| ())
}

/// Opens log `log` of `dir` for appending and writes `line` at its end; returns the log's
/// length after it.
fn write_at_log_end(dir: &TrustedDir, log: &str, line: Vec<u8>, durable: bool) -> Result<u64> {
    let (mut file, meta) = dir.open_meta(log, Open::Append)?.expect("an append open creates the file");
    write_at_end(&mut file, &dir.path().join(log), meta.len(), false, line, durable)
}

/// Writes `line` and its `\n` at the end (`len` bytes) of the open log `file`, first
/// closing off a torn tail unless `ends_whole` says the last byte is known to be `\n`.
fn write_at_end(
    file: &mut std::fs::File,
    path: &std::path::Path,
    len: u64,
    ends_whole: bool,
    mut line: Vec<u8>,
    durable: bool,
) -> Result<u64> {
    line.push(b'\n');
    if len > 0 && !ends_whole {
        let mut last = [0u8; 1];
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_exact_at(&*file, &mut last, len - 1);
        #[cfg(not(unix))]
        let read = file.seek(SeekFrom::Start(len - 1)).and_then(|_| file.read_exact(&mut last));
        read.ctx(|| format!("cannot read manifest {}", path.display()))?;
        if last[0] != b'\n' {
            // A writer died mid-line: close its garbage off so ours parses.
            line.insert(0, b'\n');
        }
    }
    file.write_all(&line).ctx(|| format!("cannot append to manifest {}", path.display()))?;
    if durable {
        file.sync_data().ctx(|| format!("cannot fsync manifest {}", path.display()))?;
    }
    Ok(len + line.len() as u64)
}

/// The lock's and the log's descriptors of the logs this process appends to, kept open
/// between appends (per log path, at most [`OPEN_LOGS`]).
///
/// Safe to reuse because every use checks, with the lock held, that the names still
/// lead to the very files held (`statat` without following a link, relative to the
/// caller's freshly checked directory handle: same device and inode): a log replaced by
/// compaction, a lock file removed, a store removed and made again, or anything another
/// user could have put there, is opened again through the trust rule (which is how
/// every cached descriptor was opened in the first place). A descriptor is taken out of
/// the cache while in use, so two threads never lock through the same open file
/// description (`flock` would let both in); a thread finding none opens its own. The
/// cache is a [`ForkLocal`]: a forked child shares its parent's open file descriptions,
/// hence its locks, so it starts with an empty cache and opens its own.
#[cfg(unix)]
mod open_logs {

    use std::fs::File;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;
    use std::sync::Mutex;

    use rustix::fs::{statat, AtFlags};

    use super::*;
    use crate::sys::fork::ForkLocal;
    use crate::sys::fs::FileIdentity;
    use crate::sys::lock::HeldLock;

    /// Logs whose descriptors one process keeps open (two descriptors each).
    pub const OPEN_LOGS: usize = 16;

    struct OpenLog {
        lock: File,
        lock_id: (u64, u64),
        log: File,
        log_id: (u64, u64),
        /// The log's length after this process's last append through it.
        len: u64,
    }

    static CACHE: ForkLocal<Mutex<PathMap<OpenLog>>> = ForkLocal::new(Default::default);

    fn with_cache<T>(f: impl FnOnce(&mut PathMap<OpenLog>) -> T) -> T {
        f(&mut CACHE.get().lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn take(key: &std::path::Path) -> Option<OpenLog> {
        with_cache(|map| map.remove(crate::sys::fs::key(key)))
    }

    fn put(key: PathBuf, entry: OpenLog) {
        with_cache(|map| {
            if map.len() >= OPEN_LOGS && !map.contains_key(crate::sys::fs::key(&key)) {
                if let Some(any) = map.keys().next().cloned() {
                    map.remove(&any);
                }
            }
            map.insert(key.into(), entry);
        });
    }

    /// (device, inode) of `name` in `dir` as it is now, without following a link.
    fn id_at(dir: &TrustedDir, name: &str) -> Option<((u64, u64), u64)> {
        let st = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        Some(((st.st_dev as u64, st.st_ino as u64), st.st_size.max(0) as u64))
    }

    fn id_of(meta: &std::fs::Metadata) -> (u64, u64) {
        (meta.dev(), meta.ino())
    }

    pub fn append(dir: &TrustedDir, log: &str, lock: &str, line: Vec<u8>, durable: bool) -> Result<u64> {
        append_to(dir, log, lock, line, durable).map(|(end, _)| end)
    }

    /// [`append`], with the identity of the log file the line went into.
    pub fn append_to(
        dir: &TrustedDir,
        log: &str,
        lock: &str,
        line: Vec<u8>,
        durable: bool,
    ) -> Result<(u64, FileIdentity)> {
        let key = dir.path().join(log);
        let path = key.as_path();
        if let Some(mut c) = take(&key) {
            let held = HeldLock::acquire(&c.lock, dir, lock)?;
            let lock_now = id_at(dir, lock).map(|(id, _)| id);
            if let (Some(lock_id), Some((log_id, len))) = (lock_now, id_at(dir, log)) {
                if lock_id == c.lock_id && log_id == c.log_id {
                    let ends_whole = len == c.len;
                    c.len = write_at_end(&mut c.log, path, len, ends_whole, line, durable)?;
                    drop(held);
                    let end = c.len;
                    put(key, c);
                    return Ok((end, FileIdentity::new(log_id.0, log_id.1)));
                }
            }
            // Replaced (compaction, a new store at the path): open them again below.
        }
        let lock_guard = ManifestLock::acquire(dir, lock)?;
        let (mut file, meta) = dir.open_meta(log, Open::Append)?.expect("an append open creates the file");
        let len = write_at_end(&mut file, path, meta.len(), false, line, durable)?;
        let (lock_file, lock_meta) = lock_guard.release_keeping_file()?;
        let log_id = id_of(&meta);
        put(key, OpenLog { lock: lock_file, lock_id: id_of(&lock_meta), log: file, log_id, len });
        Ok((len, FileIdentity::new(log_id.0, log_id.1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::latest_ready;
    use crate::manifest::test_support::{event, store};
    use crate::protocol::Status;
    use serde_json::Value;

    fn lines(s: &crate::store::Store) -> Vec<String> {
        std::fs::read_to_string(s.manifest_path()).unwrap().lines().map(String::from).collect()
    }

    #[test]
    fn a_kept_descriptor_follows_a_log_replaced_under_the_lock() {
        let (_tmp, s) = store();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        // Compaction's way: a new file renamed over the log (under the lock).
        let tmp = s.root().join("manifest.jsonl.new");
        std::fs::write(&tmp, "").unwrap();
        {
            let dir = s.open_dir().unwrap().unwrap();
            let _lock = ManifestLock::acquire(&dir, LOCK_FILE).unwrap();
            std::fs::rename(&tmp, s.manifest_path()).unwrap();
        }
        append(&s, &event("a", Status::Ready, "python", 2), false).unwrap();
        let got = lines(&s);
        assert_eq!(got.len(), 1, "the line went into the log at the path, not the replaced one");
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-2");
    }

    #[test]
    fn a_kept_descriptor_still_closes_off_a_torn_tail() {
        let (_tmp, s) = store();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        // A writer of another process killed mid-line (it held the lock; we did not).
        let mut f = std::fs::OpenOptions::new().append(true).open(s.manifest_path()).unwrap();
        f.write_all(b"{\"version\":1,\"id\":\"torn").unwrap();
        drop(f);
        append(&s, &event("a", Status::Ready, "python", 2), false).unwrap();
        let got = lines(&s);
        assert_eq!(got.len(), 3);
        assert!(Event::parse(got[2].as_bytes()).is_some(), "our line is whole: {:?}", got[2]);
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-2");
    }

    #[test]
    fn a_kept_lock_descriptor_follows_a_lock_file_made_again() {
        let (_tmp, s) = store();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        std::fs::remove_file(s.lock_path()).unwrap();
        append(&s, &event("a", Status::Ready, "python", 2), false).unwrap();
        // The lock now lives in the new file: holding it must keep our appends out.
        let dir = s.open_dir().unwrap().unwrap();
        let held = ManifestLock::acquire(&dir, LOCK_FILE).unwrap();
        let s2 = s.clone();
        let t = std::thread::spawn(move || append(&s2, &event("a", Status::Ready, "python", 3), false).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(lines(&s).len(), 2, "an append waited for the lock held through the new file");
        drop(held);
        t.join().unwrap();
        assert_eq!(lines(&s).len(), 3);
    }

    #[test]
    fn concurrent_appends_from_threads_are_whole_lines() {
        let (_tmp, s) = store();
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let mut ev = event(&format!("t{t}"), Status::Ready, "python", i);
                        ev.metadata.insert("pad".into(), Value::String("p".repeat(5000)));
                        append(&s, &ev, false).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let text = std::fs::read_to_string(s.manifest_path()).unwrap();
        assert_eq!(text.lines().count(), 1200);
        assert!(text.lines().all(|l| Event::parse(l.as_bytes()).is_some()));
        for t in 0..6 {
            assert_eq!(latest_ready(&s, &format!("t{t}"), None).unwrap().unwrap().id, "id-199");
        }
    }
}
