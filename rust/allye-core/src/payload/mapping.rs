//! Mappings as Arrow buffers: a payload is read where it lies.

use std::fs::File;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::Buffer;

use crate::error::{IoContext, Result};

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

/// Maps an opened payload file read-only (`path` names it in messages). Files are opened
/// through the store's checked handles (`crate::sys::trust`), never by path here.
pub fn map_file(file: &File, path: &Path) -> Result<memmap2::Mmap> {
    // SAFETY: payload files are immutable once their `ready` line exists (written under a
    // temporary name, then renamed); we never write through this mapping.
    unsafe { memmap2::Mmap::map(file) }.ctx(|| format!("cannot map {}", path.display()))
}
