//! Receiving a table from a stream whose size is known before it starts (an Arrow Flight
//! `DoGet` planned by `GetFlightInfo`): the batches are copied, as they arrive and at
//! whatever alignment they come, straight into their place in ONE record batch of the new
//! version's file payload ([`crate::payload::PlacedFile`]), so the receive makes one copy
//! and a load of the result stays zero-copy. The version is published (`ready`) only at
//! the end; a stream that breaks, ends early or holds more than announced leaves an
//! `error` line and no file, and the previous version stays the current one.

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::RecordBatch;
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
    /// The bytes of values of each variable-width column (strings, bytes) in total, in
    /// schema order (`None` for the other columns); empty when there is no such column.
    pub data_bytes: &'a [Option<usize>],
}

/// Whether a table of `schema` can be received in place: every column numbers,
/// decimals, dates and times, booleans, strings or bytes (no dictionaries, views or
/// nested types; see [`crate::payload::placeable`]), and the bytes of values of every
/// string/bytes column announced in `data_bytes` (one entry a column, in schema order;
/// empty: none announced, so no such column may be there).
pub fn receivable(schema: &SchemaRef, data_bytes: &[Option<usize>]) -> bool {
    crate::payload::placeable(schema)
        && (data_bytes.is_empty() || data_bytes.len() == schema.fields().len())
        && schema.fields().iter().enumerate().all(|(i, f)| {
            !crate::payload::variable_width(f.data_type()) || data_bytes.get(i).copied().flatten().is_some()
        })
}

