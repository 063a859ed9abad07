//! `create`: an object whose bytes the caller writes in place (Plasma's create/seal).
//!
//! The payload is the IPC stream a put of a NumPy array writes (one record batch, one
//! `large_binary` value), written around a hole: the stream's messages go into a new
//! segment through the descriptor, the value's region is skipped, reserved with
//! `fallocate` (so a full `/dev/shm` fails here, not with a `SIGBUS` at the first
//! write) and handed out through a writable mapping. `commit` appends the `ready` line;
//! until then the `writing` line names the segment, so a writer killed inside leaves
//! what gc's dead-writer rule removes.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::writer::StreamWriter;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::gc::{collect_superseded, store_tag};
use crate::manifest::{self, Event, PayloadRef};
use crate::payload::write_options;
use crate::protocol::{
    Compression, Status, Transport, ADC_LOCATOR, ADC_TRANSPORT, ADC_WRITER, METADATA_ERROR, METADATA_KEY,
    PROTOCOL_VERSION,
};
use crate::sys::process::WriterIdentity;
use crate::sys::{shm, time};
use crate::tables::SendOptions;

use super::{bytes_batch, bytes_schema, bytes_schema_and_hash, store_used, Namespace};

/// An object being written in place: its region of the segment, writable until
/// [`ObjectWriter::commit`] publishes it or [`ObjectWriter::abort`] (or drop) removes it.
pub struct ObjectWriter {
    ns: Namespace,
    writing: Event,
    segment: String,
    map: memmap2::MmapMut,
    offset: usize,
    len: usize,
    data_size: u64,
    opts: SendOptions,
    done: bool,
}

/// Writes into the segment, seeking over the one buffer that is the value's region.
struct HoleWriter {
    file: File,
    pos: u64,
    hole: (*const u8, usize),
    hole_at: Option<u64>,
}

impl Write for HoleWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.hole_at.is_none() && self.hole.1 > 0 && buf.as_ptr() == self.hole.0 && buf.len() == self.hole.1 {
            self.file.seek(SeekFrom::Current(buf.len() as i64))?;
            self.hole_at = Some(self.pos);
            self.pos += buf.len() as u64;
            return Ok(buf.len());
        }
        let n = self.file.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Namespace {
    /// Starts an object of `nbytes` bytes written in place, published by
    /// [`ObjectWriter::commit`] (`opts.metadata` carries its `adc_object`, as for a put).
    /// Shared memory only (it is a segment the caller maps); `quota` as for [`Namespace::put`].
    pub fn create(&self, name: &str, nbytes: usize, opts: &SendOptions, quota: Option<u64>) -> Result<ObjectWriter> {
        crate::protocol::check_table_name(name)
            .map_err(|e| Error::InvalidArgument(e.to_string().replace("table name", "object name")))?;
        if let Some(quota) = quota {
            let used = store_used(&self.parent)?;
            if used.saturating_add(nbytes as u64) > quota {
                return Err(Error::StoreFull {
                    store: self.parent.root().to_path_buf(),
                    used,
                    needed: nbytes as u64,
                    quota,
                });
            }
        }
        self.store.ensure()?;
        let segment = shm::new_segment_name_tagged(store_tag(&self.store).as_deref());
        let id = crate::sys::ids::new_v4().to_string();
        let mut metadata = opts.metadata.clone();
        metadata.insert(
            METADATA_KEY.into(),
            json!({ADC_WRITER: WriterIdentity::current(), ADC_TRANSPORT: Transport::Shm, ADC_LOCATOR: segment}),
        );
        let writing = Event {
            version: PROTOCOL_VERSION,
            id,
            table_name: name.to_string(),
            producer: opts.producer.clone(),
            status: Status::Writing,
            created_at: time::now_iso(),
            ttl_sec: opts.ttl_sec,
            payload: None,
            metadata,
        };
        manifest::append(&self.store, &writing, opts.durable)?;
        match write_around_hole(&segment, nbytes) {
            Ok((map, offset, data_size)) => Ok(ObjectWriter {
                ns: self.clone(),
                writing,
                segment,
                map,
                offset,
                len: nbytes,
                data_size,
                opts: opts.clone(),
                done: false,
            }),
            Err(e) => {
                let _ = shm::unlink(&segment);
                record_error(&self.store, &writing, &e.to_string(), opts.durable);
                Err(e)
            }
        }
    }
}

