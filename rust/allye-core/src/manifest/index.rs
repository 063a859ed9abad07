//! The per-process incremental index of a manifest: lookups that do not grow with the
//! length of the manifest (see the module docs of [`crate::manifest`]).

use crate::sys::fs::PathMap;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sys::fork::ForkLocal;

use crate::error::{IoContext, Result};
use crate::manifest::scan::{complete_end, scan_latest_ready, scan_removed_since_ready};
use crate::manifest::{parse_lines, Cursor, Event};
use crate::protocol::Status;
use crate::store::Store;
use crate::sys::fs::FileIdentity;
use crate::sys::trust::{Held, Open};
use crate::tuning::INDEX_FILES_KEPT;

/// What the index knows of one table. A line is kept once and shared by the fields
/// that name it (a `ready` line is the table's latest, its latest ready and its
/// producer's: an object's line can carry the whole value).
#[derive(Debug, Clone, Default)]
pub struct TableState {
    /// The last line of any status for this table.
    pub latest: Option<Arc<Event>>,
    /// The last `ready` line.
    pub ready: Option<Arc<Event>>,
    /// The last `ready` line per producer.
    pub ready_by_producer: HashMap<String, Arc<Event>>,
    /// The last `error` line.
    pub last_error: Option<Arc<Event>>,
    /// A removal came after the last `ready` line (a failed send after a removal does not
    /// bring the version before it back).
    pub removed: bool,
}

impl TableState {
    fn apply(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        if ev.is_ready() {
            self.ready_by_producer.insert(ev.producer.clone(), ev.clone());
            self.ready = Some(ev.clone());
            self.removed = false;
        } else if ev.status == Status::Error {
            self.removed |= ev.is_removal();
            self.last_error = Some(ev.clone());
        }
        self.latest = Some(ev);
    }

    /// The last `ready` line (of `producer`, when given).
    pub fn ready_for(&self, producer: Option<&str>) -> Option<&Event> {
        match producer {
            None => self.ready.as_deref(),
            Some(p) => self.ready_by_producer.get(p).map(|ev| &**ev),
        }
    }
}

/// What this process remembers of one manifest file.
///
/// Two modes. A **complete** index (built by [`latest_per_table`]) holds every table's
/// state as of `offset`. A **partial** one (built by cold [`latest_ready`] calls) holds only
/// the answers of the lookups made so far, each found by a backward scan that stopped at
/// the table's latest `ready` line; refreshing either mode reads only the bytes appended
/// since `offset`, so neither ever parses the history twice, and a partial one never
/// parses more of it than the lookups needed.
#[derive(Debug, Default)]
struct Index {
    /// Where in which file this index stands.
    cursor: Cursor,
    complete: bool,
    /// Complete mode: every table.
    tables: HashMap<String, TableState>,
    /// Partial mode: (table, producer filter) -> its latest `ready` event at `offset`.
    lookups: rustc_hash::FxHashMap<(String, Option<String>), Option<Event>>,
    /// Partial mode: table -> whether a removal follows its last `ready` line at `offset`.
    removals: rustc_hash::FxHashMap<String, bool>,
    /// The file `cursor` reads, kept open between refreshes (for the
    /// [`INDEX_FILES_KEPT`] most recently opened logs): while it is held, its inode
    /// number cannot be given to another file, so a `statat` of the path showing the
    /// same identity proves it is still the log (see [`refresh`]).
    held: Option<File>,
    /// The [`one_look`] of its last refresh (0: outside any).
    looked_in: u64,
}

impl Index {
    fn apply(&mut self, ev: Event) {
        if self.complete {
            self.tables.entry(ev.table_name.clone()).or_default().apply(ev);
            return;
        }
        if let Some(removed) = self.removals.get_mut(&ev.table_name) {
            *removed = !ev.is_ready() && (*removed || ev.is_removal());
        }
        if ev.is_ready() && !self.lookups.is_empty() {
            for key in [(ev.table_name.clone(), None), (ev.table_name.clone(), Some(ev.producer.clone()))] {
                if let Some(slot) = self.lookups.get_mut(&key) {
                    *slot = Some(ev.clone());
                }
            }
        }
    }
}
/// Every index of this process, by manifest path, and which of them hold their file.
#[derive(Debug, Default)]
struct Indexes {
    map: PathMap<Index>,
    /// Paths whose index holds its file, oldest first (at most [`INDEX_FILES_KEPT`]).
    holding: VecDeque<PathBuf>,
}

