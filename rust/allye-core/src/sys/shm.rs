//! Named shared-memory segments: create, open and map, unlink.
//!
//! POSIX (Linux, macOS): `shm_open("/" + name)` with mode 0600 (on Linux, `/dev/shm/<name>`
//! opened with `O_NOFOLLOW`). A segment is used (read, mapped, unlinked) only when it is
//! this user's and private (see [`check_segment`]): `/dev/shm` is shared by every user of
//! the machine. A segment lives until
//! it is unlinked, whoever created or opened it exits: the lifetime is owned by the
//! manifest and gc, never by a process (Python's resource tracker is not involved, so
//! "send now, read later from another process" works). A reader that still maps an
//! unlinked segment keeps valid data until it unmaps.
//!
//! Windows: named file mappings in the session namespace, created with
//! `CreateFileMappingW(INVALID_HANDLE_VALUE, ...)`. Windows destroys a mapping when its
//! last handle closes, so a segment cannot outlive the process that sent it unless some
//! process holds a handle; that is why `transport="auto"` always uses files on Windows,
//! and why the protocol's "send now, read later" is only served by files there.
//!
//! Names are `adc_` + 24 hex digits (the first ones naming the store, see
//! `crate::gc::orphans`): 28 characters, 29 with the leading `/`, within
//! macOS's 31-character limit (`PSHMNAMLEN`).

use crate::error::{Error, Result};

/// Prefix of the segments we create (0.1.2's are `psm_…`, Python's default).
pub const SEGMENT_PREFIX: &str = "adc_";
/// Prefix of shared-array segments (writable, with their own header; `crate::arrays`).
/// Their 24 hex digits also start with the store's tag.
pub const ARRAY_SEGMENT_PREFIX: &str = "adca_";
/// Hex digits of the store tag at the start of a segment name (after `adc_`; the tag is
/// computed by `crate::gc::orphans`).
pub const TAG_LEN: usize = 10;

/// A fresh, unique segment name (no leading `/`).
pub fn new_segment_name() -> String {
    new_segment_name_tagged(None)
}

/// A fresh segment name whose 24 hex digits start with `tag` (hex digits naming the store,
/// so that the segments of a deleted store can be found), the rest random.
pub fn new_segment_name_tagged(tag: Option<&str>) -> String {
    let hex = crate::sys::ids::new_v4().simple().to_string();
    let tag = tag.filter(|t| t.len() < 24 && t.bytes().all(|b| b.is_ascii_hexdigit())).unwrap_or("");
    format!("{SEGMENT_PREFIX}{tag}{}", &hex[..24 - tag.len()])
}

/// Checks a locator before it is handed to the OS: no path separators, no NUL,
/// not empty, not too long for macOS.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= 30 && !name.contains(['/', '\\', '\0']) && name != "." && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid shared-memory segment name {name:?}: want 1 to 30 characters without '/', '\\' or NUL"
        )))
    }
}

#[cfg(unix)]
pub use posix::*;

#[cfg(unix)]
mod posix {
    use std::fs::File;
    use std::path::PathBuf;

    use memmap2::{Mmap, MmapOptions};
    use rustix::fd::OwnedFd;
    use rustix::fs::Mode;
    #[cfg(target_os = "linux")]
    use rustix::fs::OFlags;
    use rustix::io::Errno;

    use super::check_name;
    use crate::error::{Error, IoContext, Result};
    use crate::sys::trust::{check_owner_mode, current_uid, Kind};

    /// Where a segment lives, for messages (and, on Linux, to open it).
    pub fn segment_path(name: &str) -> PathBuf {
        PathBuf::from(format!("/dev/shm/{name}"))
    }

