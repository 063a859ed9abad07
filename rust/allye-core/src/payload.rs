//! Arrow IPC payloads: writing a table into a segment (IPC stream) or a file (IPC file,
//! written under a temporary name and renamed when complete), and reading them back
//! without copying: the segment or the file is mapped and arrow-rs decodes buffers that
//! point into the mapping (they own it through an `Arc`).
//!
//! Writing costs one copy, into the page cache: arrow-ipc (59.3+) writes each body buffer
//! straight from the caller's memory with one `write(2)` through the descriptor (the
//! `BufWriter` only gathers the small message headers and padding; larger writes pass
//! through it). On Linux that is cheaper than filling a fresh mapping, whose first-touch
//! page faults cost several times a `write` of the same bytes.
//!
//! Record batches: `chunk_rows == 0` keeps the batches as given (one for a pandas frame).
//! The Python API writes uncompressed files that way, because a reader converting a
//! multi-batch file to NumPy columns must concatenate the batches (a full copy), while a
//! single batch is wrapped as is; compressed files, which are decompressed on read anyway,
//! keep 0.1.2's `chunk_rows` batches so that one batch at a time is (de)compressed.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{read_footer_length, FileDecoder, StreamDecoder};
use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow_ipc::{root_as_footer, CompressionType, MetadataVersion};
use arrow_schema::SchemaRef;

use crate::error::{Error, IoContext, Result};

pub use crate::protocol::Compression;

trait IpcCompression {
    fn ipc(self) -> Option<CompressionType>;
}

impl IpcCompression for Compression {
    fn ipc(self) -> Option<CompressionType> {
        match self {
            Compression::None => None,
            Compression::Zstd => Some(CompressionType::ZSTD),
            Compression::Lz4 => Some(CompressionType::LZ4_FRAME),
        }
    }
}

/// Buffers are padded to 64 bytes, the alignment every Arrow implementation is happy with.
const ALIGNMENT: usize = 64;

fn write_options(compression: Compression) -> Result<IpcWriteOptions> {
    Ok(IpcWriteOptions::try_new(ALIGNMENT, false, MetadataVersion::V5)?
        .try_with_compression(compression.ipc())?)
}

/// Counts the bytes that pass through.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Splits batches longer than `chunk_rows` into zero-copy slices of `chunk_rows` rows.
/// `chunk_rows == 0` keeps batches as they come.
pub fn chunked(batches: &[RecordBatch], chunk_rows: usize) -> impl Iterator<Item = RecordBatch> + '_ {
    batches.iter().flat_map(move |b| {
        let n = b.num_rows();
        let step = if chunk_rows == 0 || n <= chunk_rows { n } else { chunk_rows };
        let count = if n == 0 { 1 } else { n.div_ceil(step) };
        (0..count).map(move |k| {
            let off = k * step;
            b.slice(off, step.min(n - off))
        })
    })
}

/// Writes an IPC **file** to `final_path`: into `<final>.tmp-<pid>` first, renamed when
/// complete, so a reader or a crash never sees a partial file under the final name.
/// Returns the file size. On error the temporary file is removed.
pub fn write_file(
    final_path: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    chunk_rows: usize,
    compression: Compression,
    durable: bool,
) -> Result<u64> {
    let tmp = temp_path_for(final_path);
    let result = (|| -> Result<u64> {
        let file = create_private_file(&tmp)?;
        let counting = Counting { inner: BufWriter::with_capacity(1 << 20, file), written: 0 };
        let mut writer = FileWriter::try_new_with_options(counting, schema, write_options(compression)?)?;
        for batch in chunked(batches, chunk_rows) {
            writer.write(&batch).map_err(|e| arrow_io_error(e, &tmp))?;
        }
        writer.finish().map_err(|e| arrow_io_error(e, &tmp))?;
        let counting = writer.into_inner()?;
        let size = counting.written;
        let file = counting
            .inner
            .into_inner()
            .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e.into_error()))?;
        if durable {
            file.sync_all().ctx(|| format!("cannot fsync {}", tmp.display()))?;
        }
        drop(file);
        fs::rename(&tmp, final_path)
            .ctx(|| format!("cannot rename {} to {}", tmp.display(), final_path.display()))?;
        if durable {
            if let Some(dir) = final_path.parent() {
                sync_dir(dir);
            }
        }
        Ok(size)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The temporary name a file payload is written under: `<final>.tmp-<pid>`.
pub fn temp_path_for(final_path: &Path) -> PathBuf {
    let mut name = final_path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    final_path.with_file_name(name)
}

fn create_private_file(path: &Path) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).ctx(|| format!("cannot create {}", path.display()))
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Arrow wraps I/O errors of the sink in `ArrowError::IoError`; unwrap them so that
/// ENOSPC stays recognisable.
fn arrow_io_error(e: arrow_schema::ArrowError, path: &Path) -> Error {
    match e {
        arrow_schema::ArrowError::IoError(msg, source) => {
            Error::io(format!("cannot write {} ({msg})", path.display()), source)
        }
        other => Error::Arrow(other),
    }
}

