//! Appending one chunk: the chunk file first (complete, renamed into place), then its line.

use crate::sys::fs::PathMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};

use crate::error::{Error, IoContext, Result};
use crate::manifest::{write_line, Event};
use crate::payload::{buffer_from_mapping, decode_file, map_file, write_file};
use crate::protocol::{
    check_table_name, Compression, METADATA_LOAD, METADATA_STREAM, STREAM_LOAD_LOCK_FILE, STREAM_NAME_FILE,
};
use crate::protocol::{STREAM_LOCK_FILE, STREAM_LOG_FILE};
use crate::store::Store;
use crate::streams::{log_path, now_ns, schema, stream_dir, ChunkLine, LogCursor, NewLines};
use crate::sys::fork::ForkLocal;
use crate::sys::lock::ManifestLock;
use crate::sys::process::WriterIdentity;
use crate::sys::trust::{Open, TrustedDir};
use crate::tables;

/// What an append can be told besides the data.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AppendOptions {
    /// A column whose smallest and largest values are recorded on the chunk's line, so
    /// that time-range loads skip the chunks outside the range.
    pub time_column: Option<String>,
    /// fsync the chunk file and the log before returning.
    pub durable: bool,
    /// A load's state, written on the chunk's line (field `allye_load`): the line that
    /// makes the rows visible is the line that records how far the load got.
    pub load: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AppendOptions {
    /// Options recording the range of `time_column`.
    pub fn with_time_column(time_column: Option<String>) -> Self {
        AppendOptions { time_column, durable: false, load: None }
    }
}

/// What an appender needs of a stream's log, kept per process and refreshed (new lines
/// only) under the stream's lock before each line is written: whether the stream has a
/// chunk, its schema as the log records it, and the plain version it was made from.
/// Apart from the readers' view, whose lock a long read holds, so that appenders never
/// wait for a reader.
#[derive(Default)]
pub(crate) struct Tracker {
    cursor: LogCursor,
    chunks: usize,
    first_chunk: Option<String>,
    /// The last schema a line records.
    recorded: Option<SchemaRef>,
    /// A log written before schemas were recorded: its first chunk's schema.
    legacy: Option<SchemaRef>,
    adopted: Option<String>,
}

type Trackers = PathMap<Arc<Mutex<Tracker>>>;
static TRACKERS: ForkLocal<Mutex<Trackers>> = ForkLocal::new(Default::default);

pub(crate) fn tracker_of(store: &Store, table: &str) -> Arc<Mutex<Tracker>> {
    let dir = stream_dir(store, table);
    TRACKERS.get().lock().unwrap_or_else(|e| e.into_inner()).entry(dir.into()).or_default().clone()
}

/// Forgets what this process knew of a stream (after it was removed).
pub(crate) fn forget_schema(store: &Store, table: &str) {
    TRACKERS.get().lock().unwrap_or_else(|e| e.into_inner()).remove(crate::sys::fs::key(&stream_dir(store, table)));
}