    /// How a segment is opened.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum How {
        /// New (fails if the name exists), read-write, 0600.
        Create,
        Read,
        ReadWrite,
    }

    /// Opens a segment without following a symbolic link (glibc's `shm_open` adds
    /// `O_NOFOLLOW` too; on Linux a segment is a file of `/dev/shm`, a sticky directory
    /// anyone can plant a link in).
    fn open_raw(name: &str, how: How) -> rustix::io::Result<OwnedFd> {
        #[cfg(target_os = "linux")]
        {
            let flags = match how {
                How::Create => OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
                How::Read => OFlags::RDONLY,
                How::ReadWrite => OFlags::RDWR,
            };
            rustix::fs::open(segment_path(name), flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::RUSR | Mode::WUSR)
        }
        #[cfg(not(target_os = "linux"))]
        {
            use rustix::shm;
            let flags = match how {
                How::Create => shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
                How::Read => shm::OFlags::RDONLY,
                How::ReadWrite => shm::OFlags::RDWR,
            };
            shm::open(format!("/{name}").as_str(), flags, Mode::RUSR | Mode::WUSR)
        }
    }

    /// The trust rule for segments: this user's, and readable and writable by nobody else.
    /// A segment another user made (or made readable) is refused with `StoreNotPrivate`.
    /// Returns the segment's size.
    pub fn check_segment(file: &File, name: &str) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().ctx(|| format!("cannot stat shared-memory segment {name:?}"))?;
        check_owner_mode(&segment_path(name), Kind::Segment, meta.uid(), meta.mode())?;
        Ok(meta.len())
    }

    /// Creates a new segment (fails if the name exists, whoever made it), mode 0600
    /// whatever the umask, size 0. Write into the returned file; on Linux `write` extends
    /// it like any tmpfs file.
    pub fn create(name: &str) -> Result<File> {
        check_name(name)?;
        let fd = open_raw(name, How::Create)
            .map_err(|e| Error::io(format!("cannot create shared-memory segment {name:?}"), e.into()))?;
        let _ = rustix::fs::fchmod(&fd, Mode::RUSR | Mode::WUSR);
        Ok(File::from(fd))
    }

    /// Opens an existing segment of this user, checked against the trust rule, with its
    /// size; `Ok(None)` when no segment has this name. `write`: read-write, else read-only.
    pub fn open_checked(name: &str, write: bool) -> Result<Option<(File, u64)>> {
        check_name(name)?;
        let fd = match open_raw(name, if write { How::ReadWrite } else { How::Read }) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(crate::sys::trust::not_private(
                    &segment_path(name),
                    Kind::Segment,
                    None,
                    None,
                    "is a symbolic link, not a segment".into(),
                ))
            }
            Err(e) => return Err(Error::io(format!("cannot open shared-memory segment {name:?}"), e.into())),
        };
        let file = File::from(fd);
        let size = check_segment(&file, name)?;
        Ok(Some((file, size)))
    }

    /// Opens a segment read-only (checked: see [`check_segment`]) and maps its first `len`
    /// bytes. `Ok(None)` when no segment has this name.
    pub fn open_map(name: &str, len: u64) -> Result<Option<(Mmap, u64)>> {
        let Some((file, size)) = open_checked(name, false)? else { return Ok(None) };
        if len == 0 || len > size {
            // Nothing to map, or the segment is smaller than the manifest says: the
            // caller reports it as corrupt with both sizes.
            let empty = MmapOptions::new().len(0).map_anon().ctx(|| "cannot map 0 bytes".into())?;
            return Ok(Some((empty.make_read_only().ctx(|| "mprotect".into())?, size)));
        }
        // SAFETY: payload segments are immutable once their `ready` line exists; we map
        // read-only and never hand out mutable access.
        let map = unsafe { MmapOptions::new().len(len as usize).map(&file) }
            .ctx(|| format!("cannot map shared-memory segment {name:?}"))?;
        Ok(Some((map, size)))
    }

    /// The uid owning the segment `name`; `None` when there is none.
    fn owner_of(name: &str) -> Option<u32> {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{AtFlags, CWD};
            rustix::fs::statat(CWD, segment_path(name), AtFlags::SYMLINK_NOFOLLOW).ok().map(|st| st.st_uid)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let fd = open_raw(name, How::Read).ok()?;
            rustix::fs::fstat(&fd).ok().map(|st| st.st_uid)
        }
    }

    /// Unlinks this user's segment `name`. `Ok(false)` when there is none of this name, or
    /// when it is another user's: that one is never acted on (logged, left alone).
    pub fn unlink(name: &str) -> Result<bool> {
        check_name(name)?;
        match owner_of(name) {
            None => return Ok(false),
            Some(uid) if uid != current_uid() => {
                log::warn!("shared-memory segment {name:?} belongs to uid {uid}, not to this user: left alone");
                return Ok(false);
            }
            Some(_) => {}
        }
        match rustix::shm::unlink(format!("/{name}").as_str()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::io(format!("cannot unlink shared-memory segment {name:?}"), e.into())),
        }
    }

    /// True when a segment of this name exists and is this user's.
    pub fn exists(name: &str) -> bool {
        check_name(name).is_ok() && owner_of(name) == Some(current_uid())
    }

    /// A new, unnamed segment (Linux: an `O_TMPFILE` in `/dev/shm`), read-write, mode 0600
    /// whatever the umask, size 0. Nobody can open it until [`link_new`] names it, so it
    /// can be locked and sized first.
    #[cfg(target_os = "linux")]
    pub fn create_unnamed() -> Result<File> {
        let fd =
            rustix::fs::open("/dev/shm", OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, Mode::RUSR | Mode::WUSR)
                .map_err(|e| Error::io("cannot create an unnamed shared-memory segment".to_string(), e.into()))?;
        rustix::fs::fchmod(&fd, Mode::RUSR | Mode::WUSR)
            .map_err(|e| Error::io("cannot make an unnamed shared-memory segment private".to_string(), e.into()))?;
        Ok(File::from(fd))
    }

    /// Names the unnamed segment `file` ([`create_unnamed`]) `name`, which must not exist
    /// (whoever made it: a name another user planted is an error, never replaced).
    #[cfg(target_os = "linux")]
    pub fn link_new(file: &File, name: &str) -> Result<()> {
        use rustix::fs::{AtFlags, CWD};
        use std::os::fd::AsRawFd;
        check_name(name)?;
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        rustix::fs::linkat(CWD, proc_path.as_str(), CWD, segment_path(name), AtFlags::SYMLINK_FOLLOW)
            .map_err(|e| Error::io(format!("cannot name shared-memory segment {name:?}"), e.into()))
    }

    /// Renames this user's segment `from` to `to`, which must not exist (atomic: a reader
    /// looking `to` up sees the whole segment or none). In the sticky `/dev/shm` only the
    /// owner can rename or unlink a segment, so a segment opened by [`open_checked`] keeps
    /// its name until this process (or another of this user) renames it.
    #[cfg(target_os = "linux")]
    pub fn rename_new(from: &str, to: &str) -> Result<()> {
        use rustix::fs::{RenameFlags, CWD};
        check_name(from)?;
        check_name(to)?;
        rustix::fs::renameat_with(CWD, segment_path(from), CWD, segment_path(to), RenameFlags::NOREPLACE)
            .map_err(|e| Error::io(format!("cannot rename shared-memory segment {from:?} to {to:?}"), e.into()))
    }
}

