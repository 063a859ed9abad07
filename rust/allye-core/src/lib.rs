//! # allye-core
//!
//! The core of `allye_data_connector`, usable by a native program without Python: the
//! manifest of protocol v1 (`docs/PROTOCOL.md`), the writers' lock, POSIX and Windows
//! shared memory, Arrow IPC payloads (written once, read zero-copy from a mapping), and
//! garbage collection. Everything goes through a [`Store`] handle; the Python bindings
//! call exactly the same methods.
//!
//! ```no_run
//! use allye_core::Store;
//! let store = Store::resolve(None)?; // secret_dir, else $ALLYE_SECRET_DIR, else ~/.allye_secrets
//! let (event, data) = store.get("iris", None)?; // removal- and expiry-aware
//! println!("{} rows in {} batches", event.payload.unwrap().shape[0], data.batches.len());
//! # Ok::<(), allye_core::Error>(())
//! ```
//!
//! Modules, lowest layer first (each uses only layers before it; `tests/architecture.rs`
//! checks it): [`error`], [`protocol`] (the vocabulary), [`sys`] (files, lock, shared
//! memory, processes, time), [`store`], [`pool`] (pre-mapped segments for sends), `arrays` (shared mutable arrays, Linux),
//! [`manifest`], [`payload`], [`gc`], [`tables`], [`objects`] (named objects in
//! namespaces), [`watch`], and the [`Store`] methods.

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
pub mod watch;

#[cfg(target_os = "linux")]
pub use arrays::{ArrayInfo, SharedArray};
pub use error::{Error, Result};
pub use gc::{CompactReport, GcAction, GcOptions};
pub use manifest::{Event, ManifestTail, PayloadRef};
pub use objects::{Capacity, Namespace};
pub use payload::Decoded;
pub use protocol::{Compression, GcActionKind, Status, TableStateKind, Transport, TransportChoice};
pub use store::Store;
pub use streams::{AppendOptions, ChunkLine, CompactStreamReport, Follower, ReadSelection, StreamRead};
pub use tables::{Removal, SendOptions, TableInfo};
pub use watch::{ManifestWatcher, WatchMode};
