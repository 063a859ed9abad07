//! Tuning defaults: numbers chosen for speed, latency or convenience that protocol v1
//! does not fix (changing one changes no byte another party reads). The Python package
//! and the CLI take their defaults from here through `_core`, under the same names; the
//! protocol's own defaults (what 0.1.2 does, what gc keeps) stay in [`crate::protocol`].
//! Depends on nothing.

use std::time::Duration;

// --- waiting ---

/// How often a waiting reader stats the manifest where file-system events are not
/// available (network file systems, `ALLYE_WATCH_POLLING=1`), in milliseconds.
pub const DEFAULT_WATCH_POLL_MS: u64 = 50;

// --- streams ---

/// Most often a stream is published as an ordinary v1 version (panoply's 2 s promise).
pub const DEFAULT_PUBLISH_INTERVAL_MS: u64 = 2000;
/// A `Writer`'s default flush interval.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 100;
/// A `Writer` flushes when this many rows are buffered.
pub const DEFAULT_WRITER_MAX_ROWS: usize = 100_000;
/// A `Writer` flushes when this many bytes are buffered.
pub const DEFAULT_WRITER_MAX_BYTES: usize = 16 * 1024 * 1024;
/// A `Writer` whose producer has written nothing for this long appends what it holds
/// (flush on idle), in milliseconds: a record is visible about this long after the
/// producer stops, while a busy producer's records are still batched.
pub const DEFAULT_WRITER_IDLE_MS: u64 = 5;
/// A stream's small chunks are consolidated this many at a time, into one chunk of the
/// next level (appends are level 0): a stream of n appends keeps about
/// `FANOUT * log_FANOUT(n)` chunk files at most, and each row is rewritten about
/// `log_FANOUT(n)` times.
pub const CONSOLIDATE_FANOUT: usize = 16;
/// A chunk is small (consolidated) below this many bytes ...
pub const CONSOLIDATE_MAX_BYTES: u64 = 1 << 20;
/// ... and this many rows; larger chunks are read in place, without a copy, and stay.
pub const CONSOLIDATE_MAX_ROWS: u64 = 1 << 16;

// --- freeing superseded versions in sends (crate::gc::superseded) ---

/// How often, at most, the auto-gc step of sends reads the manifest's new lines when the
/// grace period is not zero (a loop of sends reads it a few times a second, not after
/// every send; see `crate::gc::superseded`). With a grace of 0 every send reads it.
pub const AUTO_GC_REFRESH_EVERY: Duration = Duration::from_millis(50);

/// How many manifests' read descriptors a process's lookup index keeps open between
/// lookups (the most recently read ones): a lookup then checks the log with one `statat`
/// instead of opening it again (`crate::manifest::index`).
pub const INDEX_FILES_KEPT: usize = 16;

// --- the pool of pre-mapped segments for large sends (crate::pool, Linux) ---

/// Payloads smaller than this never use the pool (a fresh small segment costs little).
pub const POOL_MIN_BYTES: u64 = 4 << 20;
/// The pool's default bound is `/dev/shm`'s size divided by this.
pub const POOL_SHM_SHARE_DIVISOR: u64 = 8;
/// A pool with no large send for this long is given back.
pub const POOL_IDLE_RELEASE: Duration = Duration::from_secs(20);
/// The pool keeps one free segment per large send of this window (at least the last one).
pub const POOL_DEMAND_WINDOW: Duration = Duration::from_secs(1);
/// Free segments beyond what the recent sends want are given back after this long (off
/// the send path: a recycled segment's memory is returned by the filler, not by a send).
pub const POOL_SURPLUS_RELEASE: Duration = Duration::from_secs(3);
/// A retired segment still held elsewhere after this long is unlinked instead.
pub const POOL_QUARANTINE_MAX: Duration = Duration::from_secs(60);
/// Buffers at least this large are copied into a pool segment by several threads.
pub const POOL_PARALLEL_COPY_BYTES: usize = 8 << 20;
/// How often the pool's filler looks at quarantined segments while some wait.
pub const POOL_PROBE_EVERY: Duration = Duration::from_millis(50);
/// After a failed allocation (a full `/dev/shm`), the filler waits this long before trying again.
pub const POOL_CREATE_BACKOFF: Duration = Duration::from_secs(2);
/// Large sends the pool remembers (their sizes are what it keeps segments for).
pub const POOL_RECENT_SENDS: usize = 16;