#[cfg(windows)]
pub use windows::*;

#[cfg(windows)]
mod windows {
    //! Minimal named-mapping support. Not used by `transport="auto"` (see the module
    //! docs for the lifetime rule); an explicit shm send on Windows falls back to a file.
    use super::check_name;
    use crate::error::{Error, Result};
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Memory::{
        MapViewOfFile, OpenFileMappingW, UnmapViewOfFile, FILE_MAP_READ, MEMORY_MAPPED_VIEW_ADDRESS,
    };

    /// A read-only view of a named mapping; unmapped and closed on drop.
    pub struct View {
        handle: windows_sys::Win32::Foundation::HANDLE,
        addr: MEMORY_MAPPED_VIEW_ADDRESS,
        len: usize,
    }
    unsafe impl Send for View {}
    unsafe impl Sync for View {}
    impl std::panic::RefUnwindSafe for View {}
    impl std::ops::Deref for View {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            unsafe { std::slice::from_raw_parts(self.addr.Value as *const u8, self.len) }
        }
    }
    impl Drop for View {
        fn drop(&mut self) {
            unsafe {
                UnmapViewOfFile(self.addr);
                CloseHandle(self.handle);
            }
        }
    }

    fn wide(name: &str) -> Vec<u16> {
        name.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// Opens a named mapping read-only and maps its first `len` bytes.
    pub fn open_map(name: &str, len: u64) -> Result<Option<(View, u64)>> {
        check_name(name)?;
        let w = wide(name);
        let handle = unsafe { OpenFileMappingW(FILE_MAP_READ, 0, w.as_ptr()) };
        if handle.is_null() {
            return Ok(None);
        }
        let addr = unsafe { MapViewOfFile(handle, FILE_MAP_READ, 0, 0, len as usize) };
        if addr.Value.is_null() {
            let e = std::io::Error::last_os_error();
            unsafe { CloseHandle(handle) };
            return Err(Error::io(format!("cannot map shared-memory segment {name:?}"), e));
        }
        Ok(Some((View { handle, addr, len: len as usize }, len)))
    }

    /// Windows has no unlink: a mapping vanishes with its last handle.
    pub fn unlink(_name: &str) -> Result<bool> {
        Ok(false)
    }

    pub fn exists(name: &str) -> bool {
        matches!(open_map(name, 1), Ok(Some(_)))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_fit_macos() {
        let n = new_segment_name();
        assert_eq!(n.len(), 28);
        check_name(&n).unwrap();
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(31)).is_err());
    }

    #[test]
    fn lifecycle_and_unlinked_mapping_stays_valid() {
        let name = new_segment_name();
        assert!(!exists(&name));
        let mut f = create(&name).unwrap();
        assert!(create(&name).is_err(), "create is exclusive");
        f.write_all(b"hello world").unwrap();
        drop(f);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(format!("/dev/shm/{name}")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (map, size) = open_map(&name, 5).unwrap().unwrap();
        assert_eq!(size, 11);
        assert_eq!(&map[..], b"hello");
        assert!(unlink(&name).unwrap());
        assert!(!unlink(&name).unwrap());
        assert!(!exists(&name));
        // POSIX: the mapping outlives the name.
        assert_eq!(&map[..], b"hello");
        assert!(open_map(&name, 5).unwrap().is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn unnamed_segments_are_private_and_names_are_never_taken_over() {
        use std::os::unix::fs::MetadataExt;
        let taken = new_segment_name();
        create(&taken).unwrap().write_all(b"planted").unwrap();
        let mut f = create_unnamed().unwrap();
        f.write_all(b"mine").unwrap();
        assert_eq!(f.metadata().unwrap().mode() & 0o777, 0o600);
        assert!(link_new(&f, &taken).is_err(), "an existing name is not replaced");
        assert_eq!(&open_map(&taken, 7).unwrap().unwrap().0[..], b"planted");
        let fresh = new_segment_name();
        link_new(&f, &fresh).unwrap();
        assert_eq!(&open_map(&fresh, 4).unwrap().unwrap().0[..], b"mine");
        assert!(rename_new(&fresh, &taken).is_err(), "a rename does not replace either");
        assert_eq!(&open_map(&taken, 7).unwrap().unwrap().0[..], b"planted");
        let moved = new_segment_name();
        rename_new(&fresh, &moved).unwrap();
        assert!(!exists(&fresh) && exists(&moved));
        unlink(&moved).unwrap();
        unlink(&taken).unwrap();
    }

    #[test]
    fn asking_for_more_than_the_segment_holds_reports_its_size() {
        let name = new_segment_name();
        create(&name).unwrap().write_all(b"tiny").unwrap();
        for len in [0, 5, 1 << 30] {
            let (map, size) = open_map(&name, len).unwrap().unwrap();
            assert_eq!((map.len(), size), (0, 4), "len {len}");
        }
        unlink(&name).unwrap();
    }
}
