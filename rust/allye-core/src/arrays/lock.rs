//! The cross-process lock of a shared array: a robust, process-shared, error-checking
//! `pthread_mutex_t` that lives in the segment's header.
//!
//! Why a robust pthread mutex and not a hand-made futex word with an owner pid: glibc
//! registers every robust mutex a thread holds on the thread's robust list, and the
//! kernel walks that list when the thread dies (SIGKILL included), marks each held
//! mutex `FUTEX_OWNER_DIED` and wakes one waiter. The next acquirer gets `EOWNERDEAD`
//! at once, with no polling of pids (which are reused) and no timeout to tune. A thread
//! has one robust list and glibc owns it, so a futex of our own could not join it; an
//! owner-pid word would have to poll liveness while waiting. The uncontended path of the
//! glibc mutex is one compare-and-swap in user space.
//!
//! The error-checking kind turns a nested lock by the holding thread into `EDEADLK`
//! (reported as an error) instead of a silent deadlock, and an unlock by a thread that
//! does not hold it into `EPERM`.
//!
//! The layout is glibc's `pthread_mutex_t`: a native program opening an array must use
//! the same C library (glibc on Linux), which a Rust program linking `libc` does.

use std::time::Duration;

use crate::error::{Error, Result};

/// Bytes reserved for the mutex in the header.
pub(crate) const MUTEX_SPACE: usize = 64;
const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= MUTEX_SPACE);

/// How an acquisition went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The lock was free or released normally.
    Clean,
    /// The previous holder died while holding it; the lock was taken over and made
    /// consistent, and the data it guarded may be half-written.
    OwnerDied,
}

fn os_err(context: String, code: i32) -> Error {
    Error::io(context, std::io::Error::from_raw_os_error(code))
}

/// Initialises a mutex in place (the segment is new, nobody else maps it yet).
///
/// # Safety
/// `m` points to `MUTEX_SPACE` writable bytes of a `MAP_SHARED` mapping, aligned to 8.
pub(crate) unsafe fn init(m: *mut libc::pthread_mutex_t) -> Result<()> {
    let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
    let check = |rc: i32, what: &str| {
        if rc == 0 {
            Ok(())
        } else {
            Err(os_err(format!("cannot {what} of a shared array's lock"), rc))
        }
    };
    check(libc::pthread_mutexattr_init(&mut attr), "initialise the attributes")?;
    let result = (|| {
        check(
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
            "set the process-shared attribute",
        )?;
        check(libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST), "set the robust attribute")?;
        check(
            libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ERRORCHECK),
            "set the error-checking type",
        )?;
        check(libc::pthread_mutex_init(m, &attr), "initialise the mutex")
    })();
    libc::pthread_mutexattr_destroy(&mut attr);
    result
}

/// Turns the result code of a lock call into an acquisition (making the mutex
/// consistent after `EOWNERDEAD`), `None` for busy / timed out.
unsafe fn finish(m: *mut libc::pthread_mutex_t, rc: i32, name: &str) -> Result<Option<Acquired>> {
    match rc {
        0 => Ok(Some(Acquired::Clean)),
        libc::EOWNERDEAD => {
            let rc = libc::pthread_mutex_consistent(m);
            if rc != 0 {
                return Err(os_err(format!("cannot recover the lock of shared array {name:?} from its dead holder"), rc));
            }
            Ok(Some(Acquired::OwnerDied))
        }
        libc::EBUSY | libc::ETIMEDOUT => Ok(None),
        libc::EDEADLK => Err(Error::InvalidArgument(format!(
            "this thread already holds the lock of shared array {name:?}: nested locked() blocks or \
             read()/write() with lock=True inside locked() would deadlock; use lock=False inside the block"
        ))),
        libc::ENOTRECOVERABLE => Err(os_err(
            format!("the lock of shared array {name:?} is unrecoverable (a holder died and the next one released it without recovering); destroy and recreate the array"),
            rc,
        )),
        rc => Err(os_err(format!("cannot lock shared array {name:?}"), rc)),
    }
}

