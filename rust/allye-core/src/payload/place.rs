//! A one-batch IPC **file** payload filled in place: the batches of a received stream are
//! copied, column by column, straight into their final place in the payload
//! file as they arrive, at any alignment (a gRPC message hands its buffers over at odd
//! addresses, which arrow-rs would otherwise copy once more to realign). The result is
//! the same Arrow IPC file a send of the joined table writes, with ONE record batch, so a
//! load stays zero-copy.
//!
//! The layout comes from arrow-ipc itself: before any data arrives, the writer is run
//! once over a *template* batch of the final row count and null counts, whose buffers
//! are untouched anonymous memory, into a sink that only records where each buffer would
//! land. The file is sized from that and filled with positioned writes (`pwrite`: on
//! tmpfs about half the cost of filling a mapping, whose pages must be faulted in even
//! when pre-allocated); validity bitmaps, merged bit by bit, are held in memory (an
//! eighth of a byte per row) and written at the end. Then the writer runs again, over
//! the real batch whose buffers are a (never touched) mapping of the file itself, into a
//! sink that writes the headers and footer and skips each body buffer that already lies
//! where it would be written. Rows or nulls that differ from the announcement are an
//! error, never a wrong file.
//!
//! Columns may be fixed-width primitives (integers, floats, decimals, temporal types),
//! booleans (bit-packed like validity: merged in memory, written at the end) and
//! variable-width strings and bytes (`Utf8`, `Binary` and their `Large` forms), whose
//! total value bytes must be announced too: their offsets are rebased batch by batch
//! onto the bytes already in place. Dictionaries, views and nested types take the
//! ordinary path (receive, join, [`super::write_file`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::ffi::FFI_ArrowArray;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{make_array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_buffer::bit_chunk_iterator::UnalignedBitChunk;
use arrow_buffer::{bit_mask::set_bits, BooleanBuffer, Buffer, NullBuffer};
use arrow_data::ArrayData;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{DataType, SchemaRef};

use crate::error::{Error, IoContext, Result};
use crate::payload::ipc::write_options;
use crate::payload::temp_name_for;
use crate::protocol::Compression;
use crate::sys::trust::{Open, TrustedDir};

/// Whether a table of this schema can be received in place (every column of a
/// placeable type: see the module docs).
pub fn placeable(schema: &SchemaRef) -> bool {
    !schema.fields().is_empty() && schema.fields().iter().all(|f| kind(f.data_type()).is_some())
}

/// Whether a column of this type needs its total value bytes announced to be received
/// in place (strings and bytes).
pub fn variable_width(dt: &DataType) -> bool {
    matches!(kind(dt), Some(Kind::Var { .. }))
}

/// How a column's values are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `width` bytes a value.
    Fixed(usize),
    /// One bit a value (booleans).
    Bits,
    /// Offsets of `width` bytes (4 or 8), then the values' bytes (`utf8`: checked to be
    /// UTF-8 cut at character boundaries).
    Var { width: usize, utf8: bool },
}

fn kind(dt: &DataType) -> Option<Kind> {
    match dt {
        DataType::Boolean => Some(Kind::Bits),
        DataType::Utf8 => Some(Kind::Var { width: 4, utf8: true }),
        DataType::Binary => Some(Kind::Var { width: 4, utf8: false }),
        DataType::LargeUtf8 => Some(Kind::Var { width: 8, utf8: true }),
        DataType::LargeBinary => Some(Kind::Var { width: 8, utf8: false }),
        DataType::Dictionary(..) => None,
        dt => dt.primitive_width().map(Kind::Fixed),
    }
}

/// Where one column's buffers lie in the file.
#[derive(Debug, Clone)]
struct Column {
    kind: Kind,
    /// The values (fixed-width), the value bits (booleans) or the offsets (variable).
    values_at: usize,
    /// The values' bytes of a variable-width column, when there are any.
    data_at: Option<usize>,
    /// The validity bitmap's offset, when the column has nulls.
    validity_at: Option<usize>,
    /// The bitmap being merged, written at `validity_at` by `finish`.
    bitmap: Vec<u8>,
    /// A boolean column's value bits being merged, written at `values_at` by `finish`.
    bits: Vec<u8>,
    nulls_expected: usize,
    nulls_seen: usize,
    /// A variable-width column's value bytes, announced and copied in so far.
    data_expected: usize,
    data_seen: usize,
    /// One batch's rebased offsets.
    scratch: Vec<u8>,
}

