//! Shared mutable arrays: an N-dimensional array of a numeric or bool dtype in a named
//! shared-memory segment, read and written in place by many processes under a
//! cross-process lock that survives a holder killed with SIGKILL.
//!
//! Payload segments ([`crate::sys::shm`]) are immutable once announced; these are a separate,
//! writable kind with their own header, lifetime and gc rule.
//!
//! # Naming
//! An array is named inside a store (`secret_dir`). Its segment is `adca_` + the store's
//! tag ([`crate::gc::store_tag`], 10 hex digits, as payload segments carry it) + the first
//! 14 hex digits of `sha256(store key, canonical store path, NUL, name)` ([`segment_name`]),
//! where the store key is 32 random bytes kept inside the private store
//! ([`Store::key`]): two stores never collide, every process of the store's user derives
//! the same name (so two racing creates meet on one `O_EXCL` name), and no other user can
//! predict it, so pre-creating the name is neither a denial of service nor a way to make
//! the user adopt a segment another user can read. The tag makes the array of a store
//! deleted with `rm -rf` an orphan that gc frees ([`crate::gc::collect_orphans`]). `<store>/arrays/<name>` marks that the
//! array exists (for listing and gc) and holds the segment name; an open takes the segment
//! from it, so arrays made before the key existed (named from the store path and the name
//! alone) keep their segment until destroyed. A segment that is not this user's and
//! private is refused (`StoreNotPrivate`), whatever its name.
//!
//! # Layout (native byte order, little-endian on every supported target)
//! ```text
//! offset size
//!      0    8  magic b"ADCSHARR"
//!      8    4  layout version (1)
//!     12    4  header length = data offset (8192)
//!     16    4  state: 0 initialising, 1 ready, 2 destroyed (atomic)
//!     20    4  ndim (0..=16)
//!     24    8  dtype as NumPy's typestr, NUL-padded ("<f8", "|u1", "|b1", ...)
//!     32    8  itemsize
//!     40    8  data length in bytes
//!     48  128  shape: 16 x u64 (the first ndim are used; C order)
//!    176    4  creator pid,  180 4 reserved,  184 8 creator start time (clock ticks)
//!    192   40  creator boot id (ASCII, NUL-padded)
//!    232    4  name length,  236 128 name (UTF-8)
//!    384   64  the lock: a robust process-shared pthread mutex (see [`lock`](self))
//!    448    8  times the lock was taken over from a dead holder (atomic)
//!    512 4096  openers: 256 slots of {pid u32, reserved u32, start time u64}; pid 0 = free
//!   8192    -  data, C-contiguous
//! ```
//!
//! # Lifetime
//! An array lives until [`SharedArray::destroy`] or until gc ([`collect`]) finds that
//! its creator is dead and no live process has it open. Each open handle registers its
//! process in an opener slot (under the lock) and clears it when closed or dropped; a
//! process killed without closing leaves a slot whose pid and start time no longer
//! match a running process, which gc prunes. gc takes the array's lock before deciding
//! and marks the header destroyed before unlinking, and an open registers under the same
//! lock and re-checks that mark, so gc never frees an array a live process holds.
//! `create(exist_ok=true)` reclaims an existing array of the same shape and dtype (the
//! caller becomes its creator) and refuses a mismatched one. A failed create removes its
//! segment and marker. A process that maps an array keeps valid memory after it is
//! destroyed (POSIX unlink semantics), but new opens fail.
//!
//! # Platforms
//! Linux only: the lock needs robust process-shared mutexes (glibc). macOS has no robust
//! mutexes and Windows no POSIX shared memory names; there the module is compiled out
//! (a named Windows mutex, which reports `WAIT_ABANDONED`, would be the port).

mod lock;

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use memmap2::{MmapMut, MmapOptions};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use lock::Acquired;

use crate::error::{Error, IoContext, Result};
use crate::gc::{GcAction, GcTransport};
use crate::store::Store;
use crate::sys::process::WriterIdentity;
use crate::sys::shm;
use crate::sys::trust::{EntryKind, Open, TrustedDir};

/// Directory (inside the store) of the array markers.
pub const ARRAYS_DIR: &str = "arrays";
/// Prefix of array segments (payload segments are `adc_…`).
pub use crate::sys::shm::ARRAY_SEGMENT_PREFIX;
/// First bytes of every array segment.
pub const MAGIC: &[u8; 8] = b"ADCSHARR";
/// Version of the header layout described in the module docs.
pub const LAYOUT_VERSION: u32 = 1;
/// Header length, and offset of the data.
pub const HEADER_LEN: usize = 8192;
/// Most dimensions an array may have.
pub const MAX_NDIM: usize = 16;
/// Opener slots in the header: processes (handles) that can hold an array at once.
pub const OPENER_SLOTS: usize = 256;
/// Longest array name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// The dtypes an array may have, as NumPy typestrs (native little-endian).
pub const DTYPES: &[&str] =
    &["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8", "<c8", "<c16"];

const STATE_INIT: u32 = 0;
const STATE_READY: u32 = 1;
const STATE_DESTROYED: u32 = 2;