/// Blocks until the lock is held.
///
/// # Safety
/// `m` is a mutex set up by [`init`] in a live mapping.
pub(crate) unsafe fn lock(m: *mut libc::pthread_mutex_t, name: &str) -> Result<Acquired> {
    // A holder keeps the lock for a statement or two (well under a microsecond): waiting
    // for it on the CPU costs less than sleeping in the kernel and being woken (a futex
    // wait, a wake, two context switches), so try for a few microseconds first, where
    // another CPU can be running the holder. glibc's robust mutex does not spin itself.
    //
    // The spin reads the mutex's lock word and tries to take it only when it reads free:
    // a waiter trying (a compare-and-swap) on every turn would pull the word's cache line
    // away from the holder, whose release then waits for it, and every increment of a
    // contended counter pays that transfer twice.
    if spins() {
        let word = lock_word(m);
        for _ in 0..crate::tuning::ARRAY_LOCK_SPINS {
            if word.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                if let Some(a) = finish(m, libc::pthread_mutex_trylock(m), name)? {
                    return Ok(a);
                }
            }
            std::hint::spin_loop();
        }
    }
    loop {
        if let Some(a) = finish(m, libc::pthread_mutex_lock(m), name)? {
            return Ok(a);
        }
    }
}

/// The mutex's lock word: glibc's `__lock`, the first `int` of `pthread_mutex_t` (0 when
/// free; else the holder's thread id with the waiters and owner-died bits). Only read, as a
/// hint of when to try: every acquisition still goes through `pthread_mutex_trylock` or
/// `pthread_mutex_lock`, so a word read wrong (another C library's layout) costs failed
/// tries or the spin itself, never a wrong lock.
///
/// # Safety
/// As [`lock`].
pub(super) unsafe fn lock_word<'a>(m: *mut libc::pthread_mutex_t) -> &'a std::sync::atomic::AtomicI32 {
    // SAFETY: the mutex is 8-aligned in a live shared mapping and begins with an int.
    &*(m as *const std::sync::atomic::AtomicI32)
}

/// Whether spinning can help: only with another CPU to run the holder on (asked once per
/// process: the answer reads /proc and cgroup files).
fn spins() -> bool {
    static MULTI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MULTI.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Takes the lock if it is free; `None` when another thread holds it.
///
/// # Safety
/// As [`lock`].
pub(crate) unsafe fn try_lock(m: *mut libc::pthread_mutex_t, name: &str) -> Result<Option<Acquired>> {
    finish(m, libc::pthread_mutex_trylock(m), name)
}

/// Waits at most `timeout`; `None` when it ran out.
///
/// # Safety
/// As [`lock`].
pub(crate) unsafe fn lock_timeout(
    m: *mut libc::pthread_mutex_t,
    name: &str,
    timeout: Duration,
) -> Result<Option<Acquired>> {
    let mut now: libc::timespec = std::mem::zeroed();
    libc::clock_gettime(libc::CLOCK_REALTIME, &mut now);
    let total = now.tv_nsec as u128 + timeout.as_nanos();
    let deadline = libc::timespec {
        tv_sec: now.tv_sec.saturating_add((total / 1_000_000_000).min(i32::MAX as u128) as libc::time_t),
        tv_nsec: (total % 1_000_000_000) as _,
    };
    finish(m, libc::pthread_mutex_timedlock(m, &deadline), name)
}

/// Releases the lock held by this thread.
///
/// # Safety
/// As [`lock`].
pub(crate) unsafe fn unlock(m: *mut libc::pthread_mutex_t, name: &str) -> Result<()> {
    match libc::pthread_mutex_unlock(m) {
        0 => Ok(()),
        libc::EPERM => Err(Error::InvalidArgument(format!(
            "this thread does not hold the lock of shared array {name:?}; unlock only what you locked, in the same thread"
        ))),
        rc => Err(os_err(format!("cannot unlock shared array {name:?}"), rc)),
    }
}