fn write_around_hole(segment: &str, nbytes: usize) -> Result<(memmap2::MmapMut, usize, u64)> {
    let ctx = |e: std::io::Error| Error::io(format!("cannot write shared-memory segment {segment:?}"), e);
    // A zeroed allocation the kernel backs lazily: it is never touched, only its address
    // tells the writer which buffer is the hole.
    let values: Buffer = MutableBuffer::from_len_zeroed(nbytes).into();
    let hole = (values.as_ptr(), nbytes);
    let schema = bytes_schema();
    let batch = bytes_batch(&schema, values)?;
    let file = shm::create(segment)?;
    let sink = HoleWriter { file, pos: 0, hole, hole_at: None };
    let mut writer = StreamWriter::try_new_with_options(sink, &schema, write_options(Compression::None)?)?;
    writer.write(&batch)?;
    writer.finish()?;
    let sink = writer.into_inner()?;
    let offset = match sink.hole_at {
        Some(at) => at,
        None if nbytes == 0 => 0, // an empty value has no buffer to write: nothing to hand out
        None => {
            return Err(Error::InvalidArgument("the IPC writer did not write the value's buffer as one piece".into()))
        }
    };
    let total = sink.pos;
    let file = sink.file;
    file.set_len(total).map_err(ctx)?;
    #[cfg(target_os = "linux")]
    if nbytes > 0 {
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::KEEP_SIZE, offset, nbytes as u64)
            .map_err(|e| ctx(e.into()))?;
    }
    // SAFETY: the segment was created exclusively by this process and no reader maps it
    // before its ready line exists.
    let map = unsafe { memmap2::MmapOptions::new().len(total as usize).map_mut(&file) }.map_err(ctx)?;
    Ok((map, offset as usize, total))
}

fn record_error(store: &crate::store::Store, writing: &Event, reason: &str, durable: bool) {
    let mut ev = writing.clone();
    ev.status = Status::Error;
    ev.metadata.insert(METADATA_ERROR.into(), Value::String(reason.to_string()));
    if let Err(e) = manifest::append(store, &ev, durable) {
        log::warn!("could not record the failed create of {:?}: {e}", writing.table_name);
    }
}

impl ObjectWriter {
    /// The writable region (the object's bytes).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: offset + len lies inside the mapping (the stream was written around it).
        unsafe { self.map.as_mut_ptr().add(self.offset) }
    }

    /// The region's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an object of no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segment's name.
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// Publishes the object: appends its `ready` line (then the bounded gc step of a put).
    /// The region must not be written afterwards: readers map it as an immutable version.
    pub fn commit(&mut self) -> Result<Event> {
        if self.done {
            return Err(Error::InvalidArgument(format!(
                "object {:?} was already published or abandoned",
                self.writing.table_name
            )));
        }
        self.done = true;
        let ready = Event {
            status: Status::Ready,
            payload: Some(PayloadRef {
                transport: Transport::Shm,
                locator: self.segment.clone(),
                data_size: self.data_size,
                shape: [1, 1],
                schema_sha256: bytes_schema_and_hash().1.clone(),
                created_at: self.writing.created_at.clone(),
                expires_at: time::expires_at_iso(self.opts.ttl_sec),
            }),
            ..self.writing.clone()
        };
        let appended_to = match manifest::append(&self.ns.store, &ready, self.opts.durable) {
            Ok(len) => len,
            Err(e) => {
                let _ = shm::unlink(&self.segment);
                return Err(e);
            }
        };
        if let Some(auto) = self.opts.auto_gc {
            if let Err(e) = collect_superseded(&self.ns.store, auto, appended_to, Some(&ready)) {
                log::debug!("freeing superseded versions after a create: {e}");
            }
        }
        self.ns.compact_if_long(&self.ns.store, appended_to);
        Ok(ready)
    }

    /// Removes the segment and records the transfer as failed (nothing is published).
    pub fn abort(&mut self, reason: &str) {
        if self.done {
            return;
        }
        self.done = true;
        let _ = shm::unlink(&self.segment);
        record_error(&self.ns.store, &self.writing, reason, self.opts.durable);
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        self.abort("the object was dropped before it was published");
    }
}
