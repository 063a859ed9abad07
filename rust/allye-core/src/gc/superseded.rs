//! Freeing superseded versions inside sends, without the user calling gc.
//!
//! Each process keeps, per store, the ready versions it has seen appended to the log
//! (its own sends and everyone else's), per `(table_name, producer)`. After each send it
//! frees at most [`MAX_FREED_PER_SEND`] versions that are both outside the latest
//! `keep_versions` and were superseded at least `grace_sec` ago, so the cost of a send
//! stays bounded whatever the history: it reads only the lines appended since its last
//! look (plus, once per process, at most [`START_WINDOW`] bytes of the log's end), and
//! deletes a bounded number of payloads.
//!
//! The grace period protects readers that do not retry (0.1.2's): such a reader looks a
//! version up and opens its payload a moment later; a version is only freed once its
//! successor has been `ready` for `grace_sec` seconds. The time is this process's
//! monotonic clock at a moment the successor's line was known to be in the log (right
//! after appending it, for its own sends; at its next look, for other writers' lines),
//! never earlier than the successor's `ready` line, so the wait is at least `grace_sec`
//! (the log's timestamps have whole seconds only). `grace_sec = 0` frees at once (our
//! readers retry with the newer version).
//!
//! With a grace period, a process reads the log at most every
//! [`AUTO_GC_REFRESH_EVERY`]: a loop of sends would otherwise read and parse its own lines
//! again after each send. A send that does not read it notes the log's length after its
//! own `ready` line and the time; when the log is read, each line takes the earliest such
//! time noted at or past its end (it was in the log by then), others the time of the
//! read. Nothing is freed earlier than without the notes; other writers' lines are
//! learned at most that interval later.
//!
//! Versions superseded before this process first looked (beyond the window) are left to
//! an explicit [`crate::gc::collect`], as are expired and read-once payloads.

use crate::sys::fs::PathMap;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Mutex;

use crate::sys::fork::ForkLocal;
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result};
use crate::gc::{GcAction, GcActionKind};
use crate::manifest::{lines_ending, Cursor, Event};
use crate::payload::Target;
use crate::protocol::GcScope;
use crate::store::Store;
use crate::tuning::AUTO_GC_REFRESH_EVERY;

/// Bytes of the log's end a process reads the first time it collects in a store, to learn
/// the versions sent just before it started (a few hundred lines).
pub const START_WINDOW: u64 = 256 * 1024;
/// Payloads one send frees at most (each send supersedes at most one version, so this
/// drains any backlog while keeping every send's cost bounded).
pub const MAX_FREED_PER_SEND: usize = 4;

/// How sends free superseded versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AutoGc {
    /// Seconds a superseded version is kept after its successor became ready.
    pub grace_sec: u64,
    /// Ready versions kept per `(table_name, producer)`, at least 1.
    pub keep_versions: usize,
}

impl AutoGc {
    /// Keeps `keep_versions` versions and frees older ones `grace_sec` after they were superseded.
    pub fn new(grace_sec: u64, keep_versions: usize) -> Self {
        AutoGc { grace_sec, keep_versions: keep_versions.max(1) }
    }
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    table_name: String,
    target: Target,
    /// When this process learned of it (its `ready` line existed by then).
    learned: Instant,
}

#[derive(Debug, Default)]
struct Tracker {
    cursor: Cursor,
    started: bool,
    /// Per (table, producer), the versions seen and not yet freed, oldest first.
    versions: rustc_hash::FxHashMap<(String, String), VecDeque<Version>>,
    /// Keys holding more than one version (the only ones with anything to free).
    crowded: rustc_hash::FxHashSet<(String, String)>,
    /// The ids of the versions in `versions` (a line read twice is learned once), and how
    /// many of them point at each payload (one still pointed at is not freed): a loop of
    /// sends holds a grace period's worth of versions, looked up per line and per free.
    ids: rustc_hash::FxHashSet<String>,
    targets: rustc_hash::FxHashMap<Target, usize>,
    /// When the log was last read.
    refreshed: Option<Instant>,
    /// Since then, per send: the log's length after its `ready` line, and when.
    noted: Vec<Noted>,
}

/// A send of this process between two reads of the log.
#[derive(Debug)]
struct Noted {
    /// The log's length just after its `ready` line.
    end: u64,
    at: Instant,
    /// What that line says, taken from the event in hand: the read that meets the line
    /// ending at `end` learns it from here instead of parsing it back (an object's line
    /// can carry its whole value).
    sent: Option<Sent>,
}

/// What the tracker keeps of a `ready` line.
#[derive(Debug)]
struct Sent {
    id: String,
    table_name: String,
    producer: String,
    target: Target,
}

