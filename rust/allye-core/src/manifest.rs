//! `manifest.jsonl`: the append-only event log of protocol v1.
//!
//! Writing: one complete line per call, appended with a single `write` under the
//! exclusive [`ManifestLock`]. If a previous writer died mid-line (a torn tail with no
//! `\n`), the next append first terminates that garbage with a `\n`, so the torn bytes
//! stay one skipped line instead of corrupting the new one.
//!
//! Reading takes no lock and only ever looks at whole `\n`-terminated lines; a line that
//! does not parse as an event is skipped.
//!
//! Lookups do not grow with the length of the manifest:
//! * [`latest_ready`], the first time this process asks for a (table, producer), scans
//!   the file **backwards** from the end in 64 KiB blocks (line breaks found with
//!   `memrchr`) and stops at the first matching `ready` line, so its cost is the distance
//!   from the end to the table's latest version, not the file length. The answer is kept
//!   in a per-file index; later lookups read only the bytes appended since.
//! * [`latest_per_table`] needs every table: it builds the complete index once (one full
//!   read per process), then refreshes it with new bytes only.
//!
//! The index is keyed by path and remembers the file identity (device, inode) and the
//! offset after the last complete line; a replaced (compacted) or truncated manifest is
//! detected by identity or size and re-indexed from the start.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{IoContext, Result};
use crate::lock::ManifestLock;
use crate::store::Store;

/// Transport names of protocol v1.
pub const TRANSPORT_FILE: &str = "file_arrow_ipc_v1";
pub const TRANSPORT_SHM: &str = "shm_arrow_stream_v1";

/// Status values of protocol v1.
pub const STATUS_WRITING: &str = "writing";
pub const STATUS_READY: &str = "ready";
pub const STATUS_ERROR: &str = "error";

/// One manifest line. Field order is the protocol's; serialisation is compact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub version: i64,
    pub id: String,
    pub table_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub producer: String,
    pub status: String,
    pub created_at: String,
    #[serde(default)]
    pub ttl_sec: Option<i64>,
    #[serde(default)]
    pub payload: Option<PayloadRef>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Map<String, Value>,
}

