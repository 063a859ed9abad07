//! Sending a table whose batches arrive one by one (a file, a query, a loader): each
//! batch is written into the payload as it comes and dropped, so a source larger than
//! memory is never held whole, and the version is published (`ready`) only at the end.
//!
//! The payload is always an Arrow IPC **file**: a shared-memory segment is sized before
//! it is written and the size of a stream is unknown until its end. The file is written
//! under its temporary name and renamed when complete, exactly as [`super::send`] does;
//! an error from the stream (the source raised, was cancelled, lost its connection)
//! removes the temporary file and appends an `error` line: the previous version stays
//! the current one and nothing half-written is left.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::{Map, Value};

use super::send::{check, publish_ready, record_failure, table_name_for, writing_event, Planned};
use crate::error::Result;
use crate::manifest::{self, Event, PayloadRef};
use crate::payload::write_file_from;
use crate::protocol::{Status, METADATA_KEY};
use crate::store::Store;
use crate::sys::time;
use crate::sys::trust::TrustedDir;
use crate::tables::schema_sha256;

/// Sends the batches `batches` yields as one new version of `opts.table_name` (see the
/// module docs). `opts.transport`, `max_shm_bytes`, `chunk_rows` and `shape` are not
/// used: the payload is a file of the batches as they come, and the shape is counted.
///
/// `finish` runs after the last batch is written and before `ready` is appended: what it
/// puts into the metadata map is recorded on the `ready` line only, in the same append as
/// the payload's publication (a loader's incremental state: committed with its rows or
/// not at all). An error from `finish` fails the send like an error from the stream.
pub fn send_stream(
    store: &Store,
    schema: &SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    opts: &super::SendOptions,
    finish: impl FnOnce(&mut Map<String, Value>) -> Result<()>,
) -> Result<Event> {
    publish_file(store, schema, opts, None, finish, |dir, name| {
        let mut rows = 0u64;
        let counted = batches.inspect(|b| {
            if let Ok(b) = b {
                rows += b.num_rows() as u64;
            }
        });
        let size = write_file_from(&dir, name, schema, counted, opts.compression, opts.durable)?;
        Ok((size, rows))
    })
}

