//! Segment payloads: an Arrow IPC **stream** in a shared-memory segment sized to the data.

#[cfg(unix)]
use std::fs::File;
#[cfg(target_os = "linux")]
use std::io::Write;
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
use crate::payload::ipc::{arrow_io_error, Counting, ReusedBuffer};
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

/// A payload copied into a free pool segment ([`prefill_pooled`]) that has no name yet:
/// [`publish_prefilled`] names it. Dropped unpublished, the segment goes back to the pool.
#[cfg(target_os = "linux")]
pub struct Prefilled {
    taken: Option<crate::pool::Taken>,
    len: u64,
}

#[cfg(target_os = "linux")]
impl Drop for Prefilled {
    fn drop(&mut self) {
        if let Some(taken) = self.taken.take() {
            taken.give_back();
        }
    }
}

/// The first step of a write through this process's pool ([`crate::pool`]): a payload of
/// at least [`crate::tuning::POOL_MIN_BYTES`] is copied into a free, mapped pool segment
/// when one fits. The segment keeps its pool name (a killed sender leaves a pool segment,
/// which gc frees), so this can run before the send's first log line. `None` when the pool
/// has no fitting segment (or is off, or the payload is small): write it with
/// [`publish_prefilled`] anyway, which takes the old path.
///
/// `reject_nan`: float columns to look for NaN in while copying them
/// ([`crate::payload::nan`]); one found is [`crate::error::Error::NanFound`], and the segment goes
/// back to the pool. Columns not looked at here (no segment taken) are the caller's to check.
#[cfg(target_os = "linux")]
pub fn prefill_pooled(
    name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    max_bytes: u64,
    reject_nan: &[usize],
) -> Result<Option<Prefilled>> {
    use crate::pool;
    if max_bytes == 0 {
        return Ok(None);
    }
    // The exact size first: the messages are encoded, the column buffers only counted.
    let size = encode_stream(schema, batches, Counting { inner: std::io::sink(), written: 0 }, name)?.written;
    if size < crate::tuning::POOL_MIN_BYTES || size > max_bytes {
        return Ok(None);
    }
    let Some(mut taken) = pool::take(size) else { return Ok(None) };
    let (ptr, len) = taken.region();
    let mut watch = super::nan::Watch::new(batches, reject_nan);
    let sink = MapWriter { ptr, len, pos: 0, watch: (!watch.is_empty()).then_some(&mut watch) };
    let written = encode_stream(schema, batches, sink, name).map(|w| w.pos as u64);
    let prefilled = Prefilled { taken: Some(taken), len: written.as_ref().copied().unwrap_or(0) };
    // A NaN stops the copy (a short write): say so rather than "too small".
    watch.finish(batches, reject_nan)?;
    match written {
        Ok(_) => Ok(Some(prefilled)),
        Err(e) => {
            log::debug!("pool segment not filled ({e}); writing {name:?} anew");
            Ok(None)
        }
    }
}

/// Writes an IPC **stream** into the new segment `name`: renames `prefilled` to it, else
/// (no segment taken, or the rename failed) writes a new segment as [`write_segment`]
/// does. Either way the pool learns the size, so that one is ready for the next send.
/// `max_bytes` is the pool's bound (0: no pool, and what it holds is given back).
#[cfg(target_os = "linux")]
pub fn publish_prefilled(
    prefilled: Option<Prefilled>,
    name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    max_bytes: u64,
) -> Result<u64> {
    use crate::pool;
    if max_bytes == 0 {
        drop(prefilled);
        pool::note_send(None, 0, 0);
        return write_segment(name, schema, batches);
    }
    let published = match prefilled {
        Some(mut p) => {
            let len = p.len;
            match p.taken.take().expect("an unpublished segment").publish(name, len) {
                Ok(()) => Some(len),
                Err((taken, e)) => {
                    log::debug!("pool segment not published ({e}); writing {name:?} anew");
                    taken.give_back();
                    None
                }
            }
        }
        None => None,
    };
    let written = match published {
        Some(n) => n,
        None => write_segment(name, schema, batches)?,
    };
    pool::note_send(crate::pool::names::payload_tag(name), written, max_bytes);
    Ok(written)
}

/// [`write_segment`] through this process's pool: [`prefill_pooled`], then
/// [`publish_prefilled`].
#[cfg(target_os = "linux")]
pub fn write_segment_pooled(name: &str, schema: &SchemaRef, batches: &[RecordBatch], max_bytes: u64) -> Result<u64> {
    let prefilled = prefill_pooled(name, schema, batches, max_bytes, &[])?;
    publish_prefilled(prefilled, name, schema, batches, max_bytes)
}

