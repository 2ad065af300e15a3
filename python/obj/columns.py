"""``obj.Column``: a typed sequence stored densely in the database, read by position.

``db.column("temperatures", "f64")`` creates the column (or opens it; another dtype for an
existing column is :class:`obj.InvalidArgumentError`) and returns a
``collections.abc.MutableSequence``::

    temps = db.column("temperatures", "f64")
    temps.extend(numpy_array)            # packed straight from the buffer, one commit
    temps.append(21.5)
    temps[-1], temps[10:20], temps.to_numpy(0, 1000)

dtypes: ``"i64"``, ``"i32"``, ``"f64"``, ``"f32"``, ``"bool"``, ``"bytes:N"`` and ``"str:N"``
(at most N bytes; a longer value is refused), ``"bytes"`` and ``"str"`` (any length),
``"vec:f32:N"`` (float32 vectors of N components, read back as :class:`obj.Vector`) and
``"value"`` (any dict-native value). ``len()`` is O(1); ``col[i]`` reads one chunk (a page);
a slice reads the chunks it covers. ``insert`` and ``del`` before the end rewrite the
elements after the position (O(n) from it). Storage and element encodings are the
engine's (``crates/obj-core/src/column.rs``).

A column of a :class:`obj.Db` writes each change in a transaction of its own (``extend``
of any length is one commit); one of a write transaction (``tx.column(name)``) writes
into it and sees its own writes; one of a read transaction reads its snapshot.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Iterable, Iterator, MutableSequence
from typing import TYPE_CHECKING, Any, Union, overload

from ._handles import Given, Own
from .errors import InvalidArgumentError, NotFoundError, ObjError

if TYPE_CHECKING:
    from ._db import Db
    from ._txn import ReadTransaction, WriteTransaction

__all__ = ["Column"]

_Owner = Union["Db", "WriteTransaction", "ReadTransaction"]

#: Elements read per step by iteration.
_BATCH = 4096

#: numpy dtype (little-endian) and array.array type codes of the packed dtypes.
_NUMPY = {"i64": "<i8", "i32": "<i4", "f64": "<f8", "f32": "<f4", "bool": "?"}
_ARRAY = {"i64": ("q", "l"), "i32": ("i",), "f64": ("d",), "f32": ("f",)}


class Column(MutableSequence[Any]):
    """A column of a database or transaction (see the module docstring)."""

    def __init__(self, owner: _Owner, name: str, dtype: str | None = None) -> None:
        from ._obj import Db as _NativeDb

        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"column name must be a non-empty str, got {name!r}")
        if dtype is not None and not isinstance(dtype, str):
            raise InvalidArgumentError(f"dtype must be a str such as 'i64', got {dtype!r}")
        self._owner: Any = owner
        self._name = name
        self._is_db = isinstance(owner, _NativeDb)
        self._h = self._owner._column_handle(name)
        header = self._h.header()
        if header is None or (dtype is not None and header[0] != dtype):
            if dtype is None:
                raise NotFoundError(
                    f"there is no column {name!r}; pass a dtype to create it, e.g. "
                    f"db.column({name!r}, 'i64')"
                )
            with self._writing() as h:
                h.ensure(dtype)
            header = self._h.header()
        assert header is not None
        self._dtype: str = header[0]

    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> str:
        """What the column holds (see the module docstring)."""
        return self._dtype

    def _writing(self) -> Any:
        if self._is_db:
            name = self._name
            return Own(self._owner.transaction, lambda tx: tx._column_handle(name))
        if not hasattr(self._owner, "commit"):
            raise ObjError("a column of a read transaction cannot write")
        return Given(self._h)

    # -- reads ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._h)

    def _index(self, i: object, n: int) -> int:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(f"column indices must be integers or slices, not {type(i).__name__}")
        k = int(i.__index__())
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(f"column index {i} out of range (length {n})")
        return k

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        n = len(self)
        if isinstance(i, slice):
            a, b, step = i.indices(n)
            if step == 1:
                return self._h.range(a, b) if a < b else []
            lo, hi = (a, b) if step > 0 else (b + 1, a + 1)
            if lo >= hi:
                return []
            got = self._h.range(lo, hi)
            return got[::step] if step > 0 else got[::-1][::-step]
        k = self._index(i, n)
        return self._h.range(k, k + 1)[0]

    def __iter__(self) -> Iterator[Any]:
        if self._is_db:
            with self._owner.read_transaction() as rtx:
                h = rtx._column_handle(self._name)
                yield from _batches(h)
        else:
            yield from _batches(self._h)

    def to_numpy(self, start: int | None = None, stop: int | None = None) -> Any:
        """Elements ``start:stop`` as a numpy array (numeric and bool columns, and
        ``vec:f32:N`` as an ``(n, N)`` float32 array), copied from the stored chunks
        without a per-element Python step."""
        import numpy as np

        a, b, _ = slice(start, stop).indices(len(self))
        b = max(a, b)
        if self._dtype in _NUMPY:
            data = self._h.packed(a, b)
            return (
                np.frombuffer(data, dtype=_NUMPY[self._dtype]).copy()
                if data
                else np.empty(0, dtype=_NUMPY[self._dtype])
            )
        if self._dtype.startswith("vec:f32:"):
            width = int(self._dtype.rsplit(":", 1)[1])
            data = self._h.packed(a, b)
            return np.frombuffer(data, dtype="<f4").reshape(-1, width).copy()
        raise InvalidArgumentError(
            f"to_numpy() needs a numeric, bool or vector column; {self._name!r} holds "
            f"{self._dtype} (use col[a:b])"
        )

    # -- writes -----------------------------------------------------------------------------

    def _packed(self, values: object) -> bytes | None:
        """The packed little-endian bytes of a numpy array or array.array of this
        column's element type, or None for any other iterable."""
        if isinstance(values, array.array):
            if values.typecode in _ARRAY.get(self._dtype, ()) and values.itemsize in (4, 8):
                if sys.byteorder == "big":
                    values = array.array(values.typecode, values)
                    values.byteswap()
                return values.tobytes()
            return None
        np = sys.modules.get("numpy")
        if np is not None and isinstance(values, np.ndarray) and self._dtype in _NUMPY:
            want = np.dtype(_NUMPY[self._dtype])
            if values.ndim != 1:
                raise InvalidArgumentError(
                    f"extend() takes a 1-d array for a {self._dtype} column, got shape "
                    f"{values.shape}"
                )
            if values.dtype == want or (
                values.dtype.kind == want.kind
                and want.kind != "b"
                and values.dtype.itemsize == want.itemsize
            ):
                return np.ascontiguousarray(values, dtype=want).tobytes()  # type: ignore[no-any-return]
            return None
        return None

    def extend(self, values: Iterable[Any]) -> None:
        """Appends ``values`` in one commit (one write of the transaction). A numpy array
        or ``array.array`` of the column's element type is packed from its buffer; any
        other iterable is checked element by element before anything is written."""
        packed = self._packed(values)
        with self._writing() as h:
            if packed is not None:
                h.extend(packed, True)
            else:
                h.extend(values if isinstance(values, (list, tuple)) else list(values))

    def append(self, value: Any) -> None:
        self.extend([value])

    @overload
    def __setitem__(self, i: int, value: Any) -> None: ...
    @overload
    def __setitem__(self, i: slice, value: Iterable[Any]) -> None: ...
    def __setitem__(self, i: int | slice, value: Any) -> None:
        n = len(self)
        if isinstance(i, slice):
            a, b, step = i.indices(n)
            values = list(value)
            span = range(a, b, step)
            if len(values) != len(span):
                raise InvalidArgumentError(
                    f"slice assignment of {len(values)} values to {len(span)} elements: a "
                    "column's slice assignment keeps its length (use insert or del)"
                )
            if not values:
                return
            with self._writing() as h:
                if step == 1:
                    h.set(a, values)
                else:
                    for k, v in zip(span, values):
                        h.set(k, [v])
            return
        k = self._index(i, n)
        with self._writing() as h:
            h.set(k, [value])

    def __delitem__(self, i: int | slice) -> None:
        n = len(self)
        if isinstance(i, slice):
            a, b, step = i.indices(n)
            span = range(a, b, step)
            if not span:
                return
            with self._writing() as h:
                if step == 1:
                    h.delete(a, b)
                else:
                    for k in sorted(span, reverse=True):
                        h.delete(k, k + 1)
            return
        k = self._index(i, n)
        with self._writing() as h:
            h.delete(k, k + 1)

    def insert(self, index: int, value: Any) -> None:
        """Inserts ``value`` before ``index`` (as ``list.insert``: clamped to the ends). The
        elements after it are rewritten: O(n) from ``index``."""
        n = len(self)
        k = int(index)
        if k < 0:
            k = max(0, k + n)
        k = min(k, n)
        with self._writing() as h:
            h.insert(k, [value])

    def pop(self, index: int = -1) -> Any:
        """Removes and returns the element at ``index`` (the last by default)."""
        with self._writing() as h:
            n = len(h)
            if n == 0:
                raise IndexError("pop from an empty column")
            k = self._index(index, n)
            value = h.range(k, k + 1)[0]
            if k == n - 1:
                h.truncate(k)
            else:
                h.delete(k, k + 1)
            return value

    def clear(self) -> None:
        """Removes every element (one commit)."""
        with self._writing() as h:
            h.truncate(0)

    def __repr__(self) -> str:
        return f"<obj.Column {self._name!r} {self._dtype} len={len(self)}>"


def _batches(h: Any) -> Iterator[Any]:
    n = len(h)
    for a in range(0, n, _BATCH):
        yield from h.range(a, min(n, a + _BATCH))