/// One column of a received batch, as raw memory: element `j` of the batch is at
/// `values[(offset + j) * width..]` (fixed-width), at bit `offset + j` of `values`
/// (booleans), or between offsets `offset + j` and `offset + j + 1` of `values` into
/// `data` (variable-width); its validity bit (when there is a bitmap) at bit
/// `bit_start + j` of `validity`.
struct RawColumn<'a> {
    offset: usize,
    values: &'a [u8],
    data: &'a [u8],
    validity: Option<(&'a [u8], usize)>,
}

/// Offset `i` of an offsets buffer of `width`-byte entries.
fn offset_at(offsets: &[u8], width: usize, i: usize) -> i64 {
    let b = &offsets[i * width..(i + 1) * width];
    if width == 4 {
        i32::from_ne_bytes(b.try_into().expect("4 bytes")) as i64
    } else {
        i64::from_ne_bytes(b.try_into().expect("8 bytes"))
    }
}

fn push_offset(out: &mut Vec<u8>, width: usize, v: usize) {
    if width == 4 {
        out.extend_from_slice(&(v as i32).to_ne_bytes());
    } else {
        out.extend_from_slice(&(v as i64).to_ne_bytes());
    }
}

/// An IPC file payload being filled in place (see the module docs). Made by
/// [`PlacedFile::create`], fed by [`PlacedFile::push`] / [`PlacedFile::push_stream`],
/// published under its final name by [`PlacedFile::finish`]; dropped unfinished, it
/// removes its temporary file.
pub struct PlacedFile {
    schema: SchemaRef,
    rows: usize,
    filled: usize,
    columns: Vec<Column>,
    size: usize,
    file: Option<File>,
    dir: TrustedDir,
    tmp_name: String,
    tmp: PathBuf,
    final_name: String,
    finished: bool,
}

impl std::fmt::Debug for PlacedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlacedFile")
            .field("tmp", &self.tmp)
            .field("rows", &self.rows)
            .field("filled", &self.filled)
            .finish()
    }
}

impl PlacedFile {
    /// Plans the one-batch file of `rows` rows with `null_counts[i]` nulls in column `i`
    /// and `data_bytes[i]` value bytes in variable-width column `i` (`data_bytes` may be
    /// empty when there is none), and creates it (sized, its pages left to the writes)
    /// in `dir` under the temporary name of `final_name`. Errors when the schema is not
    /// [`placeable`] or the counts do not fit it.
    pub fn create(
        dir: TrustedDir,
        final_name: &str,
        schema: &SchemaRef,
        rows: usize,
        null_counts: &[usize],
        data_bytes: &[Option<usize>],
    ) -> Result<PlacedFile> {
        if !placeable(schema) {
            return Err(Error::InvalidArgument(NOT_PLACEABLE.into()));
        }
        let data_bytes = announced_bytes(schema, data_bytes)?;
        if null_counts.len() != schema.fields().len() {
            return Err(Error::InvalidArgument(format!(
                "{} null counts given for {} columns",
                null_counts.len(),
                schema.fields().len()
            )));
        }
        if rows == 0 {
            return Err(Error::InvalidArgument("an empty table is sent, not received in place".into()));
        }
        if let Some((f, n)) =
            schema.fields().iter().zip(null_counts).find(|(f, n)| **n > rows || (**n > 0 && !f.is_nullable()))
        {
            return Err(Error::InvalidArgument(format!(
                "column {:?} cannot hold {n} nulls in {rows} rows (nullable: {})",
                f.name(),
                f.is_nullable()
            )));
        }
        let (columns, size) = plan(schema, rows, null_counts, &data_bytes)?;
        let tmp_name = temp_name_for(final_name);
        let tmp = dir.path().join(&tmp_name);
        let created = (|| -> Result<File> {
            let file = dir.open(&tmp_name, Open::CreateNewReadWrite)?.expect("an exclusive create makes the file");
            file.set_len(size as u64).ctx(|| format!("cannot create {}", tmp.display()))?;
            Ok(file)
        })();
        let file = match created {
            Ok(x) => x,
            Err(e) => {
                let _ = dir.remove_file(&tmp_name);
                return Err(e);
            }
        };
        Ok(PlacedFile {
            schema: schema.clone(),
            rows,
            filled: 0,
            columns,
            size,
            file: Some(file),
            dir,
            tmp_name,
            tmp,
            final_name: final_name.to_string(),
            finished: false,
        })
    }

