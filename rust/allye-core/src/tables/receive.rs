//! Receiving a table from a stream whose size is known before it starts (an Arrow Flight
//! `DoGet` planned by `GetFlightInfo`): the batches are copied, as they arrive and at
//! whatever alignment they come, straight into their place in ONE record batch of the new
//! version's file payload ([`crate::payload::PlacedFile`]), so the receive makes one copy
//! and a load of the result stays zero-copy. The version is published (`ready`) only at
//! the end; a stream that breaks, ends early or holds more than announced leaves an
//! `error` line and no file, and the previous version stays the current one.

use arrow_array::RecordBatch;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_schema::SchemaRef;

use super::send_stream::publish_file;
use crate::error::Result;
use crate::manifest::Event;
use crate::payload::PlacedFile;
use crate::store::Store;

/// What the sender announced about the stream before it started.
#[derive(Debug, Clone, Copy)]
pub struct Announced<'a> {
    /// The stream's rows in total.
    pub rows: usize,
    /// The nulls of each column in total.
    pub null_counts: &'a [usize],
}

/// Receives one new version of `opts.table_name` in place (see the module docs): `fill`
/// copies the stream in through [`PlacedFile::push`] or [`PlacedFile::push_stream`].
/// `opts.shape` is recorded when given, else rows x columns; `opts.transport`,
/// `max_shm_bytes`, `chunk_rows` and `compression` are not used (an uncompressed file).
/// Errors before the `writing` line when the schema is not
/// [`crate::payload::placeable`]: the caller takes the ordinary path then.
pub fn receive(
    store: &Store,
    schema: &SchemaRef,
    announced: Announced<'_>,
    opts: &super::SendOptions,
    fill: impl FnOnce(&mut PlacedFile) -> Result<()>,
) -> Result<Event> {
    if !crate::payload::placeable(schema) {
        return Err(crate::error::Error::InvalidArgument(
            "a table received in place needs fixed-width columns only (numbers, decimals, dates and times)".into(),
        ));
    }
    publish_file(store, schema, opts, opts.shape, |_| Ok(()), |path| {
        let mut placed = PlacedFile::create(path, schema, announced.rows, announced.null_counts)?;
        fill(&mut placed)?;
        let rows = placed.filled() as u64;
        Ok((placed.finish(opts.durable)?, rows))
    })
}

/// [`receive`] of the batches of an Arrow C stream (its schema, metadata included, is
/// the table's), pulled one at a time; an error of the stream fails the receive.
pub fn receive_stream(
    store: &Store,
    announced: Announced<'_>,
    opts: &super::SendOptions,
    stream: &mut FFI_ArrowArrayStream,
) -> Result<Event> {
    let schema = crate::payload::stream_schema(stream)?;
    receive(store, &schema, announced, opts, |placed| placed.push_stream(stream))
}

