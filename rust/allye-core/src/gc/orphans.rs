//! Segments of deleted stores.
//!
//! A segment lives in `/dev/shm`, outside the store directory, so `rm -rf` of a store
//! leaves every segment it holds until reboot, and nothing in the store can find them
//! any more. Two things make them findable:
//!
//! * **A tag per store.** Our segment names are `adc_` + 24 hex digits; the first
//!   [`TAG_LEN`] digits are the store's tag, a hash of the store's key (random bytes kept
//!   inside the private store, see [`Store::key`], so that no other user can predict the
//!   tag and plant its record first) and of the store directory's canonical path, device
//!   and inode (a store deleted and re-created at the same path gets a new tag). The
//!   other 14 are random.
//! * **A record per store**, the segment `adc_store_<tag>` (mode 0600, created by the
//!   store's first shared-memory send in a process), holding `{"path", "dev", "ino"}` of
//!   the store directory. It lives where the segments live and dies with them at reboot.
//!
//! [`collect_orphans`] lists `/dev/shm` (Linux), and for every record owned by this user
//! (and private: another user's record, or one others could have written, is never read)
//! whose store directory no longer exists (or is another directory now: other device or
//! inode), unlinks the segments of this user carrying that tag, then the record. It never
//! touches a segment whose tag has no record or whose store still exists, a name that is
//! not ours in shape (0.1.2's `psm_…`, anything else), or another user's segment.
//! It also frees the pool segments ([`crate::pool`]) that no live process holds (no
//! `flock` on them, per `/proc/locks`): what a killed process's pool left, whatever its
//! store. A live process's pool segment is never touched, even of a deleted store
//! (that pool gives it back when idle or at exit).
//!
//! Limits: a store directory *moved* elsewhere looks deleted (its segments are freed; the
//! files of its `payloads/` are not touched), and other systems than Linux cannot list
//! their segments, so there the collection finds nothing.

use crate::sys::fs::PathMap;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::sys::fork::ForkLocal;

use serde::{Deserialize, Serialize};

use crate::gc::{GcAction, GcTransport};
use crate::protocol::Transport;
use crate::store::Store;
use crate::sys::{scratch, shm};

pub use crate::sys::shm::TAG_LEN;
/// Prefix of the record segment of a store (followed by its tag).
pub const RECORD_PREFIX: &str = "adc_store_";

/// What a record says about its store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// Birth time of the directory (ns since the epoch) where the file system keeps one: a
    /// store deleted and made again at the same path can get the same inode number back
    /// at once (ext4, tmpfs), so path, device and inode alone would take the old store's
    /// segments for the new one's. Absent in records written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    born: Option<i128>,
}

/// The directory's birth time in ns, when the file system reports one.
fn born_of(meta: &std::fs::Metadata) -> Option<i128> {
    let t = meta.created().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_nanos() as i128)
}

/// Is `meta` the directory `rec` names (same device, inode and, where both are known,
/// birth time)?
fn is_recorded_dir(meta: &std::fs::Metadata, rec: &Record) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let born_matches = match (rec.born, born_of(meta)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        meta.is_dir() && meta.dev() == rec.dev && meta.ino() == rec.ino && born_matches
    }
    #[cfg(not(unix))]
    {
        let _ = rec;
        meta.is_dir()
    }
}

/// The store directory's identity as a record states it; `None` when it cannot be read.
fn record_of(root: &Path) -> Option<Record> {
    let path = std::fs::canonicalize(root).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = {
        let _ = meta;
        (0, 0)
    };
    let born = born_of(&meta);
    Some(Record { path, dev, ino, born })
}

fn tag_of(key: Option<&[u8; 32]>, record: &Record) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    if let Some(key) = key {
        h.update(key);
    }
    h.update(record.path.to_string_lossy().as_bytes());
    h.update(b"\0");
    h.update(record.dev.to_le_bytes());
    h.update(record.ino.to_le_bytes());
    if let Some(born) = record.born {
        h.update(born.to_le_bytes());
    }
    h.finalize().iter().take(TAG_LEN / 2).map(|b| format!("{b:02x}")).collect()
}