impl Indexes {
    /// Lets the index of `path` keep `file`, closing the oldest kept file past the bound.
    /// Unix only: elsewhere a held file is never compared (see `TrustedDir::compare_held`),
    /// and an open handle can stand in the way of the rename that compacts a log.
    fn hold(&mut self, path: &Path, file: File) {
        if cfg!(not(unix)) {
            return;
        }
        self.holding.retain(|p| p != path);
        while self.holding.len() >= INDEX_FILES_KEPT {
            if let Some(old) = self.holding.pop_front() {
                if let Some(index) = self.map.get_mut(crate::sys::fs::key(&old)) {
                    index.held = None;
                }
            }
        }
        if let Some(index) = self.map.get_mut(crate::sys::fs::key(path)) {
            index.held = Some(file);
            self.holding.push_back(path.to_path_buf());
        }
    }
}

fn indexes() -> &'static Mutex<Indexes> {
    static INDEXES: ForkLocal<Mutex<Indexes>> = ForkLocal::new(Default::default);
    INDEXES.get()
}

/// The store's manifest, opened for reading through the store's checked handle (see
/// `crate::sys::trust`), with its metadata; `Ok(None)` when it (or the store) does not exist.
pub(crate) fn open_for_read(store: &Store) -> Result<Option<(File, std::fs::Metadata)>> {
    let path = store.manifest_path();
    store.open_file_meta(&path, Open::Read)
}

/// Brings the index of `path` up to date with the file: reads only what was appended
/// since the last refresh. A replaced or truncated file starts over: a complete index
/// re-reads it from the start; a partial one forgets its answers and starts at the current
/// end (its next lookups scan backwards again). `want_complete` turns a partial index into
/// a complete one.
///
/// An index holding its file checks it with one `statat` of the path (the trust rule
/// applied to what it says) and, when the file grew, reads the new lines through the held
/// descriptor in one `pread` that also compares the bytes just before them; any doubt
/// (another file at the path, a shorter file, other bytes) opens the path again through
/// the trust rule, as the first refresh did. An unchanged length reads nothing: the only
/// change it could hide is a rewrite in place to the very same length, which no writer
/// of a log makes (appends only; compaction renames a new file over it, which the held
/// descriptor's identity tells apart).
fn refresh(all: &mut Indexes, store: &Store, path: &Path, want_complete: bool) -> Result<()> {
    let look = LOOK.with(Cell::get);
    if look != 0
        && all.map.get(crate::sys::fs::key(path)).is_some_and(|i| i.looked_in == look && (i.complete || !want_complete))
    {
        return Ok(());
    }
    refresh_now(all, store, path, want_complete)?;
    if let Some(index) = all.map.get_mut(crate::sys::fs::key(path)) {
        index.looked_in = look;
    }
    Ok(())
}

