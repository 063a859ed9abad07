//! # allye-core
//!
//! The core of `allye_data_connector`, usable by a native program without Python: the
//! manifest of protocol v1 (`docs/PROTOCOL.md`), the writers' lock, POSIX and Windows
//! shared memory, Arrow IPC payloads (written once, read zero-copy from a mapping),
//! streams, named objects, shared arrays and garbage collection. Everything that touches
//! a store goes through a [`Store`] handle, whose methods (one file per capability in
//! `src/handle/`) are exactly what the Python bindings call:
//!
//! ```no_run
//! use allye_core::{GcOptions, Store};
//! let store = Store::resolve(None)?; // secret_dir, else $ALLYE_SECRET_DIR, else ~/.allye_secrets
//! let (event, data) = store.get("iris", None)?; // removal- and expiry-aware
//! println!("{} rows in {} batches", event.payload.unwrap().shape[0], data.batches.len());
//! let would = store.gc(GcOptions::default())?; // every collector; a dry run by default
//! println!("gc would free {} things", would.len());
//! # Ok::<(), allye_core::Error>(())
//! ```
//!
//! The modules, their layers (each uses only lower ones; `tests/architecture.rs` checks
//! it) and what each owns are listed once, in `docs/ARCHITECTURE.md` ("Module map").

#![warn(missing_docs)]

/// Shared mutable arrays under a robust cross-process lock (Linux).
#[cfg(target_os = "linux")]
pub mod arrays;
pub mod error;
pub mod gc;
mod handle;
pub mod manifest;
pub mod objects;
pub mod payload;
pub mod pool;
pub mod protocol;
pub mod store;
pub mod streams;
pub mod sys;
pub mod tables;
pub mod tuning;
pub mod watch;

#[cfg(target_os = "linux")]
pub use arrays::{ArrayInfo, Init, SharedArray};
pub use error::{Error, Result};
pub use gc::{AutoGc, CompactReport, GcAction, GcOptions, GcTransport};
pub use manifest::{Event, ManifestTail, PayloadRef};
#[cfg(unix)]
pub use objects::ObjectWriter;
pub use objects::{Capacity, Namespace, ObjectData, PutOptions};
pub use payload::Decoded;
pub use protocol::{Compression, GcActionKind, GcScope, Status, TableStateKind, Transport, TransportChoice};
pub use store::Store;
pub use streams::{
    AppendOptions, ChunkLine, CompactStreamReport, CompactedFile, ConsolidateReport, FieldConflict, Follower, Merged,
    ReadSelection, StreamRead,
};
pub use sys::lock::ManifestLock;
pub use sys::scratch::ScratchDir;
pub use tables::{Announced, Removal, SendOptions, TableInfo};
pub use watch::{ManifestWatcher, WatchMode};
