//! Mappings as Arrow buffers: a payload is read where it lies.

use std::fs::File;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::Buffer;

use crate::error::{Error, IoContext, Result};

/// Wraps a mapping (anything that derefs to bytes) as an Arrow buffer without copying.
pub fn buffer_from_mapping<M>(mapping: M) -> Buffer
where
    M: std::ops::Deref<Target = [u8]> + Send + Sync + std::panic::RefUnwindSafe + 'static,
{
    let len = mapping.len();
    if len == 0 {
        return Buffer::from_vec(Vec::<u8>::new());
    }
    let ptr = NonNull::new(mapping.as_ptr() as *mut u8).expect("mapping pointer is not null");
    // SAFETY: `ptr..ptr+len` is valid for reads as long as `mapping` lives, and the
    // buffer keeps `mapping` alive through the Arc. Payloads are immutable.
    unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(mapping)) }
}

/// Maps a file read-only; `Ok(None)` when it does not exist.
pub fn map_file(path: &Path) -> Result<Option<memmap2::Mmap>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
    };
    // SAFETY: payload files are immutable once their `ready` line exists (written under a
    // temporary name, then renamed); we never write through this mapping.
    let map = unsafe { memmap2::Mmap::map(&file) }.ctx(|| format!("cannot map {}", path.display()))?;
    Ok(Some(map))
}
