//! This process's pool: its state, the filler thread, the calls of sends and gc, and the
//! collection of dead processes' pool segments.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use memmap2::MmapRaw;

use super::names::{payload_tag, pool_tag};
use super::segment::{Segment, SHM_DIR};
use super::{stop_point, PoolStats};
use crate::error::Error;
use crate::tuning::{
    POOL_CREATE_BACKOFF, POOL_DEMAND_WINDOW, POOL_IDLE_RELEASE, POOL_MIN_BYTES, POOL_PROBE_EVERY, POOL_QUARANTINE_MAX,
    POOL_RECENT_SENDS, POOL_SURPLUS_RELEASE,
};

struct State {
    max_bytes: u64,
    free: Vec<Segment>,
    quarantine: Vec<Segment>,
    /// Mappings and descriptors of published segments, dropped by the filler (unmapping
    /// 800 MB of filled page tables takes milliseconds a send need not wait for).
    published: Vec<(Option<MmapRaw>, File)>,
    /// Large sends: when, bytes, the store tag.
    recent: VecDeque<(Instant, u64, Option<String>)>,
    /// Bytes the filler is allocating now (counted in the bound).
    creating: u64,
    create_failed: Option<Instant>,
    running: bool,
    /// False once the kernel refused a lease: nothing is recycled then.
    leases: bool,
    stats: PoolStats,
}

impl State {
    fn new() -> Self {
        State {
            max_bytes: 0,
            free: Vec::new(),
            quarantine: Vec::new(),
            published: Vec::new(),
            recent: VecDeque::new(),
            creating: 0,
            create_failed: None,
            running: false,
            leases: true,
            stats: PoolStats::default(),
        }
    }

    /// Every free and quarantined segment, taken out.
    fn take_all(&mut self) -> Vec<Segment> {
        let mut all = std::mem::take(&mut self.free);
        all.append(&mut self.quarantine);
        all
    }

    fn held(&self) -> u64 {
        self.free.iter().chain(&self.quarantine).map(|s| s.len).sum::<u64>() + self.creating
    }

    /// Sizes of the large sends the pool should have a segment ready for: those of the
    /// last [`POOL_DEMAND_WINDOW`], at least the last one (within [`POOL_IDLE_RELEASE`]).
    fn demand(&self, now: Instant) -> Vec<(u64, Option<String>)> {
        let mut d: Vec<_> = self
            .recent
            .iter()
            .filter(|r| now.duration_since(r.0) < POOL_DEMAND_WINDOW)
            .map(|r| (r.1, r.2.clone()))
            .collect();
        if d.is_empty() {
            if let Some(last) = self.recent.back().filter(|r| now.duration_since(r.0) < POOL_IDLE_RELEASE) {
                d.push((last.1, last.2.clone()));
            }
        }
        d
    }

    /// The demanded sizes no free, quarantined or coming segment serves (a segment of
    /// `len` serves a send of `d` bytes when `d <= len <= 2 d`).
    fn unmatched(&self, now: Instant) -> Vec<(u64, Option<String>)> {
        let mut demand = self.demand(now);
        demand.sort_by_key(|d| std::cmp::Reverse(d.0));
        let mut supply: Vec<u64> = self.free.iter().chain(&self.quarantine).map(|s| s.len).collect();
        if self.creating > 0 {
            supply.push(self.creating);
        }
        supply.sort_unstable();
        let mut out = Vec::new();
        for (d, tag) in demand {
            match supply.iter().position(|&s| fits(d, s)) {
                Some(i) => {
                    supply.remove(i);
                }
                None => out.push((d, tag)),
            }
        }
        out
    }

    fn snapshot(&self) -> PoolStats {
        PoolStats {
            max_bytes: self.max_bytes,
            free_bytes: self.free.iter().map(|s| s.len).sum(),
            free_segments: self.free.len(),
            quarantined_bytes: self.quarantine.iter().map(|s| s.len).sum(),
            quarantined_segments: self.quarantine.len(),
            ..self.stats
        }
    }
}

/// Does a segment of `len` bytes serve a payload of `need` bytes?
fn fits(need: u64, len: u64) -> bool {
    need <= len && len <= need.saturating_mul(2)
}

struct Shared {
    pid: u32,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pool of the process that made it. A forked child makes its own: the parent's
/// mutex may be held by a thread that does not exist in the child, and its mappings are
/// not inherited (`MADV_DONTFORK`).
static CURRENT: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());