/// The `payload` object of a `ready` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadRef {
    pub transport: String,
    pub locator: String,
    pub data_size: u64,
    #[serde(default)]
    pub shape: [u64; 2],
    #[serde(default, deserialize_with = "null_as_default")]
    pub schema_sha256: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: String,
    #[serde(default)]
    pub expires_at: Option<String>,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Event {
    pub fn is_ready(&self) -> bool {
        self.status == STATUS_READY && self.payload.is_some()
    }

    /// The compact JSON line (without the `\n`).
    pub fn to_line(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Parses one line; `None` for anything that is not a v1-shaped event.
    pub fn parse(line: &[u8]) -> Option<Event> {
        let line = trim_ascii(line);
        if line.is_empty() || line[0] != b'{' {
            return None;
        }
        serde_json::from_slice(line).ok()
    }
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Appends one event as one line, under the writers' lock. With `durable`, the manifest
/// is fsync'ed before the lock is released.
pub fn append(store: &Store, event: &Event, durable: bool) -> Result<()> {
    let mut line = event.to_line()?.into_bytes();
    line.push(b'\n');
    let path = store.manifest_path();
    let _lock = ManifestLock::acquire(store)?;
    let mut opts = OpenOptions::new();
    opts.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts
        .open(&path)
        .ctx(|| format!("cannot open manifest {}", path.display()))?;
    let len = file
        .metadata()
        .ctx(|| format!("cannot stat manifest {}", path.display()))?
        .len();
    if len > 0 {
        let mut last = [0u8; 1];
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1);
        #[cfg(not(unix))]
        let read = file.seek(SeekFrom::Start(len - 1)).and_then(|_| file.read_exact(&mut last));
        read.ctx(|| format!("cannot read manifest {}", path.display()))?;
        if last[0] != b'\n' {
            // A writer died mid-line: close its garbage off so ours parses.
            line.insert(0, b'\n');
        }
    }
    file.write_all(&line)
        .ctx(|| format!("cannot append to manifest {}", path.display()))?;
    if durable {
        file.sync_data()
            .ctx(|| format!("cannot fsync manifest {}", path.display()))?;
    }
    Ok(())
}

/// What the index knows of one table.
#[derive(Debug, Clone, Default)]
pub struct TableState {
    /// The last line of any status for this table.
    pub latest: Option<Event>,
    /// The last `ready` line.
    pub ready: Option<Event>,
    /// The last `ready` line per producer.
    pub ready_by_producer: HashMap<String, Event>,
    /// The last `error` line.
    pub last_error: Option<Event>,
}

impl TableState {
    fn apply(&mut self, ev: Event) {
        if ev.is_ready() {
            self.ready_by_producer.insert(ev.producer.clone(), ev.clone());
            self.ready = Some(ev.clone());
        } else if ev.status == STATUS_ERROR {
            self.last_error = Some(ev.clone());
        }
        self.latest = Some(ev);
    }

    pub fn ready_for(&self, producer: Option<&str>) -> Option<&Event> {
        match producer {
            None => self.ready.as_ref(),
            Some(p) => self.ready_by_producer.get(p),
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
    lookups: HashMap<(String, Option<String>), Option<Event>>,
}

impl Index {
    fn apply(&mut self, ev: Event) {
        if self.complete {
            self.tables.entry(ev.table_name.clone()).or_default().apply(ev);
        } else if ev.is_ready() && !self.lookups.is_empty() {
            for key in [(ev.table_name.clone(), None), (ev.table_name.clone(), Some(ev.producer.clone()))] {
                if let Some(slot) = self.lookups.get_mut(&key) {
                    *slot = Some(ev.clone());
                }
            }
        }
    }
}

/// How many bytes before a cursor's offset are compared to detect a replaced manifest
/// (enough for the whole last line, whose transfer UUID and payload locator make it unique).
const TAIL_CHECK: usize = 4096;

/// A lock-free reader's position in the manifest: the file (device and inode), the offset
/// just after the last whole line taken into account, and the bytes before that offset.
///
/// Appends never change bytes already written, so the file is the same one as long as its
/// identity matches, it is at least `offset` long and the bytes before `offset` are
/// unchanged. The last check matters: a compacted manifest is a new file renamed over
/// the old one, and the file system may give it the old file's inode number back.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    identity: Option<FileIdentity>,
    offset: u64,
    tail: Vec<u8>,
}

impl Cursor {
    /// Offset just after the last whole line taken into account.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// True when `file` is not the file this cursor has been reading (replaced, even under
    /// the same inode number, or truncated).
    pub fn replaced(&self, file: &File, meta: &std::fs::Metadata) -> std::io::Result<bool> {
        if self.identity != Some(identity(meta)) || meta.len() < self.offset {
            return Ok(true);
        }
        if self.tail.is_empty() {
            return Ok(false);
        }
        Ok(read_at(file, self.offset - self.tail.len() as u64, self.tail.len())? != self.tail)
    }

    /// Starts over on `file` at `offset` (0: from the start), without reading what lies before.
    pub fn restart(&mut self, file: &File, meta: &std::fs::Metadata, offset: u64) -> std::io::Result<()> {
        let n = offset.min(TAIL_CHECK as u64) as usize;
        self.tail = read_at(file, offset - n as u64, n)?;
        self.identity = Some(identity(meta));
        self.offset = offset;
        Ok(())
    }

    /// Reads the whole lines appended after the cursor (up to `len`, the file's size) and
    /// moves past them; a torn last line is left to be read again next time. The returned
    /// bytes end with `\n` unless empty.
    pub fn read_lines(&mut self, file: &mut File, len: u64) -> std::io::Result<Vec<u8>> {
        if len <= self.offset {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::with_capacity((len - self.offset) as usize);
        file.take(len - self.offset).read_to_end(&mut buf)?;
        let Some(end) = memchr::memrchr(b'\n', &buf) else {
            return Ok(Vec::new());
        };
        buf.truncate(end + 1);
        let fresh = buf.len().min(TAIL_CHECK);
        let keep = (TAIL_CHECK - fresh).min(self.tail.len());
        let mut tail = self.tail[self.tail.len() - keep..].to_vec();
        tail.extend_from_slice(&buf[buf.len() - fresh..]);
        self.tail = tail;
        self.offset += buf.len() as u64;
        Ok(buf)
    }
}

/// The events of whole lines (`\n`-terminated), in order; lines that do not parse are skipped.
pub fn parse_lines(buf: &[u8]) -> impl Iterator<Item = Event> + '_ {
    let mut start = 0;
    memchr::memchr_iter(b'\n', buf).filter_map(move |nl| {
        let line = &buf[start..nl];
        start = nl + 1;
        Event::parse(line)
    })
}

fn read_at(file: &File, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
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

pub(crate) fn identity(meta: &std::fs::Metadata) -> FileIdentity {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
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

fn indexes() -> &'static Mutex<HashMap<PathBuf, Index>> {
    static INDEXES: OnceLock<Mutex<HashMap<PathBuf, Index>>> = OnceLock::new();
    INDEXES.get_or_init(Default::default)
}

fn open_for_read(path: &Path) -> Result<Option<(File, std::fs::Metadata)>> {
    match File::open(path) {
        Ok(f) => {
            let meta = f
                .metadata()
                .ctx(|| format!("cannot stat manifest {}", path.display()))?;
            Ok(Some((f, meta)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::Error::io(
            format!("cannot open manifest {}", path.display()),
            e,
        )),
    }
}

/// Brings `index` up to date with the file: reads only what was appended since the last
/// refresh. A replaced or truncated file starts over: a complete index re-reads it from
/// the start; a partial one forgets its answers and starts at the current end (its next
/// lookups scan backwards again). `want_complete` turns a partial index into a complete one.
fn refresh(index: &mut Index, path: &Path, want_complete: bool) -> Result<()> {
    let Some((mut file, meta)) = open_for_read(path)? else {
        *index = Index { complete: index.complete || want_complete, ..Index::default() };
        return Ok(());
    };
    let ctx = || format!("cannot read manifest {}", path.display());
    let complete = index.complete || want_complete;
    if index.cursor.replaced(&file, &meta).ctx(ctx)? || complete != index.complete {
        *index = Index { complete, ..Index::default() };
        // A complete index reads the file from the start; a partial one from its end.
        let start = if complete { 0 } else { complete_end(&mut file, meta.len()).ctx(ctx)? };
        index.cursor.restart(&file, &meta, start).ctx(ctx)?;
    }
    let buf = index.cursor.read_lines(&mut file, meta.len()).ctx(ctx)?;
    for ev in parse_lines(&buf) {
        index.apply(ev);
    }
    Ok(())
}

/// The offset just after the last `\n` before `len` (0 when there is none).
fn complete_end(file: &mut File, len: u64) -> std::io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut block = vec![0u8; BLOCK as usize];
    let mut pos = len;
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let chunk = &mut block[..(pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(start + i as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}

/// Calls `f` on every complete line from the last to the first, with the byte offset
/// where the line starts; stops as soon as `f` returns `true`. A trailing partial line
/// (no `\n` yet) is not reported. Returns whether `f` stopped the scan.
///
/// Reads 64 KiB blocks from the end and finds line breaks with `memrchr`; a line lying
/// inside one block is handed to `f` as a slice of the block (no copy), a line spanning
/// blocks is assembled.
pub(crate) fn scan_backwards(
    file: &mut File,
    end: u64,
    mut f: impl FnMut(u64, &[u8]) -> bool,
) -> std::io::Result<bool> {
    const BLOCK: u64 = 64 * 1024;
    let mut pos = end;
    // The tail of the line being assembled when it spans blocks (file order).
    let mut carry: Vec<u8> = Vec::new();
    let mut seen_newline = false;
    let mut block = vec![0u8; BLOCK as usize];
    let mut joined = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let chunk = &mut block[..(pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        let mut line_end = chunk.len();
        for nl in memchr::memrchr_iter(b'\n', chunk) {
            if seen_newline {
                let part = &chunk[nl + 1..line_end];
                let line_start = start + nl as u64 + 1;
                let stop = if carry.is_empty() {
                    f(line_start, part)
                } else {
                    joined.clear();
                    joined.extend_from_slice(part);
                    joined.extend_from_slice(&carry);
                    carry.clear();
                    f(line_start, &joined)
                };
                if stop {
                    return Ok(true);
                }
            }
            seen_newline = true;
            line_end = nl;
        }
        if seen_newline && line_end > 0 {
            // The start of this block belongs to a line that began in an earlier block.
            let mut head = chunk[..line_end].to_vec();
            head.extend_from_slice(&carry);
            carry = head;
        }
        pos = start;
    }
    if seen_newline && !carry.is_empty() {
        return Ok(f(0, &carry));
    }
    Ok(false)
}

/// Scans `[0, end)` backwards for the last `ready` line of `table` (and `producer`).
fn scan_latest_ready(file: &mut File, end: u64, table: &str, producer: Option<&str>) -> std::io::Result<Option<Event>> {
    let mut found = None;
    // Cheap pre-filter before a full parse: a name that no JSON writer escapes must
    // appear verbatim in a line that mentions it.
    let verbatim = table
        .bytes()
        .all(|b| (b.is_ascii_graphic() || b == b' ') && !matches!(b, b'"' | b'\\' | b'/'));
    let finder = memchr::memmem::Finder::new(table.as_bytes());
    scan_backwards(file, end, |_, line| {
        if verbatim && finder.find(line).is_none() {
            return false;
        }
        match Event::parse(line) {
            Some(ev)
                if ev.is_ready()
                    && ev.table_name == table
                    && producer.is_none_or(|p| ev.producer == p) =>
            {
                found = Some(ev);
                true
            }
            _ => false,
        }
    })?;
    Ok(found)
}

/// The current version of `table`: the last `ready` line with that name (and producer).
///
/// The first lookup of a (table, producer) in this process scans the manifest backwards
/// from its end and stops at the match, so it costs the distance from the end to the
/// table's latest version, not the length of the history. The answer is remembered; later
/// lookups read only the bytes appended since.
pub fn latest_ready(store: &Store, table: &str, producer: Option<&str>) -> Result<Option<Event>> {
    let path = store.manifest_path();
    let key = (table.to_string(), producer.map(str::to_string));
    let mut guard = indexes().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(index) = guard.get_mut(&path) {
        refresh(index, &path, false)?;
        if index.complete {
            return Ok(index.tables.get(table).and_then(|t| t.ready_for(producer)).cloned());
        }
        if let Some(answer) = index.lookups.get(&key) {
            return Ok(answer.clone());
        }
    }
    let Some((mut file, meta)) = open_for_read(&path)? else {
        return Ok(None);
    };
    let ctx = || format!("cannot read manifest {}", path.display());
    let index = guard.entry(path.clone()).or_default();
    // The file may have been replaced since the refresh above (which used its own
    // handle), possibly under the same inode number: check again on this handle.
    if index.cursor.replaced(&file, &meta).ctx(ctx)? {
        *index = Index::default();
        let end = complete_end(&mut file, meta.len()).ctx(ctx)?;
        index.cursor.restart(&file, &meta, end).ctx(ctx)?;
    }
    // Everything after the cursor has been applied to the known answers; this lookup
    // scans what lies before it.
    let found = scan_latest_ready(&mut file, index.cursor.offset(), table, producer).ctx(ctx)?;
    index.lookups.insert(key, found.clone());
    Ok(found)
}

/// Every table's state, from the incremental index (refreshed first), sorted by name.
pub fn latest_per_table(store: &Store) -> Result<BTreeMap<String, TableState>> {
    with_complete_index(store, |tables| tables.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// One table's state from the incremental index (refreshed first); `None` when the
/// manifest never mentions it. Copies only that table's state.
pub fn table_state(store: &Store, table: &str) -> Result<Option<TableState>> {
    with_complete_index(store, |tables| tables.get(table).cloned())
}

fn with_complete_index<T>(store: &Store, f: impl FnOnce(&HashMap<String, TableState>) -> T) -> Result<T> {
    let path = store.manifest_path();
    let mut guard = indexes().lock().unwrap_or_else(|p| p.into_inner());
    let index = guard.entry(path.clone()).or_default();
    refresh(index, &path, true)?;
    Ok(f(&index.tables))
}

/// Every parseable event, in file order (for gc and tools; not for lookups).
pub fn read_all(store: &Store) -> Result<Vec<Event>> {
    let path = store.manifest_path();
    let Some((mut file, _)) = open_for_read(&path)? else {
        return Ok(Vec::new());
    };
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .ctx(|| format!("cannot read manifest {}", path.display()))?;
    let end = memchr::memrchr(b'\n', &buf).map_or(0, |e| e + 1);
    Ok(buf[..end]
        .split(|&b| b == b'\n')
        .filter_map(Event::parse)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(table: &str, status: &str, producer: &str, n: u64) -> Event {
        Event {
            version: 1,
            id: format!("id-{n}"),
            table_name: table.into(),
            producer: producer.into(),
            status: status.into(),
            created_at: "2025-12-18T12:34:56+0900".into(),
            ttl_sec: None,
            payload: (status == STATUS_READY).then(|| PayloadRef {
                transport: TRANSPORT_FILE.into(),
                locator: format!("/x/{n}.arrow"),
                data_size: n,
                shape: [n, 1],
                schema_sha256: String::new(),
                created_at: "2025-12-18T12:34:56+0900".into(),
                expires_at: None,
            }),
            metadata: Map::new(),
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::at(tmp.path());
        s.ensure().unwrap();
        (tmp, s)
    }

    #[test]
    fn serialises_like_python_json_dumps_compact() {
        let mut ev = event("tä", STATUS_READY, "python", 3);
        ev.metadata.insert("shm_unlink_on_read".into(), Value::Bool(true));
        let line = ev.to_line().unwrap();
        assert_eq!(
            line,
            r#"{"version":1,"id":"id-3","table_name":"tä","producer":"python","status":"ready","created_at":"2025-12-18T12:34:56+0900","ttl_sec":null,"payload":{"transport":"file_arrow_ipc_v1","locator":"/x/3.arrow","data_size":3,"shape":[3,1],"schema_sha256":"","created_at":"2025-12-18T12:34:56+0900","expires_at":null},"metadata":{"shm_unlink_on_read":true}}"#
        );
        assert_eq!(Event::parse(line.as_bytes()).unwrap(), ev);
    }

    #[test]
    fn parses_lenient_and_rejects_garbage() {
        // 0.1.2 tolerates a missing producer and null metadata.
        let ev = Event::parse(br#"{"version":1,"id":"a","table_name":"t","status":"writing","created_at":"x","ttl_sec":null,"payload":null,"metadata":null}"#).unwrap();
        assert_eq!(ev.producer, "");
        for bad in [
            &b""[..],
            b"garbage",
            b"{\"version\":1",
            br#"{"version":"one","id":"a","table_name":"t","status":"ready","created_at":"x"}"#,
            br#"{"version":1,"id":"a","table_name":5,"status":"ready","created_at":"x"}"#,
            br#"[1,2,3]"#,
        ] {
            assert!(Event::parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn latest_ready_cold_and_warm_and_torn_tail() {
        let (_tmp, s) = store();
        assert!(latest_ready(&s, "a", None).unwrap().is_none());
        append(&s, &event("a", STATUS_WRITING, "python", 1), false).unwrap();
        append(&s, &event("a", STATUS_READY, "python", 1), false).unwrap();
        append(&s, &event("b", STATUS_READY, "allye", 2), false).unwrap();
        append(&s, &event("a", STATUS_READY, "allye", 3), false).unwrap();
        append(&s, &event("a", STATUS_ERROR, "python", 4), false).unwrap();
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
        append(&s, &event("a", STATUS_READY, "python", 5), false).unwrap();
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
    fn backwards_scan_crosses_blocks() {
        let (_tmp, s) = store();
        // Lines longer than a block and many short ones around them.
        let mut text = Vec::new();
        let mut expected = Vec::new();
        for i in 0..3000 {
            let line = if i % 1000 == 7 {
                format!("{}{}", "x".repeat(70_000), i)
            } else {
                format!("line-{i}")
            };
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
            expected.push(line);
        }
        text.extend_from_slice(b"partial-no-newline");
        std::fs::write(s.manifest_path(), &text).unwrap();
        let mut f = File::open(s.manifest_path()).unwrap();
        let mut got = Vec::new();
        let mut offsets = Vec::new();
        scan_backwards(&mut f, text.len() as u64, |off, line| {
            got.push(String::from_utf8(line.to_vec()).unwrap());
            offsets.push(off);
            false
        })
        .unwrap();
        got.reverse();
        offsets.reverse();
        assert_eq!(got, expected);
        for (off, line) in offsets.iter().zip(&expected) {
            assert_eq!(&text[*off as usize..*off as usize + line.len()], line.as_bytes());
        }
    }

    #[test]
    fn backwards_scan_matches_a_forward_split_for_any_line_lengths() {
        let (_tmp, s) = store();
        let mut state = 0x9E3779B97F4A7C15u64;
        for round in 0..20 {
            let mut text = Vec::new();
            let mut expected = Vec::new();
            for i in 0..(50 + round * 37) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Empty lines, short ones, and lines around and beyond the 64 KiB block.
                let len = match state % 5 {
                    0 => 0,
                    1 => (state >> 8) as usize % 40,
                    2 => 65_536 - 1 + (state >> 8) as usize % 3,
                    _ => (state >> 8) as usize % 9000,
                };
                let line: Vec<u8> = (0..len).map(|k| b'a' + ((k + i) % 26) as u8).collect();
                expected.push((text.len() as u64, line.clone()));
                text.extend_from_slice(&line);
                text.push(b'\n');
            }
            if round % 2 == 1 {
                text.extend_from_slice(b"torn tail");
            }
            std::fs::write(s.manifest_path(), &text).unwrap();
            let mut f = File::open(s.manifest_path()).unwrap();
            let mut got = Vec::new();
            scan_backwards(&mut f, text.len() as u64, |off, line| {
                got.push((off, line.to_vec()));
                false
            })
            .unwrap();
            got.reverse();
            // A leading empty line at offset 0 is not reported (nothing to parse there).
            if expected.first().is_some_and(|(_, l)| l.is_empty()) {
                expected.remove(0);
            }
            assert_eq!(got.len(), expected.len(), "round {round}");
            assert!(got == expected, "round {round}");
            let end = complete_end(&mut f, text.len() as u64).unwrap();
            assert_eq!(end as usize, text.iter().rposition(|&b| b == b'\n').unwrap() + 1);
        }
    }

    #[test]
    fn partial_index_answers_follow_appends_and_become_complete() {
        let (_tmp, s) = store();
        for n in 0..2000 {
            let table = if n % 100 == 0 { "rare" } else { "busy" };
            append(&s, &event(table, STATUS_READY, if n % 2 == 0 { "python" } else { "allye" }, n), false).unwrap();
        }
        // Cold lookups: backward scans, remembered.
        assert_eq!(latest_ready(&s, "busy", None).unwrap().unwrap().id, "id-1999");
        assert_eq!(latest_ready(&s, "rare", None).unwrap().unwrap().id, "id-1900");
        assert_eq!(latest_ready(&s, "busy", Some("python")).unwrap().unwrap().id, "id-1998");
        assert!(latest_ready(&s, "ghost", None).unwrap().is_none());
        {
            let guard = indexes().lock().unwrap();
            let index = &guard[&s.manifest_path()];
            assert!(!index.complete);
            assert_eq!(index.lookups.len(), 4);
        }
        // New lines update the remembered answers (only the matching producer's).
        append(&s, &event("rare", STATUS_READY, "allye", 5000), false).unwrap();
        append(&s, &event("ghost", STATUS_WRITING, "python", 5001), false).unwrap();
        append(&s, &event("busy", STATUS_ERROR, "python", 5002), false).unwrap();
        assert_eq!(latest_ready(&s, "rare", None).unwrap().unwrap().id, "id-5000");
        assert!(latest_ready(&s, "rare", Some("python")).unwrap().unwrap().id == "id-1900");
        assert_eq!(latest_ready(&s, "busy", Some("python")).unwrap().unwrap().id, "id-1998");
        assert!(latest_ready(&s, "ghost", None).unwrap().is_none());
        append(&s, &event("ghost", STATUS_READY, "python", 5003), false).unwrap();
        assert_eq!(latest_ready(&s, "ghost", Some("python")).unwrap().unwrap().id, "id-5003");
        assert_eq!(latest_ready(&s, "ghost", None).unwrap().unwrap().id, "id-5003");
        // Listing needs every table: the index becomes complete and agrees.
        let tables = latest_per_table(&s).unwrap();
        assert_eq!(tables["busy"].last_error.as_ref().unwrap().id, "id-5002");
        assert_eq!(latest_ready(&s, "busy", Some("allye")).unwrap().unwrap().id, "id-1999");
        assert_eq!(latest_ready(&s, "rare", None).unwrap().unwrap().id, "id-5000");
        assert!(indexes().lock().unwrap()[&s.manifest_path()].complete);
    }

    #[test]
    fn index_follows_replacement_of_the_file() {
        let (_tmp, s) = store();
        append(&s, &event("a", STATUS_READY, "python", 1), false).unwrap();
        assert_eq!(latest_per_table(&s).unwrap()["a"].ready.as_ref().unwrap().id, "id-1");
        // Rewrite (as a compaction would) with a different, shorter content.
        let tmp = s.root().join("m.tmp");
        std::fs::write(&tmp, format!("{}\n", event("z", STATUS_READY, "python", 9).to_line().unwrap())).unwrap();
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
        append(&s, &event("a", STATUS_READY, "python", 1), false).unwrap();
        assert_eq!(latest_ready(&s, "a", None).unwrap().unwrap().id, "id-1");
        let mut text = String::new();
        for n in 2..6 {
            text.push_str(&event("b", STATUS_READY, "python", n).to_line().unwrap());
            text.push('\n');
        }
        std::fs::write(s.manifest_path(), &text).unwrap(); // truncate + write: same inode
        let t = latest_per_table(&s).unwrap();
        assert!(!t.contains_key("a"), "stale entries of the old file are dropped");
        assert_eq!(t["b"].ready.as_ref().unwrap().id, "id-5");
        // Same length, same inode, other bytes.
        let same_len = text.replace("id-5", "id-7");
        std::fs::write(s.manifest_path(), &same_len).unwrap();
        assert_eq!(latest_ready(&s, "b", None).unwrap().unwrap().id, "id-7");
    }

    #[test]
    fn concurrent_appends_from_threads_are_whole_lines() {
        let (_tmp, s) = store();
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let mut ev = event(&format!("t{t}"), STATUS_READY, "python", i);
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