mod off {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const HEADER_LEN: usize = 12;
    pub const STATE: usize = 16;
    pub const NDIM: usize = 20;
    pub const DTYPE: usize = 24;
    pub const ITEMSIZE: usize = 32;
    pub const DATA_LEN: usize = 40;
    pub const SHAPE: usize = 48;
    pub const CREATOR_PID: usize = 176;
    pub const CREATOR_START: usize = 184;
    pub const CREATOR_BOOT: usize = 192;
    pub const BOOT_LEN: usize = 40;
    pub const NAME_LEN: usize = 232;
    pub const NAME: usize = 236;
    pub const MUTEX: usize = 384;
    pub const RECOVERIES: usize = 448;
    pub const OPENERS: usize = 512;
    pub const SLOT: usize = 16;
}
const _: () = assert!(off::OPENERS + OPENER_SLOTS * off::SLOT <= HEADER_LEN);
const _: () = assert!(off::NAME + MAX_NAME_LEN <= off::MUTEX);
const _: () = assert!(off::MUTEX + lock::MUTEX_SPACE <= off::RECOVERIES);

/// How long an open waits for a live creator to finish initialising.
const INIT_WAIT: Duration = Duration::from_secs(5);
/// How long gc waits for an array's lock before skipping it.
const GC_LOCK_WAIT: Duration = Duration::from_secs(1);
/// A marker without a segment younger than this may be a create in progress.
const MARKER_GRACE: Duration = Duration::from_secs(10);

/// Checks an array name: 1 to 128 bytes of letters, digits, `_`, `-`, `.`, not starting with `.`.
pub fn check_array_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid shared array name {name:?}: use 1 to {MAX_NAME_LEN} letters, digits, '_', '-' or '.', not starting with '.'"
        )))
    }
}

/// The item size of a supported typestr, or a clear error.
pub fn itemsize_of(typestr: &str) -> Result<usize> {
    if !DTYPES.contains(&typestr) {
        return Err(Error::InvalidArgument(format!(
            "unsupported shared array dtype {typestr:?}: use a numeric or bool dtype in native byte order ({})",
            DTYPES.join(", ")
        )));
    }
    Ok(typestr[2..].parse().expect("typestrs in DTYPES end in their size"))
}

/// Bytes of data of an array of `shape` and item size `itemsize`.
pub fn data_len(shape: &[usize], itemsize: usize) -> Result<usize> {
    if shape.len() > MAX_NDIM {
        return Err(Error::InvalidArgument(format!(
            "shared arrays have at most {MAX_NDIM} dimensions, got {}",
            shape.len()
        )));
    }
    shape
        .iter()
        .try_fold(itemsize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize - HEADER_LEN)
        .ok_or_else(|| Error::InvalidArgument(format!("shared array shape {shape:?} is too large to address")))
}