impl Sent {
    fn of(ev: &Event) -> Option<Sent> {
        let p = ev.payload.as_ref().filter(|_| ev.is_ready())?;
        Some(Sent {
            id: ev.id.clone(),
            table_name: ev.table_name.clone(),
            producer: ev.producer.clone(),
            target: Target::of(p),
        })
    }
}

impl Tracker {
    fn learn(&mut self, sent: Sent, learned: Instant) {
        if self.ids.contains(&sent.id) {
            return;
        }
        let Sent { id, table_name, producer, target } = sent;
        let key = (table_name.clone(), producer);
        let list = self.versions.entry(key.clone()).or_default();
        self.ids.insert(id.clone());
        *self.targets.entry(target.clone()).or_default() += 1;
        list.push_back(Version { id, table_name, target, learned });
        if list.len() > 1 {
            self.crowded.insert(key);
        }
    }

    /// Reads the lines appended since the last look (a replaced log, or the first look,
    /// starts [`START_WINDOW`] bytes before its end, at a line boundary).
    fn refresh(&mut self, store: &Store) -> Result<()> {
        let path = store.manifest_path();
        let ctx = || format!("cannot read manifest {}", path.display());
        let Some((mut file, meta)) = store.open_file_meta(&path, crate::sys::trust::Open::Read)? else {
            return Ok(());
        };
        if !self.started || self.cursor.replaced(&file, &meta).ctx(ctx)? {
            let mut start = meta.len().saturating_sub(START_WINDOW);
            if start > 0 {
                // Skip the partial line the window starts in.
                let mut head = Vec::new();
                file.seek(SeekFrom::Start(start)).ctx(ctx)?;
                (&mut file).take(START_WINDOW).read_to_end(&mut head).ctx(ctx)?;
                start += memchr::memchr(b'\n', &head).map_or(head.len(), |i| i + 1) as u64;
            }
            self.cursor.restart(&file, &meta, start).ctx(ctx)?;
            self.started = true;
            self.noted.clear(); // lengths of another file
        }
        let from = self.cursor.offset();
        let buf = self.cursor.read_lines(&file, meta.len()).ctx(ctx)?;
        let now = Instant::now();
        let mut noted = std::mem::take(&mut self.noted).into_iter().peekable();
        for (end, line) in lines_ending(&buf) {
            let end = from + end as u64;
            // Noted in time order by this process's sends, so with growing lengths: the
            // first at or past this line's end was noted when the line was in the log.
            while noted.next_if(|n| n.end < end).is_some() {}
            let learned = noted.peek().map_or(now, |n| n.at);
            let own = match noted.peek_mut() {
                Some(n) if n.end == end => n.sent.take(),
                _ => None,
            };
            if let Some(sent) = own.or_else(|| Event::parse(line).as_ref().and_then(Sent::of)) {
                self.learn(sent, learned);
            }
        }
        self.refreshed = Some(now);
        Ok(())
    }

    /// Frees up to `budget` due versions; returns what it did.
    fn free_due(&mut self, store: &Store, opts: AutoGc, now: Instant, budget: usize) -> Vec<GcAction> {
        let mut actions = Vec::new();
        let keys: Vec<(String, String)> = self.crowded.iter().cloned().collect();
        for key in keys {
            let Some(list) = self.versions.get_mut(&key) else { continue };
            while actions.len() < budget && list.len() > opts.keep_versions {
                // The oldest version was superseded when the one after it appeared.
                let superseded_for = now.saturating_duration_since(list[1].learned);
                let due = superseded_for >= Duration::from_secs(opts.grace_sec);
                if !due {
                    break;
                }
                let old = list.pop_front().expect("len > keep_versions >= 1");
                self.ids.remove(&old.id);
                let kept = match self.targets.get_mut(&old.target) {
                    Some(n) if *n > 1 => {
                        *n -= 1;
                        true
                    }
                    _ => {
                        self.targets.remove(&old.target);
                        false
                    }
                };
                if kept || old.target.inside(store) != Some(true) || !old.target.exists(store) {
                    continue;
                }
                match old.target.delete(store) {
                    Ok(()) => actions.push(GcAction {
                        action: GcActionKind::Delete,
                        transport: old.target.transport.clone().into(),
                        locator: old.target.locator.clone(),
                        table_name: old.table_name.clone(),
                        reason: format!(
                            "superseded for {} s or more (freed by a send; keeping the latest {})",
                            opts.grace_sec, opts.keep_versions
                        ),
                        id: old.id.clone(),
                        scope: GcScope::Store,
                    }),
                    Err(e) => log::debug!("could not free superseded {:?}: {e}", old.target.locator),
                }
            }
            if list.len() <= 1 {
                self.crowded.remove(&key);
            }
            if actions.len() >= budget {
                break;
            }
        }
        actions
    }
}

fn trackers() -> &'static Mutex<PathMap<Tracker>> {
    static TRACKERS: ForkLocal<Mutex<PathMap<Tracker>>> = ForkLocal::new(Default::default);
    TRACKERS.get()
}

