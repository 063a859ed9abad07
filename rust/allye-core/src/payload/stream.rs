//! Segment payloads: an Arrow IPC **stream** in a shared-memory segment sized to the data.

#[cfg(unix)]
use std::fs::File;
#[cfg(target_os = "linux")]
use std::io::{BufWriter, Write};
#[cfg(unix)]
use std::path::Path;

#[cfg(unix)]
use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
#[cfg(unix)]
use arrow_ipc::writer::StreamWriter;
#[cfg(unix)]
use arrow_schema::SchemaRef;

#[cfg(unix)]
use crate::error::{IoContext, Result};
use crate::payload::ipc::guarded;
#[cfg(unix)]
use crate::payload::ipc::write_options;
#[cfg(target_os = "linux")]
use crate::payload::ipc::{arrow_io_error, Counting};
use crate::payload::Decoded;
#[cfg(unix)]
use crate::protocol::Compression;

/// Writes an IPC **stream** into a new shared-memory segment `name`, sized to the data.
/// Returns the number of bytes of IPC data. On error the segment is unlinked.
#[cfg(unix)]
pub fn write_segment(name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64> {
    let file = crate::sys::shm::create(name)?;
    let result = write_stream_into(file, name, schema, batches);
    if result.is_err() {
        let _ = crate::sys::shm::unlink(name);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::buffer_from_mapping;
    use crate::payload::test_support::{concat, sample};

    #[cfg(unix)]
    #[test]
    fn segment_round_trip_zero_copy() {
        let (schema, batch) = sample(5000);
        let name = crate::sys::shm::new_segment_name();
        let size = write_segment(&name, &schema, std::slice::from_ref(&batch)).unwrap();
        let (map, seg_size) = crate::sys::shm::open_map(&name, size).unwrap().unwrap();
        assert!(seg_size >= size);
        let buf = buffer_from_mapping(map);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        crate::sys::shm::unlink(&name).unwrap();
        let d = decode_stream(buf).unwrap();
        assert_eq!(concat(&d), batch);
        let values = d.batches[0].column(0).to_data().buffers()[0].as_ptr() as usize;
        assert!(range.contains(&values));
    }
}
