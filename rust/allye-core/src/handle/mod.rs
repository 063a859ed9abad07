//! The [`Store`](crate::Store) handle's methods: everything a native program does with a
//! store, and exactly what the Python bindings call (they call nothing else that touches
//! a store). One file per capability, each method a thin call of the module that owns
//! the behaviour, so the whole surface reads in one folder:
//!
//! | file | methods |
//! |---|---|
//! | `tables.rs` | `send`, `send_stream`, `receive_stream`, `receive_batches`, `get`, `peek`, `latest`, `list`, `states`, `describe`, `remove` |
//! | `streams.rs` | `append`, `read_stream`, `stream_chunks`, `is_stream`, `streams`, `follow`, `publish_stream`, `publish_stream_if_due`, `compact_stream`, `remove_stream`, `stream_load_lock` |
//! | `objects.rs` | `namespace`, `namespaces`, `remove_namespace`, `used_bytes`, `capacity`, `check_private` |
//! | `arrays.rs` | `create_array`, `open_array`, `arrays` (Linux) |
//! | `maintenance.rs` | `gc` (every collector, one action type), `collect_orphans`, `collect_arrays`, `compact` |
//! | `watch.rs` | `watch`, `tail` |
//!
//! This is the top layer of the crate: it may use every module, and no module uses it.

#[cfg(target_os = "linux")]
mod arrays;
mod maintenance;
mod objects;
mod streams;
mod tables;
mod watch;
