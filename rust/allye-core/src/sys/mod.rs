//! System plumbing, knowing nothing of tables: the trust rule and the handles everything
//! inside a store is opened through, private files and directories, the
//! writers' lock, random ids, shared-memory segments, process identity, protocol timestamps, the
//! scratch folders of loads, the process-global caches a forked child starts afresh.

pub mod fork;
pub mod fs;
pub mod ids;
pub mod lock;
pub mod process;
pub mod scratch;
pub mod shm;
pub mod time;
pub mod trust;
