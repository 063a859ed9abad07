"""ataraxis-data-structures' API on allye_data_connector: change one import,
``from allye_data_connector.compat.ataraxis import SharedMemoryArray, YamlConfig``.

Each method is a call of the native API (:class:`~allye_data_connector.SharedArray`,
:class:`~allye_data_connector.YamlConfig`); what differs from ataraxis:

- the lock is a robust cross-process mutex in the segment's header, not a
  ``multiprocessing.Lock``: a process killed while holding it does not block the others;
- ``create_array(exist_ok=True)`` reuses an existing array of the same shape and dtype
  (overwriting it with the prototype) and refuses a mismatched one with ``ArrayLayoutError``
  (a ``ValueError``) instead of silently recreating it under the other processes;
- arrays belong to a store (``secret_dir``, default ``$ALLYE_SECRET_DIR`` or
  ``~/.allye_secrets``), and one whose creator died and that nobody holds is freed by
  ``adc gc``; ``destroy()`` frees it at once;
- an instance pickles by name, shape and dtype, and connects while unpickling as with
  ataraxis 7 (``auto_connect=False``: at the child's ``connect()``, as the README's);
- ``connect()`` refuses an array of another shape or dtype than the instance's
  (``ArrayLayoutError``) instead of viewing its bytes as the wrong type;
- a value that does not convert to the dtype (``2**40`` into ``int32``) is a ``ValueError``
  from ``write_data`` as from ataraxis.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, ContextManager, Optional, Union, cast

import numpy as np

from .. import _core
from .._args import PathLike
from ..errors import ArrayClosedError, ArrayNotFoundError, InvalidArgumentError
from ..arrays import SharedArray
from ..settings import YamlConfig

__all__ = ["SharedMemoryArray", "YamlConfig", "DataLogger", "LogPackage"]

Index = Union[int, tuple[int], tuple[int, int]]


def _disconnected(name: str) -> ArrayClosedError:
    return ArrayClosedError(f"SharedMemoryArray {name!r} is not connected; call connect() first")


def _raise_disconnected(name: str, *args: Any, **kwargs: Any) -> ContextManager[np.ndarray]:
    """``array`` of a disconnected instance."""
    raise _disconnected(name)


class SharedMemoryArray:
    """ataraxis' ``SharedMemoryArray``, both APIs: its README's (``read_data`` /
    ``write_data`` with an int index (negative counts from the end), a 1-tuple ``(start,)``
    for ``start:`` or a 2-tuple ``(start, stop)`` for ``start:stop`` along the first axis)
    and its current one (``sma[i]``, ``sma[i] = v`` and ``with sma.array(with_lock=True)
    as a:``, a read-modify-write no other process interleaves with). Create once with
    :meth:`create_array` and pass the instance to child processes: as in ataraxis 7, they
    connect while unpickling (``auto_connect=False`` leaves it to their ``connect()``, as
    the README's children do; a ``connect()`` on a connected instance is a no-op)."""

    __slots__ = ("_name", "_shape", "_dtype", "_store", "_arr", "array", "_auto_connect")

    #: ``with sma.array(with_lock=True) as a:`` gives the shared NumPy array itself (no
    #: copy) and, with ``with_lock`` (the default), holds the cross-process lock for the
    #: block (ataraxis' method). A slot holding a native callable, not a property: the
    #: atomic form is the hot loop of ataraxis' users (a counter's ``a[0] += 1`` in every
    #: process), and a property and a call with a dict of keywords were a third of it.
    #: Disconnected, calling it raises ``ArrayClosedError``.
    array: Callable[..., ContextManager[np.ndarray]]

    def __init__(
        self,
        name: str,
        shape: tuple[int, ...],
        datatype: np.dtype,
        store: Optional[str],
        array: Optional[SharedArray] = None,
        *,
        auto_connect: bool = True,
    ) -> None:
        self._name = name
        self._shape = tuple(shape)
        self._dtype = np.dtype(datatype)
        self._store = store
        self._attach(array)
        self._auto_connect = bool(auto_connect)

    def _attach(self, array: Optional[SharedArray]) -> None:
        self._arr = array
        # The native context of the array's locked block, its call bound as a builtin:
        # ataraxis' array(with_lock=) method with no Python frame of its own per access.
        if array is None:
            # Not a bound method: the instance would then hold itself.
            self.array = functools.partial(_raise_disconnected, self._name)
        else:
            self.array = cast("_core.LockedView", array.locked()).as_method()

    @classmethod
    def create_array(
        cls,
        name: str,
        prototype: np.ndarray,
        exist_ok: bool = False,
        *,
        exists_ok: Optional[bool] = None,
        auto_connect: bool = True,
        secret_dir: Optional[PathLike] = None,
    ) -> "SharedMemoryArray":
        """A new shared array with ``prototype``'s shape, dtype and data, connected.
        ``exists_ok`` is ataraxis 7's spelling of the README's ``exist_ok``."""
        if not isinstance(prototype, np.ndarray):
            raise TypeError(f"prototype must be a numpy ndarray, got {type(prototype).__name__}")
        reuse = bool(exist_ok) if exists_ok is None else bool(exists_ok)
        arr = SharedArray.from_array(name, prototype, secret_dir=secret_dir, exist_ok=reuse)
        return cls(name, prototype.shape, prototype.dtype, arr.store, arr, auto_connect=auto_connect)

    def connect(self) -> None:
        """Connects this process to the array (a no-op when connected). An array of
        another shape or dtype than this instance's is refused (``ArrayLayoutError``)."""
        if self._arr is None:
            self._attach(SharedArray.open(self._name, secret_dir=self._store, shape=self._shape, dtype=self._dtype))

    def disconnect(self) -> None:
        """Disconnects this process; the array lives on (``destroy()`` frees it)."""
        if self._arr is not None:
            self._arr.close()
            self._attach(None)

    def destroy(self) -> None:
        """Frees the array for every process (a no-op when it is already gone)."""
        arr = self._arr
        self._attach(None)
        if arr is None:
            try:
                arr = SharedArray.open(self._name, secret_dir=self._store)
            except ArrayNotFoundError:
                return
        arr.destroy()

    def __getitem__(self, index: Any) -> Any:
        """The element(s) at ``index`` (any NumPy index), a copy read under the lock."""
        arr = self._arr
        if arr is None:
            raise self._disconnected()
        return arr[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        """Sets the element(s) at ``index`` (any NumPy index) under the lock."""
        arr = self._arr
        if arr is None:
            raise self._disconnected()
        arr[index] = value

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def datatype(self) -> np.dtype:
        return self._dtype

    @property
    def is_connected(self) -> bool:
        return self._arr is not None

    def _disconnected(self) -> ArrayClosedError:
        return _disconnected(self._name)

    def _index(self, index: Any) -> Union[int, slice]:
        """An int index (negative counts from the end) or ``(start,)`` / ``(start, stop)``
        along the first axis, checked as ataraxis checks it (its messages' key phrases too)."""
        n = self._shape[0] if self._shape else 1
        if type(index) is int or isinstance(index, np.integer):
            return self._start(int(index), n)
        if not isinstance(index, tuple) or len(index) not in (1, 2) or not all(type(i) is int for i in index):
            raise InvalidArgumentError(
                f"SharedMemoryArray {self._name!r}: expected an integer index or a tuple of one or two integers, "
                f"but got {index!r} of type {type(index).__name__}"
            )
        start = self._start(index[0], n)
        if len(index) == 1:
            return slice(start, None)
        stop = index[1] + n if index[1] < 0 else index[1]
        if not 0 < stop <= n:
            raise IndexError(
                f"Unable to use stop index {index[1]} with SharedMemoryArray {self._name!r}. The index is outside the "
                f"valid stop index range (1:{n})."
            )
        if start > stop:
            raise ValueError(
                f"SharedMemoryArray {self._name!r}: after converting the indices to positive numbers, the start index "
                f"({start}) is greater than the end index ({stop}), which is not allowed"
            )
        return slice(start, stop)

    def _start(self, index: int, n: int) -> int:
        start = index + n if index < 0 else index
        if not 0 <= start < n:
            raise IndexError(
                f"Unable to use start index {index} with SharedMemoryArray {self._name!r}. The index is outside the "
                f"valid start index range (0:{n - 1})."
            )
        return start

    def read_data(self, index: Index, convert_output: bool = False, with_lock: bool = True) -> Any:
        """The value at ``index`` as a NumPy scalar or array (a copy), or as Python
        values (``int``, ``float``, lists) with ``convert_output=True``."""
        arr = self._arr
        if arr is None:
            raise self._disconnected()
        value = arr.read(self._index(index), lock=with_lock)
        if convert_output:
            # A one-element slice converts to its scalar, as ataraxis returns it.
            if isinstance(value, np.ndarray):
                return value.item() if value.size == 1 else value.tolist()
            return value.item()
        return value

    def write_data(self, index: Index, data: Any, with_lock: bool = True) -> None:
        """Writes ``data`` at ``index``, converted to the array's dtype."""
        arr = self._arr
        if arr is None:
            raise self._disconnected()
        where = self._index(index)
        try:
            arr.write(where, data, lock=with_lock)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(
                f"Unable write data {data!r} to SharedMemoryArray {self._name!r} at {index!r}: it does not convert to "
                f"{self._dtype} ({exc})"
            ) from exc

    def __getstate__(self) -> tuple[str, tuple[int, ...], np.dtype, Optional[str], bool]:
        return (self._name, self._shape, self._dtype, self._store, self._auto_connect)

    def __setstate__(self, state: tuple[str, tuple[int, ...], Any, Optional[str], bool]) -> None:
        self._name, self._shape, dtype, self._store, self._auto_connect = state
        self._dtype = np.dtype(dtype)
        self._attach(None)
        if self._auto_connect:
            self.connect()

    def __repr__(self) -> str:
        return f"SharedMemoryArray(name={self._name!r}, shape={self._shape}, datatype={self._dtype}, connected={self.is_connected})"


# --- DataLogger and LogPackage: ataraxis' logger on a stream ---
# Defined in .ataraxis_logger (one module per concern); re-exported here so that one
# import switches a program over.
from .ataraxis_logger import DataLogger, LogPackage  # noqa: E402
