//! Waking up when the manifest changes: file-system notifications (the `notify` crate:
//! inotify on Linux, FSEvents/kqueue on macOS, ReadDirectoryChangesW on Windows) on the
//! store directory, with a polling fallback for file systems that deliver no events
//! (network mounts, some containers) or a store directory that does not exist yet.
//!
//! The directory is watched, not the file: a compaction may replace `manifest.jsonl`
//! by a rename, which a watch on the file's inode would miss. Events are filtered to
//! the manifest's file name and coalesced; a waiter is told "something changed", then
//! re-reads the manifest itself (cheaply: the incremental index reads only new bytes).
//!
//! Even with events, the file's identity and size are checked at every wake-up and at
//! least every [`SAFETY_POLL`], so a lost event costs latency, never correctness.
//!
//! [`crate::manifest::ManifestTail`] reads what was appended once woken.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::protocol::MANIFEST_FILE;
use crate::store::Store;
use crate::sys::fs::{identity, FileIdentity};

/// Stat interval when no events can be had.
pub const DEFAULT_POLL: Duration = Duration::from_millis(crate::tuning::DEFAULT_WATCH_POLL_MS);
/// Stat interval as a safety net while events are being delivered.
pub const SAFETY_POLL: Duration = Duration::from_millis(1000);

/// How a [`ManifestWatcher`] learns about changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// File-system notifications (plus a slow safety poll).
    Events,
    /// Polling the manifest's identity and size.
    Polling,
}

impl WatchMode {
    /// `"events"` or `"polling"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchMode::Events => "events",
            WatchMode::Polling => "polling",
        }
    }
}

/// What `stat` says about the manifest: (file identity, length, mtime).
type Stamp = Option<(FileIdentity, u64, Option<std::time::SystemTime>)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((identity(&meta), meta.len(), meta.modified().ok()))
}

/// Tells its owner when `manifest.jsonl` of a store may have changed.
pub struct ManifestWatcher {
    dir: PathBuf,
    manifest: PathBuf,
    name: std::ffi::OsString,
    poll: Duration,
    force_polling: bool,
    tx: SyncSender<()>,
    rx: Receiver<()>,
    watcher: Option<notify::RecommendedWatcher>,
    last: Stamp,
}

impl std::fmt::Debug for ManifestWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestWatcher").field("dir", &self.dir).field("mode", &self.mode()).finish()
    }
}

impl ManifestWatcher {
    /// Starts watching `store`. `force_polling` skips notifications altogether;
    /// `poll` is the stat interval in polling mode (default [`DEFAULT_POLL`]).
    /// Never fails: without notifications it polls.
    pub fn new(store: &Store, force_polling: bool, poll: Option<Duration>) -> Self {
        Self::on_file(store.root(), MANIFEST_FILE, force_polling, poll)
    }

    /// A watcher of the log `file_name` in `dir` (a stream's chunk log, say), with the
    /// same notifications, filtering and fallback as the manifest's.
    pub fn on_file(dir: &Path, file_name: &str, force_polling: bool, poll: Option<Duration>) -> Self {
        let (tx, rx) = sync_channel(1);
        let manifest = dir.join(file_name);
        let mut w = ManifestWatcher {
            dir: dir.to_path_buf(),
            last: stamp(&manifest),
            manifest,
            name: file_name.into(),
            poll: poll.unwrap_or(DEFAULT_POLL).max(Duration::from_millis(1)),
            force_polling,
            tx,
            rx,
            watcher: None,
        };
        w.try_watch();
        w
    }

    fn try_watch(&mut self) {
        if self.force_polling || self.watcher.is_some() || !self.dir.is_dir() {
            return;
        }
        let tx = self.tx.clone();
        let name = self.name.clone();
        let handler = move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                if ev.paths.iter().any(|p| p.file_name() == Some(name.as_os_str())) || ev.need_rescan() {
                    // Coalesce: one pending wake-up is enough.
                    let _ = tx.try_send(());
                }
            }
            Err(e) => {
                log::debug!("file-system notification error: {e}");
                let _ = tx.try_send(());
            }
        };
        match notify::recommended_watcher(handler) {
            Ok(mut watcher) => match watcher.watch(&self.dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    log::debug!("watching {} with file-system notifications", self.dir.display());
                    self.watcher = Some(watcher);
                }
                Err(e) => log::debug!("cannot watch {} ({e}); polling instead", self.dir.display()),
            },
            Err(e) => log::debug!("no file-system notifications ({e}); polling {}", self.dir.display()),
        }
    }

    /// How changes are learnt.
    pub fn mode(&self) -> WatchMode {
        if self.watcher.is_some() {
            WatchMode::Events
        } else {
            WatchMode::Polling
        }
    }

    /// Marks the manifest's current state as seen.
    pub fn mark_seen(&mut self) {
        while self.rx.try_recv().is_ok() {}
        self.last = stamp(&self.manifest);
    }

    /// Blocks until the manifest may have changed since the last call (or since
    /// [`mark_seen`](Self::mark_seen)), or until `timeout`. Returns whether it changed.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let now_stamp = stamp(&self.manifest);
            if now_stamp != self.last {
                self.last = now_stamp;
                while self.rx.try_recv().is_ok() {}
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let tick = if self.watcher.is_some() { SAFETY_POLL } else { self.poll };
            match self.rx.recv_timeout(tick.min(deadline - now)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(self.poll.min(deadline - now)),
            }
            // The store directory may have appeared since.
            if self.watcher.is_none() {
                self.try_watch();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::append;
    use crate::manifest::test_support::event;
    use crate::protocol::Status;

    fn wakes_on_append(force_polling: bool) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        store.ensure().unwrap();
        let mut w = ManifestWatcher::new(&store, force_polling, Some(Duration::from_millis(10)));
        if force_polling {
            assert_eq!(w.mode(), WatchMode::Polling);
        }
        assert!(!w.wait(Duration::from_millis(30)), "nothing changed yet");
        let s2 = store.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            append(&s2, &event("t", Status::Writing, "python", 1), false).unwrap();
        });
        let t0 = Instant::now();
        assert!(w.wait(Duration::from_secs(5)));
        assert!(t0.elapsed() < Duration::from_secs(3));
        writer.join().unwrap();
        // A replacement by rename (compaction) wakes it too.
        let tmp_file = store.root().join("m.tmp");
        std::fs::write(&tmp_file, format!("{}\n", event("z", Status::Ready, "python", 2).to_line().unwrap())).unwrap();
        std::fs::rename(&tmp_file, store.manifest_path()).unwrap();
        assert!(w.wait(Duration::from_secs(5)));
    }

    #[test]
    fn wakes_with_events() {
        wakes_on_append(false);
    }

    #[test]
    fn wakes_by_polling() {
        wakes_on_append(true);
    }

    #[test]
    fn store_created_later_is_picked_up() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().join("later"));
        let mut w = ManifestWatcher::new(&store, false, Some(Duration::from_millis(10)));
        assert_eq!(w.mode(), WatchMode::Polling);
        store.ensure().unwrap();
        append(&store, &event("t", Status::Writing, "python", 1), false).unwrap();
        assert!(w.wait(Duration::from_secs(5)));
    }
}
