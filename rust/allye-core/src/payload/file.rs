//! File payloads: an Arrow IPC **file**, written under a temporary name and renamed when
//! complete, decoded from a mapping.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{read_footer_length, FileDecoder};
use arrow_ipc::root_as_footer;
use arrow_ipc::writer::FileWriter;
use arrow_schema::SchemaRef;

use crate::error::{Error, IoContext, Result};
use crate::payload::ipc::{arrow_io_error, chunked, guarded, write_options, Counting, ReusedBuffer};
use crate::payload::Decoded;
use crate::protocol::Compression;
use crate::sys::trust::{Open, TrustedDir};

/// Writes an IPC **file** named `final_name` in `dir`: into `<final>.tmp-<pid>` first
/// (created 0600, exclusive), renamed when complete, so a reader or a crash never sees a
/// partial file under the final name. Returns the file size. On error the temporary file
/// is removed.
pub fn write_file(
    dir: &TrustedDir,
    final_name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    chunk_rows: usize,
    compression: Compression,
    durable: bool,
) -> Result<u64> {
    write_file_from(dir, final_name, schema, chunked(batches, chunk_rows).map(Ok), compression, durable)
}

/// [`write_file`] from batches as they arrive (a stream read from a source): each batch
/// is written as soon as it comes, so none is held beyond its write. An error from the
/// iterator stops the write and removes the temporary file, as any other failure does.
pub fn write_file_from(
    dir: &TrustedDir,
    final_name: &str,
    schema: &SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    compression: Compression,
    durable: bool,
) -> Result<u64> {
    let tmp_name = temp_name_for(final_name);
    let tmp = dir.path().join(&tmp_name);
    let result = (|| -> Result<u64> {
        let file = dir.open(&tmp_name, Open::CreateNew)?.expect("an exclusive create makes the file");
        let counting = Counting { inner: ReusedBuffer::new(file), written: 0 };
        let mut writer = FileWriter::try_new_with_options(counting, schema, write_options(compression)?)?;
        for batch in batches {
            writer.write(&batch?).map_err(|e| arrow_io_error(e, &tmp))?;
        }
        writer.finish().map_err(|e| arrow_io_error(e, &tmp))?;
        let counting = writer.into_inner()?;
        let size = counting.written;
        let file = counting.inner.into_file().map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
        if durable {
            file.sync_all().ctx(|| format!("cannot fsync {}", tmp.display()))?;
        }
        drop(file);
        dir.rename(&tmp_name, dir, final_name)?;
        if durable {
            dir.sync();
        }
        Ok(size)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp_name);
    }
    result
}

/// The temporary name a file payload is written under: `<final>.tmp-<pid>`.
pub fn temp_path_for(final_path: &Path) -> PathBuf {
    final_path.with_file_name(temp_name_for(&final_path.file_name().unwrap_or_default().to_string_lossy()))
}

/// [`temp_path_for`] of a file name.
pub fn temp_name_for(final_name: &str) -> String {
    format!("{final_name}.tmp-{}", std::process::id())
}

/// Decodes an Arrow IPC **file** held in `buffer` (zero-copy for uncompressed, aligned data).
pub fn decode_file(buffer: &Buffer) -> Result<Decoded, String> {
    guarded(|| {
        let len = buffer.len();
        if len < 18 || &buffer[..6] != b"ARROW1" || &buffer[len - 6..] != b"ARROW1" {
            return Err(format!("not an Arrow IPC file ({len} bytes, no ARROW1 magic at both ends)"));
        }
        let trailer_start = len - 10;
        let footer_len = read_footer_length(buffer[trailer_start..].try_into().unwrap()).map_err(|e| e.to_string())?;
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
            check_declared_sizes(&data, block.metaDataLength() as usize)?;
            decoder.read_dictionary(block, &data).map_err(|e| e.to_string())?;
        }
        let mut batches = Vec::new();
        for block in footer.recordBatches().iter().flatten() {
            let data = block_buf(block.offset(), block.metaDataLength(), block.bodyLength())?;
            check_declared_sizes(&data, block.metaDataLength() as usize)?;
            if let Some(batch) = decoder.read_record_batch(block, &data).map_err(|e| e.to_string())? {
                batches.push(batch);
            }
        }
        Ok(Decoded { schema, batches })
    })
}

/// Largest ratio of a compressed buffer's declared size to its stored size that is taken
/// at its word. LZ4 frames reach about 255:1 and zstd about 32768:1 (run-length blocks);
/// a larger claim is a corrupt length prefix.
const MAX_DECLARED_RATIO: u128 = 1 << 16;