    /// Rows copied in so far.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Copies `batch` in after the rows already there. Its schema must have the file's
    /// column types (names and metadata are the file's).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        self.check_types(batch.schema().fields().iter().map(|f| f.data_type().clone()).collect())?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let data: Vec<ArrayData> = batch.columns().iter().map(|c| c.to_data()).collect();
        let raw: Vec<RawColumn<'_>> = data
            .iter()
            .zip(&self.columns)
            .map(|(d, c)| {
                let end = d.offset() + d.len();
                let (values, data): (&[u8], &[u8]) = match c.kind {
                    Kind::Fixed(w) => (&d.buffers()[0].as_slice()[..end * w], &[]),
                    Kind::Bits => (&d.buffers()[0].as_slice()[..end.div_ceil(8)], &[]),
                    Kind::Var { width, .. } => {
                        (&d.buffers()[0].as_slice()[..(end + 1) * width], d.buffers()[1].as_slice())
                    }
                };
                RawColumn {
                    offset: d.offset(),
                    values,
                    data,
                    validity: d.nulls().map(|n| (n.buffer().as_slice(), n.offset())),
                }
            })
            .collect();
        self.copy_in(batch.num_rows(), &raw)
    }

    /// Pulls every batch of an Arrow C stream (a struct array per batch) and copies it in
    /// as it comes, at whatever alignment its buffers have. The stream's schema must have
    /// the file's column types. An error of the stream (a broken connection) is returned
    /// as [`Error::StreamBroken`].
    ///
    /// Pipelined: this thread waits for the next batch while a second one writes the
    /// previous (a receive and a write of the same size take about as long).
    pub fn push_stream(&mut self, stream: &mut FFI_ArrowArrayStream) -> Result<()> {
        let got = stream_schema(stream)?;
        self.check_types(got.fields().iter().map(|f| f.data_type().clone()).collect())?;
        let Some(get_next) = stream.get_next else {
            return Err(Error::InvalidArgument("the Arrow stream was already released".into()));
        };
        // Two batches in flight at most: the one being written and the next.
        let (tx, rx) = std::sync::mpsc::sync_channel::<FFI_ArrowArray>(1);
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> Result<u64> {
                for array in rx {
                    self.push_ffi(&array)?; // an error drops `rx`: the next send fails
                }
                Ok(self.filled as u64)
            });
            let raw: *mut FFI_ArrowArrayStream = stream;
            let pulled = loop {
                let mut array = FFI_ArrowArray::empty();
                // SAFETY: a live stream's callback, called with the stream itself (C stream
                // interface); `array` is released when dropped, after its data is copied.
                if unsafe { get_next(raw, &mut array) } != 0 {
                    break Err(last_error(stream));
                }
                if array.is_released() || tx.send(array).is_err() {
                    break Ok(()); // the end of the stream, or the writer failed
                }
            };
            drop(tx);
            let written = writer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            match (written, pulled) {
                (Err(e), _) => Err(e),
                (Ok(rows), Err(reason)) => Err(Error::StreamBroken { rows, reason }),
                (Ok(_), Ok(())) => Ok(()),
            }
        })
    }

    fn push_ffi(&mut self, array: &FFI_ArrowArray) -> Result<()> {
        let bad = |what: String| Error::InvalidArgument(format!("a received batch is malformed: {what}"));
        if array.num_children() != self.columns.len() {
            return Err(bad(format!("{} columns, {} expected", array.num_children(), self.columns.len())));
        }
        if array.null_count_opt().is_some_and(|n| n > 0) {
            return Err(bad("the batch itself has null rows".into()));
        }
        let rows = array.len();
        if rows == 0 {
            return Ok(());
        }
        let mut raw = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            let child = array.child(i);
            // A sliced struct offsets its children too.
            let offset = child.offset() + array.offset();
            let buffers = if matches!(c.kind, Kind::Var { .. }) { 3 } else { 2 };
            if child.len() < array.offset() + rows || child.num_buffers() != buffers {
                return Err(bad(format!("column {i} has {} rows and {} buffers", child.len(), child.num_buffers())));
            }
            let values = child.buffer(1);
            if values.is_null() {
                return Err(bad(format!("column {i} has no values buffer")));
            }
            // SAFETY (the three `from_raw_parts`): the C data interface guarantees the
            // values buffer holds `(offset + len) * width` bytes (fixed-width), `offset +
            // len` bits (booleans) or `offset + len + 1` offsets (variable-width) whose
            // last is the length of the data buffer, and the validity `offset + len` bits,
            // readable while `array` lives (it is released after this call).
            let (values, data): (&[u8], &[u8]) = match c.kind {
                Kind::Fixed(w) => (unsafe { std::slice::from_raw_parts(values, (offset + rows) * w) }, &[]),
                Kind::Bits => (unsafe { std::slice::from_raw_parts(values, (offset + rows).div_ceil(8)) }, &[]),
                Kind::Var { width, .. } => {
                    let offsets = unsafe { std::slice::from_raw_parts(values, (offset + rows + 1) * width) };
                    let end = usize::try_from(offset_at(offsets, width, offset + rows))
                        .map_err(|_| bad(format!("column {i} has a negative offset")))?;
                    let data = child.buffer(2);
                    let data: &[u8] = match (end, data.is_null()) {
                        (0, _) => &[],
                        (_, true) => return Err(bad(format!("column {i} has no data buffer"))),
                        (_, false) => unsafe { std::slice::from_raw_parts(data, end) },
                    };
                    (offsets, data)
                }
            };
            let validity = child.buffer(0);
            let validity = (!validity.is_null() && child.null_count_opt() != Some(0))
                .then(|| unsafe { std::slice::from_raw_parts(validity, (offset + rows).div_ceil(8)) });
            raw.push(RawColumn { offset, values, data, validity: validity.map(|v| (v, offset)) });
        }
        self.copy_in(rows, &raw)
    }

    fn check_types(&self, types: Vec<DataType>) -> Result<()> {
        let want: Vec<&DataType> = self.schema.fields().iter().map(|f| f.data_type()).collect();
        if types.iter().collect::<Vec<_>>() != want {
            return Err(Error::InvalidArgument(format!(
                "the received batches' column types {types:?} differ from the planned {want:?}"
            )));
        }
        Ok(())
    }

    fn copy_in(&mut self, rows: usize, raw: &[RawColumn<'_>]) -> Result<()> {
        if self.filled + rows > self.rows {
            return Err(Error::InvalidArgument(format!(
                "the stream holds more than the {} rows announced for it",
                self.rows
            )));
        }
        let file = self.file.as_ref().expect("open until finished");
        let at = self.filled;
        let tmp = &self.tmp;
        let ctx = || format!("cannot write {}", tmp.display());
        for (i, (c, r)) in self.columns.iter_mut().zip(raw).enumerate() {
            match c.kind {
                Kind::Fixed(w) => {
                    let src = &r.values[r.offset * w..(r.offset + rows) * w];
                    // The planned region holds `self.rows * width` bytes and `at + rows <= self.rows`.
                    write_at(file, src, (c.values_at + at * w) as u64).ctx(ctx)?;
                }
                Kind::Bits => {
                    set_bits(&mut c.bits, r.values, at, r.offset, rows);
                }
                Kind::Var { width, utf8 } => copy_var(file, tmp, i, c, r, at, rows, width, utf8)?,
            }
            let nulls = match (c.validity_at, r.validity) {
                (Some(_), validity) => {
                    let bits = &mut c.bitmap;
                    match validity {
                        Some((src, start)) => set_bits(bits, src, at, start, rows),
                        None => {
                            set_bits(bits, &vec![0xff; rows.div_ceil(8)], at, 0, rows);
                            0
                        }
                    }
                }
                (None, None) => 0,
                (None, Some((src, start))) => rows - UnalignedBitChunk::new(src, start, rows).count_ones(),
            };
            c.nulls_seen += nulls;
            if c.nulls_seen > c.nulls_expected {
                return Err(Error::InvalidArgument(format!(
                    "the stream holds more nulls in a column than the {} announced for it",
                    c.nulls_expected
                )));
            }
        }
        self.filled += rows;
        Ok(())
    }

    /// Checks that every announced row and null arrived, writes the IPC framing around
    /// the data, syncs when `durable`, and renames the file to its final name. Returns
    /// the file's size.
    pub fn finish(mut self, durable: bool) -> Result<u64> {
        if self.filled != self.rows {
            return Err(Error::InvalidArgument(format!(
                "the stream ended after {} of the {} rows announced for it",
                self.filled, self.rows
            )));
        }
        if let Some(c) = self.columns.iter().find(|c| c.nulls_seen != c.nulls_expected) {
            return Err(Error::InvalidArgument(format!(
                "a column has {} nulls, {} were announced",
                c.nulls_seen, c.nulls_expected
            )));
        }
        if let Some(c) = self.columns.iter().find(|c| c.data_seen != c.data_expected) {
            return Err(Error::InvalidArgument(format!(
                "a column has {} bytes of values, {} were announced",
                c.data_seen, c.data_expected
            )));
        }
        let file = self.file.take().expect("finish runs once");
        let ctx = || format!("cannot write {}", self.tmp.display());
        for c in &self.columns {
            if let Some(v) = c.validity_at {
                write_at(&file, &c.bitmap, v as u64).ctx(ctx)?;
            }
            match c.kind {
                Kind::Bits => write_at(&file, &c.bits, c.values_at as u64).ctx(ctx)?,
                Kind::Var { width, .. } => {
                    let mut last = Vec::with_capacity(width);
                    push_offset(&mut last, width, c.data_expected);
                    write_at(&file, &last, (c.values_at + self.rows * width) as u64).ctx(ctx)?;
                }
                Kind::Fixed(_) => {}
            }
        }
        // Never touched where it is not read (headers, padding, footer are written below).
        let map = Arc::new(memmap2::MmapOptions::new().len(self.size).map_raw_read_only(&file).ctx(ctx)?);
        let batch = self.final_batch(&map)?;
        let sink = InPlace { file: &file, base: map.as_ptr() as usize, size: self.size, pos: 0 };
        let mut writer = FileWriter::try_new_with_options(sink, &self.schema, write_options(Compression::None)?)?;
        writer.write(&batch)?;
        writer.finish()?;
        let sink = writer.into_inner()?;
        let written = sink.pos;
        drop(batch);
        drop(map);
        if written != self.size {
            return Err(Error::InvalidArgument(format!("the file came out {written} bytes, {} planned", self.size)));
        }
        if durable {
            file.sync_all().ctx(|| format!("cannot fsync {}", self.tmp.display()))?;
        }
        drop(file);
        self.dir.rename(&self.tmp_name, &self.dir, &self.final_name)?;
        self.finished = true;
        if durable {
            self.dir.sync();
        }
        Ok(self.size as u64)
    }

    /// The whole table as one batch whose buffers are the mapping's regions.
    fn final_batch(&self, map: &Arc<memmap2::MmapRaw>) -> Result<RecordBatch> {
        let owner: Arc<dyn arrow_buffer::alloc::Allocation> = map.clone();
        let region = |at: usize, len: usize| {
            // SAFETY: `at..at+len` lies inside the mapping, which `owner` keeps alive.
            unsafe {
                Buffer::from_custom_allocation(
                    NonNull::new(map.as_ptr().add(at) as *mut u8).expect("mapped"),
                    len,
                    owner.clone(),
                )
            }
        };
        let columns = self
            .columns
            .iter()
            .zip(self.schema.fields())
            .map(|(c, f)| {
                let nulls = c.validity_at.map(|v| {
                    let bits = BooleanBuffer::new(region(v, self.rows.div_ceil(8)), 0, self.rows);
                    // SAFETY: the count was verified bit by bit as the batches came in.
                    unsafe { NullBuffer::new_unchecked(bits, c.nulls_expected) }
                });
                let builder = ArrayData::builder(f.data_type().clone()).len(self.rows).nulls(nulls);
                let data = match c.kind {
                    Kind::Fixed(w) => builder.add_buffer(region(c.values_at, self.rows * w)).build()?,
                    Kind::Bits => builder.add_buffer(region(c.values_at, self.rows.div_ceil(8))).build()?,
                    Kind::Var { width, .. } => {
                        let data = match c.data_at {
                            Some(at) => region(at, c.data_expected),
                            None => Buffer::from(Vec::<u8>::new()),
                        };
                        let builder = builder.add_buffer(region(c.values_at, (self.rows + 1) * width)).add_buffer(data);
                        // SAFETY: `copy_var` checked every offset (from 0, rising, ending at
                        // the data's length) and, for strings, UTF-8 cut at character
                        // boundaries; validating again would read the whole file back.
                        unsafe { builder.build_unchecked() }
                    }
                };
                Ok(make_array(data))
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(self.rows)),
        )?)
    }
}

