//! Named objects (see [`crate::objects`]): a namespace is a handle of its own
//! ([`Namespace`]: put, create, get, latest, list, remove); the store answers for the
//! namespaces, its use, its capacity and its privacy.

use crate::error::Result;
use crate::objects::{self, Capacity, Namespace};
use crate::store::Store;

impl Store {
    /// Namespace `name` of this store (checks the name; touches nothing).
    pub fn namespace(&self, name: &str) -> Result<Namespace> {
        Namespace::open(self, name)
    }

    /// Makes namespace `name` exist before its first object (see [`Namespace::make_exist`]);
    /// false when it existed.
    pub fn create_namespace(&self, name: &str) -> Result<bool> {
        Namespace::open(self, name)?.make_exist()
    }

    /// The namespaces that exist in this store, sorted.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        objects::namespaces(self)
    }

    /// Removes namespace `name` and its objects; returns how many it held (see
    /// [`objects::remove_namespace`]).
    pub fn remove_namespace(&self, name: &str) -> Result<usize> {
        objects::remove_namespace(self, name)
    }

    /// Bytes held by the live versions of this store's tables and objects (what
    /// `max_store_bytes` bounds; see [`objects::store_used`]).
    pub fn used_bytes(&self) -> Result<u64> {
        objects::store_used(self)
    }

    /// Free space of `/dev/shm` and of the store's file system, the bytes in use and `quota`.
    pub fn capacity(&self, quota: Option<u64>) -> Result<Capacity> {
        objects::capacity(self, quota)
    }

    /// `StoreNotPrivate` unless this store (and `ns`'s folders) are private to this user
    /// (see [`objects::check_private`]).
    pub fn check_private(&self, ns: Option<&Namespace>) -> Result<()> {
        objects::check_private(self, ns)
    }
}
