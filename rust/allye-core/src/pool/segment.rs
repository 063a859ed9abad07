//! One pool segment: a tmpfs file in `/dev/shm` under a pool name, held open (and
//! `flock`ed, which is how gc tells a live pool's segment from a dead process's) by the
//! process whose pool owns it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Instant;

use memmap2::{Advice, MmapOptions, MmapRaw};
use rustix::fs::{FallocateFlags, FlockOperation};

use super::names::pool_name;
use crate::error::{Error, IoContext, Result};
use crate::sys::shm;

/// Where POSIX shared memory lives on Linux (glibc's and rustix's `shm_open`).
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// `fcntl` command choosing the signal of lease breaks (Linux; not in the `libc` crate).
const F_SETSIG: libc::c_int = 10;

/// A segment of the pool.
pub(crate) struct Segment {
    /// Its current name (a pool name while in the pool).
    pub(crate) name: String,
    /// Open read-write, holding an exclusive `flock`.
    pub(crate) file: File,
    /// Its size: what a send can write into it.
    pub(crate) len: u64,
    /// The populated read-write mapping of a free segment (`None` while quarantined).
    pub(crate) map: Option<MmapRaw>,
    /// When it entered its current state.
    pub(crate) since: Instant,
}

impl Segment {
    /// A new segment of `len` bytes whose pages exist and are mapped: an unnamed tmpfs
    /// file (`O_TMPFILE`, 0600 whatever the umask), locked, `fallocate`d (a full `/dev/shm`
    /// is an error here, never a `SIGBUS` later), only then named (`linkat`, exclusive: a
    /// name another user planted is never taken over) under a pool name carrying `tag`,
    /// and mapped with `MAP_POPULATE`. A pool name is thus never seen unlocked while its
    /// owner lives, and a process killed before the name exists leaves nothing (the kernel
    /// frees an unnamed file with its last descriptor).
    pub(crate) fn create(tag: Option<&str>, len: u64) -> Result<Segment> {
        let name = pool_name(tag);
        let file = shm::create_unnamed()?;
        rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| Error::io(format!("cannot lock pool segment {name:?}"), e.into()))?;
        rustix::fs::fallocate(&file, FallocateFlags::empty(), 0, len)
            .map_err(|e| Error::io(format!("cannot allocate {len} bytes of shared memory"), e.into()))?;
        shm::link_new(&file, &name)?;
        super::stop_point("pool-created");
        let mut seg = Segment { name, file, len, map: None, since: Instant::now() };
        match seg.map() {
            Ok(()) => Ok(seg),
            Err(e) => {
                seg.destroy();
                Err(e)
            }
        }
    }

    /// Takes the payload segment `v1` out of its name into the pool (quarantined: it is
    /// reused only once [`Segment::unused_elsewhere`] says so). `file` is `v1` opened
    /// read-write by `sys::shm::open_checked` (this user's, 0600, not a link) and `len`
    /// its size. `None` when it is no regular file, or another process of this user is
    /// taking or freeing it (its lock or its name is gone).
    pub(crate) fn retire(v1: &str, file: File, len: u64, tag: Option<&str>) -> Option<Segment> {
        let meta = rustix::fs::fstat(&file).ok()?;
        if (meta.st_mode & libc::S_IFMT) != libc::S_IFREG || len == 0 {
            return None;
        }
        rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).ok()?;
        let name = pool_name(tag);
        shm::rename_new(v1, &name).ok()?;
        super::stop_point("pool-retired");
        Some(Segment { name, file, len, map: None, since: Instant::now() })
    }

    /// True when no other open file description refers to this segment: no process (this
    /// one included, through another descriptor or a mapping) holds it open or mapped. The
    /// kernel answers it exactly: a write lease is granted only to the sole opener of a
    /// file (`fcntl(F_SETLEASE)`, counting the files that mappings hold too). The lease is
    /// dropped at once; a lease break (someone opening the pool name meanwhile) is told
    /// with `SIGURG`, ignored by default, rather than `SIGIO`, which would end the process.
    /// `Err` when the kernel grants no leases here (then nothing is recycled).
    pub(crate) fn unused_elsewhere(&self) -> std::io::Result<bool> {
        let fd = self.file.as_raw_fd();
        // SAFETY: plain fcntl calls on a descriptor this segment owns.
        unsafe {
            if libc::fcntl(fd, F_SETSIG, libc::SIGURG) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::fcntl(fd, libc::F_SETLEASE, libc::F_WRLCK) == -1 {
                let e = std::io::Error::last_os_error();
                return if e.raw_os_error() == Some(libc::EAGAIN) { Ok(false) } else { Err(e) };
            }
            libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK);
        }
        Ok(true)
    }

    /// Maps the whole segment read-write with its page tables filled (`MAP_POPULATE`: the
    /// copy into it takes no fault), not inherited by forked children.
    pub(crate) fn map(&mut self) -> Result<()> {
        let ctx = || format!("cannot map pool segment {:?}", self.name);
        let map = MmapOptions::new().len(self.len as usize).populate().map_raw(&self.file).ctx(ctx)?;
        map.advise(Advice::DontFork).ctx(ctx)?;
        self.map = Some(map);
        Ok(())
    }

    /// Makes the first `len` bytes the payload segment `v1`: the tail (if any) is given
    /// back, then the segment takes the name `v1`, which must not exist (rename without
    /// replacing, atomic: a reader sees the whole payload or no segment). The mapping and
    /// descriptor are returned, to be dropped off the send's path.
    // The segment comes back by value on failure (to the pool); a rare path.
    #[allow(clippy::result_large_err)]
    pub(crate) fn publish(
        mut self,
        v1: &str,
        len: u64,
    ) -> std::result::Result<(Option<MmapRaw>, File), (Segment, Error)> {
        if len < self.len {
            if let Err(e) = rustix::fs::ftruncate(&self.file, len) {
                let err = Error::io(format!("cannot size pool segment {:?}", self.name), e.into());
                return Err((self, err));
            }
            self.len = len;
        }
        if let Err(e) = shm::rename_new(&self.name, v1) {
            return Err((self, e));
        }
        super::stop_point("pool-published");
        Ok((self.map, self.file))
    }

    /// Unlinks the segment (its memory returns once no process maps it).
    pub(crate) fn destroy(self) {
        let _ = shm::unlink(&self.name);
    }
}