impl Drop for PlacedFile {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.dir.remove_file(&self.tmp_name);
        }
    }
}

/// What [`PlacedFile::create`] needs announced for `batches`: their rows, each
/// column's nulls and each variable-width column's bytes of values (`None` for the
/// others), counted from the batches themselves (slices included).
fn announcement(schema: &SchemaRef, batches: &[&RecordBatch]) -> (usize, Vec<usize>, Vec<Option<usize>>) {
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    let fields = schema.fields();
    let mut nulls = vec![0usize; fields.len()];
    let mut bytes: Vec<Option<usize>> = fields.iter().map(|f| variable_width(f.data_type()).then_some(0)).collect();
    for b in batches {
        for (i, c) in b.columns().iter().enumerate() {
            nulls[i] += c.null_count();
            if let (Some(total), Some(Kind::Var { width, .. })) = (bytes[i].as_mut(), kind(c.data_type())) {
                let d = c.to_data();
                let offsets = d.buffers()[0].as_slice();
                let (first, last) =
                    (offset_at(offsets, width, d.offset()), offset_at(offsets, width, d.offset() + d.len()));
                *total += (last - first).max(0) as usize;
            }
        }
    }
    (rows, nulls, bytes)
}

/// Writes `batches` as an IPC file of ONE record batch, the layout a get reads without
/// copying (a reader converting several batches to NumPy columns concatenates them): a
/// table of [`placeable`] columns is copied once, batch by batch, into its place in a
/// [`PlacedFile`]; any other is joined first (`concat_batches`, a copy in memory); and a
/// table one batch cannot hold (a string column of more than 2 GiB in 32-bit offsets)
/// is written as given. Returns the file's size, as [`super::write_file`] does.
pub fn write_one_batch(
    dir: &TrustedDir,
    final_name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    durable: bool,
) -> Result<u64> {
    let filled: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
    if filled.len() <= 1 {
        let one: Vec<RecordBatch> = filled.into_iter().cloned().collect();
        let given = if one.is_empty() { batches } else { &one[..] };
        return super::write_file(dir, final_name, schema, given, 0, Compression::None, durable);
    }
    if placeable(schema) {
        let (rows, nulls, bytes) = announcement(schema, &filled);
        match PlacedFile::create(dir.try_clone()?, final_name, schema, rows, &nulls, &bytes) {
            Ok(mut placed) => {
                for b in &filled {
                    placed.push(b)?;
                }
                return placed.finish(durable);
            }
            Err(Error::InvalidArgument(why)) => log::debug!("written as given, not as one batch: {why}"),
            Err(e) => return Err(e),
        }
    } else {
        match arrow_select::concat::concat_batches(schema, filled.iter().copied()) {
            Ok(one) => return super::write_file(dir, final_name, schema, &[one], 0, Compression::None, durable),
            Err(e) => log::debug!("written as given, not as one batch: {e}"),
        }
    }
    super::write_file(dir, final_name, schema, batches, 0, Compression::None, durable)
}