/// Writes an IPC **stream** into a new shared-memory segment `name`, sized to the data.
/// Returns the number of bytes of IPC data. On error the segment is unlinked.
#[cfg(unix)]
pub fn write_segment(name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64> {
    let file = crate::shm::create(name)?;
    let result = write_stream_into(file, name, schema, batches);
    if result.is_err() {
        let _ = crate::shm::unlink(name);
    }
    result
}

#[cfg(target_os = "linux")]
fn write_stream_into(file: File, name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64> {
    // A Linux segment is a tmpfs file: writing through the descriptor grows it and
    // costs less than first-touch faults on a fresh mapping.
    let ctx = || format!("cannot write shared-memory segment {name:?}");
    let counting = Counting { inner: BufWriter::with_capacity(1 << 20, file), written: 0 };
    let mut writer = StreamWriter::try_new_with_options(counting, schema, write_options(Compression::None)?)?;
    for batch in batches {
        writer.write(batch).map_err(|e| arrow_io_error(e, Path::new(name)))?;
    }
    writer.finish().map_err(|e| arrow_io_error(e, Path::new(name)))?;
    let mut counting = writer.into_inner()?;
    counting.flush().ctx(ctx)?;
    Ok(counting.written)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn write_stream_into(file: File, name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64> {
    // macOS cannot write(2) to a shm descriptor: encode, size it, map it, copy.
    let ctx = || format!("cannot write shared-memory segment {name:?}");
    let mut writer = StreamWriter::try_new_with_options(Vec::new(), schema, write_options(Compression::None)?)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let data = writer.into_inner()?;
    file.set_len(data.len() as u64).ctx(ctx)?;
    let mut map = unsafe { memmap2::MmapOptions::new().len(data.len()).map_mut(&file) }.ctx(ctx)?;
    map.copy_from_slice(&data);
    Ok(data.len() as u64)
}

/// A decoded payload: its schema and batches. The batches' buffers point into the
/// mapping, which lives as long as any of them.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Wraps a mapping (anything that derefs to bytes) as an Arrow buffer without copying.
pub fn buffer_from_mapping<M>(mapping: M) -> Buffer
where
    M: std::ops::Deref<Target = [u8]> + Send + Sync + std::panic::RefUnwindSafe + 'static,
{
    let len = mapping.len();
    if len == 0 {
        return Buffer::from_vec(Vec::<u8>::new());
    }
    let ptr = NonNull::new(mapping.as_ptr() as *mut u8).expect("mapping pointer is not null");
    // SAFETY: `ptr..ptr+len` is valid for reads as long as `mapping` lives, and the
    // buffer keeps `mapping` alive through the Arc. Payloads are immutable.
    unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(mapping)) }
}

/// Runs a decoder and turns a panic inside arrow (hostile input) into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "decoder panicked: {}",
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        )),
    }
}

/// Decodes an Arrow IPC **file** held in `buffer` (zero-copy for uncompressed, aligned data).
pub fn decode_file(buffer: &Buffer) -> Result<Decoded, String> {
    guarded(|| {
        let len = buffer.len();
        if len < 18 || &buffer[..6] != b"ARROW1" || &buffer[len - 6..] != b"ARROW1" {
            return Err(format!("not an Arrow IPC file ({len} bytes, no ARROW1 magic at both ends)"));
        }
        let trailer_start = len - 10;
        let footer_len = read_footer_length(buffer[trailer_start..].try_into().unwrap())
            .map_err(|e| e.to_string())?;
        if footer_len > trailer_start {
            return Err(format!("footer length {footer_len} exceeds the file"));
        }
        let footer = root_as_footer(&buffer[trailer_start - footer_len..trailer_start])
            .map_err(|e| format!("bad footer: {e}"))?;
        let schema = footer.schema().ok_or("footer has no schema")?;
        let schema = Arc::new(arrow_ipc::convert::fb_to_schema(schema));
        let mut decoder = FileDecoder::new(schema.clone(), footer.version());
        let block_buf = |offset: i64, meta: i32, body: i64| -> Result<Buffer, String> {
            let (offset, size) = (offset as u64, meta as u64 + body as u64);
            if offset.checked_add(size).is_none_or(|end| end > len as u64) || meta < 0 || body < 0 {
                return Err(format!("block at {offset} of {size} bytes lies outside the {len}-byte file"));
            }
            Ok(buffer.slice_with_length(offset as usize, size as usize))
        };
        for block in footer.dictionaries().iter().flatten() {
            let data = block_buf(block.offset(), block.metaDataLength(), block.bodyLength())?;
            decoder.read_dictionary(block, &data).map_err(|e| e.to_string())?;
        }
        let mut batches = Vec::new();
        for block in footer.recordBatches().iter().flatten() {
            let data = block_buf(block.offset(), block.metaDataLength(), block.bodyLength())?;
            if let Some(batch) = decoder.read_record_batch(block, &data).map_err(|e| e.to_string())? {
                batches.push(batch);
            }
        }
        Ok(Decoded { schema, batches })
    })
}

