"""Shared mutable arrays: a NumPy array in shared memory that many processes read and
write in place, under a cross-process lock that a killed holder cannot wedge.

Lifetime: an array lives until :meth:`SharedArray.destroy` or until ``gc`` finds its
creator dead and no live process holding it open. Closing a handle (or the process
exiting) only unregisters that process. ``create(exist_ok=True)`` reclaims a leftover of
the same name, shape and dtype and refuses a mismatched one; a failed create leaves no
segment. Arrays belong to a store (``secret_dir``): the same name in two stores is two
arrays. Linux only (the lock is a robust process-shared pthread mutex).
"""

from __future__ import annotations

import ast
import functools
import operator
import os
import weakref
from typing import Any, ContextManager, Optional, Union

import numpy as np

from .. import _core
from .._args import PathLike, store_arg
from ..errors import ArrayClosedError, ArrayError, ArrayExistsError, ArrayLayoutError, InvalidArgumentError

__all__ = ["SharedArray", "HolderDiedWarning", "list_arrays"]

class HolderDiedWarning(RuntimeWarning):
    """The previous holder of a shared array's lock died holding it; this process took the
    lock over, and the data it guarded may be half-written."""


def _dir(secret_dir: Optional[PathLike]) -> Optional[str]:
    # Absolute: a pickled handle reopens it in a child whatever the child's working directory.
    store = store_arg(secret_dir)
    return None if store is None else os.path.abspath(store)


def _shape(shape: Any) -> tuple[int, ...]:
    dims = (shape,) if not isinstance(shape, (tuple, list)) else shape
    try:
        out = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise InvalidArgumentError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in out):
        raise InvalidArgumentError(f"shape {out} has a negative dimension")
    return out


def _layout(shape: tuple[int, ...], dtype: Any) -> tuple[tuple[int, ...], np.dtype, str]:
    """The shape, element dtype and the core's dtype text (a typestr, or a structured
    dtype's field list as the ``.npy`` format writes it). A subarray dtype such as
    ``("<i4", (3,))`` becomes trailing dimensions, as NumPy does for an array of it. Object
    dtypes are refused by the core (``InvalidArgumentError``)."""
    dt = np.dtype(dtype)
    if dt.subdtype is not None:
        base, extra = dt.subdtype
        shape, dt = shape + tuple(extra), base
    text = repr(np.lib.format.dtype_to_descr(dt)) if dt.names is not None else dt.str
    return shape, dt, text


@functools.lru_cache(maxsize=256)
def _dtype_of(text: str) -> np.dtype:
    """The dtype of the core's dtype text (see :func:`_layout`)."""
    if text.startswith("["):
        return np.lib.format.descr_to_dtype(ast.literal_eval(text))
    return np.dtype(text)


def _handles() -> type[_core.SharedArrayHandle]:
    cls: Optional[type[_core.SharedArrayHandle]] = getattr(_core, "SharedArrayHandle", None)
    if cls is None:
        raise ArrayError("shared arrays need Linux (robust process-shared mutexes); not available on this platform")
    return cls


def _reopen(name: str, store: str) -> "SharedArray":
    return SharedArray.open(name, secret_dir=store)


def _create(
    name: str, shape: tuple[int, ...], typestr: str, secret_dir: Optional[str], exist_ok: bool, **content: Any
) -> tuple[_core.SharedArrayHandle, bool]:
    """Creates the array; an existing one that is abandoned (what gc frees) is collected
    first, so a crashed run's leftover does not block the next run's create."""
    handles = _handles()
    try:
        return handles.create(name, shape, typestr, secret_dir=secret_dir, exist_ok=exist_ok, **content)
    except ArrayExistsError:
        abandoned = any(
            r["name"] == name and r["creator_alive"] is False and not r["openers"]
            for r in _core.list_arrays(secret_dir=secret_dir)
        )
        if not abandoned:
            raise
        _core.collect_arrays(secret_dir=secret_dir, dry_run=False)  # takes each array's lock before freeing it
        return handles.create(name, shape, typestr, secret_dir=secret_dir, exist_ok=exist_ok, **content)


