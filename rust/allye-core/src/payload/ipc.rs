//! What the IPC file and stream encoders share: write options (alignment, compression),
//! a byte-counting sink, batch chunking, error unwrapping, and a panic guard for decoders.

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