/// Writes the IPC stream of `batches` into `sink`; returns the sink.
#[cfg(target_os = "linux")]
fn encode_stream<W: Write>(schema: &SchemaRef, batches: &[RecordBatch], sink: W, name: &str) -> Result<W> {
    let mut writer = StreamWriter::try_new_with_options(sink, schema, write_options(Compression::None)?)?;
    for batch in batches {
        writer.write(batch).map_err(|e| arrow_io_error(e, Path::new(name)))?;
    }
    writer.finish().map_err(|e| arrow_io_error(e, Path::new(name)))?;
    Ok(writer.into_inner()?)
}

/// Writes into a mapping; buffers of at least [`crate::tuning::POOL_PARALLEL_COPY_BYTES`] are
/// copied by several threads (one core rarely saturates the memory bus). With a `watch`,
/// the value buffers it names are looked at for NaN as they are copied; one found stops
/// the write.
#[cfg(target_os = "linux")]
struct MapWriter<'w> {
    ptr: *mut u8,
    len: usize,
    pos: usize,
    watch: Option<&'w mut super::nan::Watch>,
}

#[cfg(target_os = "linux")]
impl Write for MapWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.len - self.pos {
            return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "the pool segment is too small"));
        }
        // SAFETY: `pos + buf.len() <= len`, the mapping's writable length; the source is
        // the caller's memory, never this mapping.
        let dst = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(self.pos), buf.len()) };
        let looking = self.watch.as_deref_mut().and_then(|w| w.lookup(buf).map(|hit| (w, hit)));
        match looking {
            Some((watch, (column, width))) => {
                if copy_parallel_looking(dst, buf, width) {
                    watch.found.get_or_insert(column);
                    return Err(std::io::Error::other(format!("column {column} holds NaN")));
                }
            }
            None => copy_parallel(dst, buf),
        }
        self.pos += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The pieces [`copy_parallel`] splits a large copy into: whole 4 KiB pages, so that no
/// two threads write the same page; `None` when one thread copies it all.
#[cfg(target_os = "linux")]
fn copy_piece(len: usize) -> Option<usize> {
    if len < crate::tuning::POOL_PARALLEL_COPY_BYTES {
        return None;
    }
    // Asked only for a large copy: the answer costs a dozen reads of /proc and cgroup files.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if threads < 2 {
        return None;
    }
    Some(len.div_ceil(threads).next_multiple_of(4096))
}

/// `dst.copy_from_slice(src)`, split across threads and written with non-temporal
/// stores when large ([`super::nan::copy_streaming`]: the destination's lines are not
/// read first).
#[cfg(target_os = "linux")]
fn copy_parallel(dst: &mut [u8], src: &[u8]) {
    let Some(piece) = copy_piece(src.len()) else {
        if src.len() >= crate::tuning::POOL_PARALLEL_COPY_BYTES {
            super::nan::copy_streaming(dst, src); // one CPU: large, still streamed
        } else {
            dst.copy_from_slice(src);
        }
        return;
    };
    std::thread::scope(|s| {
        let mut pieces = dst.chunks_mut(piece).zip(src.chunks(piece));
        let first = pieces.next();
        for (d, c) in pieces {
            s.spawn(move || super::nan::copy_streaming(d, c));
        }
        if let Some((d, c)) = first {
            super::nan::copy_streaming(d, c);
        }
    });
}

/// [`copy_parallel`] of float values of width `width`, looking for NaN in what each
/// thread has just copied; true when one was found.
#[cfg(target_os = "linux")]
fn copy_parallel_looking(dst: &mut [u8], src: &[u8], width: usize) -> bool {
    use super::nan::copy_looking;
    let Some(piece) = copy_piece(src.len()) else {
        return copy_looking(dst, src, width);
    };
    // Pieces are whole pages: values never straddle two.
    std::thread::scope(|s| {
        let mut pieces = dst.chunks_mut(piece).zip(src.chunks(piece));
        let first = pieces.next();
        let handles: Vec<_> = pieces.map(|(d, c)| s.spawn(move || copy_looking(d, c, width))).collect();
        let mut found = first.is_some_and(|(d, c)| copy_looking(d, c, width));
        for h in handles {
            found |= h.join().expect("a copy does not panic");
        }
        found
    })
}

#[cfg(target_os = "linux")]
fn write_stream_into(file: File, name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64> {
    // A Linux segment is a tmpfs file: writing through the descriptor grows it and
    // costs less than first-touch faults on a fresh mapping.
    let ctx = || format!("cannot write shared-memory segment {name:?}");
    let counting = Counting { inner: ReusedBuffer::new(file), written: 0 };
    let mut writer = StreamWriter::try_new_with_options(counting, schema, write_options(Compression::None)?)?;
    for batch in batches {
        writer.write(batch).map_err(|e| arrow_io_error(e, Path::new(name)))?;
    }
    writer.finish().map_err(|e| arrow_io_error(e, Path::new(name)))?;
    let counting = writer.into_inner()?;
    let written = counting.written;
    counting.inner.into_file().ctx(ctx)?;
    Ok(written)
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
