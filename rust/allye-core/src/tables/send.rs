//! Sending a table: `writing`, the payload, then `ready` (or `error`, leaving nothing).

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::gc::{collect_superseded, store_tag, AutoGc};
use crate::manifest::{self, Event, PayloadRef};
use crate::payload::joined;
#[cfg(all(unix, not(target_os = "linux")))]
use crate::payload::write_segment;
#[cfg(target_os = "linux")]
use crate::payload::{prefill_pooled, publish_prefilled, Prefilled};
use crate::payload::{write_file, write_one_batch, Target};
use crate::protocol::{
    check_producer, check_table_name, Compression, Status, Transport, TransportChoice, ADC_LOCATOR, ADC_TRANSPORT,
    ADC_WRITER, DEFAULT_AUTO_GC_GRACE_SEC, DEFAULT_COMPRESSED_CHUNK_ROWS, DEFAULT_KEEP_VERSIONS, DEFAULT_MAX_SHM_BYTES,
    DEFAULT_PRODUCER, METADATA_ERROR, METADATA_KEY, PROTOCOL_VERSION,
};
use crate::store::Store;
use crate::sys::process::WriterIdentity;
use crate::sys::{shm, time};

/// Everything a send can be told besides the data.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SendOptions {
    /// `None`: a generated `table_<unix time>_<8 hex>` name, as 0.1.2 does.
    pub table_name: Option<String>,
    /// The producer recorded on every line ([`DEFAULT_PRODUCER`] by default).
    pub producer: String,
    /// Which transport to use.
    pub transport: TransportChoice,
    /// Largest Arrow size `Auto` sends through shared memory.
    pub max_shm_bytes: u64,
    /// Rows per record batch in file payloads; `Some(0)` keeps the batches as given.
    /// `None` (the default, as in the Python API): ONE record batch, however many are
    /// given, when uncompressed (so that a get maps the payload without copying; a
    /// segment's batches are joined too), [`DEFAULT_COMPRESSED_CHUNK_ROWS`] when
    /// compressed (one batch at a time is (de)compressed).
    pub chunk_rows: Option<usize>,
    /// Seconds the version is served; `None`: no expiry.
    pub ttl_sec: Option<i64>,
    /// Compression of file payloads.
    pub compression: Compression,
    /// Free-form metadata recorded on every line of the transfer.
    pub metadata: Map<String, Value>,
    /// `(rows, columns)` as the sender's frame counts them; default: the Arrow table's.
    pub shape: Option<[u64; 2]>,
    /// The protocol's `schema_sha256`; default: computed from the Arrow schema (see [`schema_sha256`]).
    pub schema_sha256: Option<String>,
    /// fsync payload and manifest before returning.
    pub durable: bool,
    /// After the `ready` line, free superseded versions (bounded, after a grace period;
    /// see [`crate::gc::collect_superseded`]). `None`: leave them to an explicit gc.
    pub auto_gc: Option<AutoGc>,
    /// Bound of this process's pool of pre-mapped segments ([`crate::pool`]), which large
    /// shared-memory payloads are copied into; `None`: [`crate::pool::default_max_bytes`];
    /// `Some(0)`: no pool.
    pub pool_max_bytes: Option<u64>,
    /// Float32/float64 columns (indices into the schema) wrapped without looking for
    /// NaN: the send looks (while copying them into a pool segment, else in one pass
    /// first) and refuses with [`Error::NanFound`], before anything is written, when one
    /// holds a NaN. The pandas converter, which turns NaN into nulls, sends so and
    /// converts again on that error; empty: nothing is looked at.
    pub reject_nan: Vec<usize>,
    /// Largest Arrow size an `Auto` send carries inside its `ready` line (an inline
    /// payload: one append, no `writing` line, no segment; see
    /// [`crate::payload::encode_inline`]). 0, the default: never. Named objects' puts set
    /// it ([`crate::tuning::OBJECTS_INLINE_MAX_BYTES`]); a table's log, which 0.1.2 reads,
    /// must not have it.
    pub inline_max_bytes: u64,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            table_name: None,
            producer: DEFAULT_PRODUCER.into(),
            transport: TransportChoice::Auto,
            max_shm_bytes: DEFAULT_MAX_SHM_BYTES,
            chunk_rows: None,
            ttl_sec: None,
            compression: Compression::None,
            metadata: Map::new(),
            shape: None,
            schema_sha256: None,
            durable: false,
            auto_gc: Some(AutoGc::new(DEFAULT_AUTO_GC_GRACE_SEC, DEFAULT_KEEP_VERSIONS)),
            pool_max_bytes: None,
            reject_nan: Vec::new(),
            inline_max_bytes: 0,
        }
    }
}

