//! Shared arrays (see [`crate::arrays`]; Linux only): an array is a handle of its own
//! ([`SharedArray`]: lock, data, close, destroy); the store creates, opens and lists them
//! (its gc frees abandoned ones: [`Store::collect_arrays`]).

use crate::arrays::{self, ArrayInfo, Init, SharedArray};
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Creates array `name` of `typestr` and `shape`; returns the handle and whether an
    /// existing one was reclaimed (see [`SharedArray::create`]).
    pub fn create_array(
        &self,
        name: &str,
        typestr: &str,
        shape: &[usize],
        exist_ok: bool,
        init: Init<'_>,
    ) -> Result<(SharedArray, bool)> {
        SharedArray::create(self, name, typestr, shape, exist_ok, init)
    }

    /// Opens array `name` (see [`SharedArray::open`]).
    pub fn open_array(&self, name: &str) -> Result<SharedArray> {
        SharedArray::open(self, name)
    }

    /// Every shared array of this store (see [`arrays::list`]).
    pub fn arrays(&self) -> Result<Vec<ArrayInfo>> {
        arrays::list(self)
    }
}