thread_local! {
    /// The [`one_look`] this thread is inside (0: none).
    static LOOK: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` as one look at the logs it reads: within it, a log whose index was brought up
/// to date once is not checked against its file again, so each later lookup answers
/// from what that refresh read (and this process's own appends). An operation asking a
/// log several questions (a put under a quota counts the namespace's live bytes, then
/// looks up the previous version's description) checks it once; the answers are those of
/// one moment, as they would be had the questions been asked in one breath. Nested calls
/// join the outer look.
pub fn one_look<T>(f: impl FnOnce() -> T) -> T {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    if LOOK.with(Cell::get) != 0 {
        return f();
    }
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            LOOK.with(|l| l.set(0));
        }
    }
    LOOK.with(|l| l.set(NEXT.fetch_add(1, Ordering::Relaxed)));
    let _leave = Leave;
    f()
}

fn refresh_now(all: &mut Indexes, store: &Store, path: &Path, want_complete: bool) -> Result<()> {
    let ctx = || format!("cannot read manifest {}", path.display());
    let index = all.map.entry(path.into()).or_default();
    let complete = index.complete || want_complete;
    if let (Some(file), Some(id)) = (&index.held, index.cursor.identity()) {
        match store.compare_held(path, id)? {
            Held::Same { len } if len >= index.cursor.offset() && complete == index.complete => {
                // The bytes before the offset are read again with the new ones: a file
                // rewritten in place (not how any writer changes it) starts over below.
                if let Some(buf) = index.cursor.read_lines_checked(file, len).ctx(ctx)? {
                    for ev in parse_lines(&buf) {
                        index.apply(ev);
                    }
                    return Ok(());
                }
            }
            Held::Gone => {
                *index = Index { complete, ..Index::default() };
                all.holding.retain(|p| p != path);
                return Ok(());
            }
            Held::Same { .. } | Held::Other => {}
        }
        index.held = None;
        all.holding.retain(|p| p != path);
    }
    let Some((mut file, meta)) = open_for_read(store)? else {
        *index = Index { complete, ..Index::default() };
        return Ok(());
    };
    if index.cursor.replaced(&file, &meta).ctx(ctx)? || complete != index.complete {
        *index = Index { complete, ..Index::default() };
        // A complete index reads the file from the start; a partial one from its end.
        let start = if complete { 0 } else { complete_end(&mut file, meta.len()).ctx(ctx)? };
        index.cursor.restart(&file, &meta, start).ctx(ctx)?;
    }
    let buf = index.cursor.read_lines(&file, meta.len()).ctx(ctx)?;
    for ev in parse_lines(&buf) {
        index.apply(ev);
    }
    all.hold(path, file);
    Ok(())
}
/// Moves this process's index of `store`'s log past `line` (`event`'s serialisation and
/// its `\n`), which this process has just appended to the file `file`, ending at `end`,
/// without reading it back: only when the index holds that very file and stands exactly
/// where the line starts (nothing else was appended in between, no torn tail was closed
/// off before it), so that it never skips a line.
pub(crate) fn note_appended(store: &Store, file: FileIdentity, end: u64, line: Vec<u8>, event: &Event) {
    let path = store.manifest_path();
    let mut guard = indexes().lock().unwrap_or_else(|p| p.into_inner());
    let Some(index) = guard.map.get_mut(crate::sys::fs::key(&path)) else { return };
    let start = end.checked_sub(line.len() as u64);
    if index.held.is_none() || index.cursor.identity() != Some(file) || Some(index.cursor.offset()) != start {
        return;
    }
    index.cursor.advance_over(line);
    index.apply(event.clone());
}

/// The current version of `table`: the last `ready` line with that name (and producer).
///
/// The first lookup of a (table, producer) in this process scans the manifest backwards
/// from its end and stops at the match, so it costs the distance from the end to the
/// table's latest version, not the length of the history. The answer is remembered; later
/// lookups read only the bytes appended since.
pub fn latest_ready(store: &Store, table: &str, producer: Option<&str>) -> Result<Option<Event>> {
    latest_ready_with(store, table, producer, Event::clone)
}

/// `f` of what [`latest_ready`] finds, without copying the event (a caller wanting one
/// field of a line that can carry a whole object).
pub fn latest_ready_with<R>(
    store: &Store,
    table: &str,
    producer: Option<&str>,
    f: impl Fn(&Event) -> R,
) -> Result<Option<R>> {
    let key = (table.to_string(), producer.map(str::to_string));
    partial_lookup(
        store,
        |index| {
            if index.complete {
                Some(index.tables.get(table).and_then(|t| t.ready_for(producer)).map(&f))
            } else {
                index.lookups.get(&key).map(|found| found.as_ref().map(&f))
            }
        },
        |file, end| scan_latest_ready(file, end, table, producer),
        |index, found| {
            let answer = found.as_ref().map(&f);
            index.lookups.insert(key.clone(), found);
            answer
        },
    )
}

/// Whether `table` was removed after its last `ready` line (ours: an `error` line marking
/// it removed; see [`TableState::removed`]), as [`latest_ready`] finds answers: a backward
/// scan to the table's last `ready` or removal line the first time, then only what is
/// appended. A get whose payload a removal does not delete (one inside its line) asks this
/// rather than building every table's state.
pub fn is_removed(store: &Store, table: &str) -> Result<bool> {
    partial_lookup(
        store,
        |index| {
            if index.complete {
                Some(index.tables.get(table).is_some_and(|t| t.removed))
            } else {
                index.removals.get(table).copied()
            }
        },
        |file, end| scan_removed_since_ready(file, end, table),
        |index, found| {
            index.removals.insert(table.to_string(), found);
            found
        },
    )
}

/// [`latest_ready`] and [`is_removed`] together, on one refresh of the index: a get
/// asks both, and each question alone would check the log (a `stat`) again.
pub fn latest_ready_and_removed(store: &Store, table: &str, producer: Option<&str>) -> Result<(Option<Event>, bool)> {
    let key = (table.to_string(), producer.map(str::to_string));
    partial_lookup(
        store,
        |index| {
            if index.complete {
                let state = index.tables.get(table);
                Some((state.and_then(|t| t.ready_for(producer)).cloned(), state.is_some_and(|t| t.removed)))
            } else {
                Some((index.lookups.get(&key)?.clone(), *index.removals.get(table)?))
            }
        },
        |file, end| Ok((scan_latest_ready(file, end, table, producer)?, scan_removed_since_ready(file, end, table)?)),
        |index, (ready, removed)| {
            index.lookups.insert(key.clone(), ready.clone());
            index.removals.insert(table.to_string(), removed);
            (ready, removed)
        },
    )
}

/// One question to the index of `store`'s log: `known` answers it from the index (after a
/// refresh), else `scan` finds the answer in the bytes before the index's cursor (through
/// the held descriptor the refresh has just checked, or a new one), which `remember`
/// keeps for the next time (later lines keep it current, see `Index::apply`).
fn partial_lookup<S, T>(
    store: &Store,
    known: impl Fn(&Index) -> Option<T>,
    scan: impl Fn(&mut dyn ReadSeek, u64) -> std::io::Result<S>,
    remember: impl Fn(&mut Index, S) -> T,
) -> Result<T> {
    let path = store.manifest_path();
    let mut guard = indexes().lock().unwrap_or_else(|p| p.into_inner());
    let ctx = || format!("cannot read manifest {}", path.display());
    if guard.map.contains_key(crate::sys::fs::key(&path)) {
        refresh(&mut guard, store, &path, false)?;
        let index = guard.map.get_mut(crate::sys::fs::key(&path)).expect("a refresh keeps the index");
        if let Some(answer) = known(index) {
            return Ok(answer);
        }
        if let Some(mut held) = index.held.as_ref() {
            // The file the refresh has just checked and read up to the cursor: this
            // lookup scans what lies before the cursor through it, without opening it again.
            let found = scan(&mut held, index.cursor.offset()).ctx(ctx)?;
            return Ok(remember(index, found));
        }
    }
    let Some((mut file, meta)) = open_for_read(store)? else {
        // No log: what an empty one answers (remembered nowhere).
        return Ok(remember(&mut Index::default(), scan(&mut std::io::empty(), 0).ctx(ctx)?));
    };
    let index = guard.map.entry(path.clone().into()).or_default();
    // The file may have been replaced since the refresh above (which used its own
    // handle), possibly under the same inode number: check again on this handle.
    if index.cursor.replaced(&file, &meta).ctx(ctx)? {
        *index = Index::default();
        let end = complete_end(&mut file, meta.len()).ctx(ctx)?;
        index.cursor.restart(&file, &meta, end).ctx(ctx)?;
    }
    // Everything after the cursor has been applied to the known answers; this lookup
    // scans what lies before it.
    let found = scan(&mut file, index.cursor.offset()).ctx(ctx)?;
    let answer = remember(index, found);
    // What this look has read of the log (see `one_look`).
    index.looked_in = LOOK.with(Cell::get);
    if index.held.is_none() {
        guard.hold(&path, file);
    }
    Ok(answer)
}

/// What a lookup's scan reads the log through (a held `&File` or an owned `File`).
trait ReadSeek: Read + std::io::Seek {}
impl<T: Read + std::io::Seek> ReadSeek for T {}

/// Every table's state, from the incremental index (refreshed first), sorted by name.
pub fn latest_per_table(store: &Store) -> Result<BTreeMap<String, TableState>> {
    with_tables(store, |tables| tables.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// One table's state from the incremental index (refreshed first); `None` when the
/// manifest never mentions it. Copies only that table's state.
pub fn table_state(store: &Store, table: &str) -> Result<Option<TableState>> {
    with_tables(store, |tables| tables.get(table).cloned())
}

/// `f` over every table's state in the incremental index (refreshed first), without
/// copying it: for sums over a whole log (a store's used bytes) on every put.
pub fn with_tables<T>(store: &Store, f: impl FnOnce(&HashMap<String, TableState>) -> T) -> Result<T> {
    let path = store.manifest_path();
    let mut guard = indexes().lock().unwrap_or_else(|p| p.into_inner());
    refresh(&mut guard, store, &path, true)?;
    Ok(f(&guard.map[crate::sys::fs::key(&path)].tables))
}

/// Every parseable event, in file order (for gc and tools; not for lookups).
pub fn read_all(store: &Store) -> Result<Vec<Event>> {
    let path = store.manifest_path();
    let Some((mut file, _)) = open_for_read(store)? else {
        return Ok(Vec::new());
    };
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).ctx(|| format!("cannot read manifest {}", path.display()))?;
    let end = memchr::memrchr(b'\n', &buf).map_or(0, |e| e + 1);
    Ok(buf[..end].split(|&b| b == b'\n').filter_map(Event::parse).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::append;
    use crate::manifest::scan::scan_backwards;
    use crate::manifest::test_support::{event, store};
    use std::io::Write;

    fn removal(table: &str, n: u64) -> Event {
        let mut ev = event(table, Status::Error, "python", n);
        ev.metadata
            .insert(crate::protocol::METADATA_KEY.into(), serde_json::json!({crate::protocol::ADC_REMOVED: true}));
        ev
    }

    #[test]
    fn one_look_reads_each_log_once_and_the_next_look_sees_what_came_since() {
        // Another writer's line (appended to the file, not through this process's
        // index) between two questions of one look is not seen; the next look sees it.
        let (_tmp, s) = store();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        let other = |n: u64| {
            let mut f = std::fs::OpenOptions::new().append(true).open(s.manifest_path()).unwrap();
            writeln!(f, "{}", event("a", Status::Ready, "python", n).to_line().unwrap()).unwrap();
        };
        let id = |ev: Option<Event>| ev.unwrap().id;
        let (first, second) = one_look(|| {
            let first = id(latest_ready(&s, "a", None).unwrap());
            other(2);
            let second = one_look(|| id(latest_ready(&s, "a", None).unwrap()));
            (first, second)
        });
        assert_eq!((first.as_str(), second.as_str()), ("id-1", "id-1"));
        assert_eq!(id(latest_ready(&s, "a", None).unwrap()), "id-2", "outside the look");
        // The same with a complete index (a quota's count) asked first.
        let (used, then) = one_look(|| {
            let n = with_tables(&s, |t| t.len()).unwrap();
            other(3);
            (n, id(latest_ready(&s, "a", None).unwrap()))
        });
        assert_eq!((used, then.as_str()), (1, "id-2"));
        assert_eq!(id(latest_ready(&s, "a", None).unwrap()), "id-3");
        // A look ended by a panic ends: the next lookup reads the log again.
        let _ = std::panic::catch_unwind(|| one_look(|| panic!("inside")));
        other(4);
        assert_eq!(id(latest_ready(&s, "a", None).unwrap()), "id-4");
    }

    #[test]
    fn is_removed_follows_the_last_line_cold_warm_and_complete() {
        let (_tmp, s) = store();
        assert!(!is_removed(&s, "a").unwrap(), "no log: not removed");
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        append(&s, &removal("a", 2), false).unwrap();
        append(&s, &event("b", Status::Ready, "python", 3), false).unwrap();
        // A failed send after a removal is not a new version: still removed.
        append(&s, &event("a", Status::Error, "python", 4), false).unwrap();
        assert!(is_removed(&s, "a").unwrap(), "cold: the removal before a's failed send");
        append(&s, &event("a", Status::Writing, "python", 5), false).unwrap();
        append(&s, &event("a", Status::Error, "python", 5), false).unwrap();
        assert!(is_removed(&s, "a").unwrap(), "warm: another failed send changes nothing");
        assert!(!is_removed(&s, "b").unwrap(), "cold: b's last line is a ready line");
        assert!(!is_removed(&s, "never").unwrap());
        append(&s, &event("a", Status::Ready, "python", 6), false).unwrap();
        assert!(!is_removed(&s, "a").unwrap(), "sent again");
        append(&s, &removal("b", 7), false).unwrap();
        assert!(is_removed(&s, "b").unwrap());
        // The same answers from a complete index.
        table_state(&s, "a").unwrap();
        assert!(!is_removed(&s, "a").unwrap());
        assert!(is_removed(&s, "b").unwrap());
        // And from a scan that finds the removal before the cursor (another path to the
        // same log: an index of its own, built cold).
        let other = Store::at(s.root().join(".").as_path());
        assert!(is_removed(&other, "b").unwrap());
        assert!(!is_removed(&other, "a").unwrap());
    }

    #[test]
    fn latest_ready_and_removed_answers_as_each_question_alone() {
        let (_tmp, s) = store();
        let both = |st: &Store, t: &str| {
            let (ev, removed) = latest_ready_and_removed(st, t, None).unwrap();
            (ev.map(|e| e.id), removed)
        };
        let alone =
            |st: &Store, t: &str| (latest_ready(st, t, None).unwrap().map(|e| e.id), is_removed(st, t).unwrap());
        assert_eq!(both(&s, "a"), (None, false), "no log");
        let steps = [
            event("a", Status::Ready, "python", 1),
            removal("a", 2),
            event("b", Status::Ready, "python", 3),
            event("a", Status::Error, "python", 4),
            event("a", Status::Ready, "python", 5),
            removal("b", 6),
        ];
        for (i, ev) in steps.iter().enumerate() {
            append(&s, ev, false).unwrap();
            for t in ["a", "b", "never"] {
                // Warm (this index, appended to), cold (a fresh index of the same log
                // through another path) and a cold one asked both questions first.
                let cold = Store::at(s.root().join(format!("./{}", "./".repeat(i))).as_path());
                let cold_both = Store::at(s.root().join(format!("././{}", "./".repeat(i))).as_path());
                assert_eq!(both(&cold_both, t), alone(&cold, t), "step {i}, table {t}, cold");
                assert_eq!(both(&s, t), alone(&s, t), "step {i}, table {t}, warm");
            }
        }
        assert_eq!(both(&s, "a"), (Some(steps[4].id.clone()), false));
        assert_eq!(both(&s, "b"), (Some(steps[2].id.clone()), true));
        // The same answers from a complete index.
        table_state(&s, "a").unwrap();
        assert_eq!(both(&s, "a"), (Some(steps[4].id.clone()), false));
        assert_eq!(both(&s, "b"), (Some(steps[2].id.clone()), true));
    }

    #[test]
    fn latest_ready_cold_and_warm_and_torn_tail() {
        let (_tmp, s) = store();
        assert!(latest_ready(&s, "a", None).unwrap().is_none());
        append(&s, &event("a", Status::Writing, "python", 1), false).unwrap();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        append(&s, &event("b", Status::Ready, "allye", 2), false).unwrap();
        append(&s, &event("a", Status::Ready, "allye", 3), false).unwrap();
        append(&s, &event("a", Status::Error, "python", 4), false).unwrap();
        // A torn line at the end: a writer killed mid-write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(s.manifest_path())
            .unwrap()
            .write_all(br#"{"version":1,"id":"torn","table_name":"a","status":"rea"#)
            .unwrap();
        // Cold (this store's path was indexed above by the not-found lookup, so use a
        // second store path for the cold branch).
        let cold = scan_latest(&s, "a", None);
        assert_eq!(cold.unwrap().id, "id-3");
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-3");
        assert_eq!(latest_ready(&s, "a", Some("python")).unwrap().unwrap().id, "id-1");
        assert_eq!(latest_ready(&s, "b", None).unwrap().unwrap().id, "id-2");
        assert!(latest_ready(&s, "b", Some("python")).unwrap().is_none());
        // The next append terminates the torn line; it stays skipped, ours parses.
        append(&s, &event("a", Status::Ready, "python", 5), false).unwrap();
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-5");
        let all = read_all(&s).unwrap();
        assert_eq!(all.len(), 6);
        let tables = latest_per_table(&s).unwrap();
        assert_eq!(tables.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(tables["a"].latest.as_ref().unwrap().id, "id-5");
        assert_eq!(tables["a"].last_error.as_ref().unwrap().id, "id-4");
    }

    fn scan_latest(s: &Store, table: &str, producer: Option<&str>) -> Option<Event> {
        let mut f = File::open(s.manifest_path()).unwrap();
        let len = f.metadata().unwrap().len();
        let mut found = None;
        scan_backwards(&mut f, len, |_, line| match Event::parse(line) {
            Some(ev) if ev.is_ready() && ev.table_name == table && producer.is_none_or(|p| ev.producer == p) => {
                found = Some(ev);
                true
            }
            _ => false,
        })
        .unwrap();
        found
    }

    #[test]
    fn partial_index_answers_follow_appends_and_become_complete() {
        let (_tmp, s) = store();
        for n in 0..2000 {
            let table = if n % 100 == 0 { "rare" } else { "busy" };
            append(&s, &event(table, Status::Ready, if n % 2 == 0 { "python" } else { "allye" }, n), false).unwrap();
        }
        // Cold lookups: backward scans, remembered.
        assert_eq!(latest_ready(&s, "busy", None).unwrap().unwrap().id, "id-1999");
        assert_eq!(latest_ready(&s, "rare", None).unwrap().unwrap().id, "id-1900");
        assert_eq!(latest_ready(&s, "busy", Some("python")).unwrap().unwrap().id, "id-1998");
        assert!(latest_ready(&s, "ghost", None).unwrap().is_none());
        {
            let guard = indexes().lock().unwrap();
            let index = &guard.map[crate::sys::fs::key(&s.manifest_path())];
            assert!(!index.complete);
            assert_eq!(index.lookups.len(), 4);
        }
        // New lines update the remembered answers (only the matching producer's).
        append(&s, &event("rare", Status::Ready, "allye", 5000), false).unwrap();
        append(&s, &event("ghost", Status::Writing, "python", 5001), false).unwrap();
        append(&s, &event("busy", Status::Error, "python", 5002), false).unwrap();
        assert_eq!(latest_ready(&s, "rare", None).unwrap().unwrap().id, "id-5000");
        assert!(latest_ready(&s, "rare", Some("python")).unwrap().unwrap().id == "id-1900");
        assert_eq!(latest_ready(&s, "busy", Some("python")).unwrap().unwrap().id, "id-1998");
        assert!(latest_ready(&s, "ghost", None).unwrap().is_none());
        append(&s, &event("ghost", Status::Ready, "python", 5003), false).unwrap();
        assert_eq!(latest_ready(&s, "ghost", Some("python")).unwrap().unwrap().id, "id-5003");
        assert_eq!(latest_ready(&s, "ghost", None).unwrap().unwrap().id, "id-5003");
        // Listing needs every table: the index becomes complete and agrees.
        let tables = latest_per_table(&s).unwrap();
        assert_eq!(tables["busy"].last_error.as_ref().unwrap().id, "id-5002");
        assert_eq!(latest_ready(&s, "busy", Some("allye")).unwrap().unwrap().id, "id-1999");
        assert_eq!(latest_ready(&s, "rare", None).unwrap().unwrap().id, "id-5000");
        assert!(indexes().lock().unwrap().map[crate::sys::fs::key(&s.manifest_path())].complete);
    }

    #[test]
    fn index_follows_replacement_of_the_file() {
        let (_tmp, s) = store();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        assert_eq!(latest_per_table(&s).unwrap()["a"].ready.as_ref().unwrap().id, "id-1");
        // Rewrite (as a compaction would) with a different, shorter content.
        let tmp = s.root().join("m.tmp");
        std::fs::write(&tmp, format!("{}\n", event("z", Status::Ready, "python", 9).to_line().unwrap())).unwrap();
        std::fs::rename(&tmp, s.manifest_path()).unwrap();
        let t = latest_per_table(&s).unwrap();
        assert!(!t.contains_key("a"));
        assert_eq!(latest_ready(&s, "z", None).unwrap().unwrap().id, "id-9");
    }

    #[test]
    fn index_follows_a_replacement_that_reuses_the_inode() {
        // A compacted manifest may get the old file's inode number back (freed inodes
        // are reused); simulate it by rewriting the same inode with other, longer content.
        let (_tmp, s) = store();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-1");
        let mut text = String::new();
        for n in 2..6 {
            text.push_str(&event("b", Status::Ready, "python", n).to_line().unwrap());
            text.push('\n');
        }
        std::fs::write(s.manifest_path(), &text).unwrap(); // truncate + write: same inode
        let t = latest_per_table(&s).unwrap();
        assert!(!t.contains_key("a"), "stale entries of the old file are dropped");
        assert_eq!(t["b"].ready.as_ref().unwrap().id, "id-5");
        // Same length, same inode, other bytes: seen once this process no longer holds
        // the file (while it does, no other file can have its inode number, and no
        // writer rewrites a log in place; see `refresh`). Lookups in more stores than
        // the bound let go of it.
        let others: Vec<_> = (0..INDEX_FILES_KEPT).map(|_| store()).collect();
        for (_, o) in &others {
            append(o, &event("o", Status::Ready, "python", 1), false).unwrap();
            assert_eq!(latest_ready(o, "o", None).unwrap().unwrap().id, "id-1");
        }
        let same_len = text.replace("id-5", "id-7");
        std::fs::write(s.manifest_path(), &same_len).unwrap();
        assert_eq!(latest_ready(&s, "b", None).unwrap().unwrap().id, "id-7");
    }

    #[cfg(unix)]
    fn holds(s: &Store) -> bool {
        let all = indexes().lock().unwrap();
        all.map.get(crate::sys::fs::key(&s.manifest_path())).is_some_and(|i| i.held.is_some())
    }

    #[cfg(unix)]
    #[test]
    fn a_held_log_is_checked_again_at_every_lookup() {
        use std::os::unix::fs::PermissionsExt;
        let (_tmp, s) = store();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-1");
        assert!(holds(&s), "the index keeps the log's descriptor");
        append(&s, &event("a", Status::Ready, "python", 2), false).unwrap();
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-2", "appends are read through it");
        // Made writable by others: refused, as opening it would be.
        std::fs::set_permissions(s.manifest_path(), std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = latest_ready(&s, "a", None).unwrap_err();
        assert!(matches!(err, crate::error::Error::StoreNotPrivate { .. }), "{err}");
        std::fs::set_permissions(s.manifest_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-2");
        // Swapped for a link to a file of the same content: not followed.
        let elsewhere = s.root().join("elsewhere.jsonl");
        std::fs::copy(s.manifest_path(), &elsewhere).unwrap();
        std::fs::remove_file(s.manifest_path()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, s.manifest_path()).unwrap();
        assert!(latest_ready(&s, "a", None).is_err(), "a link at the log's path is refused");
        std::fs::remove_file(s.manifest_path()).unwrap();
        // Gone (a store removed): nothing, and the descriptor let go.
        assert_eq!(latest_ready(&s, "a", None).unwrap(), None);
        assert!(!holds(&s));
        // Made again: read from the new file.
        append(&s, &event("a", Status::Ready, "python", 3), false).unwrap();
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-3");
        assert_eq!(latest_per_table(&s).unwrap()["a"].ready.as_ref().unwrap().id, "id-3");
    }

    fn offset_of(s: &Store) -> Option<u64> {
        indexes().lock().unwrap().map.get(crate::sys::fs::key(&s.manifest_path())).map(|i| i.cursor.offset())
    }

    #[cfg(unix)]
    #[test]
    fn own_appends_are_learnt_without_reading_them_back_and_never_skip_anothers() {
        let (_tmp, s) = store();
        append(&s, &event("a", Status::Ready, "python", 1), false).unwrap();
        let before = latest_per_table(&s).unwrap();
        assert_eq!(before["a"].ready.as_ref().unwrap().id, "id-1");
        // Our own appends move the index along with the file.
        for n in 2..5 {
            let mut ev = event("a", Status::Ready, "python", n);
            ev.metadata.insert("x".into(), serde_json::json!({"f": 0.1 + n as f64, "s": "é\n\"", "n": u64::MAX}));
            append(&s, &ev, false).unwrap();
            let len = std::fs::metadata(s.manifest_path()).unwrap().len();
            assert_eq!(offset_of(&s), Some(len), "learnt at the append, nothing left to read");
        }
        let learnt = latest_per_table(&s).unwrap();
        // The same state as a process that reads the log afresh.
        indexes().lock().unwrap().map.remove(crate::sys::fs::key(&s.manifest_path()));
        let read = latest_per_table(&s).unwrap();
        assert_eq!(format!("{learnt:?}"), format!("{read:?}"));
        assert_eq!(learnt["a"].ready.as_ref().unwrap().id, "id-4");
        // Another writer's line lands first (as another process's would): ours is not
        // learnt past it, and a lookup reads both.
        let foreign = event("b", Status::Ready, "python", 7).to_line().unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(s.manifest_path()).unwrap();
        f.write_all(format!("{foreign}\n").as_bytes()).unwrap();
        drop(f);
        let stood = offset_of(&s).unwrap();
        append(&s, &event("a", Status::Ready, "python", 8), false).unwrap();
        assert_eq!(offset_of(&s), Some(stood), "not moved past a line it has not read");
        assert_eq!(latest_ready(&s, "b", None).unwrap().unwrap().id, "id-7");
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-8");
        // A torn tail another writer left: closed off by our append, read as it is.
        let mut f = std::fs::OpenOptions::new().append(true).open(s.manifest_path()).unwrap();
        f.write_all(b"{\"version\":1,\"torn").unwrap();
        drop(f);
        append(&s, &event("a", Status::Ready, "python", 9), false).unwrap();
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-9");
        assert_eq!(latest_ready(&s, "b", None).unwrap().unwrap().id, "id-7");
    }

    #[test]
    fn at_most_the_bound_of_logs_are_held() {
        let stores: Vec<_> = (0..INDEX_FILES_KEPT + 8).map(|_| store()).collect();
        for (i, (_, s)) in stores.iter().enumerate() {
            append(s, &event("t", Status::Ready, "python", i as u64), false).unwrap();
            assert_eq!(latest_ready(s, "t", None).unwrap().unwrap().id, format!("id-{i}"));
            let all = indexes().lock().unwrap();
            assert!(all.holding.len() <= INDEX_FILES_KEPT);
            assert_eq!(all.map.values().filter(|i| i.held.is_some()).count(), all.holding.len());
        }
        // The first ones let go of their file and still answer (opening it again).
        let (_, first) = &stores[0];
        append(first, &event("t", Status::Ready, "python", 99), false).unwrap();
        assert_eq!(latest_ready(first, "t", None).unwrap().unwrap().id, "id-99");
    }
}