/// This process's knowledge of the stores it has registered: root -> (record, tag).
fn registered() -> &'static Mutex<PathMap<(Record, String)>> {
    static REG: ForkLocal<Mutex<PathMap<(Record, String)>>> = ForkLocal::new(Default::default);
    REG.get()
}

/// The tag of `store` (an existing directory) for the names of its segments, making sure
/// its record exists. `None` when the store's identity cannot be read or the record cannot
/// be written: the send then names its segment without a tag (random, as before).
pub fn store_tag(store: &Store) -> Option<String> {
    let mut reg = registered().lock().unwrap_or_else(|p| p.into_inner());
    // The common case costs one stat: the same directory as last time, whose record this
    // process wrote or found (only a collection that saw the directory gone removes it).
    if let Some((rec, tag)) = reg.get(crate::sys::fs::key(store.root())) {
        if same_dir(store.root(), rec) {
            return Some(tag.clone());
        }
    }
    let current = record_of(store.root())?;
    let key = store.key(true).map_err(|e| log::debug!("no store key for the segments' tag: {e}")).ok()?;
    let tag = tag_of(key.as_ref(), &current);
    write_record(&format!("{RECORD_PREFIX}{tag}"), &current)?;
    reg.insert(store.root().into(), (current, tag.clone()));
    Some(tag)
}

fn same_dir(root: &Path, rec: &Record) -> bool {
    std::fs::metadata(root).is_ok_and(|m| cfg!(unix) && is_recorded_dir(&m, rec))
}

#[cfg(unix)]
fn write_record(name: &str, record: &Record) -> Option<()> {
    use std::io::Write;
    // `exists` is true only for this user's segment; another user's of this name makes
    // the create fail, and the send names its segment without a tag.
    if shm::exists(name) {
        return Some(());
    }
    match shm::create(name) {
        Ok(mut f) => {
            let text = serde_json::to_vec(record).ok()?;
            if let Err(e) = f.write_all(&text) {
                log::debug!("cannot write the store record {name:?}: {e}");
                let _ = shm::unlink(name);
                return None;
            }
            Some(())
        }
        // Another process created it meanwhile.
        Err(_) if shm::exists(name) => Some(()),
        Err(e) => {
            log::debug!("cannot create the store record {name:?}: {e}");
            None
        }
    }
}

#[cfg(not(unix))]
fn write_record(_name: &str, _record: &Record) -> Option<()> {
    None
}

/// True when `name` is a payload segment name of ours carrying a tag: `adc_` + 24 lowercase hex.
fn tag_in(name: &str) -> Option<&str> {
    let hex = name.strip_prefix(shm::ARRAY_SEGMENT_PREFIX).or_else(|| name.strip_prefix(shm::SEGMENT_PREFIX))?;
    (hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then(|| &hex[..TAG_LEN])
}

/// Is the store a record names gone? Only a certain "no": a path that does not exist, or
/// that now names another directory. Any other failure (permissions, I/O) counts as alive.
fn store_is_gone(record: &Record) -> bool {
    match std::fs::metadata(&record.path) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(meta) => !is_recorded_dir(&meta, record),
    }
}

/// This user's entries of the shared-memory directory (Linux: `/dev/shm`); empty elsewhere.
fn own_segments() -> Vec<String> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        let Ok(entries) = std::fs::read_dir("/dev/shm") else { return Vec::new() };
        entries
            .flatten()
            .filter(|e| e.metadata().is_ok_and(|m| m.is_file() && m.uid() == me))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