/// The step a send takes after its `ready` line, which left the log `appended_to` bytes
/// long ([`crate::manifest::append`]'s result): learns the versions appended since the
/// last look (read at most every [`AUTO_GC_REFRESH_EVERY`] unless the grace is 0) and
/// frees at most [`MAX_FREED_PER_SEND`] superseded ones that are due (see the module
/// docs). Returns what it deleted. `ready`, the event of that line when the caller has
/// it: a read of the log that meets the line learns it from the event rather than by
/// parsing it back.
pub fn collect_superseded(
    store: &Store,
    opts: AutoGc,
    appended_to: u64,
    ready: Option<&Event>,
) -> Result<Vec<GcAction>> {
    let mut guard = trackers().lock().unwrap_or_else(|p| p.into_inner());
    let tracker = guard.entry(store.manifest_path().into()).or_default();
    let now = Instant::now();
    let recent = tracker.refreshed.is_some_and(|at| now.saturating_duration_since(at) < AUTO_GC_REFRESH_EVERY);
    if opts.grace_sec > 0 && recent && tracker.noted.len() < MAX_NOTED {
        tracker.noted.push(Noted { end: appended_to, at: now, sent: ready.and_then(Sent::of) });
    } else {
        tracker.refresh(store)?;
    }
    Ok(tracker.free_due(store, opts, Instant::now(), MAX_FREED_PER_SEND))
}

