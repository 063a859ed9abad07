"""Shared mutable arrays: a NumPy array in shared memory that many processes read and
write in place, under a cross-process lock that a killed holder cannot wedge (Linux)."""

from .shared_array import HolderDiedWarning, SharedArray, list_arrays

__all__ = ["HolderDiedWarning", "SharedArray", "list_arrays"]