fn current() -> Option<&'static Shared> {
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: a published `Shared` is leaked, never freed.
    let sh = unsafe { p.as_ref() }?;
    (sh.pid == std::process::id()).then_some(sh)
}

fn current_or_new() -> &'static Shared {
    if let Some(sh) = current() {
        return sh;
    }
    let old = CURRENT.load(Ordering::Acquire);
    // SAFETY: as above.
    if let Some(parent) = unsafe { old.as_ref() } {
        forget_parents(parent);
    }
    let new = Box::into_raw(Box::new(Shared {
        pid: std::process::id(),
        state: Mutex::new(State::new()),
        wake: Condvar::new(),
    }));
    match CURRENT.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            static AT_EXIT: Once = Once::new();
            // SAFETY: registers a plain `extern "C" fn` that never unwinds.
            AT_EXIT.call_once(|| unsafe {
                libc::atexit(give_back_at_exit);
            });
            // SAFETY: just leaked above.
            unsafe { &*new }
        }
        Err(_) => {
            // Another thread of this process made it first.
            // SAFETY: `new` was never shared.
            drop(unsafe { Box::from_raw(new) });
            current().expect("the pool another thread made")
        }
    }
}

/// In a forked child: closes the descriptors of the parent's pool it inherited (their
/// locks stay with the parent) without unmapping anything (its mappings are not here).
fn forget_parents(parent: &Shared) {
    if let Ok(mut st) = parent.state.try_lock() {
        for seg in st.take_all() {
            if let Some(map) = seg.map {
                std::mem::forget(map);
            }
            drop(seg.file);
        }
        for (map, file) in st.published.drain(..) {
            std::mem::forget(map);
            drop(file);
        }
        st.running = false;
    }
}

extern "C" fn give_back_at_exit() {
    let Some(sh) = current() else { return };
    // Never wait at exit: a filler holding the lock leaves its segments to gc.
    if let Ok(mut st) = sh.state.try_lock() {
        for seg in st.take_all() {
            let _ = crate::sys::shm::unlink(&seg.name);
            if let Some(map) = seg.map {
                std::mem::forget(map); // the process is ending: unmapping is wasted time
            }
        }
    }
}

/// A pool segment taken by a send.
pub(crate) struct Taken {
    seg: Segment,
}

impl Taken {
    /// The writable mapping and its length.
    pub(crate) fn region(&mut self) -> (*mut u8, usize) {
        let map = self.seg.map.as_ref().expect("a free segment is mapped");
        (map.as_mut_ptr(), self.seg.len.min(map.len() as u64) as usize)
    }

    /// Makes the first `len` bytes the payload segment `v1` (see `Segment::publish`).
    // The failed publish hands the segment back by value so the caller can return it to
    // the pool; the error path is rare, so its size does not matter.
    #[allow(clippy::result_large_err)]
    pub(crate) fn publish(self, v1: &str, len: u64) -> Result<(), (Taken, Error)> {
        match self.seg.publish(v1, len) {
            Ok(leftover) => {
                if let Some(sh) = current() {
                    sh.lock().published.push(leftover);
                    sh.wake.notify_one();
                }
                Ok(())
            }
            Err((seg, e)) => Err((Taken { seg }, e)),
        }
    }

    /// Returns an unused segment to the pool (its bytes are overwritten by the next send).
    pub(crate) fn give_back(self) {
        match current() {
            Some(sh) => sh.lock().free.push(self.seg),
            None => self.seg.destroy(),
        }
    }
}

/// A free segment for a payload of `bytes` (the smallest that fits), if the pool has one.
pub(crate) fn take(bytes: u64) -> Option<Taken> {
    let sh = current()?;
    let mut st = sh.lock();
    if st.max_bytes == 0 {
        return None;
    }
    let best =
        st.free.iter().enumerate().filter(|(_, s)| fits(bytes, s.len)).min_by_key(|(_, s)| s.len).map(|(i, _)| i);
    match best {
        Some(i) => {
            st.stats.hits += 1;
            let seg = st.free.swap_remove(i);
            stop_point("pool-taken");
            Some(Taken { seg })
        }
        None => {
            st.stats.misses += 1;
            None
        }
    }
}

