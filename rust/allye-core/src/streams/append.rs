//! Appending one chunk: the chunk file first (complete, renamed into place), then its line.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};

use crate::error::{Error, IoContext, Result};
use crate::manifest::append_line;
use crate::payload::write_file;
use crate::protocol::{
    check_table_name, Compression, STREAM_LOAD_LOCK_FILE, STREAM_LOCK_FILE, STREAM_LOG_FILE, STREAM_NAME_FILE,
};
use crate::store::Store;
use crate::streams::{now_ns, stream_dir, view, ChunkLine};
use crate::sys::lock::ManifestLock;
use crate::sys::process::WriterIdentity;
use crate::sys::trust::Open;

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

/// The columns (names and types) a process has seen each stream hold: checked once per
/// process from the stream's first chunk, then from memory.
static SCHEMAS: Mutex<Option<HashMap<PathBuf, SchemaRef>>> = Mutex::new(None);

fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn describe(schema: &SchemaRef) -> String {
    let cols: Vec<String> = schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect();
    format!("[{}]", cols.join(", "))
}

fn check_schema(store: &Store, table: &str, schema: &SchemaRef) -> Result<()> {
    let dir = stream_dir(store, table);
    let known = SCHEMAS.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).get(&dir).cloned();
    let known = match known {
        Some(s) => Some(s),
        None => view::first_schema(store, table)?,
    };
    match known {
        Some(k) if !same_columns(&k, schema) => Err(Error::InvalidArgument(format!(
            "stream {table:?} holds columns {}; this append has {}: append rows of the same columns, or remove_table({table:?}) first",
            describe(&k),
            describe(schema)
        ))),
        _ => {
            SCHEMAS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(HashMap::new)
                .insert(dir, schema.clone());
            Ok(())
        }
    }
}

/// Forgets the columns remembered for a stream (after it was removed).
pub(crate) fn forget_schema(store: &Store, table: &str) {
    if let Some(m) = SCHEMAS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        m.remove(&stream_dir(store, table));
    }
}

/// Smallest and largest value of an integer or timestamp column, as i64.
pub(crate) fn time_range(batches: &[RecordBatch], column: &str) -> Result<Option<(i64, i64)>> {
    let mut range: Option<(i64, i64)> = None;
    for b in batches {
        let Some(idx) = b.schema().index_of(column).ok() else {
            return Err(Error::InvalidArgument(format!(
                "time_column {column:?} is not a column of the data; name one of {}",
                describe(&b.schema())
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
pub fn append(
    store: &Store,
    table: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    opts: &AppendOptions,
) -> Result<Option<ChunkLine>> {
    check_table_name(table)?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    if rows == 0 {
        return Ok(None);
    }
    let range = match &opts.time_column {
        Some(c) => time_range(batches, c)?,
        None => None,
    };
    let store = &store.pin(true)?;
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
    check_schema(store, table, schema)?;
    let writer = WriterIdentity::cached();
    let chunk = format!("{}-{}.arrow", writer.pid, uuid::Uuid::new_v4().simple());
    let bytes = write_file(&dir, &chunk, schema, batches, 0, Compression::None, opts.durable)?;
    let line = ChunkLine {
        chunk,
        rows,
        bytes,
        writer,
        appended_ns: now_ns(),
        time_column: range.and(opts.time_column.clone()),
        tmin: range.map(|r| r.0),
        tmax: range.map(|r| r.1),
        compacted: None,
        load: opts.load.clone(),
    };
    let text = serde_json::to_vec(&line)?;
    if let Err(e) = append_line(&dir, STREAM_LOG_FILE, STREAM_LOCK_FILE, text, opts.durable) {
        let _ = dir.remove_file(&line.chunk);
        return Err(e);
    }
    Ok(Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::log_path;
    use crate::streams::test_support::{rows, schema, store};
    use crate::streams::{read, ReadSelection};

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

    #[test]
    fn an_append_of_other_columns_is_refused_and_writes_nothing() {
        let (_t, s) = store();
        append(&s, "st", &schema(), &[rows(0, 0, 3)], &AppendOptions::default()).unwrap();
        let other = arrow_array::RecordBatch::try_from_iter(vec![(
            "x",
            std::sync::Arc::new(arrow_array::Int64Array::from(vec![1])) as arrow_array::ArrayRef,
        )])
        .unwrap();
        forget_schema(&s, "st"); // as a fresh process would see it
        let err = append(&s, "st", &other.schema(), &[other], &AppendOptions::default()).unwrap_err();
        assert!(err.to_string().contains("holds columns"), "{err}");
        assert_eq!(read(&s, "st", &ReadSelection::default()).unwrap().rows, 3);
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