/// Receives one new version of `opts.table_name` in place (see the module docs): `fill`
/// copies the stream in through [`PlacedFile::push`] or [`PlacedFile::push_stream`].
/// `opts.shape` is recorded when given, else rows x columns; `opts.transport`,
/// `max_shm_bytes`, `chunk_rows` and `compression` are not used (an uncompressed file).
/// Errors before the `writing` line when the schema is not
/// [`crate::payload::placeable`] or a variable-width column's bytes were not announced: the caller takes the ordinary path then.
pub fn receive(
    store: &Store,
    schema: &SchemaRef,
    announced: Announced<'_>,
    opts: &super::SendOptions,
    fill: impl FnOnce(&mut PlacedFile) -> Result<()>,
) -> Result<Event> {
    if !crate::payload::placeable(schema) {
        return Err(crate::error::Error::InvalidArgument(
            "a table received in place needs columns of numbers, decimals, dates and times, booleans, strings or bytes \
             (no dictionaries, views or nested types): receive it whole"
                .into(),
        ));
    }
    if let Some(f) = schema.fields().iter().enumerate().find_map(|(i, f)| {
        (crate::payload::variable_width(f.data_type()) && announced.data_bytes.get(i).copied().flatten().is_none())
            .then_some(f)
    }) {
        return Err(crate::error::Error::InvalidArgument(format!(
            "the bytes of values of column {:?} were not announced: receive the table whole",
            f.name()
        )));
    }
    publish_file(
        store,
        schema,
        opts,
        opts.shape,
        |_| Ok(()),
        |dir, name| {
            let mut placed =
                PlacedFile::create(dir, name, schema, announced.rows, announced.null_counts, announced.data_bytes)?;
            fill(&mut placed)?;
            let rows = placed.filled() as u64;
            Ok((placed.finish(opts.durable)?, rows))
        },
    )
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

    fn trusted(p: &std::path::Path) -> crate::sys::trust::TrustedDir {
        crate::sys::trust::TrustedDir::open_root(p).unwrap().unwrap()
    }
    use crate::protocol::Status;
    use crate::tables::test_support::payload_files;
    use crate::tables::{get, send_stream, SendOptions};
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, LargeBinaryArray, LargeStringArray,
        RecordBatchIterator, StringArray, TimestampMicrosecondArray,
    };
    use arrow_data::ArrayData;
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
        let ann = Announced { rows: batch.num_rows(), null_counts: &counts, data_bytes: &[] };
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
        write_file(
            &trusted(tmp.path()),
            reference.file_name().unwrap().to_str().unwrap(),
            &schema,
            std::slice::from_ref(&batch),
            0,
            Compression::None,
            false,
        )
        .unwrap();
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
        let ann = Announced { rows: 5000, null_counts: &counts, data_bytes: &[] };
        let ready = receive_stream(&store, ann, &SendOptions::named("t"), &mut stream).unwrap();
        assert_eq!(ready.payload.as_ref().unwrap().shape, [5000, 3]);
        let (_, data) = get(&store, "t", None, true).unwrap();
        assert_eq!(data.batches, vec![batch]);
    }

    #[test]
    fn a_broken_short_long_or_misannounced_stream_publishes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let (schema, batch) = table(3000);
        let counts = nulls(&batch);
        let first =
            send_stream(&store, &schema, std::iter::once(Ok(batch.clone())), &SendOptions::named("t"), |_| Ok(()))
                .unwrap();
        let before = payload_files(&store);
        let opts = SendOptions::named("t");
        let ann = Announced { rows: 3000, null_counts: &counts, data_bytes: &[] };

        // The connection breaks mid-stream (an error from the C stream).
        let broken = pieces(&batch).into_iter().enumerate().map(|(k, b)| {
            if k < 3 {
                Ok(b)
            } else {
                Err(ArrowError::IoError("connection reset".into(), std::io::Error::other("reset")))
            }
        });
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
        let err = receive_batches(
            &store,
            &schema,
            Announced { rows: 3000, null_counts: &fewer, data_bytes: &[] },
            &opts,
            [Ok(batch.clone())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("more nulls"), "{err}");
        let more = [counts[0] + 1, 0, 0];
        let err = receive_batches(
            &store,
            &schema,
            Announced { rows: 3000, null_counts: &more, data_bytes: &[] },
            &opts,
            [Ok(batch.clone())],
        )
        .unwrap_err();
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

    /// Booleans, strings and bytes (both offset widths), with nulls, empty and
    /// multi-byte values.
    fn mixed(rows: usize) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("bin", DataType::Binary, false),
            Field::new("ls", DataType::LargeUtf8, true),
            Field::new("lb", DataType::LargeBinary, true),
            Field::new("flag", DataType::Boolean, false),
            Field::new("i", DataType::Int32, false),
        ]));
        let text = |v: usize| match v % 5 {
            0 => String::new(),
            1 => format!("ü{v}€"),
            _ => "x".repeat(v % 37),
        };
        let b: ArrayRef = Arc::new(BooleanArray::from_iter((0..rows).map(|v| (v % 11 != 4).then_some(v % 3 == 0))));
        let s: ArrayRef = Arc::new(StringArray::from_iter((0..rows).map(|v| (v % 9 != 2).then(|| text(v)))));
        let bin: ArrayRef = Arc::new(BinaryArray::from_iter_values((0..rows).map(|v| vec![v as u8; v % 5])));
        let ls: ArrayRef = Arc::new(LargeStringArray::from_iter((0..rows).map(|v| (v % 4 != 1).then(|| text(v + 1)))));
        let lb: ArrayRef =
            Arc::new(LargeBinaryArray::from_iter((0..rows).map(|v| (v % 6 != 0).then(|| vec![7u8; v % 3]))));
        let flag: ArrayRef = Arc::new(BooleanArray::from_iter((0..rows).map(|v| Some(v % 7 < 3))));
        let i: ArrayRef = Arc::new(arrow_array::Int32Array::from_iter_values(0..rows as i32));
        (schema.clone(), RecordBatch::try_new(schema, vec![b, s, bin, ls, lb, flag, i]).unwrap())
    }

    /// What a server announces of a batch: the bytes of values of each variable-width column.
    fn bytes(batch: &RecordBatch) -> Vec<Option<usize>> {
        batch
            .columns()
            .iter()
            .map(|c| {
                let d = c.to_data();
                let o = |k: usize| match d.data_type() {
                    DataType::Utf8 | DataType::Binary => Some(d.buffers()[0].typed_data::<i32>()[k] as usize),
                    DataType::LargeUtf8 | DataType::LargeBinary => Some(d.buffers()[0].typed_data::<i64>()[k] as usize),
                    _ => None,
                };
                Some(o(d.offset() + d.len())? - o(d.offset())?)
            })
            .collect()
    }

    #[test]
    fn booleans_strings_and_bytes_arrive_byte_identical_to_a_send() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        // A slice of a larger table: offsets that do not start at 0, bits not at a byte.
        let (schema, whole) = mixed(12_000);
        let batch = whole.slice(5, 10_003);
        let (counts, data) = (nulls(&batch), bytes(&batch));
        assert!(data[1].unwrap() > 0 && counts[1] > 0);
        let ann = Announced { rows: batch.num_rows(), null_counts: &counts, data_bytes: &data };
        let ready = receive_batches(&store, &schema, ann, &SendOptions::named("m"), pieces(&batch).into_iter().map(Ok))
            .unwrap();
        let payload = ready.payload.as_ref().unwrap();
        let (_, got) = get(&store, "m", None, true).unwrap();
        assert_eq!(got.batches.len(), 1);
        assert_eq!(got.batches[0], batch);
        let reference = tmp.path().join("reference.arrow");
        write_file(
            &trusted(tmp.path()),
            reference.file_name().unwrap().to_str().unwrap(),
            &schema,
            std::slice::from_ref(&batch),
            0,
            Compression::None,
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read(&payload.locator).unwrap(), std::fs::read(&reference).unwrap());

        // The same through the C stream (pipelined), and a column of only empty strings.
        let schema2 = Arc::new(Schema::new(vec![
            Field::new("e", DataType::Utf8, false),
            Field::new("b", DataType::Boolean, false),
        ]));
        let empty = RecordBatch::try_new(
            schema2.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n("", 999))),
                Arc::new(BooleanArray::from(vec![true; 999])),
            ],
        )
        .unwrap();
        for (schema, batch) in [(schema.clone(), batch.clone()), (schema2, empty)] {
            let (counts, data) = (nulls(&batch), bytes(&batch));
            let reader = RecordBatchIterator::new(pieces(&batch).into_iter().map(Ok), schema.clone());
            let mut stream = FFI_ArrowArrayStream::new(Box::new(reader));
            let ann = Announced { rows: batch.num_rows(), null_counts: &counts, data_bytes: &data };
            let ready = receive_stream(&store, ann, &SendOptions::named("c"), &mut stream).unwrap();
            let (_, got) = get(&store, "c", None, true).unwrap();
            assert_eq!(got.batches, vec![batch.clone()]);
            let reference = tmp.path().join("reference2.arrow");
            write_file(
                &trusted(tmp.path()),
                reference.file_name().unwrap().to_str().unwrap(),
                &schema,
                std::slice::from_ref(&batch),
                0,
                Compression::None,
                false,
            )
            .unwrap();
            assert_eq!(
                std::fs::read(&ready.payload.as_ref().unwrap().locator).unwrap(),
                std::fs::read(&reference).unwrap()
            );
        }
    }

    #[test]
    fn misannounced_or_broken_strings_publish_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let (schema, batch) = mixed(4000);
        let (counts, data) = (nulls(&batch), bytes(&batch));
        let opts = SendOptions::named("m");
        let mut fewer = data.clone();
        fewer[1] = Some(data[1].unwrap() - 1);
        let err = receive_batches(
            &store,
            &schema,
            Announced { rows: 4000, null_counts: &counts, data_bytes: &fewer },
            &opts,
            pieces(&batch).into_iter().map(Ok),
        )
        .unwrap_err();
        assert!(err.to_string().contains("more bytes of values"), "{err}");
        let mut more = data.clone();
        more[3] = Some(data[3].unwrap() + 1);
        let err = receive_batches(
            &store,
            &schema,
            Announced { rows: 4000, null_counts: &counts, data_bytes: &more },
            &opts,
            [Ok(batch.clone())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("bytes of values"), "{err}");
        // A boolean column's nulls are checked as any other's.
        let mut wrong = counts.clone();
        wrong[0] += 1;
        let err = receive_batches(
            &store,
            &schema,
            Announced { rows: 4000, null_counts: &wrong, data_bytes: &data },
            &opts,
            [Ok(batch.clone())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("nulls"), "{err}");
        // Cut mid-stream.
        let broken = pieces(&batch).into_iter().enumerate().map(|(k, b)| {
            if k < 2 {
                Ok(b)
            } else {
                Err(ArrowError::IoError("reset".into(), std::io::Error::other("reset")))
            }
        });
        let mut stream = FFI_ArrowArrayStream::new(Box::new(RecordBatchIterator::new(broken, schema.clone())));
        let ann = Announced { rows: 4000, null_counts: &counts, data_bytes: &data };
        let err = receive_stream(&store, ann, &opts, &mut stream).unwrap_err();
        assert!(matches!(err, Error::StreamBroken { rows: 14, .. }), "{err}");
        // A string cut inside a UTF-8 character (offsets built by hand: "ü" is 2 bytes).
        let s_schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Binary, false)]));
        let cut = BinaryArray::from_iter_values([&b"\xc3"[..], &b"\xbc"[..]]);
        let cut = RecordBatch::try_new(s_schema.clone(), vec![Arc::new(cut)]).unwrap();
        let u_schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
        // SAFETY (a test): deliberately invalid UTF-8, only ever handed to the receive.
        let bad = unsafe { cut.column(0).to_data().into_builder().data_type(DataType::Utf8).build_unchecked() };
        let as_utf8 = RecordBatch::try_new(u_schema.clone(), vec![arrow_array::make_array(bad)]).unwrap();
        let err = receive_batches(
            &store,
            &u_schema,
            Announced { rows: 2, null_counts: &[0], data_bytes: &[Some(2)] },
            &opts,
            [Ok(as_utf8)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
        // Offsets that fall back.
        let falling = ArrayData::builder(DataType::Binary)
            .len(3)
            .add_buffer(arrow_buffer::Buffer::from_slice_ref([0i32, 2, 1, 2]))
            .add_buffer(arrow_buffer::Buffer::from_slice_ref(b"ab"));
        // SAFETY (a test): deliberately invalid offsets, only ever handed to the receive.
        let falling =
            RecordBatch::try_new(s_schema.clone(), vec![arrow_array::make_array(unsafe { falling.build_unchecked() })])
                .unwrap();
        let err = receive_batches(
            &store,
            &s_schema,
            Announced { rows: 3, null_counts: &[0], data_bytes: &[Some(2)] },
            &opts,
            [Ok(falling)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("do not rise"), "{err}");
        // As bytes the same is fine.
        receive_batches(
            &store,
            &s_schema,
            Announced { rows: 2, null_counts: &[0], data_bytes: &[Some(2)] },
            &SendOptions::named("bin"),
            [Ok(cut)],
        )
        .unwrap();

        assert_eq!(payload_files(&store).len(), 1, "only the bytes table's payload");
        assert!(get(&store, "m", None, true).is_err());
        let statuses: Vec<Status> = manifest::read_all(&store).unwrap().into_iter().map(|e| e.status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == Status::Ready).count(), 1);
        assert_eq!(statuses.iter().filter(|s| **s == Status::Error).count(), 6);
    }

    #[test]
    fn dictionaries_and_unannounced_strings_are_refused_before_any_line() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let dict = Arc::new(Schema::new(vec![Field::new(
            "d",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        )]));
        let ann = Announced { rows: 1, null_counts: &[0], data_bytes: &[] };
        let err = receive_batches(&store, &dict, ann, &SendOptions::named("t"), []).unwrap_err();
        assert!(err.to_string().contains("no dictionaries"), "{err}");
        let strings = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let err = receive_batches(&store, &strings, ann, &SendOptions::named("t"), []).unwrap_err();
        assert!(err.to_string().contains("not announced"), "{err}");
        assert!(manifest::read_all(&store).unwrap_or_default().is_empty());
    }
}