/// The segment name of array `name` in the store at `canonical_root` whose key is `key`
/// and whose segments' tag is `tag` (see the module docs).
pub fn segment_name(key: &[u8; 32], canonical_root: &Path, tag: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(key);
    h.update(canonical_root.as_os_str().as_encoded_bytes());
    h.update([0u8]);
    h.update(name.as_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let tag = if tag.len() == crate::sys::shm::TAG_LEN { tag } else { "" };
    format!("{ARRAY_SEGMENT_PREFIX}{tag}{}", &hex[..24 - tag.len()])
}

/// True when `segment` has the shape of an array segment name (`adca_` + 24 lowercase hex).
fn is_segment_name(segment: &str) -> bool {
    segment
        .strip_prefix(ARRAY_SEGMENT_PREFIX)
        .is_some_and(|hex| hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The name a create of `name` uses now: from the store's key (`create`: made if missing)
/// and canonical path; `None` when the store or (without `create`) its key does not exist.
fn derived_segment(store: &Store, name: &str, create: bool) -> Result<Option<String>> {
    let Some(key) = store.key(create)? else { return Ok(None) };
    let Ok(root) = fs::canonicalize(store.root()) else { return Ok(None) };
    // The store's tag (and its record in /dev/shm) lets the gc of any store free the
    // array after `rm -rf` of this one, as it frees the store's payload segments.
    let Some(tag) = crate::gc::store_tag(store) else {
        return Err(Error::StoreUnusable {
            path: store.root().to_path_buf(),
            reason: "its record in the shared-memory directory cannot be written".into(),
        });
    };
    Ok(Some(segment_name(&key, &root, &tag, name)))
}

/// The segment of array `name`: the one its marker names (an array keeps the segment it
/// was created with), else the one a create would use now.
fn segment_of(store: &Store, markers: Option<&TrustedDir>, name: &str) -> Result<Option<String>> {
    if let Some(seg) = read_marker(markers, name) {
        return Ok(Some(seg));
    }
    derived_segment(store, name, false)
}

/// `<store>/arrays/`, opened and checked; `None` when it (or the store) does not exist.
fn markers_dir(store: &Store) -> Result<Option<TrustedDir>> {
    store.dir_at(Path::new(ARRAYS_DIR), false)
}

/// The segment the marker of `name` holds, when it holds a valid one.
fn read_marker(markers: Option<&TrustedDir>, name: &str) -> Option<String> {
    let bytes = markers?.read(name).ok()??;
    let seg = String::from_utf8(bytes).ok()?.trim().to_string();
    is_segment_name(&seg).then_some(seg)
}

fn is_already_exists(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
}

/// How a new array's data starts.
#[derive(Debug, Clone, Copy)]
pub enum Init<'a> {
    /// Zeros (what a new segment holds). A reclaimed array keeps its data.
    Keep,
    /// Every element set to these `itemsize` bytes.
    Fill(&'a [u8]),
    /// The whole data, `data_len` bytes in C order.
    Data(&'a [u8]),
}

/// A process that created or opens an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// `Some(false)` when certainly gone, `None` when this platform cannot tell.
    pub alive: Option<bool>,
}

/// What [`list`] reports of one array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayInfo {
    /// The array's name in its store.
    pub name: String,
    /// Its shared-memory segment (`/dev/shm/<segment>`).
    pub segment: String,
    /// `"ready"`, `"initialising"`, `"destroyed"` or `"missing"` (marker without segment).
    pub state: String,
    /// NumPy typestr of the elements (empty when the segment is missing).
    pub dtype: String,
    /// Dimensions, C order.
    pub shape: Vec<usize>,
    /// Bytes of data.
    pub nbytes: usize,
    /// The process that created (or last reclaimed) it.
    pub creator: Option<Holder>,
    /// Live openers' pids, one entry per open handle.
    pub openers: Vec<u32>,
    /// Times the lock was taken over from a dead holder.
    pub lock_recoveries: u64,
}

/// A mapped shared array. Each handle registers its process as an opener until it is
/// closed or dropped. Data access goes through [`SharedArray::data_ptr`] (the bindings
/// hand it to NumPy) under the caller's discipline; the lock is advisory, as in any
/// shared-memory design.
pub struct SharedArray {
    _map: MmapMut,
    base: *mut u8,
    len: usize,
    name: String,
    segment: String,
    store: Store,
    typestr: String,
    shape: Vec<usize>,
    /// Opener slot index + 1; 0 once closed.
    slot: AtomicUsize,
    /// The process that registered the slot: a forked child inherits this handle but
    /// must not free its parent's slot.
    pid: u32,
}

// SAFETY: the mapping is shared memory written by other processes anyway; every header
// field is accessed through atomics or under the cross-process lock, and the data is
// handed out as a raw pointer whose synchronisation is the caller's (the lock).
unsafe impl Send for SharedArray {}
unsafe impl Sync for SharedArray {}

impl std::fmt::Debug for SharedArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedArray")
            .field("name", &self.name)
            .field("segment", &self.segment)
            .field("dtype", &self.typestr)
            .field("shape", &self.shape)
            .finish()
    }
}

/// Raw access to a header in a mapping of at least `HEADER_LEN` bytes.
#[derive(Clone, Copy)]
struct Header(*mut u8);