/// The schema of an Arrow C stream.
pub fn stream_schema(stream: &mut FFI_ArrowArrayStream) -> Result<SchemaRef> {
    let Some(get_schema) = stream.get_schema else {
        return Err(Error::InvalidArgument("the Arrow stream was already released".into()));
    };
    let mut schema = arrow_schema::ffi::FFI_ArrowSchema::empty();
    // SAFETY: a live stream's callback, called with the stream itself.
    if unsafe { get_schema(stream, &mut schema) } != 0 {
        return Err(stream_error(stream, "cannot read the stream's schema"));
    }
    Ok(Arc::new(arrow_schema::Schema::try_from(&schema)?))
}

fn stream_error(stream: &mut FFI_ArrowArrayStream, what: &str) -> Error {
    Error::InvalidArgument(format!("{what}: {}", last_error(stream)))
}

fn last_error(stream: &mut FFI_ArrowArrayStream) -> String {
    match stream.get_last_error {
        // SAFETY: the stream's own callback; the message lives until the next call on it.
        Some(f) => match unsafe { f(stream) } {
            p if p.is_null() => String::new(),
            p => unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned(),
        },
        None => String::new(),
    }
}

const NOT_PLACEABLE: &str = "a table received in place needs columns of numbers, decimals, dates and times, \
booleans, strings or bytes (no dictionaries, views or nested types): receive it whole";

