//! # allye-core
//!
//! The core of `allye_data_connector`, usable by a native program without Python:
//! the manifest of protocol v1 (`../shared/PROTOCOL.md`), the writers' lock, POSIX and
//! Windows shared memory, Arrow IPC payloads (written once, read zero-copy from a
//! mapping), and garbage collection.
//!
//! ```no_run
//! use allye_core::{connector, Store};
//! let store = Store::resolve(None)?; // secret_dir, else $ALLYE_SECRET_DIR, else ~/.allye_secrets
//! let (event, data) = connector::get(&store, "iris", None)?;
//! println!("{} rows in {} batches", event.payload.unwrap().shape[0], data.batches.len());
//! # Ok::<(), allye_core::Error>(())
//! ```

#[cfg(target_os = "linux")]
pub mod arrays;
pub mod connector;
pub mod error;
pub mod gc;
pub mod lock;
pub mod manifest;
pub mod payload;
pub mod process;
pub mod shm;
pub mod store;
pub mod tables;
pub mod time;
pub mod watch;

#[cfg(target_os = "linux")]
pub use arrays::{ArrayInfo, SharedArray};
pub use connector::{SendOptions, TransportChoice};
pub use gc::{CompactReport, GcAction, GcOptions};
pub use error::{Error, Result};
pub use manifest::{Event, PayloadRef};
pub use payload::{Compression, Decoded};
pub use store::Store;