impl Header {
    fn u32a(self, o: usize) -> &'static AtomicU32 {
        // SAFETY: in-bounds, 4-aligned offsets of a live mapping (callers keep it mapped).
        unsafe { &*(self.0.add(o) as *const AtomicU32) }
    }
    fn u64a(self, o: usize) -> &'static AtomicU64 {
        // SAFETY: as u32a, 8-aligned.
        unsafe { &*(self.0.add(o) as *const AtomicU64) }
    }
    fn get32(self, o: usize) -> u32 {
        self.u32a(o).load(Ordering::Acquire)
    }
    fn get64(self, o: usize) -> u64 {
        self.u64a(o).load(Ordering::Acquire)
    }
    fn set32(self, o: usize, v: u32) {
        self.u32a(o).store(v, Ordering::Release)
    }
    fn set64(self, o: usize, v: u64) {
        self.u64a(o).store(v, Ordering::Release)
    }
    fn bytes(self, o: usize, n: usize) -> Vec<u8> {
        // SAFETY: in-bounds read of a live mapping.
        unsafe { std::slice::from_raw_parts(self.0.add(o), n).to_vec() }
    }
    fn put(self, o: usize, b: &[u8]) {
        // SAFETY: in-bounds write; only done while the segment is private to its creator.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.0.add(o), b.len()) }
    }
    fn text(self, o: usize, n: usize) -> String {
        let b = self.bytes(o, n);
        let end = b.iter().position(|&c| c == 0).unwrap_or(n);
        String::from_utf8_lossy(&b[..end]).into_owned()
    }
    fn mutex(self) -> *mut libc::pthread_mutex_t {
        // SAFETY: in-bounds, 64-aligned offset.
        unsafe { self.0.add(off::MUTEX) as *mut libc::pthread_mutex_t }
    }
    fn state(self) -> u32 {
        self.get32(off::STATE)
    }
    fn typestr(self) -> String {
        self.text(off::DTYPE, 8)
    }
    fn shape(self) -> Vec<usize> {
        let n = (self.get32(off::NDIM) as usize).min(MAX_NDIM);
        (0..n).map(|i| self.get64(off::SHAPE + 8 * i) as usize).collect()
    }
    fn creator(self) -> WriterIdentity {
        let boot = self.text(off::CREATOR_BOOT, off::BOOT_LEN);
        WriterIdentity {
            pid: self.get32(off::CREATOR_PID),
            start: Some(self.get64(off::CREATOR_START)).filter(|&s| s != 0),
            boot_id: Some(boot).filter(|b| !b.is_empty()),
        }
    }
    fn set_creator(self, me: &WriterIdentity) {
        let mut boot = [0u8; off::BOOT_LEN];
        if let Some(b) = &me.boot_id {
            let n = b.len().min(off::BOOT_LEN);
            boot[..n].copy_from_slice(&b.as_bytes()[..n]);
        }
        self.put(off::CREATOR_BOOT, &boot);
        self.set64(off::CREATOR_START, me.start.unwrap_or(0));
        self.set32(off::CREATOR_PID, me.pid);
    }
    fn slot_pid(self, i: usize) -> &'static AtomicU32 {
        self.u32a(off::OPENERS + i * off::SLOT)
    }
    fn slot_start(self, i: usize) -> &'static AtomicU64 {
        self.u64a(off::OPENERS + i * off::SLOT + 8)
    }
    fn opener(self, i: usize) -> Option<WriterIdentity> {
        let pid = self.slot_pid(i).load(Ordering::Acquire);
        (pid != 0).then(|| WriterIdentity {
            pid,
            start: Some(self.slot_start(i).load(Ordering::Acquire)).filter(|&s| s != 0),
            boot_id: None,
        })
    }
    /// Frees the slots of dead openers; returns the live ones (liveness unknown counts as live).
    fn prune_openers(self, prune: bool) -> Vec<u32> {
        let mut live = Vec::new();
        for i in 0..OPENER_SLOTS {
            if let Some(who) = self.opener(i) {
                if who.is_alive() == Some(false) {
                    if prune {
                        self.slot_pid(i).store(0, Ordering::Release);
                    }
                } else {
                    live.push(who.pid);
                }
            }
        }
        live
    }
    /// Checks magic, version and sizes against a segment of `size` bytes.
    fn validate(self, name: &str, size: usize) -> Result<(String, Vec<usize>)> {
        let bad = |reason: String| Error::ArrayLayout { name: name.into(), reason };
        if self.bytes(off::MAGIC, 8) != MAGIC {
            return Err(bad("the segment is not a shared array (bad magic); destroy it or use another name".into()));
        }
        let version = self.get32(off::VERSION);
        if version != LAYOUT_VERSION {
            return Err(bad(format!(
                "header layout version {version}, this library reads version {LAYOUT_VERSION}; use a matching allye_data_connector"
            )));
        }
        let typestr = self.typestr();
        let itemsize = itemsize_of(&typestr).map_err(|e| bad(format!("header: {e}")))?;
        let shape = self.shape();
        let want = data_len(&shape, itemsize).map_err(|e| bad(format!("header: {e}")))?;
        let header_len = self.get32(off::HEADER_LEN) as usize;
        if header_len != HEADER_LEN
            || self.get64(off::DATA_LEN) as usize != want
            || self.get64(off::ITEMSIZE) as usize != itemsize
            || size < HEADER_LEN + want
        {
            return Err(bad(format!(
                "header and segment disagree (header {header_len} + data {want} bytes, segment {size} bytes); the segment is corrupt, destroy it"
            )));
        }
        Ok((typestr, shape))
    }
}

/// The segment as a read-write mapping, without registering an opener.
struct Mapped {
    map: MmapMut,
    base: *mut u8,
    size: usize,
}

impl Mapped {
    fn header(&self) -> Header {
        Header(self.base)
    }
}

fn map_segment(name: &str, segment: &str) -> Result<Option<Mapped>> {
    // This user's and private (0600), reached without a symbolic link: a segment another
    // user made under this name is refused, never mapped.
    let Some((file, size)) = shm::open_checked(segment, true)? else { return Ok(None) };
    let size = size as usize;
    if size < HEADER_LEN {
        return Err(Error::ArrayLayout {
            name: name.into(),
            reason: format!(
                "its segment holds {size} bytes, less than a header; it is not a shared array of this layout"
            ),
        });
    }
    // SAFETY: a MAP_SHARED read-write mapping of a segment other processes write too;
    // all access goes through raw pointers and atomics, never through `&[u8]`.
    let mut map = unsafe { MmapOptions::new().len(size).map_mut(&file) }
        .ctx(|| format!("cannot map the segment of shared array {name:?}"))?;
    let base = map.as_mut_ptr();
    Ok(Some(Mapped { map, base, size }))
}

