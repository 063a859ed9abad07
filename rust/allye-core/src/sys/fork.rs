//! Process-global state that a forked child must not inherit.
//!
//! `fork` copies one thread. A mutex held at that moment by any other thread of the
//! parent (a background consolidation, a publisher, a pool filler) stays locked in the
//! child for ever, and the child's first call that takes it hangs: `multiprocessing`'s
//! default start method on Linux is `fork`, so this is an everyday case, not a corner.
//! Every process-global cache of the core is a [`ForkLocal`]: a child sees a fresh value
//! the first time it looks, and the parent's copy (its locks perhaps held by threads that
//! are not in the child) is left untouched and never freed.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    // Async-signal-safe: one atomic add, as the child handler of `pthread_atfork` must be.
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// How many forks stand between this process and the one that loaded the library: 0 in
/// that process, 1 in its forked children, and so on.
pub fn generation() -> u64 {
    #[cfg(unix)]
    {
        static REGISTER: std::sync::Once = std::sync::Once::new();
        // SAFETY: registers a plain `extern "C" fn` that never unwinds and only touches an
        // atomic; handlers stay registered for the life of the process (and its children).
        REGISTER.call_once(|| unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        });
    }
    GENERATION.load(Ordering::Acquire)
}

struct Slot<T> {
    generation: u64,
    value: T,
}

/// A process-global value made by `init` on first use in each process, forked children
/// included (see the module's documentation).
pub struct ForkLocal<T: 'static> {
    slot: AtomicPtr<Slot<T>>,
    init: fn() -> T,
}

impl<T: Send + Sync + 'static> ForkLocal<T> {
    /// A value made by `init` the first time a process asks for it.
    pub const fn new(init: fn() -> T) -> Self {
        ForkLocal { slot: AtomicPtr::new(std::ptr::null_mut()), init }
    }

    /// This process's value.
    pub fn get(&'static self) -> &'static T {
        let now = generation();
        loop {
            let current = self.slot.load(Ordering::Acquire);
            // SAFETY: a published slot is leaked, never freed (below), so it lives for ever.
            if let Some(slot) = unsafe { current.as_ref() } {
                if slot.generation == now {
                    return &slot.value;
                }
            }
            let fresh = Box::into_raw(Box::new(Slot { generation: now, value: (self.init)() }));
            match self.slot.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
                // The inherited slot is leaked on purpose: its locks may be held by
                // threads that do not exist here, and running its destructors in the
                // child could act on what belongs to the parent.
                // SAFETY: `fresh` was just leaked and is now published.
                Ok(_) => return unsafe { &(*fresh).value },
                Err(_) => {
                    // Another thread of this process published first: use theirs.
                    // SAFETY: `fresh` was never shared.
                    drop(unsafe { Box::from_raw(fresh) });
                }
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::sync::Mutex;

    use super::*;

    static COUNTER: ForkLocal<Mutex<u32>> = ForkLocal::new(|| Mutex::new(0));

    /// A forked child whose parent held the lock at the fork gets a fresh, unlocked value;
    /// the parent keeps its own.
    #[test]
    fn a_forked_child_does_not_inherit_a_held_lock() {
        *COUNTER.get().lock().unwrap() = 7;
        let held = COUNTER.get().lock().unwrap();
        // SAFETY: the child only touches the atomics and mutex above, then `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match COUNTER.get().try_lock() {
                Ok(v) if *v == 0 => 0,
                _ => 1,
            };
            // SAFETY: leaves the child without running the test harness's destructors.
            unsafe { libc::_exit(code) };
        }
        drop(held);
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child saw the parent's value or lock");
        assert_eq!(*COUNTER.get().lock().unwrap(), 7);
    }
}