/// [`receive`] of batches already decoded (any alignment arrow-rs accepts).
pub fn receive_batches(
    store: &Store,
    schema: &SchemaRef,
    announced: Announced<'_>,
    opts: &super::SendOptions,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<Event> {
    receive(store, schema, announced, opts, |placed| batches.into_iter().try_for_each(|b| placed.push(&b?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::manifest;
    use crate::payload::{write_file, Compression};
    use crate::protocol::Status;
    use crate::tables::{get, send_stream, SendOptions};
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatchIterator, TimestampMicrosecondArray};
    use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn table(rows: i64) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("f", DataType::Float64, true),
            Field::new("i", DataType::Int64, false),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        ]));
        let f: ArrayRef = Arc::new(Float64Array::from_iter((0..rows).map(|v| (v % 7 != 3).then_some(v as f64 * 0.5))));
        let i: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let t: ArrayRef = Arc::new(TimestampMicrosecondArray::from_iter_values(0..rows).with_timezone("UTC"));
        (schema.clone(), RecordBatch::try_new(schema, vec![f, i, t]).unwrap())
    }

    /// The batch cut into uneven slices (odd row offsets, so bitmaps are shifted).
    fn pieces(batch: &RecordBatch) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        let mut at = 0;
        for len in [1, 13, 700, 3, 2048].iter().cycle() {
            if at >= batch.num_rows() {
                break;
            }
            let len = (*len).min(batch.num_rows() - at);
            out.push(batch.slice(at, len));
            at += len;
        }
        out
    }

    fn nulls(batch: &RecordBatch) -> Vec<usize> {
        batch.columns().iter().map(|c| c.null_count()).collect()
    }

    #[test]
    fn slices_arrive_as_one_batch_byte_identical_to_a_send() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let (schema, batch) = table(10_001);
        let counts = nulls(&batch);
        let ann = Announced { rows: batch.num_rows(), null_counts: &counts };
        let mut opts = SendOptions::named("t");
        opts.shape = Some([10_001, 2]);
        let ready = receive_batches(&store, &schema, ann, &opts, pieces(&batch).into_iter().map(Ok)).unwrap();
        let payload = ready.payload.as_ref().unwrap();
        assert_eq!(payload.shape, [10_001, 2]);
        let (_, data) = get(&store, "t", None, true).unwrap();
        assert_eq!(data.batches.len(), 1, "one record batch, whatever the stream's");
        assert_eq!(data.batches[0], batch);
        // The same bytes the ordinary writer produces for the joined table.
        let reference = tmp.path().join("reference.arrow");
        write_file(&reference, &schema, std::slice::from_ref(&batch), 0, Compression::None, false).unwrap();
        assert_eq!(std::fs::read(&payload.locator).unwrap(), std::fs::read(&reference).unwrap());
        assert_eq!(payload.data_size, std::fs::metadata(&reference).unwrap().len());
    }

    #[test]
    fn an_arrow_c_stream_is_received_batch_by_batch() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let (schema, batch) = table(5000);
        let counts = nulls(&batch);
        let reader = RecordBatchIterator::new(pieces(&batch).into_iter().map(Ok), schema.clone());
        let mut stream = FFI_ArrowArrayStream::new(Box::new(reader));
        let ann = Announced { rows: 5000, null_counts: &counts };
        let ready = receive_stream(&store, ann, &SendOptions::named("t"), &mut stream).unwrap();
        assert_eq!(ready.payload.as_ref().unwrap().shape, [5000, 3]);
        let (_, data) = get(&store, "t", None, true).unwrap();
        assert_eq!(data.batches, vec![batch]);
    }

    fn payload_files(store: &Store) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(store.payload_dir())
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn a_broken_short_long_or_misannounced_stream_publishes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let (schema, batch) = table(3000);
        let counts = nulls(&batch);
        let first = send_stream(&store, &schema, std::iter::once(Ok(batch.clone())), &SendOptions::named("t"), |_| Ok(())).unwrap();
        let before = payload_files(&store);
        let opts = SendOptions::named("t");
        let ann = Announced { rows: 3000, null_counts: &counts };

        // The connection breaks mid-stream (an error from the C stream).
        let broken = pieces(&batch)
            .into_iter()
            .enumerate()
            .map(|(k, b)| if k < 3 { Ok(b) } else { Err(ArrowError::IoError("connection reset".into(), std::io::Error::other("reset"))) });
        let mut stream = FFI_ArrowArrayStream::new(Box::new(RecordBatchIterator::new(broken, schema.clone())));
        let err = receive_stream(&store, ann, &opts, &mut stream).unwrap_err();
        assert!(matches!(err, Error::StreamBroken { rows: 714, .. }), "{err}");
        assert!(err.to_string().contains("connection reset"), "{err}");
        // It ends early, or holds more rows than announced.
        let err = receive_batches(&store, &schema, ann, &opts, [Ok(batch.slice(0, 2999))]).unwrap_err();
        assert!(err.to_string().contains("2999 of the 3000 rows"), "{err}");
        let err = receive_batches(&store, &schema, ann, &opts, [Ok(batch.clone()), Ok(batch.slice(0, 1))]).unwrap_err();
        assert!(err.to_string().contains("more than the 3000 rows"), "{err}");
        // Its null counts are not the announced ones (both ways).
        let fewer = [counts[0] - 1, 0, 0];
        let err = receive_batches(&store, &schema, Announced { rows: 3000, null_counts: &fewer }, &opts, [Ok(batch.clone())]).unwrap_err();
        assert!(err.to_string().contains("more nulls"), "{err}");
        let more = [counts[0] + 1, 0, 0];
        let err = receive_batches(&store, &schema, Announced { rows: 3000, null_counts: &more }, &opts, [Ok(batch.clone())]).unwrap_err();
        assert!(err.to_string().contains("nulls"), "{err}");
        // Other column types than planned.
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)])),
            vec![Arc::new(arrow_array::Int32Array::from(vec![1]))],
        )
        .unwrap();
        let err = receive_batches(&store, &schema, ann, &opts, [Ok(other)]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");

        assert_eq!(payload_files(&store), before, "no temporary or orphaned payload");
        let (ev, _) = get(&store, "t", None, true).unwrap();
        assert_eq!(ev.id, first.id);
        let statuses: Vec<Status> = manifest::read_all(&store).unwrap().into_iter().map(|e| e.status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == Status::Ready).count(), 1);
        assert_eq!(statuses.iter().filter(|s| **s == Status::Error).count(), 6);
    }

    #[test]
    fn variable_width_columns_are_refused_before_any_line() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let err = receive_batches(&store, &schema, Announced { rows: 1, null_counts: &[0] }, &SendOptions::named("t"), []).unwrap_err();
        assert!(err.to_string().contains("fixed-width"), "{err}");
        assert!(manifest::read_all(&store).unwrap_or_default().is_empty());
    }
}