/// Tells the pool of a send of `bytes` into a store tagged `tag`, under the bound
/// `max_bytes` (0: no pool; what is held is given back). Starts the filler if needed.
pub(crate) fn note_send(tag: Option<&str>, bytes: u64, max_bytes: u64) {
    if max_bytes == 0 {
        if let Some(sh) = current() {
            sh.lock().max_bytes = 0;
            sh.wake.notify_one();
        }
        return;
    }
    if bytes < POOL_MIN_BYTES || bytes > max_bytes {
        return;
    }
    let sh = current_or_new();
    let mut st = sh.lock();
    st.max_bytes = max_bytes;
    st.recent.push_back((Instant::now(), bytes, tag.map(str::to_string)));
    while st.recent.len() > POOL_RECENT_SENDS {
        st.recent.pop_front();
    }
    if st.running {
        sh.wake.notify_one();
        return;
    }
    st.running = true;
    drop(st);
    if let Err(e) = std::thread::Builder::new().name("adc-pool".into()).spawn(move || fill(sh)) {
        log::debug!("no pool: cannot start its thread: {e}");
        sh.lock().running = false;
    }
}

/// Takes the freed payload segment `v1` into the pool instead of unlinking it, when this
/// process has a pool, a recent large send of about its size, and room under the bound.
/// `false`: unlink it as usual.
pub(crate) fn retire(v1: &str) -> bool {
    let Some(sh) = current() else { return false };
    {
        let st = sh.lock();
        if st.max_bytes == 0 || !st.leases || st.recent.is_empty() {
            return false;
        }
    }
    // Opened as any segment is (no link followed, this user's and 0600), before anything
    // is decided about it.
    let (file, size) = match crate::sys::shm::open_checked(v1, true) {
        Ok(Some(found)) => found,
        _ => return false,
    };
    {
        let st = sh.lock();
        let now = Instant::now();
        // Recycling is preferred to allocating: any recent size it serves will do.
        let wanted = st.demand(now).iter().any(|(d, _)| fits(*d, size));
        if size < POOL_MIN_BYTES || !wanted || st.held().saturating_add(size) > st.max_bytes {
            return false;
        }
    }
    let Some(seg) = Segment::retire(v1, file, size, payload_tag(v1)) else { return false };
    let mut st = sh.lock();
    st.quarantine.push(seg);
    sh.wake.notify_one();
    true
}

/// The filler: recycles quarantined segments, allocates the missing ones, drops what
/// sends published, gives everything back when idle.
fn fill(sh: &'static Shared) {
    let mut st = sh.lock();
    loop {
        let now = Instant::now();
        let published = std::mem::take(&mut st.published);
        let idle = st.recent.back().is_none_or(|r| now.duration_since(r.0) >= POOL_IDLE_RELEASE);
        if st.max_bytes == 0 || (idle && published.is_empty()) {
            let all = st.take_all();
            st.stats.released += all.len() as u64;
            st.running = false;
            drop(st);
            drop(published);
            all.into_iter().for_each(Segment::destroy);
            return;
        }
        // Quarantined segments nobody else holds become free; those held too long go.
        let mut ready = Vec::new();
        let mut gone = Vec::new();
        let mut i = 0;
        while i < st.quarantine.len() {
            let seg = &st.quarantine[i];
            match seg.unused_elsewhere() {
                Ok(true) => ready.push(st.quarantine.swap_remove(i)),
                Ok(false) if now.duration_since(seg.since) < POOL_QUARANTINE_MAX => i += 1,
                Ok(false) => gone.push(st.quarantine.swap_remove(i)),
                Err(e) => {
                    log::debug!("no recycling of segments: the kernel grants no lease ({e})");
                    st.leases = false;
                    gone.push(st.quarantine.swap_remove(i));
                }
            }
        }
        // Free segments no send took for a long while go too, and so do those beyond
        // what the recent sends want, once they have waited a little.
        let wanted = st.demand(now).len();
        let mut j = 0;
        while j < st.free.len() {
            let waited = now.duration_since(st.free[j].since);
            let surplus = st.free.len() + st.quarantine.len() > wanted.max(1);
            if waited >= POOL_IDLE_RELEASE || (surplus && waited >= POOL_SURPLUS_RELEASE) {
                gone.push(st.free.swap_remove(j));
            } else {
                j += 1;
            }
        }
        st.stats.released += gone.len() as u64;
        let backing_off = st.create_failed.is_some_and(|t| now.duration_since(t) < POOL_CREATE_BACKOFF);
        let held = st.held() + ready.iter().map(|s| s.len).sum::<u64>();
        let create = if backing_off {
            None
        } else {
            st.unmatched(now).into_iter().find(|(d, _)| held.saturating_add(*d) <= st.max_bytes)
        };
        if let Some((d, _)) = &create {
            st.creating = *d;
        }
        drop(st);

        drop(published);
        gone.into_iter().for_each(Segment::destroy);
        let mut recycled = Vec::new();
        for mut seg in ready {
            stop_point("pool-recycling");
            match seg.map() {
                Ok(()) => {
                    seg.since = Instant::now();
                    recycled.push(seg);
                }
                Err(e) => {
                    log::debug!("cannot map a recycled segment: {e}");
                    seg.destroy();
                }
            }
        }
        if !recycled.is_empty() {
            // Ready for the next send at once, not after an allocation below.
            let mut st = sh.lock();
            st.stats.recycled += recycled.len() as u64;
            st.free.extend(recycled);
        }
        let created = create.map(|(d, tag)| Segment::create(tag.as_deref(), d));

        st = sh.lock();
        st.creating = 0;
        let tried = created.is_some();
        match created {
            Some(Ok(seg)) => {
                st.stats.created += 1;
                st.free.push(seg);
            }
            Some(Err(e)) => {
                log::debug!("cannot fill the pool: {e}");
                st.create_failed = Some(Instant::now());
            }
            None => {}
        }
        if tried {
            continue; // more may be missing
        }
        let wait = if !st.quarantine.is_empty() || !st.published.is_empty() {
            POOL_PROBE_EVERY
        } else if !st.free.is_empty() {
            POOL_SURPLUS_RELEASE / 6 // what counts as surplus changes as sends age out of the window
        } else {
            let last = st.recent.back().map(|r| r.0).unwrap_or(now);
            (last + POOL_IDLE_RELEASE).saturating_duration_since(Instant::now()).max(Duration::from_millis(10))
        };
        st = sh.wake.wait_timeout(st, wait).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
    }
}