// --- shared arrays ---

/// Turns a locker spends watching a shared array's busy lock before it blocks in the
/// kernel (each a read of the lock word, a `trylock` when it reads free, and a CPU pause:
/// a few microseconds in all), on machines with more than one CPU.
pub const ARRAY_LOCK_SPINS: u32 = 512;

// --- named objects ---

/// Whether pickled objects are stored and loaded unless a setting says otherwise.
pub const DEFAULT_ALLOW_PICKLE: bool = true;
/// A namespace's log is compacted by the put that finds it larger than this...
pub const OBJECTS_COMPACT_MIN_BYTES: u64 = 1024 * 1024;
/// ... and larger than this many bytes per live object (about six versions' lines each),
/// so that a process's first `len()`/`used()` reads a log whose size follows the live
/// objects, not the number of versions ever written.
pub const OBJECTS_COMPACT_BYTES_PER_LIVE: u64 = 4096;
/// Namespaces' logs whose size after this process's last compaction of them is
/// remembered (a put waits for its log to double that before compacting again).
pub const OBJECTS_COMPACTED_REMEMBERED: usize = 64;
/// Largest Arrow size of a named object put with `transport="auto"` that travels inside its
/// `ready` line (an inline payload: one append, no segment; see
/// [`crate::payload::encode_inline`]): a 100-key dict's pickle is about 1.2 KB. Its line is
/// then about a third larger than the stream (base64).
pub const OBJECTS_INLINE_MAX_BYTES: u64 = 4096;

/// How many stores' `objects/` listings a process remembers (the quota's count of every
/// namespace on each put lists the folder only when it changed).
pub const OBJECTS_LISTINGS_REMEMBERED: usize = 64;

/// How long before a listing a folder's modification time must lie for the listing to be
/// reused while that time stays the same (well above any file system's timestamp
/// granularity).
pub const LISTING_SETTLED: Duration = Duration::from_millis(100);

// --- sources ---

/// Rows a data source is asked for per `read(n)` (a hint, as in panoply).
pub const DEFAULT_LOAD_BATCH_ROWS: u64 = 100_000;
/// Seconds a SQL source waits for a database server to accept and answer a connection
/// (a server that accepts and never answers would otherwise hold a load for ever).
pub const DEFAULT_SQL_CONNECT_TIMEOUT_SEC: u64 = 10;

// --- remote: a store served over Arrow Flight (PROTOCOL.md 8.16) ---

/// The port `adc serve` listens on when none is given.
pub const DEFAULT_REMOTE_PORT: u16 = 8815;
/// Largest record-batch message a DoGet sends: a gRPC message must stay under 2 GiB, and
/// smaller messages keep the client's memory bounded. 16 MiB received fastest here
/// (benches/grpc_ceiling.py: each message is written into the store and dropped while
/// the next arrives; 64 MiB messages cost fresh pages every time).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 16 * 1024 * 1024;
/// Seconds after a check (or a pull) during which a load trusts the cache without asking.
pub const DEFAULT_CHECK_TTL_SEC: f64 = 5.0;
/// Longest silence of a remote call, seconds: a unary call (a version check, a plan)
/// must be answered within it, and a stream (a pull) fails once no message has arrived
/// for this long, however long the whole transfer takes.
pub const DEFAULT_REMOTE_TIMEOUT_SEC: f64 = 10.0;
/// Largest request a Flight server reads (a descriptor's command or path, a ticket, an
/// action's body), bytes: a hostile client cannot make it parse more. Generous for a
/// real request (thousands of column or table names).
pub const MAX_REMOTE_REQUEST_BYTES: u64 = 1024 * 1024;
/// gRPC keepalive ping interval (and the wait for its answer), milliseconds: a partition
/// is noticed within about twice this.
pub const DEFAULT_KEEPALIVE_MS: u64 = 2000;
/// Tables larger than this are not pulled whole for a partial load: only the slice moves.
pub const DEFAULT_MAX_FULL_PULL_BYTES: u64 = 256 * 1024 * 1024;