impl SendOptions {
    /// Default options sending under `table_name`.
    pub fn named(table_name: impl Into<String>) -> Self {
        SendOptions { table_name: Some(table_name.into()), ..Default::default() }
    }

    /// Whether a file payload is written as ONE record batch (uncompressed, `chunk_rows`
    /// not given).
    pub fn one_batch(&self) -> bool {
        self.chunk_rows.is_none() && self.compression == Compression::None
    }

    /// The rows per record batch a file payload is written with (0: as given; see
    /// [`SendOptions::one_batch`] for the default of an uncompressed one).
    pub fn effective_chunk_rows(&self) -> usize {
        match (self.chunk_rows, self.compression) {
            (Some(n), _) => n,
            (None, Compression::None) => 0,
            (None, _) => DEFAULT_COMPRESSED_CHUNK_ROWS,
        }
    }
}

/// The protocol's `schema_sha256` for a table that did not come from pandas: Python's
/// `str(columns) + "|" + str(dtypes)` with the Arrow field names and Arrow type names.
pub fn schema_sha256(schema: &SchemaRef) -> String {
    let names: Vec<String> = schema.fields().iter().map(|f| py_repr_str(f.name())).collect();
    let dtypes: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", py_repr_str(f.name()), py_repr_str(&f.data_type().to_string())))
        .collect();
    sha256_hex(format!("[{}]|{{{}}}", names.join(", "), dtypes.join(", ")).as_bytes())
}

/// Python's `repr` of a `str` (the common cases: quotes chosen as Python does, escapes of
/// backslash, quote and control characters).
fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c)
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of Arrow data the batches hold (sliced-aware), the size `auto` decides by.
pub fn arrow_data_size(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .flat_map(|b| b.columns())
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or_else(|_| c.get_array_memory_size()) as u64)
        .sum()
}

pub(super) fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)).unwrap_or_else(|_| path.to_path_buf())
}

/// The payload a send is about to create.
pub(super) enum Planned {
    Shm(String),
    File(PathBuf),
    /// In the `ready` line itself (written by [`send_inline`], never by `write`).
    Inline,
}

impl Planned {
    pub(super) fn file(store: &Store, id: &str) -> Planned {
        Planned::File(absolute(&store.payload_dir()).join(format!("{id}.arrow")))
    }
    pub(super) fn transport(&self) -> Transport {
        match self {
            Planned::Shm(_) => Transport::Shm,
            Planned::File(_) => Transport::File,
            Planned::Inline => Transport::Inline,
        }
    }
    pub(super) fn locator(&self) -> String {
        match self {
            Planned::Shm(n) => n.clone(),
            Planned::File(p) => p.to_string_lossy().into_owned(),
            Planned::Inline => String::new(),
        }
    }
    pub(super) fn remove(&self, store: &Store) {
        match self {
            Planned::Shm(n) => {
                let _ = shm::unlink(n);
            }
            Planned::File(p) => {
                let _ = Target::file(p).delete(store);
            }
            Planned::Inline => {}
        }
    }
    /// The first step of a shared-memory write, before the `writing` line: the payload
    /// copied into a pool segment that keeps its pool name until [`Planned::write`]
    /// renames it (a sender killed in between leaves a pool segment, which gc frees).
    /// Then looks for NaN in `opts.reject_nan`'s columns that the copy did not look at:
    /// [`Error::NanFound`] before anything is written.
    pub(super) fn prepare(&self, schema: &SchemaRef, batches: &[RecordBatch], opts: &SendOptions) -> Result<Pending> {
        #[cfg(target_os = "linux")]
        if let Planned::Shm(name) = self {
            let max = opts.pool_max_bytes.unwrap_or_else(crate::pool::default_max_bytes);
            if let Some(p) = prefill_pooled(name, schema, batches, max, &opts.reject_nan)? {
                return Ok(Pending(Some(p)));
            }
        }
        crate::payload::nan::check(batches, &opts.reject_nan)?;
        Ok(Pending::default())
    }