/// What this process's pool holds and has done.
pub fn stats() -> PoolStats {
    current().map(|sh| sh.lock().snapshot()).unwrap_or_default()
}

/// Gives back everything this process's pool holds, now (the next large send starts a
/// new one).
pub fn release() {
    let Some(sh) = current() else { return };
    let mut st = sh.lock();
    let all = st.take_all();
    st.stats.released += all.len() as u64;
    st.recent.clear();
    let published = std::mem::take(&mut st.published);
    sh.wake.notify_one();
    drop(st);
    drop(published);
    all.into_iter().for_each(Segment::destroy);
}

/// This user's pool segments in `/dev/shm`, every process's: `(name, allocated bytes,
/// (device, inode))`.
fn own_pool_segments() -> Vec<(String, u64, (u64, u64))> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir(SHM_DIR) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            pool_tag(&name)?;
            let m = e.metadata().ok().filter(|m| m.is_file() && m.uid() == me)?;
            Some((name, m.blocks() * 512, (m.dev(), m.ino())))
        })
        .collect()
}

/// Bytes and count of this user's pool segments in `/dev/shm` (every process's).
pub fn machine_held() -> (u64, usize) {
    let segs = own_pool_segments();
    (segs.iter().map(|s| s.1).sum(), segs.len())
}

/// `(device, inode)` of every file someone holds a `flock` on (`/proc/locks`, which
/// lists every process's locks without opening the files).
fn flocked() -> Option<HashSet<(u64, u64)>> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    let mut out = HashSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if !words.any(|w| w == "FLOCK") {
            continue;
        }
        for w in words {
            let parts: Vec<&str> = w.split(':').collect();
            if let [maj, min, ino] = parts[..] {
                if let (Ok(maj), Ok(min), Ok(ino)) =
                    (u32::from_str_radix(maj, 16), u32::from_str_radix(min, 16), ino.parse::<u64>())
                {
                    out.insert((rustix::fs::makedev(maj, min), ino));
                    break;
                }
            }
        }
    }
    Some(out)
}

/// Unlinks (with `dry_run`, only lists) this user's pool segments that no live process
/// holds: no `flock` on them (a pool locks a segment before it has its name). Returns
/// `(name, bytes)` of each. Never opens a pool segment.
pub fn collect_abandoned(dry_run: bool) -> Vec<(String, u64)> {
    let segs = own_pool_segments();
    if segs.is_empty() {
        return Vec::new();
    }
    let Some(locked) = flocked() else { return Vec::new() };
    let mut out = Vec::new();
    for (name, bytes, id) in segs {
        if locked.contains(&id) {
            continue;
        }
        if !dry_run {
            if let Err(e) = crate::sys::shm::unlink(&name) {
                log::warn!("cannot unlink abandoned pool segment {name:?}: {e}");
                continue;
            }
        }
        out.push((name, bytes));
    }
    out
}