class SharedArray:
    """A named N-dimensional array in shared memory, of any fixed-size dtype but object:
    numbers, bool, datetimes, fixed-width ``str`` (``<U8``) and ``bytes`` (``S8``), raw
    ``V`` and structured records (their fields, offsets and padding kept).

    ``arr.array`` is a writable NumPy view of the segment (no copy). ``with arr.locked()
    as a:`` holds the cross-process lock around a block; :meth:`read` and :meth:`write`
    lock around one access (``lock=False`` skips it). The lock is released by the
    kernel's robust-mutex machinery if its holder dies: the next acquirer takes it over,
    gets a :class:`HolderDiedWarning` and sees ``holder_died`` set. Waiting for the lock
    releases the GIL.

    A handle pickles as its name and store, so ``multiprocessing`` children reopen it.
    Use as a context manager to close it on exit.
    """

    __slots__ = ("_h", "_view", "_ctx", "reclaimed", "__weakref__")

    def __init__(self, handle: _core.SharedArrayHandle, reclaimed: bool = False) -> None:
        self._h = handle
        view = np.asarray(handle)
        if handle.typestr.startswith("["):  # structured: the core hands over raw records
            view = view.view(_dtype_of(handle.typestr))
        self._view: Optional[np.ndarray] = view
        # One serves every `with arr.locked()`: lock, view and unlock in native calls.
        self._ctx = _core.LockedView(handle, view)
        #: True when ``create(exist_ok=True)`` reused an existing array.
        self.reclaimed = reclaimed

    # ---- construction -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        shape: Union[int, tuple[int, ...]],
        dtype: Any,
        *,
        secret_dir: Optional[PathLike] = None,
        exist_ok: bool = False,
        fill: Any = None,
    ) -> "SharedArray":
        """Creates array ``name`` of ``shape`` and ``dtype`` (zeros, or every element
        ``fill``). An existing array is ``ArrayExistsError`` (a ``FileExistsError``);
        with ``exist_ok=True`` one of the same shape and dtype is reused (its data kept
        unless ``fill`` is given) and a mismatched one is ``ArrayLayoutError``. A leftover
        that gc would free (its creator dead, no live process holding it: a crashed run's)
        is freed and created anew rather than refused."""
        full_shape, dt, text = _layout(_shape(shape), dtype)
        fill_bytes = None
        if fill is not None:
            value = np.asarray(fill, dtype=dt)
            if value.ndim != 0:
                raise InvalidArgumentError(f"fill must be one value, got an array of shape {value.shape}")
            fill_bytes = value.tobytes()
        return cls(*_create(name, full_shape, text, _dir(secret_dir), bool(exist_ok), fill=fill_bytes))

    @classmethod
    def from_array(
        cls, name: str, data: Any, *, secret_dir: Optional[PathLike] = None, exist_ok: bool = False
    ) -> "SharedArray":
        """Creates array ``name`` with the shape, dtype and content of ``data`` (the
        content is in place before any other process can open it). ``exist_ok`` as in
        :meth:`create`; a reused array gets ``data``'s content."""
        src = np.ascontiguousarray(data)
        shape, _, text = _layout(src.shape, src.dtype)
        return cls(*_create(name, shape, text, _dir(secret_dir), bool(exist_ok), data=src.tobytes()))

    @classmethod
    def open(
        cls,
        name: str,
        *,
        secret_dir: Optional[PathLike] = None,
        shape: Union[int, tuple[int, ...], None] = None,
        dtype: Any = None,
    ) -> "SharedArray":
        """Opens an existing array; ``ArrayNotFoundError`` (a ``FileNotFoundError``) if none.
        With ``shape`` and/or ``dtype``, an array of another shape or dtype is refused with
        ``ArrayLayoutError`` (a view of the wrong layout would reinterpret its bytes)."""
        arr = cls(_handles().open(name, secret_dir=_dir(secret_dir)))
        want_shape = None if shape is None else _shape(shape)
        want_dtype = None if dtype is None else np.dtype(dtype)
        if (want_shape is not None and want_shape != arr.shape) or (want_dtype is not None and want_dtype != arr.dtype):
            got = f"shape {arr.shape} and dtype {arr.dtype}"
            arr.close()
            raise ArrayLayoutError(
                f"shared array {name!r} exists with {got}, not "
                f"{'shape ' + str(want_shape) if want_shape is not None else ''}"
                f"{' and ' if want_shape is not None and want_dtype is not None else ''}"
                f"{'dtype ' + str(want_dtype) if want_dtype is not None else ''}; "
                "open it with its own layout, or destroy it and create it anew"
            )
        return arr

    # ---- description ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._h.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self._h.shape

    @property
    def dtype(self) -> np.dtype:
        return _dtype_of(self._h.typestr)

    @property
    def nbytes(self) -> int:
        return self._h.nbytes

    @property
    def store(self) -> str:
        """The store directory the array belongs to."""
        return os.fsdecode(self._h.store)

    @property
    def segment(self) -> str:
        """The shared-memory segment's name (``/dev/shm/<segment>``)."""
        return self._h.segment

    @property
    def closed(self) -> bool:
        return self._view is None

    @property
    def destroyed(self) -> bool:
        """True once any process destroyed the array (this mapping stays valid)."""
        return self._h.destroyed

    @property
    def holder_died(self) -> bool:
        """True once this handle took the lock over from a holder that died holding it."""
        return self._h.holder_died

    @property
    def lock_recoveries(self) -> int:
        """Times the array's lock was taken over from a dead holder, over its life."""
        return self._h.lock_recoveries

    @property
    def array(self) -> np.ndarray:
        """A writable NumPy view of the shared data (no copy). Writes are seen by every
        process at once; hold :meth:`locked` where writers and readers must not interleave."""
        view = self._view
        if view is None:
            raise self._closed_error()
        return view

    def __repr__(self) -> str:
        state = " closed" if self._view is None else ""
        return f"SharedArray({self.name!r}, shape={self.shape}, dtype={self.dtype}{state})"

    # ---- the lock -----------------------------------------------------------------------

    def _closed_error(self) -> ArrayClosedError:
        return ArrayClosedError(f"shared array {self.name!r} is closed in this process; open it again (SharedArray.open)")

    def acquire(self, timeout: Optional[float] = None) -> bool:
        """Takes the lock (blocking; at most ``timeout`` seconds when given). Returns False
        only when the timeout ran out. Pair with :meth:`release` in the same thread."""
        if self._view is None:
            raise self._closed_error()
        if timeout is None:
            self._h.lock()
            return True
        return self._h.lock_timeout(float(timeout))

    def release(self) -> None:
        """Releases the lock this thread holds."""
        self._h.unlock()

    def locked(self, timeout: Optional[float] = None) -> ContextManager[np.ndarray]:
        """``with arr.locked() as a:`` holds the cross-process lock around the block and
        gives the writable view. With ``timeout``, raises ``TimeoutError`` when the lock
        stays busy that long."""
        return self._ctx if timeout is None else _Locked(self, timeout)

    # ---- one locked access ----------------------------------------------------------

    def __getitem__(self, index: Any) -> Any:
        """``arr[index]``: :meth:`read` under the lock."""
        return self._h.read(self._view, index, True)

    def __setitem__(self, index: Any, value: Any) -> None:
        """``arr[index] = value``: :meth:`write` under the lock."""
        self._h.write(self._view, index, value, True)

    def read(self, index: Any = Ellipsis, *, lock: bool = True) -> Any:
        """The element(s) at ``index`` (any NumPy index), copied under the lock: a NumPy
        scalar for one element, else an array that no longer follows the shared data."""
        view = self._view
        if view is None:
            raise self._closed_error()
        return self._h.read(view, index, lock)

    def write(self, index: Any, value: Any, *, lock: bool = True) -> None:
        """Sets the element(s) at ``index`` (any NumPy index) to ``value`` under the lock."""
        view = self._view
        if view is None:
            raise self._closed_error()
        self._h.write(view, index, value, lock)

    def add(self, index: Any, value: Any = 1, *, lock: bool = True) -> None:
        """``array[index] += value`` under the lock: a read-modify-write no other process
        can interleave with (a counter's increment), in one native call."""
        view = self._view
        if view is None:
            raise self._closed_error()
        self._h.add(view, index, value, lock)

    # ---- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Unregisters this process (idempotent). The array lives on for the others; views
        already taken stay valid memory in this process until dropped."""
        self._view = None
        self._h.close()

    def destroy(self) -> None:
        """Destroys the array for every process: its name is freed at once, new opens
        fail, and processes that map it keep valid memory until they close. Closes this handle."""
        self._view = None
        self._h.destroy()

    def __enter__(self) -> "SharedArray":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (_reopen, (self.name, self.store))


class _Locked:
    """The context manager of :meth:`SharedArray.locked`."""

    __slots__ = ("_arr", "_timeout")

    def __init__(self, arr: SharedArray, timeout: Optional[float]) -> None:
        # A weak reference: the array keeps one of these, and a cycle would delay the
        # handle's release (and its opener slot) until the cyclic garbage collector runs.
        self._arr = weakref.ref(arr)
        self._timeout = timeout

    def __enter__(self) -> np.ndarray:
        arr = self._arr()
        if arr is None:
            raise ArrayClosedError("the shared array of this locked() block is gone")
        view = arr._view
        if view is None:
            raise arr._closed_error()
        if self._timeout is None:
            arr._h.lock()
        elif not arr.acquire(self._timeout):
            raise TimeoutError(f"shared array {arr.name!r}: its lock stayed busy for {self._timeout} s")
        return view

    def __exit__(self, *exc: Any) -> None:
        arr = self._arr()
        if arr is not None:
            arr._h.unlock()


def list_arrays(*, secret_dir: Optional[PathLike] = None) -> list[_core.ArrayInfo]:
    """The store's shared arrays: name, segment, state, dtype, shape, nbytes,
    creator_pid, creator_alive, openers (pids of live open handles), lock_recoveries."""
    if not hasattr(_core, "list_arrays"):  # Linux only
        return []
    return list(_core.list_arrays(secret_dir=_dir(secret_dir)))