/// Decodes an Arrow IPC **stream** held in `buffer` (zero-copy for aligned data).
pub fn decode_stream(buffer: Buffer) -> Result<Decoded, String> {
    guarded(|| {
        let mut decoder = StreamDecoder::new();
        let mut rest = buffer;
        let mut batches = Vec::new();
        while !rest.is_empty() {
            let before = rest.len();
            match decoder.decode(&mut rest).map_err(|e| e.to_string())? {
                Some(batch) => batches.push(batch),
                // Past the end-of-stream marker nothing is consumed: stop there.
                None if rest.len() == before => break,
                None => {}
            }
        }
        decoder.finish().map_err(|e| format!("truncated stream: {e}"))?;
        let schema = decoder.schema().ok_or("the stream has no schema message")?;
        Ok(Decoded { schema, batches })
    })
}

/// Maps a file read-only; `Ok(None)` when it does not exist.
pub fn map_file(path: &Path) -> Result<Option<memmap2::Mmap>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
    };
    // SAFETY: payload files are immutable once their `ready` line exists (written under a
    // temporary name, then renamed); we never write through this mapping.
    let map = unsafe { memmap2::Mmap::map(&file) }.ctx(|| format!("cannot map {}", path.display()))?;
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    fn sample(rows: i64) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("f", DataType::Float64, true),
            Field::new("i", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let f: ArrayRef = Arc::new(Float64Array::from_iter((0..rows).map(|v| if v % 7 == 0 { None } else { Some(v as f64 * 0.5) })));
        let i: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let s: ArrayRef = Arc::new(StringArray::from_iter((0..rows).map(|v| if v % 5 == 0 { None } else { Some(format!("ü{v}")) })));
        (schema.clone(), RecordBatch::try_new(schema, vec![f, i, s]).unwrap())
    }

    fn concat(d: &Decoded) -> RecordBatch {
        arrow_select::concat::concat_batches(&d.schema, &d.batches).unwrap()
    }

    #[test]
    fn file_round_trip_chunked_and_compressed() {
        let tmp = tempfile::tempdir().unwrap();
        let (schema, batch) = sample(1000);
        for (compression, chunk) in [(Compression::None, 300), (Compression::Zstd, 0), (Compression::Lz4, 999)] {
            let path = tmp.path().join(format!("{compression:?}.arrow"));
            let size = write_file(&path, &schema, std::slice::from_ref(&batch), chunk, compression, true).unwrap();
            assert_eq!(size, fs::metadata(&path).unwrap().len());
            assert!(!temp_path_for(&path).exists());
            let buf = buffer_from_mapping(map_file(&path).unwrap().unwrap());
            let d = decode_file(&buf).unwrap();
            let expected_batches = if chunk == 0 { 1 } else { 1000usize.div_ceil(chunk) };
            assert_eq!(d.batches.len(), expected_batches, "{compression:?}");
            assert_eq!(concat(&d), batch);
        }
    }

    #[test]
    fn uncompressed_file_read_is_zero_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let (schema, batch) = sample(10_000);
        let path = tmp.path().join("z.arrow");
        write_file(&path, &schema, &[batch], 0, Compression::None, false).unwrap();
        let buf = buffer_from_mapping(map_file(&path).unwrap().unwrap());
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let d = decode_file(&buf).unwrap();
        let values = d.batches[0].column(1).to_data().buffers()[0].as_ptr() as usize;
        assert!(range.contains(&values), "int64 values should point into the mapping");
    }

    #[cfg(unix)]
    #[test]
    fn segment_round_trip_zero_copy() {
        let (schema, batch) = sample(5000);
        let name = crate::shm::new_segment_name();
        let size = write_segment(&name, &schema, std::slice::from_ref(&batch)).unwrap();
        let (map, seg_size) = crate::shm::open_map(&name, size).unwrap().unwrap();
        assert!(seg_size >= size);
        let buf = buffer_from_mapping(map);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        crate::shm::unlink(&name).unwrap();
        let d = decode_stream(buf).unwrap();
        assert_eq!(concat(&d), batch);
        let values = d.batches[0].column(0).to_data().buffers()[0].as_ptr() as usize;
        assert!(range.contains(&values));
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let (schema, batch) = sample(2000);
        let path = tmp.path().join("t.arrow");
        write_file(&path, &schema, std::slice::from_ref(&batch), 500, Compression::None, false).unwrap();
        let bytes = fs::read(&path).unwrap();
        for cut in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode_file(&Buffer::from_vec(bytes[..cut].to_vec())).is_err(), "cut {cut}");
        }
        // Flip bytes all over the file: every outcome is Ok or Err, never a panic.
        let mut state = 0x2545F4914F6CDD1Du64;
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % b.len();
                b[i] = (state >> 32) as u8;
            }
            let _ = decode_file(&Buffer::from_vec(b));
        }
        let mut sw = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        sw.write(&batch).unwrap();
        sw.finish().unwrap();
        let stream = sw.into_inner().unwrap();
        for cut in [0, 3, 50, stream.len() / 2, stream.len() - 4] {
            assert!(decode_stream(Buffer::from_vec(stream[..cut].to_vec())).is_err(), "cut {cut}");
        }
    }
}
