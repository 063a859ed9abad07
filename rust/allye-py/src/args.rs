//! Arguments as Python passes them, converted once for every call: `secret_dir` to the
//! core's `Store`, Arrow data (`__arrow_c_stream__`) to record batches, and the options of
//! every call that writes a version (`send`, `send_stream`, `receive`, `put_object`,
//! `create_object`) to the core's `SendOptions`: each call fills the fields it takes and
//! leaves the rest at the core's defaults.

use std::path::PathBuf;

use allye_core::protocol::{Compression, TransportChoice, DEFAULT_AUTO_GC_GRACE_SEC, DEFAULT_KEEP_VERSIONS};
use allye_core::{AutoGc, Error, SendOptions, Store};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyRecordBatchReader;

use crate::errors::{to_pyerr, OrRaise};
use crate::records::metadata_from_py;

/// The store `secret_dir` names, else `$ALLYE_SECRET_DIR`, else `~/.allye_secrets`.
pub(crate) fn store(secret_dir: Option<PathBuf>) -> PyResult<Store> {
    Store::resolve(secret_dir.as_deref()).or_raise()
}

/// The schema and batches of Arrow data, pulled while holding the GIL (zero-copy imports:
/// the buffers stay the exporter's).
pub(crate) fn batches(data: PyRecordBatchReader) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let reader = data.into_reader()?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<_, _>>().map_err(|e| to_pyerr(Error::Arrow(e)))?;
    Ok((schema, batches))
}

/// A write's keyword arguments (see the `send` stub for what each means).
pub(crate) struct SendArgs<'a, 'py> {
    pub(crate) table_name: Option<String>,
    pub(crate) producer: String,
    pub(crate) transport: &'a str,
    pub(crate) max_shm_bytes: u64,
    pub(crate) chunk_rows: Option<usize>,
    pub(crate) ttl_sec: Option<i64>,
    pub(crate) compression: Option<&'a str>,
    pub(crate) metadata: Option<&'a Bound<'py, PyDict>>,
    pub(crate) shape: Option<(u64, u64)>,
    pub(crate) schema_sha256: Option<String>,
    pub(crate) durable: bool,
    pub(crate) auto_gc: bool,
    pub(crate) auto_gc_grace_sec: u64,
    pub(crate) keep_versions: usize,
    pub(crate) pool_max_bytes: Option<u64>,
    pub(crate) reject_nan: Vec<usize>,
}

impl Default for SendArgs<'_, '_> {
    fn default() -> Self {
        let core = SendOptions::default();
        SendArgs {
            table_name: core.table_name,
            producer: core.producer,
            transport: core.transport.as_str(),
            max_shm_bytes: core.max_shm_bytes,
            chunk_rows: core.chunk_rows,
            ttl_sec: core.ttl_sec,
            compression: None,
            metadata: None,
            shape: None,
            schema_sha256: None,
            durable: core.durable,
            auto_gc: core.auto_gc.is_some(),
            auto_gc_grace_sec: DEFAULT_AUTO_GC_GRACE_SEC,
            keep_versions: DEFAULT_KEEP_VERSIONS,
            pool_max_bytes: core.pool_max_bytes,
            reject_nan: core.reject_nan,
        }
    }
}

impl SendArgs<'_, '_> {
    /// The core's options; a bad spelling, metadata JSON cannot hold, or `keep_versions`
    /// 0 is `InvalidArgumentError`.
    pub(crate) fn options(self) -> PyResult<SendOptions> {
        if self.keep_versions == 0 {
            return Err(to_pyerr(Error::InvalidArgument(
                "keep_versions must be at least 1: a write never frees the version it has just written".into(),
            )));
        }
        let mut opts = SendOptions::default();
        opts.table_name = self.table_name;
        opts.producer = self.producer;
        opts.transport = TransportChoice::parse(self.transport).or_raise()?;
        opts.max_shm_bytes = self.max_shm_bytes;
        opts.chunk_rows = self.chunk_rows;
        opts.ttl_sec = self.ttl_sec;
        opts.compression = Compression::parse(self.compression.unwrap_or("")).or_raise()?;
        opts.metadata = match self.metadata {
            None => Default::default(),
            Some(d) => metadata_from_py(d)?,
        };
        opts.shape = self.shape.map(|(r, c)| [r, c]);
        opts.schema_sha256 = self.schema_sha256;
        opts.durable = self.durable;
        opts.auto_gc = self.auto_gc.then(|| AutoGc::new(self.auto_gc_grace_sec, self.keep_versions));
        opts.pool_max_bytes = self.pool_max_bytes;
        opts.reject_nan = self.reject_nan;
        Ok(opts)
    }
}
