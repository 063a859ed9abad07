//! What the IPC file and stream encoders share: write options (alignment, compression),
//! a byte-counting sink, batch chunking, error unwrapping, and a panic guard for decoders.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_ipc::writer::IpcWriteOptions;
use arrow_ipc::{CompressionType, MetadataVersion};
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::protocol::Compression;

pub(crate) trait IpcCompression {
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

pub(crate) fn write_options(compression: Compression) -> Result<IpcWriteOptions> {
    Ok(IpcWriteOptions::try_new(ALIGNMENT, false, MetadataVersion::V5)?.try_with_compression(compression.ipc())?)
}

/// Counts the bytes that pass through.
pub(crate) struct Counting<W> {
    pub(crate) inner: W,
    pub(crate) written: u64,
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

/// Writes to a file through this thread's write buffer, kept from one payload's write to
/// the next: a buffer allocated and freed per write (a megabyte) costs a small send more
/// than copying its data. At most [`WRITE_BUFFER_BYTES`] are gathered before a `write`
/// (larger pieces go straight to the file); [`ReusedBuffer::into_file`] writes the rest.
/// A thread keeps its buffer only while it is at most [`KEPT_BUFFER_BYTES`] (small
/// payloads, where the allocation is what costs), so no thread holds a megabyte for good.
pub(crate) struct ReusedBuffer {
    file: Option<File>,
    buffer: Vec<u8>,
}

/// Bytes a payload's write gathers before it writes them.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// The largest buffer a thread keeps for its next write.
const KEPT_BUFFER_BYTES: usize = 256 << 10;

thread_local! {
    /// This thread's write buffer between writes (taken while one is in use).
    static WRITE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl ReusedBuffer {
    pub(crate) fn new(file: File) -> Self {
        let buffer = WRITE_BUFFER.try_with(|b| std::mem::take(&mut *b.borrow_mut())).unwrap_or_default();
        ReusedBuffer { file: Some(file), buffer }
    }

    /// Writes what is gathered and gives the file back.
    pub(crate) fn into_file(mut self) -> std::io::Result<File> {
        self.flush()?;
        Ok(self.file.take().expect("held until into_file"))
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("held until into_file")
    }
}

impl Write for ReusedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.buffer.len() + buf.len() > WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        if buf.len() >= WRITE_BUFFER_BYTES {
            return self.file().write(buf);
        }
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            let written = self.file.as_mut().expect("held until into_file").write_all(&self.buffer);
            self.buffer.clear();
            written?;
        }
        Ok(())
    }
}

impl Drop for ReusedBuffer {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.buffer);
        if buffer.capacity() <= KEPT_BUFFER_BYTES {
            buffer.clear();
            let _ = WRITE_BUFFER.try_with(|b| *b.borrow_mut() = buffer);
        }
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

/// `batches` as one record batch (joined by `concat_batches`, a copy) when more than one
/// of them holds rows; as given otherwise, or when they cannot be joined (a string
/// column of more than 2 GiB in 32-bit offsets).
pub fn joined<'a>(schema: &SchemaRef, batches: &'a [RecordBatch]) -> std::borrow::Cow<'a, [RecordBatch]> {
    let mut filled = batches.iter().filter(|b| b.num_rows() > 0);
    match (filled.next(), filled.next()) {
        (_, None) => std::borrow::Cow::Borrowed(batches),
        _ => match arrow_select::concat::concat_batches(schema, batches.iter().filter(|b| b.num_rows() > 0)) {
            Ok(one) => std::borrow::Cow::Owned(vec![one]),
            Err(e) => {
                log::debug!("written as given, not as one batch: {e}");
                std::borrow::Cow::Borrowed(batches)
            }
        },
    }
}

/// Arrow wraps I/O errors of the sink in `ArrowError::IoError`; unwrap them so that
/// ENOSPC stays recognisable.
pub(crate) fn arrow_io_error(e: arrow_schema::ArrowError, path: &Path) -> Error {
    match e {
        arrow_schema::ArrowError::IoError(msg, source) => {
            Error::io(format!("cannot write {} ({msg})", path.display()), source)
        }
        other => Error::Arrow(other),
    }
}

/// Runs a decoder and turns a panic inside arrow (hostile input) into an error.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn written(pieces: &[Vec<u8>]) -> Vec<u8> {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let mut w = ReusedBuffer::new(File::create(&path).unwrap());
        for p in pieces {
            w.write_all(p).unwrap();
        }
        drop(w.into_file().unwrap());
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_reused_buffer_writes_every_byte_in_order_and_is_kept_for_the_next_write() {
        let small: Vec<Vec<u8>> = (0..1000u32).map(|i| vec![(i % 251) as u8; 1 + (i as usize * 37) % 3000]).collect();
        let mut mixed = small.clone();
        mixed.insert(500, vec![7u8; WRITE_BUFFER_BYTES + 3]); // larger than the buffer: straight through
        mixed.insert(0, vec![9u8; WRITE_BUFFER_BYTES - 1]);
        let few: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1000]).collect();
        assert_eq!(written(&few), few.concat());
        let kept = WRITE_BUFFER.with(|b| (b.borrow().len(), b.borrow().capacity()));
        assert!(kept.0 == 0 && kept.1 >= 20_000, "emptied and kept for the next write: {kept:?}");
        for pieces in [small, mixed] {
            assert_eq!(written(&pieces), pieces.concat());
            let kept = WRITE_BUFFER.with(|b| b.borrow().capacity());
            assert!(kept <= KEPT_BUFFER_BYTES, "a large buffer is not kept: {kept}");
        }
        // A write abandoned half-way (an error) leaves nothing behind for the next one.
        let tmp = tempfile::tempdir().unwrap();
        let mut w = ReusedBuffer::new(File::create(tmp.path().join("g")).unwrap());
        w.write_all(b"abandoned").unwrap();
        drop(w);
        assert_eq!(written(&[b"next".to_vec()]), b"next");
    }
}