/// The value bytes of each column (0 for the fixed-width ones), checked against the schema.
fn announced_bytes(schema: &SchemaRef, data_bytes: &[Option<usize>]) -> Result<Vec<usize>> {
    let fields = schema.fields();
    if data_bytes.is_empty() && !fields.iter().any(|f| variable_width(f.data_type())) {
        return Ok(vec![0; fields.len()]);
    }
    if data_bytes.len() != fields.len() {
        return Err(Error::InvalidArgument(format!(
            "{} data byte counts given for {} columns",
            data_bytes.len(),
            fields.len()
        )));
    }
    fields
        .iter()
        .zip(data_bytes)
        .map(|(f, n)| match (kind(f.data_type()), n) {
            (Some(Kind::Var { width, .. }), Some(n)) => {
                if width == 4 && *n > i32::MAX as usize {
                    return Err(Error::InvalidArgument(format!(
                        "column {:?} cannot hold {n} bytes of values in 32-bit offsets",
                        f.name()
                    )));
                }
                Ok(*n)
            }
            (Some(Kind::Var { .. }), None) => Err(Error::InvalidArgument(format!(
                "the bytes of values of column {:?} were not announced: receive it whole",
                f.name()
            ))),
            _ => Ok(0),
        })
        .collect()
}

/// Copies one batch of a variable-width column in: its offsets rebased onto the bytes
/// already in place (checked to rise within the batch's data and, for strings, to cut
/// UTF-8 at character boundaries), then its bytes.
#[allow(clippy::too_many_arguments)]
fn copy_var(
    file: &File,
    tmp: &Path,
    i: usize,
    c: &mut Column,
    r: &RawColumn<'_>,
    at: usize,
    rows: usize,
    width: usize,
    utf8: bool,
) -> Result<()> {
    let bad = |what: &str| Error::InvalidArgument(format!("a received batch is malformed: column {i} {what}"));
    let first = offset_at(r.values, width, r.offset);
    let last = offset_at(r.values, width, r.offset + rows);
    if first < 0 || last < first || last as usize > r.data.len() {
        return Err(bad("has offsets outside its data"));
    }
    let (first, last) = (first as usize, last as usize);
    let bytes = &r.data[first..last];
    if c.data_seen + bytes.len() > c.data_expected {
        return Err(Error::InvalidArgument(format!(
            "the stream holds more bytes of values in a column than the {} announced for it",
            c.data_expected
        )));
    }
    if utf8 && std::str::from_utf8(bytes).is_err() {
        return Err(bad("is not valid UTF-8"));
    }
    let base = c.data_seen;
    c.scratch.clear();
    c.scratch.reserve(rows * width);
    let (mut prev, mut rising, mut whole_chars) = (first as i64, true, true);
    let src = &r.values[r.offset * width..(r.offset + rows) * width];
    // Checks gathered in flags (no early exit) keep the loop branch-light.
    let mut step = |o: i64, out: &mut Vec<u8>| {
        rising &= o >= prev && o <= last as i64;
        prev = o;
        let at = (o as usize).min(last);
        // Bytes 0x80..0xBF continue a character: a string may not start there.
        whole_chars &= !utf8 || at == last || r.data[at] & 0xC0 != 0x80;
        let v = (o - first as i64) as usize + base;
        if width == 4 {
            out.extend_from_slice(&(v as i32).to_ne_bytes());
        } else {
            out.extend_from_slice(&(v as i64).to_ne_bytes());
        }
    };
    if width == 4 {
        for b in src.chunks_exact(4) {
            step(i32::from_ne_bytes(b.try_into().expect("4 bytes")) as i64, &mut c.scratch);
        }
    } else {
        for b in src.chunks_exact(8) {
            step(i64::from_ne_bytes(b.try_into().expect("8 bytes")), &mut c.scratch);
        }
    }
    if !rising {
        return Err(bad("has offsets that do not rise"));
    }
    if !whole_chars {
        return Err(bad("cuts a UTF-8 character"));
    }
    let ctx = || format!("cannot write {}", tmp.display());
    write_at(file, &c.scratch, (c.values_at + at * width) as u64).ctx(ctx)?;
    if let (Some(data_at), false) = (c.data_at, bytes.is_empty()) {
        write_at(file, bytes, (data_at + base) as u64).ctx(ctx)?;
    }
    c.data_seen += bytes.len();
    Ok(())
}