/// Refuses a block of a compressed file whose buffers declare an uncompressed size no
/// codec could have produced. arrow-ipc allocates the declared size before
/// decompressing, and an absurd one aborts the process instead of failing.
fn check_declared_sizes(block: &Buffer, meta_len: usize) -> Result<(), String> {
    let Some(meta) = block.get(..meta_len) else { return Ok(()) }; // the decoder reports it
                                                                   // Metadata: [0xFFFFFFFF continuation] i32 length, then the flatbuffer.
    let start = if meta.starts_with(&[0xff; 4]) { 8 } else { 4 };
    let Some(flatbuffer) = meta.get(start..) else { return Ok(()) };
    let Ok(message) = arrow_ipc::root_as_message(flatbuffer) else { return Ok(()) };
    let batch = match message.header_as_record_batch() {
        Some(b) => b,
        None => match message.header_as_dictionary_batch().and_then(|d| d.data()) {
            Some(b) => b,
            None => return Ok(()),
        },
    };
    if batch.compression().is_none() {
        return Ok(());
    }
    let body = &block[meta_len..];
    for b in batch.buffers().iter().flatten() {
        let (Ok(offset), Ok(len)) = (usize::try_from(b.offset()), usize::try_from(b.length())) else { continue };
        if len < 8 {
            continue; // no length prefix: an absent buffer
        }
        let Some(prefix) = offset.checked_add(8).and_then(|end| body.get(offset..end)) else { continue };
        let declared = i64::from_le_bytes(prefix.try_into().expect("8 bytes"));
        if declared > 0 && declared as u128 > len as u128 * MAX_DECLARED_RATIO {
            return Err(format!(
                "a compressed buffer of {len} bytes declares {declared} bytes uncompressed; the length prefix is corrupt"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::test_support::{concat, sample, trusted};
    use crate::payload::{buffer_from_mapping, map_file};
    use std::fs;

    #[test]
    fn file_round_trip_chunked_and_compressed() {
        let tmp = tempfile::tempdir().unwrap();
        let (schema, batch) = sample(1000);
        for (compression, chunk) in [(Compression::None, 300), (Compression::Zstd, 0), (Compression::Lz4, 999)] {
            let name = format!("{compression:?}.arrow");
            let path = tmp.path().join(&name);
            let size = write_file(
                &trusted(tmp.path()),
                &name,
                &schema,
                std::slice::from_ref(&batch),
                chunk,
                compression,
                true,
            )
            .unwrap();
            assert_eq!(size, fs::metadata(&path).unwrap().len());
            assert!(!temp_path_for(&path).exists());
            let buf = buffer_from_mapping(map_file(&fs::File::open(&path).unwrap(), &path).unwrap());
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
        write_file(&trusted(tmp.path()), "z.arrow", &schema, &[batch], 0, Compression::None, false).unwrap();
        let buf = buffer_from_mapping(map_file(&fs::File::open(&path).unwrap(), &path).unwrap());
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let d = decode_file(&buf).unwrap();
        let values = d.batches[0].column(1).to_data().buffers()[0].as_ptr() as usize;
        assert!(range.contains(&values), "int64 values should point into the mapping");
    }

    #[test]
    fn a_corrupt_uncompressed_length_is_an_error_not_an_abort() {
        let tmp = tempfile::tempdir().unwrap();
        let (schema, batch) = sample(2000);
        let path = tmp.path().join("z.arrow");
        write_file(&trusted(tmp.path()), "z.arrow", &schema, std::slice::from_ref(&batch), 0, Compression::Zstd, false)
            .unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let good = decode_file(&Buffer::from_vec(bytes.clone())).unwrap();
        assert_eq!(concat(&good), batch);
        // The first body buffer's 8-byte length prefix follows the first block's metadata.
        let footer = {
            let len = bytes.len();
            let footer_len = read_footer_length(bytes[len - 10..].try_into().unwrap()).unwrap();
            let footer = root_as_footer(&bytes[len - 10 - footer_len..len - 10]).unwrap();
            let block = footer.recordBatches().unwrap().get(0);
            (block.offset() as usize, block.metaDataLength() as usize)
        };
        let at = footer.0 + footer.1;
        bytes[at..at + 8].copy_from_slice(&(70_000_000_000_000i64).to_le_bytes());
        let err = decode_file(&Buffer::from_vec(bytes)).unwrap_err();
        assert!(err.contains("length prefix is corrupt"), "{err}");
    }
}