/// Waits for a live creator to finish; `Err(ArrayNotFound)` when it died half-way or the
/// array was destroyed.
fn wait_ready(store: &Store, name: &str, h: Header) -> Result<()> {
    let start = Instant::now();
    loop {
        match h.state() {
            STATE_READY => return Ok(()),
            STATE_DESTROYED => return Err(not_found(store, name, Some("it was destroyed".into()))),
            _ => {
                let creator = h.creator();
                if creator.is_alive() == Some(false) {
                    return Err(not_found(
                        store,
                        name,
                        Some(format!("its creator, pid {}, died before finishing; gc frees it", creator.pid)),
                    ));
                }
                if start.elapsed() > INIT_WAIT {
                    return Err(Error::ArrayLayout {
                        name: name.into(),
                        reason: format!(
                            "its creator, pid {}, has not finished initialising it after {INIT_WAIT:?}; try again",
                            creator.pid
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn not_found(store: &Store, name: &str, reason: Option<String>) -> Error {
    Error::ArrayNotFound { name: name.into(), store: store.root().to_path_buf(), reason }
}

impl SharedArray {
    /// Creates array `name` in `store` with `typestr` ([`DTYPES`]) and `shape`.
    ///
    /// With `exist_ok`, an existing array of the same dtype and shape is reclaimed (this
    /// process becomes its creator; `init` other than [`Init::Keep`] is applied under the
    /// lock) and a mismatched one is refused with [`Error::ArrayLayout`]; without it an
    /// existing one is [`Error::ArrayExists`]. Returns the handle and whether it was reclaimed.
    /// On any failure nothing is left behind.
    pub fn create(
        store: &Store,
        name: &str,
        typestr: &str,
        shape: &[usize],
        exist_ok: bool,
        init: Init<'_>,
    ) -> Result<(Self, bool)> {
        check_array_name(name)?;
        let itemsize = itemsize_of(typestr)?;
        let len = data_len(shape, itemsize)?;
        match init {
            Init::Fill(b) if b.len() != itemsize => {
                return Err(Error::InvalidArgument(format!(
                    "fill value of {} bytes for dtype {typestr} of {itemsize}",
                    b.len()
                )))
            }
            Init::Data(b) if b.len() != len => {
                return Err(Error::InvalidArgument(format!(
                    "initial data of {} bytes for shape {shape:?} and dtype {typestr} ({len} bytes)",
                    b.len()
                )))
            }
            _ => {}
        }
        let markers = store.ensure()?.create_dir(ARRAYS_DIR)?;
        // An array made before the store had a key keeps the segment its marker names.
        let old = read_marker(Some(&markers), name).filter(|seg| shm::exists(seg));
        let segment = match old {
            Some(seg) => seg,
            None => derived_segment(store, name, true)?.ok_or_else(|| Error::StoreUnusable {
                path: store.root().to_path_buf(),
                reason: "its canonical path cannot be resolved".into(),
            })?,
        };
        for _attempt in 0..3 {
            match shm::create(&segment) {
                Ok(file) => {
                    let had_marker = markers.stat(name)?.is_some();
                    let made =
                        Self::init_new(store, name, &segment, typestr, shape, itemsize, len, init, file, &markers);
                    if made.is_err() {
                        let _ = shm::unlink(&segment);
                        if !had_marker {
                            let _ = markers.remove_file(name);
                        }
                    }
                    return made.map(|a| (a, false));
                }
                Err(e) if is_already_exists(&e) => {
                    if !exist_ok {
                        return Err(Error::ArrayExists { name: name.into(), store: store.root().to_path_buf() });
                    }
                    let Some(m) = map_segment(name, &segment)? else { continue };
                    let h = m.header();
                    if h.bytes(off::MAGIC, 8) == MAGIC
                        && h.state() == STATE_INIT
                        && h.creator().is_alive() == Some(false)
                    {
                        // A create that died half-way: nobody can be using it.
                        let _ = shm::unlink(&segment);
                        continue;
                    }
                    let a = Self::attach(store, name, &segment, m)?;
                    if a.typestr != typestr || a.shape != shape {
                        return Err(Error::ArrayLayout {
                            name: name.into(),
                            reason: format!(
                                "it exists with dtype {} and shape {:?}, not {typestr} and {shape:?}; destroy it or use another name",
                                a.typestr, a.shape
                            ),
                        });
                    }
                    let acquired = a.lock()?;
                    a.header().set_creator(&WriterIdentity::current());
                    if acquired == Acquired::OwnerDied {
                        log::warn!("shared array {name:?}: took its lock over from a dead holder while reclaiming it");
                    }
                    a.apply_init(init);
                    a.unlock()?;
                    write_marker(&markers, name, &segment)?;
                    return Ok((a, true));
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::ArrayLayout {
            name: name.into(),
            reason: "its segment keeps appearing and vanishing (a concurrent create/destroy); try again".into(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn init_new(
        store: &Store,
        name: &str,
        segment: &str,
        typestr: &str,
        shape: &[usize],
        itemsize: usize,
        len: usize,
        init: Init<'_>,
        file: File,
        markers: &TrustedDir,
    ) -> Result<Self> {
        write_marker(markers, name, segment)?;
        let total = HEADER_LEN + len;
        // Reserve the pages now: on a full /dev/shm this fails with ENOSPC here instead of
        // a SIGBUS at the first write through the mapping.
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, total as u64).map_err(|e| {
            Error::io(format!("cannot allocate {total} bytes of shared memory for array {name:?}"), e.into())
        })?;
        // SAFETY: the new segment is ours alone until its state is ready.
        let mut map = unsafe { MmapOptions::new().len(total).map_mut(&file) }
            .ctx(|| format!("cannot map the segment of shared array {name:?}"))?;
        let base = map.as_mut_ptr();
        let h = Header(base);
        h.put(off::MAGIC, MAGIC);
        h.set32(off::VERSION, LAYOUT_VERSION);
        h.set32(off::HEADER_LEN, HEADER_LEN as u32);
        h.set32(off::NDIM, shape.len() as u32);
        let mut ts = [0u8; 8];
        ts[..typestr.len()].copy_from_slice(typestr.as_bytes());
        h.put(off::DTYPE, &ts);
        h.set64(off::ITEMSIZE, itemsize as u64);
        h.set64(off::DATA_LEN, len as u64);
        for (i, &d) in shape.iter().enumerate() {
            h.set64(off::SHAPE + 8 * i, d as u64);
        }
        h.set_creator(&WriterIdentity::current());
        h.set32(off::NAME_LEN, name.len() as u32);
        h.put(off::NAME, name.as_bytes());
        // SAFETY: fresh, 64-aligned space in a MAP_SHARED mapping.
        unsafe { lock::init(h.mutex())? };
        let a = SharedArray {
            _map: map,
            base,
            len: total,
            name: name.into(),
            segment: segment.into(),
            store: store.clone(),
            typestr: typestr.into(),
            shape: shape.to_vec(),
            slot: AtomicUsize::new(0),
            pid: std::process::id(),
        };
        a.apply_init(init);
        a.register()?;
        h.set32(off::STATE, STATE_READY);
        Ok(a)
    }

    /// Opens array `name` of `store`; [`Error::ArrayNotFound`] when it does not exist.
    pub fn open(store: &Store, name: &str) -> Result<Self> {
        check_array_name(name)?;
        if store.open_dir()?.is_none() {
            return Err(not_found(store, name, Some("the store does not exist".into())));
        }
        let segment =
            segment_of(store, markers_dir(store)?.as_ref(), name)?.ok_or_else(|| not_found(store, name, None))?;
        let m = map_segment(name, &segment)?.ok_or_else(|| not_found(store, name, None))?;
        Self::attach(store, name, &segment, m)
    }

    /// Validates a mapped segment and registers this process as an opener.
    fn attach(store: &Store, name: &str, segment: &str, m: Mapped) -> Result<Self> {
        let h = m.header();
        if h.bytes(off::MAGIC, 8) != MAGIC {
            return Err(Error::ArrayLayout {
                name: name.into(),
                reason: "the segment is not a shared array (bad magic); destroy it or use another name".into(),
            });
        }
        wait_ready(store, name, h)?;
        let (typestr, shape) = h.validate(name, m.size)?;
        let a = SharedArray {
            base: m.base,
            len: m.size,
            _map: m.map,
            name: name.into(),
            segment: segment.into(),
            store: store.clone(),
            typestr,
            shape,
            slot: AtomicUsize::new(0),
            pid: std::process::id(),
        };
        // Register under the lock, re-checking the destroyed mark gc sets under it.
        let acquired = a.lock()?;
        if acquired == Acquired::OwnerDied {
            log::warn!("shared array {name:?}: took its lock over from a dead holder while opening it");
        }
        let registered = if h.state() == STATE_DESTROYED {
            Err(not_found(store, name, Some("it was destroyed".into())))
        } else {
            a.register()
        };
        a.unlock()?;
        registered.map(|()| a)
    }

    fn header(&self) -> Header {
        Header(self.base)
    }

    /// Claims an opener slot (reusing those of dead processes). Caller holds the lock or
    /// the segment is not yet visible.
    fn register(&self) -> Result<()> {
        let h = self.header();
        let me = WriterIdentity::current();
        let mut free = None;
        for i in 0..OPENER_SLOTS {
            match h.opener(i) {
                None => {
                    free = Some(i);
                    break;
                }
                Some(who) if free.is_none() && who.is_alive() == Some(false) => free = Some(i),
                _ => {}
            }
        }
        let i = free.ok_or_else(|| Error::ArrayLayout {
            name: self.name.clone(),
            reason: format!("{OPENER_SLOTS} handles already hold it open; close some"),
        })?;
        h.slot_start(i).store(me.start.unwrap_or(0), Ordering::Release);
        h.slot_pid(i).store(me.pid, Ordering::Release);
        self.slot.store(i + 1, Ordering::Release);
        Ok(())
    }

    fn apply_init(&self, init: Init<'_>) {
        let data = self.data_ptr();
        let len = self.data_len();
        // SAFETY: `data..data+len` is inside the mapping; lengths were checked by create.
        unsafe {
            match init {
                Init::Keep => {}
                Init::Data(b) => std::ptr::copy_nonoverlapping(b.as_ptr(), data, len),
                Init::Fill(b) if b.iter().all(|&x| x == 0) => std::ptr::write_bytes(data, 0, len),
                Init::Fill(b) => {
                    let n = b.len();
                    for i in 0..len / n {
                        std::ptr::copy_nonoverlapping(b.as_ptr(), data.add(i * n), n);
                    }
                }
            }
        }
    }

    /// The array's name in its store.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its shared-memory segment's name.
    pub fn segment(&self) -> &str {
        &self.segment
    }
    /// The store it belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }
    /// NumPy typestr of the elements.
    pub fn typestr(&self) -> &str {
        &self.typestr
    }
    /// Dimensions, C order.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Start of the data (C order), valid while this handle lives.
    pub fn data_ptr(&self) -> *mut u8 {
        // SAFETY: HEADER_LEN is inside the mapping (checked on open/create).
        unsafe { self.base.add(HEADER_LEN) }
    }
    /// Bytes of data.
    pub fn data_len(&self) -> usize {
        self.len.min(HEADER_LEN + self.header().get64(off::DATA_LEN) as usize) - HEADER_LEN
    }
    /// True while this handle is registered (not closed).
    pub fn is_open(&self) -> bool {
        self.slot.load(Ordering::Acquire) != 0
    }
    /// True once the array was destroyed (by any process).
    pub fn is_destroyed(&self) -> bool {
        self.header().state() == STATE_DESTROYED
    }
    /// Times the lock was taken over from a dead holder, over the array's life.
    pub fn lock_recoveries(&self) -> u64 {
        self.header().get64(off::RECOVERIES)
    }

    fn note(&self, a: Acquired) -> Acquired {
        if a == Acquired::OwnerDied {
            self.header().u64a(off::RECOVERIES).fetch_add(1, Ordering::AcqRel);
        }
        a
    }

    /// Blocks until this thread holds the array's lock. Pair with [`SharedArray::unlock`]
    /// in the same thread, or use [`SharedArray::locked`].
    pub fn lock(&self) -> Result<Acquired> {
        // SAFETY: the mutex was initialised by create and the mapping lives with self.
        unsafe { lock::lock(self.header().mutex(), &self.name) }.map(|a| self.note(a))
    }
    /// Takes the lock if free; `None` when another thread holds it.
    pub fn try_lock(&self) -> Result<Option<Acquired>> {
        // SAFETY: as lock.
        unsafe { lock::try_lock(self.header().mutex(), &self.name) }.map(|a| a.map(|a| self.note(a)))
    }
    /// Waits for the lock at most `timeout`; `None` when it ran out.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<Acquired>> {
        // SAFETY: as lock.
        unsafe { lock::lock_timeout(self.header().mutex(), &self.name, timeout) }.map(|a| a.map(|a| self.note(a)))
    }
    /// Releases the lock this thread holds.
    pub fn unlock(&self) -> Result<()> {
        // SAFETY: as lock.
        unsafe { lock::unlock(self.header().mutex(), &self.name) }
    }
    /// Holds the lock until the guard drops.
    pub fn locked(&self) -> Result<LockGuard<'_>> {
        let acquired = self.lock()?;
        Ok(LockGuard { array: self, acquired })
    }

    /// Unregisters this handle (idempotent). The mapping stays valid until drop. In a
    /// forked child the inherited handle only stops being usable; the parent's slot stays.
    pub fn close(&self) {
        let slot = self.slot.swap(0, Ordering::AcqRel);
        if slot != 0 && std::process::id() == self.pid {
            self.header().slot_pid(slot - 1).store(0, Ordering::Release);
        }
    }

    /// Destroys the array: marks it destroyed, unlinks its segment and removes its marker.
    /// Processes that map it keep valid memory; new opens fail. Closes this handle.
    pub fn destroy(&self) -> Result<()> {
        self.close();
        let acquired = self.lock()?;
        if acquired == Acquired::OwnerDied {
            log::warn!("shared array {:?}: took its lock over from a dead holder while destroying it", self.name);
        }
        let was = self.header().state();
        self.header().set32(off::STATE, STATE_DESTROYED);
        let unlinked = shm::unlink(&self.segment).map(drop);
        self.unlock()?;
        unlinked?;
        if was != STATE_DESTROYED {
            remove_marker(&self.store, &self.name, &self.segment);
        }
        Ok(())
    }
}

impl Drop for SharedArray {
    fn drop(&mut self) {
        self.close();
    }
}

/// The lock of an array, held until dropped.
pub struct LockGuard<'a> {
    array: &'a SharedArray,
    acquired: Acquired,
}

impl LockGuard<'_> {
    /// True when the previous holder died holding the lock: the data may be half-written.
    pub fn owner_died(&self) -> bool {
        self.acquired == Acquired::OwnerDied
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.array.unlock() {
            log::error!("{e}");
        }
    }
}

fn write_marker(markers: &TrustedDir, name: &str, segment: &str) -> Result<()> {
    let mut f = markers.open(name, Open::Truncate)?.expect("a truncating open creates the file");
    f.write_all(segment.as_bytes()).ctx(|| format!("cannot write {}", markers.path().join(name).display()))
}

/// Removes the marker if it still names `segment` (a newer array of the same name in a
/// store at another canonical path keeps its own).
fn remove_marker(store: &Store, name: &str, segment: &str) {
    let Ok(Some(markers)) = markers_dir(store) else { return };
    if read_marker(Some(&markers), name).as_deref() == Some(segment) {
        let _ = markers.remove_file(name);
    }
}

fn marker_names(markers: Option<&TrustedDir>) -> Result<Vec<String>> {
    let Some(markers) = markers else { return Ok(Vec::new()) };
    let mut names: Vec<String> = markers
        .entries()?
        .into_iter()
        .filter(|e| e.kind == EntryKind::File)
        .filter_map(|e| e.name.into_string().ok())
        .filter(|n| check_array_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Every array of the store with its shape, dtype, creator and live openers.
pub fn list(store: &Store) -> Result<Vec<ArrayInfo>> {
    let markers = markers_dir(store)?;
    let mut out = Vec::new();
    for name in marker_names(markers.as_ref())? {
        let segment = segment_of(store, markers.as_ref(), &name)?.unwrap_or_default();
        let mut info = ArrayInfo {
            name: name.clone(),
            segment: segment.clone(),
            state: "missing".into(),
            dtype: String::new(),
            shape: Vec::new(),
            nbytes: 0,
            creator: None,
            openers: Vec::new(),
            lock_recoveries: 0,
        };
        match map_segment(&name, &segment) {
            Ok(Some(m)) => {
                let h = m.header();
                if h.bytes(off::MAGIC, 8) == MAGIC {
                    info.state = match h.state() {
                        STATE_READY => "ready",
                        STATE_DESTROYED => "destroyed",
                        _ => "initialising",
                    }
                    .into();
                    info.dtype = h.typestr();
                    info.shape = h.shape();
                    info.nbytes = h.get64(off::DATA_LEN) as usize;
                    let c = h.creator();
                    info.creator = Some(Holder { pid: c.pid, alive: c.is_alive() });
                    info.openers = h.prune_openers(false);
                    info.lock_recoveries = h.get64(off::RECOVERIES);
                } else {
                    info.state = "corrupt".into();
                }
            }
            Ok(None) => {}
            Err(_) => info.state = "corrupt".into(),
        }
        out.push(info);
    }
    Ok(out)
}

/// Frees the store's abandoned arrays: those whose creator is dead and that no live
/// process holds open (dead openers' slots are pruned first), arrays whose creation died
/// half-way, and markers whose segment is gone. Live creators' and held arrays are never
/// touched; an array whose lock stays busy for a second is skipped (someone live holds it).
/// `dry_run` only reports.
pub fn collect(store: &Store, dry_run: bool) -> Result<Vec<GcAction>> {
    let markers = markers_dir(store)?;
    let mut actions = Vec::new();
    for name in marker_names(markers.as_ref())? {
        let Some(segment) = segment_of(store, markers.as_ref(), &name)? else { continue };
        let action = |reason: String| GcAction::delete(GcTransport::SharedArray, segment.clone(), name.clone(), reason);
        let m = match map_segment(&name, &segment) {
            Ok(Some(m)) => m,
            Ok(None) => {
                let old = markers
                    .as_ref()
                    .and_then(|d| d.stat(&name).ok().flatten())
                    .map(|m| SystemTime::now().duration_since(m.modified).unwrap_or_default() > MARKER_GRACE)
                    .unwrap_or(false);
                if old {
                    if !dry_run {
                        if let Some(d) = &markers {
                            let _ = d.remove_file(&name);
                        }
                    }
                    actions.push(action("marker of an array whose segment is gone".into()));
                }
                continue;
            }
            Err(e) => {
                log::warn!("gc: skipping shared array {name:?}: {e}");
                continue;
            }
        };
        let h = m.header();
        if h.bytes(off::MAGIC, 8) != MAGIC {
            log::warn!("gc: skipping shared array {name:?}: its segment is not an array of this layout");
            continue;
        }
        // SAFETY: the magic says this is an array segment, so its mutex was initialised
        // before any process could see the segment (creator writes it before anything).
        let got = unsafe { lock::lock_timeout(h.mutex(), &name, GC_LOCK_WAIT) };
        match got {
            Ok(Some(Acquired::OwnerDied)) => {
                h.u64a(off::RECOVERIES).fetch_add(1, Ordering::AcqRel);
            }
            Ok(Some(Acquired::Clean)) => {}
            Ok(None) => {
                log::info!("gc: shared array {name:?} is held (its lock stayed busy), kept");
                continue;
            }
            Err(e) => {
                log::warn!("gc: skipping shared array {name:?}: {e}");
                continue;
            }
        }
        let creator = h.creator();
        let creator_alive = creator.is_alive();
        let live = h.prune_openers(!dry_run);
        let verdict = if h.state() == STATE_DESTROYED {
            Some("destroyed, segment left behind".to_string())
        } else if creator_alive != Some(false) || !live.is_empty() {
            None // a live (or unknowable) creator, or a live opener, holds it
        } else if h.state() == STATE_INIT {
            Some(format!("its creator, pid {}, died while creating it", creator.pid))
        } else {
            Some(format!("its creator, pid {}, is gone and no live process has it open", creator.pid))
        };
        if let Some(reason) = verdict {
            if !dry_run {
                h.set32(off::STATE, STATE_DESTROYED);
                let _ = shm::unlink(&segment);
                remove_marker(store, &name, &segment);
            }
            actions.push(action(reason));
        }
        // SAFETY: this thread holds the lock taken above.
        if let Err(e) = unsafe { lock::unlock(h.mutex(), &name) } {
            log::warn!("gc: {e}");
        }
    }
    Ok(actions)
}

#[cfg(test)]
mod tests;
