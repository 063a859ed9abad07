//! Pre-allocated, pre-mapped shared memory for sends and puts (Linux).
//!
//! Writing a payload into a fresh tmpfs segment costs the kernel's page allocation,
//! zeroing and one fault per 4 KiB page, which is most of a large send. A process that
//! sends large payloads keeps a **pool** of segments whose pages exist and are mapped
//! (`fallocate` + `MAP_POPULATE`) before the data arrives: a send takes one, copies the
//! Arrow IPC stream into the mapping (with several threads for large buffers), gives the
//! tail back, and renames it to the payload's v1 name (`rename` without replacing: a
//! reader sees the whole segment or none). The payload is the same v1 IPC stream in a
//! segment of exactly its size; nothing in the protocol changes.
//!
//! * **Filled in the background**: a thread, started by a process's first send of at
//!   least [`POOL_MIN_BYTES`], keeps one free segment per large send of the last
//!   [`POOL_DEMAND_WINDOW`] (at least the last one), sized as they were, within the bound; the
//!   first send of a process never waits for it.
//! * **Recycled**: a superseded or freed version's segment that this process frees (the
//!   auto-gc step of its sends, its gc, a removal) is renamed out of its v1 name into the
//!   pool instead of unlinked, when the pool wants that size. For a reader that looks the
//!   name up afterwards this is exactly an unlink (ours retry the newer version; 0.1.2's
//!   are protected by the grace period, as before). It is reused only once **no other
//!   process, and no other descriptor or mapping of this one, holds it**: the kernel
//!   grants a write lease only to the sole opener of a file, mappings included
//!   (`fcntl(F_SETLEASE)`), so a reader's zero-copy view, ours or 0.1.2's, never changes
//!   under it. Until then it waits in quarantine (at most [`POOL_QUARANTINE_MAX`], then it is
//!   unlinked: its memory returns when the last reader unmaps).
//! * **Bounded** by `max_bytes` (free plus quarantined segments; a setting, default
//!   [`default_max_bytes`]: 1/8 of `/dev/shm`), and **given back**: segments beyond what
//!   the recent sends want after [`POOL_SURPLUS_RELEASE`], everything after [`POOL_IDLE_RELEASE`]
//!   without a large send, and when the process exits normally.
//! * **Crash-safe**: every pool segment is named `adc_<store tag>p<hex>`
//!   ([`names`]) and held open under an exclusive `flock` by its owner, which takes the
//!   lock before the name exists (a new segment is named by `linkat` once locked; a
//!   retired one is locked before its rename). A killed owner's locks vanish with it; gc
//!   and `adc cleanup` ([`collect_abandoned`], read off `/proc/locks` without opening
//!   anything) unlink the pool segments nobody holds. A send
//!   killed half-way leaves a pool segment (freed so) or its renamed payload (named by
//!   its `writing` line: gc's dead-writer rule).
//!
//! Forked children start with an empty pool (the parent's mappings are not inherited).

pub mod names;
#[cfg(target_os = "linux")]
mod segment;
#[cfg(all(test, target_os = "linux"))]
mod tests;

use serde::Serialize;

use crate::tuning::POOL_SHM_SHARE_DIVISOR;
pub use names::{pool_tag, POOL_MARK};

/// What this process's pool holds and has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// The bound in force (0: no pool).
    pub max_bytes: u64,
    /// Bytes of free, mapped segments.
    pub free_bytes: u64,
    /// Free segments.
    pub free_segments: usize,
    /// Bytes of retired segments waiting until no reader holds them.
    pub quarantined_bytes: u64,
    /// Retired segments waiting.
    pub quarantined_segments: usize,
    /// Sends written into a pool segment.
    pub hits: u64,
    /// Large sends that found no fitting segment.
    pub misses: u64,
    /// Segments allocated by the filler.
    pub created: u64,
    /// Retired segments made free again.
    pub recycled: u64,
    /// Segments given back (idle, over the bound, held too long by a reader).
    pub released: u64,
}

/// The default bound: 1/8 of `/dev/shm` (0 where there is none).
pub fn default_max_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    {
        static DEFAULT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        *DEFAULT.get_or_init(|| match rustix::fs::statvfs("/dev/shm") {
            Ok(s) => s.f_blocks.saturating_mul(s.f_frsize) / POOL_SHM_SHARE_DIVISOR,
            Err(_) => 0,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Stops this process (`SIGSTOP`) at the named crash point when `ALLYE_STOP_AT` names it:
/// how the tests kill a party at a precise step. Costs one load otherwise.
pub(crate) fn stop_point(point: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("ALLYE_STOP_AT").ok().filter(|s| !s.is_empty()));
    #[cfg(unix)]
    if at.as_deref() == Some(point) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP);
    }
    #[cfg(not(unix))]
    let _ = (at, point);
}

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod elsewhere {
    //! No pool off Linux: every call says so cheaply.
    use super::PoolStats;

    /// This process's pool (empty).
    pub fn stats() -> PoolStats {
        PoolStats::default()
    }
    /// Gives back this process's pool (nothing to do).
    pub fn release() {}
    /// Pool segments of this user (none).
    pub fn machine_held() -> (u64, usize) {
        (0, 0)
    }
    /// Abandoned pool segments (none).
    pub fn collect_abandoned(_dry_run: bool) -> Vec<(String, u64)> {
        Vec::new()
    }
    pub(crate) fn retire(_v1: &str) -> bool {
        false
    }
}
#[cfg(not(target_os = "linux"))]
pub use elsewhere::*;

/// The pool is one per process: the tests that use it take turns.
#[cfg(test)]
pub(crate) fn test_serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}