impl Tracker {
    pub(crate) fn refresh(&mut self, store: &Store, table: &str) -> Result<()> {
        match self.cursor.read_new(store, &log_path(store, table))? {
            NewLines::NoLog => *self = Tracker::default(),
            NewLines::Lines { restarted, lines } => {
                if restarted {
                    *self = Tracker { cursor: self.cursor.clone(), ..Tracker::default() };
                }
                for line in lines {
                    if self.chunks == 0 {
                        self.first_chunk = Some(line.chunk.clone());
                        self.adopted = line.adopted.clone();
                    }
                    self.chunks += 1;
                    if let Some(text) = &line.schema {
                        // A line whose schema does not decode keeps the previous one.
                        if let Ok(s) = schema::decode(text) {
                            self.recorded = Some(s);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The stream's schema: the last one its log records, else (a log written before
    /// schemas were) its first chunk's; `None` while it has no chunk.
    pub(crate) fn schema(&mut self, store: &Store, table: &str) -> Result<Option<SchemaRef>> {
        if let Some(s) = &self.recorded {
            return Ok(Some(s.clone()));
        }
        if self.legacy.is_none() {
            if let Some(first) = &self.first_chunk {
                let path = stream_dir(store, table).join(first);
                if let Some(file) = store.open_file(&path, Open::Read)? {
                    let map = map_file(&file, &path)?;
                    let d = decode_file(&buffer_from_mapping(map)).map_err(|reason| Error::PayloadCorrupt {
                        table: table.into(),
                        locator: path.display().to_string(),
                        reason,
                    })?;
                    self.legacy = Some(d.schema);
                }
            }
        }
        Ok(self.legacy.clone())
    }
}

/// Smallest and largest value of an integer or timestamp column, as i64.
pub(crate) fn time_range(batches: &[RecordBatch], column: &str) -> Result<Option<(i64, i64)>> {
    let mut range: Option<(i64, i64)> = None;
    for b in batches {
        let Some(idx) = b.schema().index_of(column).ok() else {
            return Err(Error::InvalidArgument(format!(
                "time_column {column:?} is not a column of the data; name one of {}",
                schema::describe(&b.schema())
            )));
        };
        let col = b.column(idx);
        let mut note = |v: i64| {
            range = Some(match range {
                None => (v, v),
                Some((lo, hi)) => (lo.min(v), hi.max(v)),
            })
        };
        match col.data_type() {
            DataType::Int64 | DataType::Timestamp(..) | DataType::Date64 => {
                let data = col.to_data();
                let arr = arrow_array::PrimitiveArray::<Int64Type>::from(
                    data.into_builder().data_type(DataType::Int64).build()?,
                );
                arr.iter().flatten().for_each(&mut note);
            }
            DataType::UInt64 => {
                col.as_primitive::<UInt64Type>().iter().flatten().for_each(|v| note(v.min(i64::MAX as u64) as i64))
            }
            DataType::Int32 => col.as_primitive::<Int32Type>().iter().flatten().for_each(|v| note(v as i64)),
            DataType::UInt32 => col.as_primitive::<UInt32Type>().iter().flatten().for_each(|v| note(v as i64)),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "time_column {column:?} has type {other}; a time range needs an integer or timestamp column"
                )))
            }
        }
        let _ = col.len();
    }
    Ok(range)
}

/// The lock a load holds on stream `table` while it appends (`load.lock` in the stream's
/// directory, made if needed); `None` when another process's load holds it. Released when
/// dropped, and by the OS when the holder dies.
pub fn load_lock(store: &Store, table: &str) -> Result<Option<ManifestLock>> {
    check_table_name(table)?;
    store.ensure()?;
    let dir = store.dir_at(&stream_dir(store, table), true)?.expect("created");
    ManifestLock::try_acquire(&dir, STREAM_LOAD_LOCK_FILE)
}

/// Appends `batches` to stream `table` as one chunk; returns its line, or `None` when
/// there are no rows (nothing is written). Once this returns the rows are in the stream;
/// before the line exists, no reader sees any of them. Many processes may append to one
/// stream at once.
///
/// The stream's schema evolves ([`schema`]): new fields are added, missing ones read as
/// null, numbers widen; a field whose values cannot share its column is
/// [`Error::SchemaConflict`] and nothing is written. The first append to a name that
/// holds a plain table makes the stream from it first ([`adopt`]); an append to a stream
/// whose name a plain table was sent to since is refused (the reader would not see it).
pub fn append(
    store: &Store,
    table: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    opts: &AppendOptions,
) -> Result<Option<ChunkLine>> {
    append_parts(store, table, &[(schema.clone(), batches.to_vec())], opts)
}

/// [`append`] of several tables whose schemas may differ (a writer's buffer): one chunk
/// of their merged schema ([`schema::merge`]). A conflict names the part it is in
/// (`FieldConflict::part`); nothing is written then.
pub fn append_parts(
    store: &Store,
    table: &str,
    parts: &[(SchemaRef, Vec<RecordBatch>)],
    opts: &AppendOptions,
) -> Result<Option<ChunkLine>> {
    check_table_name(table)?;
    let rows: u64 = parts.iter().flat_map(|(_, bs)| bs.iter()).map(|b| b.num_rows() as u64).sum();
    if rows == 0 {
        return Ok(None);
    }
    let store = &store.pin(true)?;
    let dir = prepare_dir(store, table)?;
    let tracker = tracker_of(store, table);
    // A first look without the lock: refused before anything is written.
    let current = {
        let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        t.refresh(store, table)?;
        if t.chunks == 0 {
            drop(t);
            adopt(store, table)?;
            t = tracker.lock().unwrap_or_else(|e| e.into_inner());
            t.refresh(store, table)?;
        } else {
            check_not_shadowed(store, table, t.adopted.as_deref())?;
        }
        t.schema(store, table)?
    };
    let (schema, batches) = schema::merge(table, current.as_ref(), parts)?;
    let range = match &opts.time_column {
        Some(c) => time_range(&batches, c)?,
        None => None,
    };
    let writer = WriterIdentity::cached();
    let chunk = format!("{}-{}.arrow", writer.pid, crate::sys::ids::new_v4().simple());
    let bytes = write_file(&dir, &chunk, &schema, &batches, 0, Compression::None, opts.durable)?;
    let mut line = ChunkLine {
        chunk,
        rows,
        bytes,
        writer,
        appended_ns: 0,
        time_column: range.and(opts.time_column.clone()),
        tmin: range.map(|r| r.0),
        tmax: range.map(|r| r.1),
        compacted: None,
        load: opts.load.clone(),
        schema: None,
        adopted: None,
        merged: None,
        durable: opts.durable,
    };
    let written = write_line_locked(store, table, &dir, &tracker, &mut line, &schema, opts.durable);
    if let Err(e) = written {
        let _ = dir.remove_file(&line.chunk);
        return Err(e);
    }
    Ok(Some(line))
}

/// Creates the stream's directory and its `name` file if missing.
fn prepare_dir(store: &Store, table: &str) -> Result<TrustedDir> {
    store.ensure()?;
    let dir = store.dir_at(&stream_dir(store, table), true)?.expect("created");
    if dir.stat(STREAM_NAME_FILE)?.is_none() {
        let tmp = format!("{STREAM_NAME_FILE}.tmp-{}", std::process::id());
        let written = (|| -> Result<()> {
            let mut f = dir.open(&tmp, Open::Truncate)?.expect("a truncating open creates the file");
            f.write_all(table.as_bytes()).ctx(|| format!("cannot write {}", dir.path().join(&tmp).display()))?;
            dir.rename(&tmp, &dir, STREAM_NAME_FILE)
        })();
        if let Err(e) = written {
            let _ = dir.remove_file(&tmp);
            return Err(e);
        }
    }
    Ok(dir)
}

/// Under the stream's lock: the schema as of now (other appenders may have changed it
/// since the first look), the line's `schema` when this chunk changes it, then the line.
fn write_line_locked(
    store: &Store,
    table: &str,
    dir: &TrustedDir,
    tracker: &Mutex<Tracker>,
    line: &mut ChunkLine,
    chunk_schema: &SchemaRef,
    durable: bool,
) -> Result<()> {
    let _lock = ManifestLock::acquire(dir, STREAM_LOCK_FILE)?;
    {
        let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        t.refresh(store, table)?;
        let current = t.schema(store, table)?;
        line.schema = match schema::unify(current.as_ref(), chunk_schema) {
            Err(conflicts) => return Err(Error::SchemaConflict { table: table.into(), conflicts }),
            Ok(Some(new)) => Some(schema::encode(&new)?),
            // A log written before schemas were recorded: record it from now on.
            Ok(None) if t.recorded.is_none() => current.map(|c| schema::encode(&c)).transpose()?,
            Ok(None) => None,
        };
    }
    line.appended_ns = now_ns();
    write_line(dir, STREAM_LOG_FILE, serde_json::to_vec(&*line)?, durable)
}

/// True for a v1 version that is a stream's publication (not a plain table).
fn is_publication(ev: &Event) -> bool {
    ev.metadata.contains_key(METADATA_STREAM)
}

/// Refuses an append to stream `table` when a plain table was sent to its name after the
/// stream was made (by 0.1.2, which knows nothing of streams, or a remote push): a
/// reader reads the stream, so that table would be hidden.
fn check_not_shadowed(store: &Store, table: &str, adopted: Option<&str>) -> Result<()> {
    let ev = match tables::latest(store, table, None) {
        Ok(ev) => ev,
        Err(Error::TableNotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    if is_publication(&ev) || adopted == Some(ev.id.as_str()) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "{table:?} is a streaming table, and a plain table was sent to the same name after the stream was made \
         (version {}, {}): readers read the stream, so that table is hidden. remove_table({table:?}) removes both; \
         then append (or send) again, or send the plain table under another name",
        ev.id, ev.created_at
    )))
}

/// Makes stream `table` from the plain table of that name, if there is one and the
/// stream has no chunk yet: the current version's rows become the first chunk (with the
/// load state its `ready` line had, and its id as `adopted`), so that appending to a
/// sent table keeps its rows. Returns the line written (`None`: nothing to adopt, or
/// the stream had a chunk already).
pub fn adopt(store: &Store, table: &str) -> Result<Option<ChunkLine>> {
    check_table_name(table)?;
    let (ev, data) = match tables::get(store, table, None, false) {
        Ok(got) => got,
        Err(Error::TableNotFound { .. } | Error::Expired { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let rows: u64 = data.batches.iter().map(|b| b.num_rows() as u64).sum();
    let tracker = tracker_of(store, table);
    {
        let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        t.refresh(store, table)?;
        if rows == 0 || t.chunks > 0 {
            return Ok(None);
        }
    }
    let dir = prepare_dir(store, table)?;
    let writer = WriterIdentity::cached();
    let chunk = format!("{}-{}.arrow", writer.pid, crate::sys::ids::new_v4().simple());
    let bytes = write_file(&dir, &chunk, &data.schema, &data.batches, 0, Compression::None, false)?;
    let load = ev.metadata.get(METADATA_LOAD).and_then(|v| v.as_object()).cloned();
    let mut line = ChunkLine {
        chunk,
        rows,
        bytes,
        writer,
        appended_ns: 0,
        time_column: None,
        tmin: None,
        tmax: None,
        compacted: None,
        load,
        schema: None,
        adopted: Some(ev.id.clone()),
        merged: None,
        durable: false,
    };
    let result = (|| -> Result<bool> {
        let _lock = ManifestLock::acquire(&dir, STREAM_LOCK_FILE)?;
        let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        t.refresh(store, table)?;
        if t.chunks > 0 {
            return Ok(false); // another process made the stream meanwhile
        }
        line.schema = Some(schema::encode(&data.schema)?);
        line.appended_ns = now_ns();
        write_line(&dir, STREAM_LOG_FILE, serde_json::to_vec(&line)?, false)?;
        Ok(true)
    })();
    match result {
        Ok(true) => {
            log::info!("{table:?} became a streaming table: its version {} is the first chunk ({rows} rows)", ev.id);
            Ok(Some(line))
        }
        Ok(false) => {
            let _ = dir.remove_file(&line.chunk);
            Ok(None)
        }
        Err(e) => {
            let _ = dir.remove_file(&line.chunk);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::log_path;
    use crate::streams::test_support::{rows, schema, store};
    use crate::streams::{read, ReadSelection};
    use arrow_array::ArrayRef;

    #[test]
    fn appends_are_read_back_in_order() {
        let (_t, s) = store();
        for i in 0..5 {
            append(&s, "st", &schema(), &[rows(0, i * 10, 10)], &AppendOptions::default()).unwrap();
        }
        let r = read(&s, "st", &ReadSelection::default()).unwrap();
        assert_eq!((r.rows, r.total_chunks), (50, 5));
        let seq: Vec<i64> =
            r.batches.iter().flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(seq, (0..50).collect::<Vec<_>>());
    }

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(cols).unwrap()
    }

    #[test]
    fn the_schema_evolves_fields_added_dropped_and_widened_read_as_one_schema() {
        use arrow_array::{Float64Array, Int32Array, Int64Array, StringArray};
        let (_t, s) = store();
        let b1 = batch(vec![
            ("a", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
            ("b", Arc::new(StringArray::from(vec!["x", "y"]))),
        ]);
        append(&s, "ev", &b1.schema(), std::slice::from_ref(&b1), &AppendOptions::default()).unwrap();
        let b2 = batch(vec![
            ("a", Arc::new(Int64Array::from(vec![1 << 40])) as ArrayRef),
            ("c", Arc::new(Float64Array::from(vec![0.5]))),
        ]);
        append(&s, "ev", &b2.schema(), &[b2], &AppendOptions::default()).unwrap();
        let b3 = batch(vec![("a", Arc::new(Float64Array::from(vec![6.5])) as ArrayRef)]);
        append(&s, "ev", &b3.schema(), &[b3], &AppendOptions::default()).unwrap();
        for fresh in [false, true] {
            if fresh {
                crate::streams::view::forget_view(&s, "ev");
                forget_schema(&s, "ev");
            }
            let r = read(&s, "ev", &ReadSelection::default()).unwrap();
            let names: Vec<(String, DataType)> =
                r.schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
            assert_eq!(
                names,
                vec![("a".into(), DataType::Float64), ("b".into(), DataType::Utf8), ("c".into(), DataType::Float64)]
            );
            let all = arrow_select::concat::concat_batches(&r.schema, &r.batches).unwrap();
            let a: Vec<f64> = all.column(0).as_primitive::<arrow_array::types::Float64Type>().values().to_vec();
            assert_eq!(a, vec![1.0, 2.0, (1u64 << 40) as f64, 6.5]);
            assert_eq!(all.column(1).null_count(), 2, "b: null where it was left out");
            assert_eq!(all.column(2).null_count(), 3, "c: null before it was added");
        }
        // The first chunk file is not rewritten: it still holds int32.
        let first = &crate::streams::chunks(&s, "ev").unwrap()[0];
        let path = stream_dir(&s, "ev").join(&first.chunk);
        let map = map_file(&std::fs::File::open(&path).unwrap(), &path).unwrap();
        let d = decode_file(&buffer_from_mapping(map)).unwrap();
        assert_eq!(d.schema.field(0).data_type(), &DataType::Int32);
    }

    #[test]
    fn a_conflicting_field_is_refused_naming_table_field_and_types_and_writes_nothing() {
        use arrow_array::{Int64Array, StringArray};
        let (_t, s) = store();
        let b1 = batch(vec![("a", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]);
        append(&s, "cf", &b1.schema(), &[b1], &AppendOptions::default()).unwrap();
        let bad = batch(vec![("a", Arc::new(StringArray::from(vec!["bad"])) as ArrayRef)]);
        forget_schema(&s, "cf"); // as a fresh process would see it
        let err = append(&s, "cf", &bad.schema(), &[bad], &AppendOptions::default()).unwrap_err();
        match &err {
            Error::SchemaConflict { table, conflicts } => {
                assert_eq!(table, "cf");
                assert_eq!(
                    (conflicts[0].field.as_str(), conflicts[0].value_type.as_str(), conflicts[0].column_type.as_str()),
                    ("a", "Utf8", "Int64")
                );
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("\"cf\"") && err.to_string().contains("Utf8"), "{err}");
        assert_eq!(read(&s, "cf", &ReadSelection::default()).unwrap().rows, 1);
        let n = std::fs::read_dir(stream_dir(&s, "cf"))
            .unwrap()
            .filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().ends_with(".arrow"))
            .count();
        assert_eq!(n, 1, "no chunk file left behind");
    }

    #[test]
    fn concurrent_appenders_adding_the_same_field_with_two_kinds_one_wins_the_other_is_refused() {
        use arrow_array::{Int64Array, StringArray};
        let (_t, s) = store();
        let b = batch(vec![("k", Arc::new(Int64Array::from(vec![0])) as ArrayRef)]);
        append(&s, "race", &b.schema(), &[b], &AppendOptions::default()).unwrap();
        let threads: Vec<_> = (0..2)
            .map(|w| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let x: ArrayRef = if w == 0 {
                        Arc::new(Int64Array::from(vec![1]))
                    } else {
                        Arc::new(StringArray::from(vec!["one"]))
                    };
                    let b = batch(vec![("k", Arc::new(Int64Array::from(vec![1])) as ArrayRef), ("x", x)]);
                    (0..20)
                        .map(|_| {
                            append(&s, "race", &b.schema(), std::slice::from_ref(&b), &AppendOptions::default()).is_ok()
                        })
                        .filter(|ok| *ok)
                        .count()
                })
            })
            .collect();
        let ok: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(ok.contains(&20) && ok.contains(&0), "one kind wins every time: {ok:?}");
        let r = read(&s, "race", &ReadSelection::default()).unwrap();
        assert_eq!(r.rows, 21);
    }

    #[test]
    fn appending_to_a_sent_table_keeps_its_rows_and_a_table_sent_after_is_refused() {
        let (_t, s) = store();
        let sent = rows(7, 0, 3);
        let mut opts = crate::tables::SendOptions::named("mix");
        opts.metadata.insert(crate::protocol::METADATA_LOAD.into(), serde_json::json!({"source": "x", "last": 2}));
        crate::tables::send(&s, &schema(), &[sent], &opts).unwrap();
        append(&s, "mix", &schema(), &[rows(0, 3, 2)], &AppendOptions::default()).unwrap();
        let lines = crate::streams::chunks(&s, "mix").unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].adopted.is_some());
        assert_eq!(lines[0].load.as_ref().unwrap()["last"], 2, "the load state comes along");
        assert_eq!(read(&s, "mix", &ReadSelection::default()).unwrap().rows, 5);
        // A plain table sent to the name since (as 0.1.2 would): appends are refused.
        crate::tables::send(&s, &schema(), &[rows(9, 0, 1)], &crate::tables::SendOptions::named("mix")).unwrap();
        let err = append(&s, "mix", &schema(), &[rows(0, 5, 1)], &AppendOptions::default()).unwrap_err();
        assert!(err.to_string().contains("remove_table"), "{err}");
        // Publications are the stream's own.
        crate::streams::publish(&s, "mix").unwrap();
        append(&s, "mix", &schema(), &[rows(0, 5, 1)], &AppendOptions::default()).unwrap();
    }

    #[test]
    fn time_range_is_recorded_and_unknown_time_column_refused() {
        let (_t, s) = store();
        let line = append(&s, "st", &schema(), &[rows(0, 5, 10)], &AppendOptions::with_time_column(Some("ts".into())))
            .unwrap()
            .unwrap();
        assert_eq!((line.tmin, line.tmax), (Some(5000), Some(14000)));
        let err = append(&s, "st", &schema(), &[rows(0, 5, 1)], &AppendOptions::with_time_column(Some("nope".into())));
        assert!(matches!(err, Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn a_load_state_is_written_on_the_chunk_line_under_the_load_key() {
        let (_t, s) = store();
        let mut state = serde_json::Map::new();
        state.insert("cursor".into(), "seq".into());
        state.insert("last".into(), 9.into());
        let opts = AppendOptions { load: Some(state.clone()), ..AppendOptions::default() };
        append(&s, "st", &schema(), &[rows(0, 0, 10)], &opts).unwrap();
        append(&s, "st", &schema(), &[rows(0, 10, 1)], &AppendOptions::default()).unwrap();
        let text = std::fs::read_to_string(log_path(&s, "st")).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first[crate::protocol::METADATA_LOAD], serde_json::Value::Object(state.clone()));
        let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert!(second.get(crate::protocol::METADATA_LOAD).is_none(), "absent unless given: {second}");
        let lines = crate::streams::chunks(&s, "st").unwrap();
        assert_eq!((lines[0].load.as_ref(), lines[1].load.as_ref()), (Some(&state), None));
    }

    #[test]
    fn one_load_lock_at_a_time_and_it_does_not_make_a_stream() {
        let (_t, s) = store();
        let held = load_lock(&s, "ll").unwrap().expect("free");
        assert!(load_lock(&s, "ll").unwrap().is_none(), "held by the first");
        assert!(!crate::streams::exists(&s, "ll") && crate::streams::list(&s).is_empty());
        drop(held);
        assert!(load_lock(&s, "ll").unwrap().is_some(), "released on drop");
    }

    #[test]
    fn a_log_created_but_not_yet_written_is_not_a_stream() {
        // The first append creates the log, then writes its line: in between, a reader
        // told "it is a stream" would find no chunk to read.
        let (_t, s) = store();
        prepare_dir(&s, "early").unwrap();
        std::fs::File::create(log_path(&s, "early")).unwrap();
        assert!(!crate::streams::exists(&s, "early") && crate::streams::list(&s).is_empty());
        append(&s, "early", &schema(), &[rows(0, 0, 1)], &AppendOptions::default()).unwrap();
        assert!(crate::streams::exists(&s, "early"));
        assert_eq!(crate::streams::list(&s), vec!["early".to_string()]);
        assert_eq!(read(&s, "early", &ReadSelection::default()).unwrap().rows, 1);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_closed_off() {
        let (_t, s) = store();
        append(&s, "st", &schema(), &[rows(0, 0, 2)], &AppendOptions::default()).unwrap();
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(log_path(&s, "st")).unwrap();
        f.write_all(b"{\"chunk\":\"9-dead.arr").unwrap();
        drop(f);
        assert_eq!(read(&s, "st", &ReadSelection::default()).unwrap().rows, 2);
        append(&s, "st", &schema(), &[rows(0, 2, 2)], &AppendOptions::default()).unwrap();
        assert_eq!(read(&s, "st", &ReadSelection::default()).unwrap().rows, 4);
    }
}