/// Sends noted between two reads of the log at most (more read it at once).
const MAX_NOTED: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::test_support::{cleanup, send, target, value};
    use crate::protocol::TransportChoice;

    /// The manifest's length: what a send's append returns.
    fn logged(store: &Store) -> u64 {
        std::fs::metadata(store.manifest_path()).map_or(0, |m| m.len())
    }

    /// When this process's tracker of `store` learned each version it holds.
    fn learned(store: &Store) -> Vec<Instant> {
        let guard = trackers().lock().unwrap();
        guard
            .get(crate::sys::fs::key(&store.manifest_path()))
            .map_or(Vec::new(), |t| t.versions.values().flat_map(|l| l.iter().map(|v| v.learned)).collect())
    }

    fn alive(store: &Store, evs: &[Event]) -> usize {
        evs.iter().filter(|e| target(e).exists(store)).count()
    }

    #[test]
    fn a_send_that_notes_its_event_is_learned_from_it_not_parsed_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let auto = AutoGc::new(1, 1);
        let first = send(&store, "e", 0, TransportChoice::Shm, false);
        // The first send reads the log; the second, right after a read, only notes its line.
        collect_superseded(&store, auto, logged(&store), Some(&first)).unwrap();
        let second = send(&store, "e", 1, TransportChoice::Shm, false);
        let end = logged(&store) as usize;
        collect_superseded(&store, auto, end as u64, Some(&second)).unwrap();
        // The second line blanked in place (same length): parsed back, it would teach nothing.
        let mut bytes = std::fs::read(store.manifest_path()).unwrap();
        let start = bytes[..end - 1].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes[start..end - 1].fill(b' ');
        std::fs::write(store.manifest_path(), bytes).unwrap();
        // A grace of 0 reads the log now: the second version is known from its note, so
        // the first is superseded and freed.
        let freed = collect_superseded(&store, AutoGc::new(0, 1), end as u64, None).unwrap();
        assert_eq!(freed.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [first.id.as_str()]);
        assert!(!target(&first).exists(&store) && target(&second).exists(&store));
        cleanup(&store);
    }

    #[test]
    fn frees_superseded_versions_at_once_without_grace_keeping_keep_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let mut sent = Vec::new();
        for v in 0..30 {
            sent.push(send(&store, "t", v, TransportChoice::Shm, false));
            collect_superseded(&store, AutoGc::new(0, 3), logged(&store), None).unwrap();
        }
        assert_eq!(alive(&store, &sent), 3, "the latest keep_versions stay");
        assert!(sent[27..].iter().all(|e| target(e).exists(&store)));
        assert_eq!(value(&store, "t"), 29);
        cleanup(&store);
    }

    #[test]
    fn a_grace_period_keeps_recently_superseded_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let sent: Vec<Event> = (0..5).map(|v| send(&store, "g", v, TransportChoice::File, false)).collect();
        assert!(collect_superseded(&store, AutoGc::new(3600, 1), logged(&store), None).unwrap().is_empty());
        assert_eq!(alive(&store, &sent), 5, "superseded less than the grace period ago");
        // The same versions, looked at two seconds later with a one-second grace.
        let mut guard = trackers().lock().unwrap();
        let tracker = guard.get_mut(crate::sys::fs::key(&store.manifest_path())).unwrap();
        let now = Instant::now() + Duration::from_secs(2);
        let freed = tracker.free_due(&store, AutoGc::new(1, 1), now, 2);
        assert_eq!(freed.len(), 2, "at most the budget per step");
        let freed = tracker.free_due(&store, AutoGc::new(1, 1), now, 10);
        drop(guard);
        assert_eq!(freed.len(), 2);
        assert_eq!(alive(&store, &sent), 1);
        assert_eq!(value(&store, "g"), 4);
    }

    #[test]
    fn sends_in_a_loop_note_their_line_and_the_next_read_learns_it_as_of_then() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let auto = AutoGc::new(1, 1);
        let mut sent = vec![send(&store, "n", 0, TransportChoice::Shm, false)];
        collect_superseded(&store, auto, logged(&store), None).unwrap();
        assert_eq!(learned(&store).len(), 1, "the first send reads the log");
        for v in 1..3 {
            sent.push(send(&store, "n", v, TransportChoice::Shm, false));
            collect_superseded(&store, auto, logged(&store), None).unwrap();
        }
        let noted: Vec<Instant> = {
            let guard = trackers().lock().unwrap();
            guard.get(crate::sys::fs::key(&store.manifest_path())).unwrap().noted.iter().map(|n| n.at).collect()
        };
        assert_eq!((learned(&store).len(), noted.len()), (1, 2), "sends right after a read only note their line");
        // A grace of 0 reads the log at once: v1 and v2 are learned as of their notes.
        collect_superseded(&store, AutoGc::new(0, 5), logged(&store), None).unwrap();
        assert_eq!(&learned(&store)[1..], &noted[..], "each line as of the note at or past its end");
        assert_eq!(alive(&store, &sent), 3);
        // Two seconds on, v0 and v1 were superseded for more than the grace.
        let mut guard = trackers().lock().unwrap();
        let tracker = guard.get_mut(crate::sys::fs::key(&store.manifest_path())).unwrap();
        let freed = tracker.free_due(&store, auto, Instant::now() + Duration::from_secs(2), 10);
        drop(guard);
        assert_eq!(freed.len(), 2);
        assert_eq!(value(&store, "n"), 2);
        cleanup(&store);
    }

    #[test]
    fn the_log_is_read_again_once_the_interval_is_over() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        send(&store, "r", 0, TransportChoice::File, false);
        collect_superseded(&store, AutoGc::new(1, 9), logged(&store), None).unwrap();
        send(&store, "r", 1, TransportChoice::File, false);
        collect_superseded(&store, AutoGc::new(1, 9), logged(&store), None).unwrap();
        assert_eq!(learned(&store).len(), 1);
        std::thread::sleep(AUTO_GC_REFRESH_EVERY);
        send(&store, "r", 2, TransportChoice::File, false);
        collect_superseded(&store, AutoGc::new(1, 9), logged(&store), None).unwrap();
        assert_eq!(learned(&store).len(), 3);
        cleanup(&store);
    }

    #[test]
    fn a_payload_a_later_version_still_points_at_is_not_freed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let first = send(&store, "same", 7, TransportChoice::File, false);
        // A second version of the same payload (as a stream's adoption or another writer
        // may record), then the free step.
        let again = Event { id: crate::sys::ids::new_v4().to_string(), ..first.clone() };
        let end = crate::manifest::append(&store, &again, false).unwrap();
        assert!(collect_superseded(&store, AutoGc::new(0, 1), end, None).unwrap().is_empty());
        assert!(target(&first).exists(&store), "the current version's payload");
        assert_eq!(value(&store, "same"), 7);
        let last = send(&store, "same", 8, TransportChoice::File, false);
        let freed = collect_superseded(&store, AutoGc::new(0, 1), logged(&store), None).unwrap();
        assert_eq!(freed.len(), 1, "freed once, when no version points at it any more");
        assert!(!target(&first).exists(&store) && target(&last).exists(&store));
        cleanup(&store);
    }

    #[test]
    fn versions_sent_before_the_window_are_left_to_gc() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let old = send(&store, "w", 0, TransportChoice::File, false);
        // Push the old line out of the window a first look reads.
        let filler = send(&store, "filler", 0, TransportChoice::File, false);
        let line = serde_json::to_string(&filler).unwrap().len() as u64;
        for _ in 0..(START_WINDOW / line + 2) {
            crate::manifest::append(&store, &filler, false).unwrap();
        }
        let new = send(&store, "w", 1, TransportChoice::File, false);
        collect_superseded(&store, AutoGc::new(0, 1), logged(&store), None).unwrap();
        assert!(target(&old).exists(&store) && target(&new).exists(&store), "the old version is not in view");
        assert!(crate::gc::collect(&store, crate::gc::GcOptions::new(false, 1)).unwrap().len() == 1);
        assert!(!target(&old).exists(&store));
    }
}