    fn write(
        &self,
        store: &Store,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        opts: &SendOptions,
        pending: Pending,
    ) -> Result<u64> {
        match self {
            #[cfg(target_os = "linux")]
            Planned::Shm(name) => publish_prefilled(
                pending.0,
                name,
                schema,
                batches,
                opts.pool_max_bytes.unwrap_or_else(crate::pool::default_max_bytes),
            ),
            #[cfg(all(unix, not(target_os = "linux")))]
            Planned::Shm(name) => {
                drop(pending);
                write_segment(name, schema, batches)
            }
            #[cfg(not(unix))]
            Planned::Shm(_) => unreachable!("no shm sends off unix"),
            Planned::File(path) => {
                drop(pending);
                let name = path.file_name().expect("a planned file has a name").to_string_lossy();
                let dir = store.ensure_payloads()?;
                if opts.one_batch() {
                    write_one_batch(&dir, &name, schema, batches, opts.durable)
                } else {
                    write_file(
                        &dir,
                        &name,
                        schema,
                        batches,
                        opts.effective_chunk_rows(),
                        opts.compression,
                        opts.durable,
                    )
                }
            }
            Planned::Inline => unreachable!("an inline payload is written by send_inline"),
        }
    }
}

/// What [`Planned::prepare`] did ahead of the write: a filled pool segment, or nothing.
#[derive(Default)]
pub(super) struct Pending(#[cfg(target_os = "linux")] Option<Prefilled>);

/// Refuses options no send can honour, before anything is written.
pub(super) fn check(opts: &SendOptions) -> Result<()> {
    if let Some(name) = &opts.table_name {
        check_table_name(name)?;
    }
    check_producer(&opts.producer)?;
    if opts.max_shm_bytes == 0 {
        return Err(Error::InvalidArgument("max_shm_bytes must be positive".into()));
    }
    if let Some(ttl) = opts.ttl_sec {
        if ttl < 0 {
            return Err(Error::InvalidArgument(format!(
                "ttl_sec={ttl} is negative: pass a positive number of seconds, or None for no expiry"
            )));
        }
    }
    Ok(())
}

/// Inside the line, shared memory or a file, as `opts.transport` and the data's size say.
fn plan(store: &Store, id: &str, table_name: &str, size: u64, opts: &SendOptions) -> Planned {
    if opts.transport == TransportChoice::Auto && size <= opts.inline_max_bytes {
        return Planned::Inline;
    }
    let use_shm = match opts.transport {
        TransportChoice::File => false,
        TransportChoice::Auto => cfg!(unix) && size <= opts.max_shm_bytes,
        TransportChoice::Shm if cfg!(unix) => true,
        TransportChoice::Shm => {
            log::warn!("transport='shm' cannot outlive the sender on Windows; sending {table_name:?} as a file");
            false
        }
    };
    if use_shm {
        Planned::Shm(shm::new_segment_name_tagged(store_tag(store).as_deref()))
    } else {
        Planned::file(store, id)
    }
}

/// Writes the planned payload; an `auto` send that finds /dev/shm full falls back to a
/// file (and `plan` says so afterwards).
fn write_payload(
    store: &Store,
    plan: &mut Planned,
    id: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    opts: &SendOptions,
    pending: Pending,
) -> Result<u64> {
    plan.write(store, schema, batches, opts, pending).or_else(|e| {
        if matches!(plan, Planned::Shm(_)) && opts.transport == TransportChoice::Auto && e.is_no_space() {
            log::warn!("shared memory is full ({e}); sending as a file instead");
            *plan = Planned::file(store, id);
            plan.write(store, schema, batches, opts, Pending::default())
        } else {
            Err(e)
        }
    })
}

/// The name of a new version: the caller's, else `table_<unix time>_<id prefix>`.
pub(super) fn table_name_for(opts: &SendOptions, id: &str) -> String {
    match &opts.table_name {
        Some(n) => n.clone(),
        None => format!("table_{}_{}", chrono::Utc::now().timestamp(), &id[..8]),
    }
}

/// The `writing` line of a new version, naming the payload `plan` is about to create.
/// A caller's own `metadata.adc` entries (a pulled version's origin, ...) are kept: the
/// writer's keys are added to them, and win on a clash, since gc reads them.
pub(super) fn writing_event(
    opts: &SendOptions,
    id: String,
    table_name: String,
    plan: &Planned,
    created_at: &str,
) -> Event {
    let mut metadata = opts.metadata.clone();
    let mut adc = match metadata.remove(METADATA_KEY) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    adc.insert(ADC_WRITER.into(), json!(WriterIdentity::cached()));
    adc.insert(ADC_TRANSPORT.into(), json!(plan.transport()));
    adc.insert(ADC_LOCATOR.into(), json!(plan.locator()));
    metadata.insert(METADATA_KEY.into(), Value::Object(adc));
    Event {
        version: PROTOCOL_VERSION,
        id,
        table_name,
        producer: opts.producer.clone(),
        status: Status::Writing,
        created_at: created_at.to_string(),
        ttl_sec: opts.ttl_sec,
        payload: None,
        metadata,
    }
}

/// Sends a table: appends `writing` (naming the payload it is about to create), writes
/// the payload, then appends `ready` with the payload, or `error` with the reason (and
/// removes whatever part of the payload exists). Returns the `ready` event.
pub fn send(store: &Store, schema: &SchemaRef, batches: &[RecordBatch], opts: &SendOptions) -> Result<Event> {
    send_sized(store, schema, batches, opts).map(|(ready, _)| ready)
}

/// [`send`], with the log's length just after the `ready` line (what a caller deciding
/// on a compaction wants to know, without a `stat` of its own).
pub(crate) fn send_sized(
    store: &Store,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    opts: &SendOptions,
) -> Result<(Event, u64)> {
    check(opts)?;
    // The store, made if missing and checked once for the whole send (see `Store::pin`).
    let store = &store.pin(true)?;

    let id = crate::sys::ids::new_v4().to_string();
    let table_name = table_name_for(opts, &id);
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let shape = opts.shape.unwrap_or([rows, schema.fields().len() as u64]);
    let schema_hash = opts.schema_sha256.clone().unwrap_or_else(|| schema_sha256(schema));
    let mut plan = plan(store, &id, &table_name, arrow_data_size(batches), opts);
    // `payloads/` is made (once; later sends check it) for a payload written in the store;
    // one carried inside its line needs no folder.
    if !matches!(plan, Planned::Inline) {
        store.ensure()?;
    }
    crate::payload::nan::check_columns(schema, &opts.reject_nan)?;
    // An unchunked segment payload is one record batch, however many batches came in.
    let batches = match plan {
        Planned::Shm(_) if opts.chunk_rows.is_none() => joined(schema, batches),
        _ => std::borrow::Cow::Borrowed(batches),
    };
    let batches = &batches[..];
    if let Planned::Inline = plan {
        return send_inline(store, id, table_name, schema, batches, shape, schema_hash, opts);
    }
    let pending = plan.prepare(schema, batches, opts)?;

    let created_at = time::now_iso();
    let writing = writing_event(opts, id, table_name, &plan, &created_at);
    manifest::append(store, &writing, opts.durable)?;

    let data_size = match write_payload(store, &mut plan, &writing.id, schema, batches, opts, pending) {
        Ok(n) => n,
        Err(e) => {
            plan.remove(store);
            record_failure(store, &writing, &e, opts.durable);
            return Err(e);
        }
    };
    let ready = Event {
        status: Status::Ready,
        payload: Some(PayloadRef {
            transport: plan.transport(),
            locator: plan.locator(),
            data_size,
            shape,
            schema_sha256: schema_hash,
            created_at,
            expires_at: time::expires_at_iso(opts.ttl_sec),
        }),
        ..writing
    };
    let log_len = publish_ready(store, &plan, &ready, opts)?;
    log::debug!("sent {:?}: {} {} ({data_size} bytes)", ready.table_name, plan.transport(), plan.locator());
    Ok((ready, log_len))
}

/// [`send`] of a payload small enough to travel inside its `ready` line: the one line is
/// the whole publication (no `writing` line: until it is appended nothing exists, after
/// it the version is complete), then the superseded versions' step as for any send.
#[allow(clippy::too_many_arguments)]
fn send_inline(
    store: &Store,
    id: String,
    table_name: String,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    shape: [u64; 2],
    schema_sha256: String,
    opts: &SendOptions,
) -> Result<(Event, u64)> {
    crate::payload::nan::check(batches, &opts.reject_nan)?;
    let (locator, data_size) = crate::payload::encode_inline(schema, batches)?;
    let created_at = time::now_iso();
    let mut ready = writing_event(opts, id, table_name, &Planned::Inline, &created_at);
    ready.status = Status::Ready;
    ready.payload = Some(PayloadRef {
        transport: Transport::Inline,
        locator,
        data_size,
        shape,
        schema_sha256,
        created_at,
        expires_at: time::expires_at_iso(opts.ttl_sec),
    });
    let log_len = publish_ready(store, &Planned::Inline, &ready, opts)?;
    log::debug!("sent {:?}: inline ({data_size} bytes)", ready.table_name);
    Ok((ready, log_len))
}

/// Publishes a version whose payload is written: appends its `ready` line (removing the
/// payload if that fails), then frees superseded versions when the options ask for it.
/// Returns the log's length just after the line.
pub(super) fn publish_ready(store: &Store, plan: &Planned, ready: &Event, opts: &SendOptions) -> Result<u64> {
    let appended_to = match manifest::append(store, ready, opts.durable) {
        Ok(len) => len,
        Err(e) => {
            plan.remove(store);
            return Err(e);
        }
    };
    if let Some(auto) = opts.auto_gc {
        // The send has succeeded: a failure to free older versions is only logged.
        match collect_superseded(store, auto, appended_to, Some(ready)) {
            Ok(freed) => {
                for a in freed {
                    log::debug!("freed superseded {:?} of {:?}", a.locator, a.table_name);
                }
            }
            Err(e) => log::warn!("could not free superseded versions of {:?}: {e}", ready.table_name),
        }
    }
    Ok(appended_to)
}

/// Appends the `error` line of a failed send (best effort: the send's error is what the
/// caller hears about).
pub(super) fn record_failure(store: &Store, writing: &Event, e: &Error, durable: bool) {
    let mut error_event = writing.clone();
    error_event.status = Status::Error;
    let text = e.to_string();
    let reason = failure_reason(&text);
    if reason.len() < text.len() {
        log::warn!("the send of {:?} failed: {text}", writing.table_name);
    }
    error_event.metadata.insert(METADATA_ERROR.into(), Value::String(reason.to_string()));
    if let Err(e2) = manifest::append(store, &error_event, durable) {
        log::warn!("could not record the failed send of {:?}: {e2}", writing.table_name);
    }
}

/// The reason an `error` line records for a failure whose text is `text`: one line, what
/// a listing shows. A stream's error can carry a producer's whole traceback after its
/// message (pyarrow appends "Detail: Python exception: Traceback ..."): the log gets that.
pub(crate) fn failure_reason(text: &str) -> &str {
    let line = text.lines().next().unwrap_or_default();
    line.split(" Detail: ").next().unwrap_or(line).trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc;

    #[test]
    fn a_failure_reason_is_one_line_without_a_producers_traceback() {
        let pyarrow = "arrow error: C Data interface error: Unknown error: the API went away. Detail: Python \
                       exception: Traceback (most recent call last):\n  File \"x.py\", line 8, in gen\nRuntimeError: x\n";
        assert_eq!(failure_reason(pyarrow), "arrow error: C Data interface error: Unknown error: the API went away.");
        assert_eq!(failure_reason("disk full"), "disk full");
        assert_eq!(failure_reason("first\nsecond"), "first");
    }
    use crate::manifest;
    use crate::protocol::GcActionKind;
    use crate::protocol::{TRANSPORT_FILE, TRANSPORT_SHM};
    use crate::tables::{get, list};
    use arrow_array::{ArrayRef, Float64Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn table(rows: i64) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let x: ArrayRef = Arc::new(Float64Array::from_iter_values((0..rows).map(|v| v as f64)));
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        (schema.clone(), vec![RecordBatch::try_new(schema, vec![x, n]).unwrap()])
    }

    #[test]
    fn sha256_hex_matches_known_answers() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let long = vec![b'a'; 1000];
        assert_eq!(sha256_hex(&long), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
    }

    #[test]
    fn py_repr_matches_python() {
        assert_eq!(py_repr_str("a"), "'a'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("a\nb\\"), "'a\\nb\\\\'");
    }

    #[test]
    fn every_transport_round_trips_and_auto_falls_back_to_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().join("store"));
        let (schema, batches) = table(1000);
        for (transport, expect) in [
            (TransportChoice::Auto, TRANSPORT_SHM),
            (TransportChoice::File, TRANSPORT_FILE),
            (TransportChoice::Shm, TRANSPORT_SHM),
        ] {
            let opts =
                SendOptions { table_name: Some("t".into()), transport, chunk_rows: Some(300), ..Default::default() };
            let ready = send(&store, &schema, &batches, &opts).unwrap();
            let p = ready.payload.as_ref().unwrap();
            assert_eq!(p.transport, expect);
            assert_eq!(p.shape, [1000, 2]);
            let (ev, data) = get(&store, "t", None, true).unwrap();
            assert_eq!(ev.id, ready.id);
            let all = arrow_select::concat::concat_batches(&data.schema, &data.batches).unwrap();
            assert_eq!(all, batches[0]);
            if expect == TRANSPORT_FILE {
                assert_eq!(data.batches.len(), 4, "chunk_rows=300 gives 4 batches");
            }
        }
        // The manifest holds writing+ready per send; list shows the latest.
        let lines = manifest::read_all(&store).unwrap();
        assert_eq!(lines.len(), 6);
        assert!(lines[0].metadata[METADATA_KEY]["writer"]["pid"].as_u64().is_some());
        let listed = list(&store, None).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(list(&store, Some("allye")).unwrap().is_empty());
        // Auto falls back to a file above max_shm_bytes.
        let opts = SendOptions { table_name: Some("big".into()), max_shm_bytes: 100, ..Default::default() };
        assert_eq!(send(&store, &schema, &batches, &opts).unwrap().payload.unwrap().transport, TRANSPORT_FILE);
        for ev in manifest::read_all(&store).unwrap() {
            if let Some(p) = ev.payload {
                if p.transport == TRANSPORT_SHM {
                    crate::sys::shm::unlink(&p.locator).unwrap();
                }
            }
        }
    }

    #[test]
    fn default_chunk_rows_one_batch_uncompressed_0_1_2_batches_compressed() {
        let mut opts = SendOptions::default();
        assert_eq!(opts.chunk_rows, None);
        assert_eq!(opts.effective_chunk_rows(), 0, "uncompressed: the batches as given");
        opts.compression = Compression::Zstd;
        assert_eq!(opts.effective_chunk_rows(), DEFAULT_COMPRESSED_CHUNK_ROWS);
        opts.compression = Compression::Lz4;
        assert_eq!(opts.effective_chunk_rows(), DEFAULT_COMPRESSED_CHUNK_ROWS);
        opts.chunk_rows = Some(0);
        assert_eq!(opts.effective_chunk_rows(), 0);
        opts.chunk_rows = Some(7);
        opts.compression = Compression::None;
        assert_eq!(opts.effective_chunk_rows(), 7);

        // A default file send of a table given as one batch is one batch, whatever its length.
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let (schema, batches) = table(600_000);
        let opts =
            SendOptions { table_name: Some("one".into()), transport: TransportChoice::File, ..Default::default() };
        send(&store, &schema, &batches, &opts).unwrap();
        assert_eq!(get(&store, "one", None, true).unwrap().1.batches.len(), 1);
        let opts = SendOptions { compression: Compression::Lz4, ..opts };
        send(&store, &schema, &batches, &opts).unwrap();
        assert_eq!(get(&store, "one", None, true).unwrap().1.batches.len(), 2, "600,000 rows in 500,000-row batches");
    }

    #[test]
    fn many_batches_are_sent_as_one_unless_asked_otherwise() {
        use arrow_array::{DictionaryArray, StringArray};
        use arrow_schema::DataType as T;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", T::Float64, true),
            Field::new("s", T::Utf8, true),
            Field::new("d", T::Dictionary(Box::new(T::Int32), Box::new(T::Utf8)), true),
        ]));
        let batch = |from: i64, n: i64| {
            let x: ArrayRef =
                Arc::new(Float64Array::from_iter((from..from + n).map(|v| (v % 3 != 0).then_some(v as f64))));
            let s: ArrayRef =
                Arc::new(StringArray::from_iter((from..from + n).map(|v| (v % 5 != 0).then(|| format!("é{v}")))));
            let d: ArrayRef = Arc::new(DictionaryArray::<arrow_array::types::Int32Type>::from_iter(
                (from..from + n).map(|v| (v % 7 != 0).then(|| ["a", "b", "c"][(v % 3) as usize])),
            ));
            RecordBatch::try_new(schema.clone(), vec![x, s, d]).unwrap()
        };
        // Batches of odd lengths (bitmaps not byte-aligned), an empty one, a slice.
        let batches = vec![batch(0, 13), batch(13, 0), batch(13, 1000), batch(1013, 500).slice(7, 301)];
        let whole = arrow_select::concat::concat_batches(&schema, &batches).unwrap();
        let placeable_schema = Arc::new(Schema::new(schema.fields()[..2].to_vec()));
        let placeable: Vec<RecordBatch> = batches.iter().map(|b| b.project(&[0, 1]).unwrap()).collect();
        let placeable_whole = whole.project(&[0, 1]).unwrap();
        let cases: [(&str, &SchemaRef, &[RecordBatch], &RecordBatch); 2] =
            [("dict", &schema, &batches, &whole), ("placed", &placeable_schema, &placeable, &placeable_whole)];
        for (name, schema, given, expected) in cases {
            for transport in [TransportChoice::File, TransportChoice::Shm] {
                let opts = SendOptions { transport, ..SendOptions::named(name) };
                let ready = send(&store, schema, given, &opts).unwrap();
                let (_, data) = get(&store, name, None, true).unwrap();
                assert_eq!(data.batches.len(), 1, "{name} {transport:?}");
                assert_eq!(&data.batches[0], expected, "{name} {transport:?}");
                assert_eq!(ready.payload.unwrap().shape, [1314, schema.fields().len() as u64]);
            }
            if name == "dict" {
                continue; // an IPC file holds one dictionary per column: as given, these cannot be written
            }
            // Asked otherwise: as given, or in chunks when compressed.
            let opts =
                SendOptions { transport: TransportChoice::File, chunk_rows: Some(0), ..SendOptions::named(name) };
            send(&store, schema, given, &opts).unwrap();
            assert_eq!(get(&store, name, None, true).unwrap().1.batches.len(), 4, "as given");
            let opts = SendOptions { compression: Compression::Zstd, chunk_rows: Some(500), ..opts };
            send(&store, schema, given, &opts).unwrap();
            let (_, data) = get(&store, name, None, true).unwrap();
            assert_eq!(arrow_select::concat::concat_batches(schema, &data.batches).unwrap(), *expected);
        }
        for ev in manifest::read_all(&store).unwrap() {
            if let Some(p) = ev.payload.filter(|p| p.transport == TRANSPORT_SHM) {
                let _ = crate::sys::shm::unlink(&p.locator);
            }
        }
    }

    #[test]
    fn callers_adc_metadata_is_merged_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().join("store"));
        let (schema, batches) = table(10);
        let mut metadata = Map::new();
        metadata.insert("user".into(), json!(1));
        metadata.insert(METADATA_KEY.into(), json!({"origin": "grpc://h:1", "remote_id": "abc", "locator": "mine"}));
        let opts = SendOptions {
            table_name: Some("m".into()),
            transport: TransportChoice::File,
            metadata,
            ..Default::default()
        };
        let ready = send(&store, &schema, &batches, &opts).unwrap();
        let adc = &ready.metadata[METADATA_KEY];
        assert_eq!(adc["origin"], "grpc://h:1");
        assert_eq!(adc["remote_id"], "abc");
        assert!(adc["writer"]["pid"].as_u64().is_some());
        // The writer's own keys win: gc follows them.
        assert_eq!(adc[ADC_LOCATOR], json!(ready.payload.as_ref().unwrap().locator));
        assert_eq!(ready.metadata["user"], 1);
        let lines = manifest::read_all(&store).unwrap();
        assert_eq!(lines[0].metadata[METADATA_KEY]["origin"], "grpc://h:1");
    }

    #[test]
    fn writer_identity_is_this_process() {
        let w = WriterIdentity::cached();
        assert_eq!(w, WriterIdentity::current());
        assert_eq!(WriterIdentity::cached(), w);
    }

    #[test]
    fn refused_sends_write_nothing_and_broken_payloads_are_typed_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let (schema, batches) = table(10);
        assert!(matches!(get(&store, "nope", None, true), Err(Error::TableNotFound { .. })));
        for bad in ["", "a\nb", "nul\0"] {
            let opts = SendOptions { table_name: Some(bad.into()), ..Default::default() };
            assert!(matches!(send(&store, &schema, &batches, &opts), Err(Error::InvalidArgument(_))));
        }
        let opts = SendOptions { ttl_sec: Some(-1), ..Default::default() };
        assert!(matches!(send(&store, &schema, &batches, &opts), Err(Error::InvalidArgument(_))));
        let opts = SendOptions { max_shm_bytes: 0, ..Default::default() };
        assert!(matches!(send(&store, &schema, &batches, &opts), Err(Error::InvalidArgument(_))));
        // Nothing was written for the refused sends.
        assert!(manifest::read_all(&store).unwrap().is_empty());
        // A file payload that vanished.
        let opts = SendOptions { table_name: Some("f".into()), transport: TransportChoice::File, ..Default::default() };
        let ev = send(&store, &schema, &batches, &opts).unwrap();
        std::fs::remove_file(&ev.payload.as_ref().unwrap().locator).unwrap();
        assert!(matches!(get(&store, "f", None, true), Err(Error::PayloadMissing { .. })));
        // A corrupt one.
        let ev = send(&store, &schema, &batches, &opts).unwrap();
        std::fs::write(&ev.payload.as_ref().unwrap().locator, b"ARROW1 but not really ARROW1").unwrap();
        assert!(matches!(get(&store, "f", None, true), Err(Error::PayloadCorrupt { .. })));
    }

    #[test]
    fn expired_versions_are_not_served_and_gc_stays_inside_the_store() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let (schema, batches) = table(10);
        let mut opts = SendOptions {
            table_name: Some("old".into()),
            transport: TransportChoice::File,
            ttl_sec: Some(0),
            ..Default::default()
        };
        let file_ev = send(&store, &schema, &batches, &opts).unwrap();
        opts.transport = TransportChoice::Shm;
        opts.table_name = Some("old_shm".into());
        let shm_ev = send(&store, &schema, &batches, &opts).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(matches!(get(&store, "old", None, true), Err(Error::Expired { .. })));
        // A foreign line pointing outside the store.
        let outside = tmp.path().join("victim.arrow");
        std::fs::write(&outside, b"precious").unwrap();
        let mut foreign = file_ev.clone();
        foreign.id = "foreign".into();
        foreign.payload.as_mut().unwrap().locator = outside.to_string_lossy().into();
        manifest::append(&store, &foreign, false).unwrap();

        let dry = gc::collect(&store, gc::GcOptions::new(true, 1)).unwrap();
        assert_eq!(dry.iter().filter(|a| a.action == GcActionKind::Delete).count(), 2, "{dry:?}");
        assert_eq!(dry.iter().filter(|a| a.action == GcActionKind::Skip).count(), 1);
        assert!(Path::new(&file_ev.payload.as_ref().unwrap().locator).exists());
        let done = gc::collect(&store, gc::GcOptions::new(false, 1)).unwrap();
        assert_eq!(done, dry);
        assert!(!Path::new(&file_ev.payload.as_ref().unwrap().locator).exists());
        assert!(!crate::sys::shm::exists(&shm_ev.payload.as_ref().unwrap().locator));
        assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
        assert!(gc::collect(&store, gc::GcOptions::new(false, 1))
            .unwrap()
            .iter()
            .all(|a| a.action == GcActionKind::Skip));
    }
}