/// Writes all of `buf` at `pos` of `file`.
fn write_at(file: &File, buf: &[u8], pos: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, pos)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut pos) = (buf, pos);
        while !buf.is_empty() {
            let n = std::os::windows::fs::FileExt::seek_write(file, buf, pos)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
            pos += n as u64;
        }
        Ok(())
    }
}

/// The column regions and file size arrow-ipc produces for the final batch (module docs).
fn plan(schema: &SchemaRef, rows: usize, null_counts: &[usize], data_bytes: &[usize]) -> Result<(Vec<Column>, usize)> {
    let kinds: Vec<Kind> = schema.fields().iter().map(|f| kind(f.data_type()).expect("placeable")).collect();
    let pad = |n: usize| n.div_ceil(64).max(1) * 64; // distinct addresses, even for no bytes
    let values_len = |k: &Kind| match *k {
        Kind::Fixed(w) => rows * w,
        Kind::Bits => rows.div_ceil(8),
        Kind::Var { width, .. } => (rows + 1) * width,
    };
    let template_bytes: usize = kinds
        .iter()
        .zip(null_counts)
        .zip(data_bytes)
        .map(|((k, n), d)| pad(values_len(k)) + if *n > 0 { pad(rows.div_ceil(8)) } else { 0 } + pad(*d))
        .sum();
    // Untouched anonymous memory: no page of it is ever read or faulted in, but for the
    // first and last offsets of variable-width columns, which the writer reads.
    let mut anon = memmap2::MmapOptions::new()
        .len(template_bytes)
        .map_anon()
        .ctx(|| "cannot plan the received file".to_string())?;
    let anon_base = anon.as_mut_ptr() as usize;
    let anon = Arc::new(anon);
    let mut at = 0;
    let mut region = |len: usize| {
        let owner: Arc<dyn arrow_buffer::alloc::Allocation> = anon.clone();
        // SAFETY: inside the anonymous mapping, kept alive by `owner`; 64-aligned.
        let b = unsafe {
            Buffer::from_custom_allocation(NonNull::new((anon_base + at) as *mut u8).expect("mapped"), len, owner)
        };
        at += pad(len);
        b
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Part {
        Validity,
        Values,
        Data,
    }
    let mut wanted = Vec::new(); // (column, part, template pointer)
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, (((f, k), n), d)) in schema.fields().iter().zip(&kinds).zip(null_counts).zip(data_bytes).enumerate() {
        let nulls = (*n > 0).then(|| {
            let b = region(rows.div_ceil(8));
            wanted.push((i, Part::Validity, b.as_ptr() as usize));
            // SAFETY: never read: the writer only passes the buffer to the recording sink.
            unsafe { NullBuffer::new_unchecked(BooleanBuffer::new(b, 0, rows), *n) }
        });
        let values = region(values_len(k));
        wanted.push((i, Part::Values, values.as_ptr() as usize));
        let mut builder = ArrayData::builder(f.data_type().clone()).len(rows).add_buffer(values.clone()).nulls(nulls);
        if let Kind::Var { width, .. } = *k {
            // The writer reads the first and last offsets to cut the data: 0 and `d`.
            let ptr = values.as_ptr() as *mut u8;
            let mut ends = Vec::new();
            push_offset(&mut ends, width, 0);
            push_offset(&mut ends, width, *d);
            // SAFETY: the anonymous mapping is writable and this region is the offsets'
            // `(rows + 1) * width` bytes, not yet read by anything.
            unsafe {
                std::ptr::copy_nonoverlapping(ends.as_ptr(), ptr, width);
                std::ptr::copy_nonoverlapping(ends.as_ptr().add(width), ptr.add(rows * width), width);
            }
            let data = if *d > 0 {
                let b = region(*d);
                wanted.push((i, Part::Data, b.as_ptr() as usize));
                b
            } else {
                Buffer::from(Vec::<u8>::new())
            };
            builder = builder.add_buffer(data);
        }
        // SAFETY: lengths and alignment are right for the type; the contents are never
        // read (but the offsets' ends, set above).
        let data = unsafe { builder.build_unchecked() };
        arrays.push(make_array(data));
    }
    let template = RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?;
    let mut writer = FileWriter::try_new_with_options(Recorder::default(), schema, write_options(Compression::None)?)?;
    writer.write(&template)?;
    writer.finish()?;
    let recorder = writer.into_inner()?;
    let mut columns: Vec<Column> = kinds
        .iter()
        .zip(null_counts)
        .zip(data_bytes)
        .map(|((k, n), d)| Column {
            kind: *k,
            values_at: usize::MAX,
            data_at: None,
            validity_at: None,
            bitmap: if *n > 0 { vec![0; rows.div_ceil(8)] } else { Vec::new() },
            bits: if *k == Kind::Bits { vec![0; rows.div_ceil(8)] } else { Vec::new() },
            nulls_expected: *n,
            nulls_seen: 0,
            data_expected: *d,
            data_seen: 0,
            scratch: Vec::new(),
        })
        .collect();
    for (i, part, ptr) in wanted {
        let pos = recorder.writes.iter().find(|(p, _)| *p == ptr).map(|(_, pos)| *pos).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "arrow-ipc did not write column {i}'s buffer where planned; receive the table whole"
            ))
        })?;
        match part {
            Part::Validity => columns[i].validity_at = Some(pos),
            Part::Values => columns[i].values_at = pos,
            Part::Data => columns[i].data_at = Some(pos),
        }
    }
    Ok((columns, recorder.pos))
}

/// Records where each write would land, writing nothing.
#[derive(Default)]
struct Recorder {
    pos: usize,
    writes: Vec<(usize, usize)>,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes.push((buf.as_ptr() as usize, self.pos));
        self.pos += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes into the file at the running position, skipping a write of bytes that already
/// are where they would go (the body buffers, which are the file's mapping at `base`).
struct InPlace<'a> {
    file: &'a File,
    base: usize,
    size: usize,
    pos: usize,
}

impl Write for InPlace<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.pos + buf.len();
        if end > self.size {
            return Err(std::io::Error::other(format!("the file outgrew its planned {} bytes", self.size)));
        }
        let src = buf.as_ptr() as usize;
        if src != self.base + self.pos {
            if (self.base..self.base + self.size).contains(&src) {
                return Err(std::io::Error::other("a body buffer is not where it was planned"));
            }
            write_at(self.file, buf, self.pos as u64)?; // headers, padding, footer
        }
        self.pos = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