fn read_record(name: &str) -> Option<Record> {
    #[cfg(target_os = "linux")]
    {
        use std::io::Read;
        // This user's and private, reached without a symbolic link (see `shm::check_segment`).
        let mut file = match shm::open_checked(name, false) {
            Ok(Some((f, _))) => f,
            Ok(None) => return None,
            Err(e) => {
                log::warn!("store record {name:?} ignored: {e}");
                return None;
            }
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = name;
        None
    }
}

/// Frees (with `dry_run`, only reports) what is left outside any live store: the
/// segments of this user's deleted stores and their records (see the module docs), then
/// the scratch folders of this user's loads whose process is certainly dead
/// ([`collect_scratch`]). Never fails: what cannot be freed is logged. Every action is
/// [`GcScope::Orphan`](crate::protocol::GcScope::Orphan).
pub fn collect_orphans(dry_run: bool) -> Vec<GcAction> {
    let mut actions = collect_segments(dry_run);
    actions.extend(crate::pool::collect_abandoned(dry_run).into_iter().map(|(name, bytes)| {
        GcAction::orphan(
            GcTransport::Payload(Transport::Shm),
            name,
            String::new(),
            format!("pool segment ({bytes} bytes) of a process that has ended"),
        )
    }));
    actions.extend(collect_scratch(dry_run));
    actions
}

/// The scratch folders ([`crate::sys::scratch`]) in the temporary directory whose owner
/// file names a process that is certainly dead, removed (with `dry_run`, reported). A
/// folder without a readable owner, or whose owner may be alive, is left.
pub fn collect_scratch(dry_run: bool) -> Vec<GcAction> {
    let mut actions = Vec::new();
    for dir in scratch::own_folders() {
        let Some(owner) = scratch::owner_of(&dir) else { continue };
        if owner.is_alive() != Some(false) {
            continue;
        }
        if !dry_run {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                log::warn!("cannot remove the scratch folder {}: {e}", dir.display());
                continue;
            }
        }
        actions.push(GcAction::orphan(
            GcTransport::Scratch,
            dir.to_string_lossy().into_owned(),
            String::new(),
            format!("the scratch folder of a load whose process (pid {}) died", owner.pid),
        ));
    }
    actions
}

fn collect_segments(dry_run: bool) -> Vec<GcAction> {
    let names = own_segments();
    let mut dead: HashMap<String, Record> = HashMap::new();
    for name in &names {
        let Some(tag) = name.strip_prefix(RECORD_PREFIX) else { continue };
        if tag.len() != TAG_LEN {
            continue;
        }
        if let Some(rec) = read_record(name).filter(store_is_gone) {
            dead.insert(tag.to_string(), rec);
        }
    }
    let mut actions = Vec::new();
    if dead.is_empty() {
        return actions;
    }
    let mut failed: HashSet<&str> = HashSet::new();
    for name in &names {
        let Some(tag) = tag_in(name) else { continue };
        let Some(rec) = dead.get(tag) else { continue };
        if !dry_run {
            if let Err(e) = shm::unlink(name) {
                log::warn!("cannot unlink orphan segment {name:?}: {e}");
                failed.insert(tag);
                continue;
            }
        }
        let transport =
            if name.starts_with(shm::ARRAY_SEGMENT_PREFIX) { GcTransport::SharedArray } else { Transport::Shm.into() };
        actions.push(GcAction::orphan(
            transport,
            name.clone(),
            String::new(),
            format!("left by the deleted store {}", rec.path.display()),
        ));
    }
    if !dry_run {
        for tag in dead.keys().filter(|t| !failed.contains(t.as_str())) {
            let _ = shm::unlink(&format!("{RECORD_PREFIX}{tag}"));
        }
    }
    actions
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_tag_and_only_our_shape_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path());
        let tag = store_tag(&store).unwrap();
        assert_eq!(tag.len(), TAG_LEN);
        assert_eq!(store_tag(&store).as_deref(), Some(tag.as_str()), "stable");
        let name = shm::new_segment_name_tagged(Some(&tag));
        assert_eq!(name.len(), 28);
        assert_eq!(tag_in(&name), Some(tag.as_str()));
        assert_eq!(tag_in("psm_0123456789abcdef01234567"), None);
        assert_eq!(tag_in("adc_store_0123456789"), None);
        assert_eq!(tag_in("adc_XYZ3456789abcdef01234567"), None);
        let rec: Record = read_record(&format!("{RECORD_PREFIX}{tag}")).unwrap();
        assert!(!store_is_gone(&rec));
        drop(tmp);
        assert!(store_is_gone(&rec));
        collect_orphans(false);
        assert!(!shm::exists(&format!("{RECORD_PREFIX}{tag}")), "the record goes with its store");
    }
}