/// Publishes one new version whose file payload `write` writes into the store's
/// `payloads/` (given as its checked handle, with the file name; under a temporary name,
/// renamed when complete, returning its size and row count) between the `writing` and
/// the `ready` line; a failure of `write` or `finish` removes the file and appends an
/// `error` line. `finish` as for [`send_stream`]; `shape` is the recorded shape, counted
/// (rows x columns) when `None`.
pub(super) fn publish_file(
    store: &Store,
    schema: &SchemaRef,
    opts: &super::SendOptions,
    shape: Option<[u64; 2]>,
    finish: impl FnOnce(&mut Map<String, Value>) -> Result<()>,
    write: impl FnOnce(TrustedDir, &str) -> Result<(u64, u64)>,
) -> Result<Event> {
    check(opts)?;
    let store = &store.pin(true)?;
    let payloads = store.ensure_payloads()?;
    let id = crate::sys::ids::new_v4().to_string();
    let table_name = table_name_for(opts, &id);
    let plan = Planned::file(store, &id);
    let created_at = time::now_iso();
    let writing = writing_event(opts, id, table_name, &plan, &created_at);
    manifest::append(store, &writing, opts.durable)?;

    let Planned::File(path) = &plan else { unreachable!("a stream is always written to a file") };
    let name = path.file_name().expect("a planned file has a name").to_string_lossy().into_owned();
    let mut final_metadata = writing.metadata.clone();
    let written = write(payloads, &name).and_then(|done| finish(&mut final_metadata).map(|()| done));
    let (data_size, rows) = match written {
        Ok(n) => n,
        Err(e) => {
            plan.remove(store);
            record_failure(store, &writing, &e, opts.durable);
            return Err(e);
        }
    };
    // `finish` may not move the payload: the writer's record stays the one `writing` named.
    final_metadata.insert(METADATA_KEY.into(), writing.metadata[METADATA_KEY].clone());
    let ready = Event {
        status: Status::Ready,
        payload: Some(PayloadRef {
            transport: plan.transport(),
            locator: plan.locator(),
            data_size,
            shape: shape.unwrap_or([rows, schema.fields().len() as u64]),
            schema_sha256: opts.schema_sha256.clone().unwrap_or_else(|| schema_sha256(schema)),
            created_at,
            expires_at: time::expires_at_iso(opts.ttl_sec),
        }),
        metadata: final_metadata,
        ..writing
    };
    publish_ready(store, &plan, &ready, opts)?;
    log::debug!("streamed {:?}: {rows} rows into {} ({data_size} bytes)", ready.table_name, plan.locator());
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::tables::test_support::payload_files;
    use crate::tables::{get, SendOptions};
    use arrow_array::{ArrayRef, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    use serde_json::json;
    use std::sync::Arc;

    fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(from..from + n));
        RecordBatch::try_new(schema.clone(), vec![a]).unwrap()
    }

    #[test]
    fn batches_are_written_as_they_come_and_state_lands_on_the_ready_line_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batches = (0..5).map(|k| Ok(batch(&schema, k * 100, 100)));
        let ready = send_stream(&store, &schema, batches, &SendOptions::named("t"), |m| {
            m.insert("state".into(), json!({"last": 499}));
            Ok(())
        })
        .unwrap();
        assert_eq!(ready.payload.as_ref().unwrap().shape, [500, 1]);
        assert_eq!(ready.metadata["state"]["last"], 499);
        let lines = manifest::read_all(&store).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].metadata.get("state").is_none(), "the writing line carries no state");
        let (_, data) = get(&store, "t", None, true).unwrap();
        assert_eq!(data.batches.len(), 5);
        assert_eq!(data.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 500);
    }

    #[test]
    fn callers_adc_metadata_is_merged_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let mut opts = SendOptions::named("t");
        opts.metadata.insert(METADATA_KEY.into(), json!({"origin": "peer:1"}));
        let ready = send_stream(&store, &schema, std::iter::once(Ok(batch(&schema, 0, 3))), &opts, |_| Ok(())).unwrap();
        let adc = &ready.metadata[METADATA_KEY];
        assert_eq!(adc["origin"], "peer:1");
        assert!(adc.get("writer").is_some() && adc["locator"] == json!(ready.payload.as_ref().unwrap().locator));
    }

    #[test]
    fn a_failing_stream_or_finish_leaves_the_previous_version_and_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let first =
            send_stream(&store, &schema, std::iter::once(Ok(batch(&schema, 0, 10))), &SendOptions::named("t"), |_| {
                Ok(())
            })
            .unwrap();
        let before = payload_files(&store);
        let failing = (0..3).map(|k| {
            if k < 2 {
                Ok(batch(&schema, k, 10))
            } else {
                Err(Error::InvalidArgument("source broke".into()))
            }
        });
        let err = send_stream(&store, &schema, failing, &SendOptions::named("t"), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("source broke"));
        let err =
            send_stream(&store, &schema, std::iter::once(Ok(batch(&schema, 0, 1))), &SendOptions::named("t"), |_| {
                Err(Error::InvalidArgument("state refused".into()))
            })
            .unwrap_err();
        assert!(err.to_string().contains("state refused"));
        assert_eq!(payload_files(&store), before, "no temporary or orphaned payload");
        let (ev, _) = get(&store, "t", None, true).unwrap();
        assert_eq!(ev.id, first.id);
        let statuses: Vec<Status> = manifest::read_all(&store).unwrap().into_iter().map(|e| e.status).collect();
        assert_eq!(
            statuses,
            [Status::Writing, Status::Ready, Status::Writing, Status::Error, Status::Writing, Status::Error]
        );
    }
}
