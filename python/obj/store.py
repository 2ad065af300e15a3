"""``obj.Store``: a persistent dict over a keyed collection.

A store maps keys (``str`` or bytes) to values in one collection of a :class:`obj.Db`, in
key order, with the database's transactions, snapshots and crash safety::

    with obj.Store.open("app.obj") as store:      # a Db of its own, closed with the store
        store["user:42"] = {"name": "Ada", "plan": "pro"}
        assert store["user:42"]["plan"] == "pro"
        store.put_many({f"k{i}": i for i in range(1000)})   # one atomic transaction
        for key, value in store.prefix("k9"):
            ...

    store = db.store("sessions", keys="bytes", values=bytes)
    with db.transaction() as tx:                  # several writes, one commit
        tx.store("sessions")[b"a"] = b"1"

Values are never pickled unless you ask for it by name (``values="pickle"``; see
:func:`Db.store`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, Union, cast, overload

from . import _obj
from .errors import InvalidArgumentError, ObjError

if TYPE_CHECKING:
    import os

    from ._db import Db
    from ._txn import WriteTransaction

K = TypeVar("K", str, bytes)
V = TypeVar("V")
_T = TypeVar("_T")

Normalize = Literal["NFC", "NFKC", "NFD", "NFKD"]
KeyMode = Literal["str", "bytes"]
BytesLike = Union[bytes, bytearray, memoryview]

#: Longest key, in bytes (after encoding a ``str`` key).
MAX_KEY_LEN: int = _obj.MAX_KEY_LEN

_MISSING: Any = object()
_DELETE: Any = object()
_BATCH = 512


class KeyTypeError(InvalidArgumentError, TypeError):
    """A key of a type the store does not take (also a :class:`TypeError`)."""


class _Values:
    """How a store's values reach the engine and come back: one place for each mode."""

    __slots__ = ("cls", "dump", "load", "name", "raw", "target")

    def __init__(self, collection: str, values: Any) -> None:
        self.load: Callable[[Any], Any] | None = None
        self.dump: Callable[[Any], Any] | None = None
        self.raw = False
        self.cls: type | None = None
        self.target: Any = collection
        if values is None or values == "native":
            self.name = "native"
        elif values is bytes:
            self.name, self.raw = "bytes", True
        elif values == "pickle":
            self.name, self.raw = "pickle", True
            import pickle  # (imported when a store asks for it: it costs `import obj` time)

            self.dump = functools.partial(pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL)
            self.load = pickle.loads
        elif isinstance(values, type) and hasattr(values, "__obj_doctype__"):
            declared = values.__obj_doctype__.collection
            if declared != collection:
                raise InvalidArgumentError(
                    f"values={values.__name__} is declared for collection {declared!r}; "
                    f"open the store with that name (db.store({declared!r}, values=...))"
                )
            self.name, self.target, self.cls = values.__name__, values, values
        else:
            raise InvalidArgumentError(
                "values must be None (dict-native values), bytes (raw bytes), an "
                f"@obj.document class, or 'pickle'; got {values!r}"
            )

    def check(self, handle: _obj.KeyedHandle, value: Any) -> Any:
        """The value as a buffered write keeps it, refused now if it cannot be stored (by
        the conversion a write makes; a pickled value by pickling it)."""
        if self.dump is not None:
            self.dump(value)
            return value
        handle.check(value)
        # (A bytearray or memoryview is copied: changing it later must not change the write.)
        return bytes(value) if self.raw else value


class Store(MutableMapping[K, V], Generic[K, V]):
    """A persistent, ordered dict over a keyed collection of a :class:`obj.Db`.

    Obtain one with :meth:`Db.store`, :meth:`WriteTransaction.store` or :meth:`Store.open`.
    The full mapping protocol works with real semantics: ``len()`` is O(1), ``in`` has no
    side effects, iteration runs in key order over a snapshot taken when it starts (changes
    made meanwhile neither skip nor repeat keys), ``keys()``/``values()``/``items()`` are
    live views. Beyond a dict: :meth:`range`, :meth:`prefix`, :meth:`put_many` (atomic),
    :meth:`get_many`, :meth:`delete_many`, and an opt-in write buffer (``buffer=N``).

    A ``str`` key is encoded as UTF-8 (after Unicode normalisation when ``normalize`` is
    set); a bytes-like key is stored as it is. Keys are 1 to :data:`MAX_KEY_LEN` bytes.
    A key of another type raises :class:`KeyTypeError` (an :class:`obj.InvalidArgumentError`
    and a :class:`TypeError`); a missing key raises :class:`KeyError`.

    A store is thread-safe: any number of threads may read and write it, and readers never
    see half of a :meth:`put_many`.
    """

    def __init__(
        self,
        owner: Db | WriteTransaction,
        name: str,
        *,
        keys: KeyMode = "str",
        normalize: Normalize | None = None,
        key_errors: str = "strict",
        values: Any = None,
        buffer: int | None = None,
        autoflush_on_read: bool = True,
        _owns_db: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"store name must be a non-empty str, got {name!r}")
        if keys not in ("str", "bytes"):
            raise InvalidArgumentError(f"keys must be 'str' or 'bytes', got {keys!r}")
        if normalize not in (None, "NFC", "NFKC", "NFD", "NFKD"):
            raise InvalidArgumentError(
                f"normalize must be None, 'NFC', 'NFKC', 'NFD' or 'NFKD', got {normalize!r}"
            )
        if not isinstance(key_errors, str):
            raise InvalidArgumentError(f"key_errors must be a str, got {key_errors!r}")
        try:
            "".encode("utf-8", key_errors)
            import codecs

            codecs.lookup_error(key_errors)
        except LookupError:
            raise InvalidArgumentError(
                f"key_errors {key_errors!r} is not a codec error handler ('strict', "
                "'surrogateescape', 'replace', ...)"
            ) from None
        in_tx = not isinstance(owner, _obj.Db)
        if buffer is not None:
            if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
                raise InvalidArgumentError(
                    f"buffer must be None or an int >= 1 (pending writes), got {buffer!r}"
                )
            if in_tx:
                raise InvalidArgumentError(
                    "buffer is for stores of a Db; a store of a transaction writes to the "
                    "transaction"
                )
        if not isinstance(autoflush_on_read, bool):
            raise InvalidArgumentError(
                f"autoflush_on_read must be True or False, got {autoflush_on_read!r}"
            )
        kind = owner._key_kind(name)
        if kind == "id":
            raise InvalidArgumentError(
                f"collection {name!r} holds documents under ids, not keys; a store needs "
                "a keyed collection (use another name)"
            )
        self._owner: Any = owner
        self._name = name
        self._str_keys = keys == "str"
        self._normalize = normalize
        self._key_errors = key_errors
        self._values = _Values(name, values)
        self._limit = buffer
        self._autoflush = autoflush_on_read
        self._owns_db = _owns_db
        self._in_tx = in_tx
        # Pending writes in arrival order: encoded key -> value (or _DELETE).
        self._pending: dict[bytes, Any] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._h = cast(Any, owner)._key_handle(
            self._values.target, self._values.raw, KeyTypeError, key_errors
        )
        # str keys need encoding in Python only for a normal form or a lenient handler.
        self._encodes = normalize is not None or key_errors != "strict"
        # Calls go straight to the binding when nothing needs Python in between: no
        # buffer, no key transformation, no pickling.
        self._fast = buffer is None and not self._encodes and self._values.dump is None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        name: str = "default",
        *,
        keys: KeyMode = "str",
        normalize: Normalize | None = None,
        key_errors: str = "strict",
        values: Any = None,
        buffer: int | None = None,
        autoflush_on_read: bool = True,
        **options: Any,
    ) -> Store[Any, Any]:
        """Opens the database at ``path`` (``**options`` as for :class:`obj.Db`) and returns
        its store ``name``; closing the store (or leaving its ``with`` block) closes the
        database too."""
        from ._db import Db

        db = Db(path, **options)
        try:
            return cast(
                "Store[Any, Any]",
                cls(
                    db,
                    name,
                    keys=keys,
                    normalize=normalize,
                    key_errors=key_errors,
                    values=values,
                    buffer=buffer,
                    autoflush_on_read=autoflush_on_read,
                    _owns_db=True,
                ),
            )
        except BaseException:
            db.close()
            raise

    # -- keys -----------------------------------------------------------------------------

    def _key(self, key: object) -> bytes:
        """The stored bytes of ``key``. A ``str`` key is normalised and encoded here when
        the store asks for a normal form or a lenient error handler; the type and length
        rules are the binding's (``KeyedHandle.key``), the one place they live."""
        if isinstance(key, str) and self._encodes:
            if self._normalize is not None:
                import unicodedata  # (only for stores that normalise keys)

                key = unicodedata.normalize(self._normalize, key)
            try:
                key = key.encode("utf-8", self._key_errors)
            except UnicodeEncodeError as e:
                raise InvalidArgumentError(
                    f"key {key!r} cannot be encoded as UTF-8 ({e.reason}); pass "
                    "key_errors='surrogateescape' to keep such keys"
                ) from None
        return bytes(self._h.key(key))

    def _out(self, raw: bytes) -> Any:
        """A stored key as iteration returns it."""
        if self._str_keys:
            return raw.decode("utf-8", self._key_errors)
        return raw

    def _load(self, value: Any) -> Any:
        load = self._values.load
        return value if load is None else load(value)

    # -- state ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ObjError(f"store {self._name!r} is closed")

    def _reader(self) -> Any:
        """Where reads go, after flushing the buffer when the store is set to."""
        self._check_open()
        if self._pending and self._autoflush:
            self.flush()
        return self._owner

    def _write(self, ops: list[tuple[bytes, Any]]) -> None:
        """Applies ``ops`` (key, value or _DELETE) in one transaction (or in the owner's)."""
        dump = self._values.dump
        if dump is not None:
            ops = [(k, v if v is _DELETE else dump(v)) for k, v in ops]
        self._h.write_many(ops, _DELETE)

    def _put(self, key: bytes, value: Any) -> None:
        with self._lock:
            self._check_open()
            if self._limit is None:
                if value is _DELETE:
                    self._h.delete(key)
                else:
                    self._write([(key, value)])
                return
            if value is not _DELETE:
                value = self._values.check(self._h, value)  # refused now, not at the flush
            self._pending.pop(key, None)
            self._pending[key] = value
            if len(self._pending) >= self._limit:
                self.flush()

    def flush(self) -> None:
        """Commits the buffered writes as one transaction (nothing when none are pending).
        On failure they stay buffered, so a later flush can retry."""
        with self._lock:
            if not self._pending:
                return
            self._check_open()
            self._write(list(self._pending.items()))
            self._pending.clear()

    def close(self, strict: bool = False) -> None:
        """Flushes the buffer, then closes the store (and the database it opened itself).
        A failing final flush is re-raised after closing when ``strict``; otherwise the
        buffered writes are dropped. Idempotent."""
        with self._lock:
            if self._closed:
                return
            error: BaseException | None = None
            try:
                self.flush()
            except Exception as e:
                error = e
            self._closed = True
            self._fast = False
            self._pending.clear()
            if self._owns_db:
                self._owner.close()
            if error is not None and strict:
                raise error

    def __enter__(self) -> Store[K, V]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(strict=exc[0] is None)

    # -- the mapping protocol -------------------------------------------------------------

    def __getitem__(self, key: K) -> V:
        if self._fast:
            value = self._h.get(key, _MISSING)
            if value is _MISSING:
                raise KeyError(key)
            return cast(V, value)
        raw = self._key(key)
        with self._lock:
            pending = self._pending.get(raw, _MISSING)
            if pending is not _MISSING and not self._autoflush:
                if pending is _DELETE:
                    raise KeyError(key)
                return cast(V, pending)
            self._reader()
            value = self._h.get(raw, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return cast(V, self._load(value))

    def __setitem__(self, key: K, value: V) -> None:
        if self._fast:
            self._h.set(key, value)
            return
        self._put(self._key(key), value)

    def __delitem__(self, key: K) -> None:
        raw = self._key(key)
        with self._lock:
            if not self._exists(raw, flush=False):
                raise KeyError(key)
            self._put(raw, _DELETE)

    def __contains__(self, key: object) -> bool:
        try:
            raw = self._key(key)
        except KeyTypeError:
            return False
        return self._exists(raw, flush=False)

    def _exists(self, raw: bytes, flush: bool) -> bool:
        with self._lock:
            self._check_open()
            if flush and self._pending:
                self.flush()
            pending = self._pending.get(raw, _MISSING)
            if pending is not _MISSING:
                return pending is not _DELETE
            return bool(self._h.get(raw, _MISSING) is not _MISSING)

    def exists(self, key: K, *, flush: bool | None = None) -> bool:
        """Whether ``key`` is in the store. ``flush=None`` follows ``autoflush_on_read``;
        ``flush=False`` never commits the buffer (``key in store`` is the same)."""
        return self._exists(self._key(key), self._autoflush if flush is None else flush)

    def __len__(self) -> int:
        with self._lock:
            self._reader()
            n = int(self._h.count())
            for raw, value in self._pending.items():
                stored = self._h.get(raw, _MISSING) is not _MISSING
                n += (value is not _DELETE) - stored
            return n

    def __iter__(self) -> Iterator[K]:
        if self._fast and self._str_keys:
            return cast("Iterator[K]", self._h.iter(None, True, None, True, False, False, True))
        return (
            cast(K, self._out(raw)) for raw, _ in self._scan(None, True, None, True, False, False)
        )

    def __reversed__(self) -> Iterator[K]:
        for raw, _ in self._scan(None, True, None, True, True, False):
            yield cast(K, self._out(raw))

    def _scan(
        self,
        lo: bytes | None,
        lo_incl: bool,
        hi: bytes | None,
        hi_incl: bool,
        reverse: bool,
        values: bool,
    ) -> Iterator[tuple[bytes, Any]]:
        """(key, value) pairs in key order over one snapshot, buffered writes merged in."""
        with self._lock:
            self._reader()
            stream = self._h.iter(lo, lo_incl, hi, hi_incl, reverse, values, False)
            pending = sorted(
                (k, v) for k, v in self._pending.items() if _within(k, lo, lo_incl, hi, hi_incl)
            )
        if reverse:
            pending.reverse()
        yield from _merge(stream, pending, reverse, values, self._load)

    def keys(self) -> KeysView[K]:
        """A live view of the keys (len, ``in``, iteration in key order, set operations)."""
        return KeysView(self)

    def values(self) -> ValuesView[V]:
        """A live view of the values, in key order."""
        return _Values_View(self)

    def items(self) -> ItemsView[K, V]:
        """A live view of the (key, value) pairs, in key order."""
        return _ItemsView(self)

    def clear(self) -> None:
        """Deletes every key, in one transaction."""
        with self._lock:
            self._check_open()
            self._pending.clear()
            doomed = [k for k, _ in self._scan(None, True, None, True, False, False)]
            if doomed:
                self._write([(k, _DELETE) for k in doomed])

    def popitem(self) -> tuple[K, V]:
        """Removes and returns the (key, value) pair with the smallest key."""
        with self._lock:
            for raw, value in self._scan(None, True, None, True, False, True):
                self._put(raw, _DELETE)
                return cast(K, self._out(raw)), cast(V, value)
        raise KeyError("popitem(): the store is empty")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        try:
            return all(k in other and other[k] == v for k, v in self.items())
        except TypeError:
            return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        try:
            state = "closed" if self._closed else f"{len(self)} keys"
        except ObjError as e:
            state = f"unreadable: {e}"
        return f"<obj.Store {self._name!r} ({self._values.name} values): {state}>"

    # -- beyond a dict ---------------------------------------------------------------------

    def range(
        self,
        lo: K | None = None,
        hi: K | None = None,
        *,
        reverse: bool = False,
    ) -> Iterator[tuple[K, V]]:
        """``(key, value)`` pairs with ``lo <= key < hi`` (None: unbounded), in key order
        (or reverse), over one snapshot."""
        lo_raw = None if lo is None else self._key(lo)
        hi_raw = None if hi is None else self._key(hi)
        for raw, value in self._scan(lo_raw, True, hi_raw, False, reverse, True):
            yield cast(K, self._out(raw)), cast(V, value)

    def prefix(self, p: K, *, reverse: bool = False) -> Iterator[tuple[K, V]]:
        """``(key, value)`` pairs whose key starts with ``p``, in key order (or reverse)."""
        raw = self._prefix_bytes(p)
        hi = _obj.KeyedHandle.prefix_end(raw)
        for key, value in self._scan(raw or None, True, hi, False, reverse, True):
            yield cast(K, self._out(key)), cast(V, value)

    # -- secondary indexes (declared on a document class given as values=) -------------

    def find_unique(self, index: str, value: object) -> V | None:
        """The value whose unique index ``index`` (declared on the store's document class)
        holds ``value``, or None. Buffered writes are flushed first, so it sees them."""
        cls = self._indexed("find_unique")
        with self._lock:
            self._check_open()
            self.flush()
            return cast("V | None", self._owner.find_unique(cls, index, value))

    def index_range(
        self, index: str, lo: object = None, hi: object = None
    ) -> Iterator[tuple[K, V]]:
        """``(key, value)`` pairs whose ``index`` value lies in ``lo..hi`` (inclusive; None
        is open), in index order, over one snapshot. Buffered writes are flushed first."""
        return self._index_pairs(self._indexed("index_range"), index, lo, hi)

    def _index_pairs(self, cls: type, index: str, lo: object, hi: object) -> Iterator[tuple[K, V]]:
        with self._lock:
            self._check_open()
            self.flush()
            cursor = self._owner.index_range(cls, index, lo, hi)
        for raw, value in cursor:
            yield cast(K, self._out(raw)), cast(V, value)

    def _indexed(self, what: str) -> type:
        cls = self._values.cls
        if cls is None:
            raise InvalidArgumentError(
                f"{what}() reads an index, and indexes are declared on a document class: "
                f"open the store with values=SomeDocumentClass (this one holds "
                f"{self._values.name} values)"
            )
        return cls

    def _prefix_bytes(self, p: object) -> bytes:
        if (isinstance(p, str) and p == "") or (isinstance(p, (bytes, bytearray)) and not p):
            return b""
        return self._key(p)

    def put_many(self, items: Mapping[K, V] | Iterable[tuple[K, V]]) -> None:
        """Stores every pair in one transaction: all of them or, on any error, none (with
        the buffered writes committed in the same transaction)."""
        pairs = items.items() if isinstance(items, Mapping) else items
        if self._fast:
            self._check_open()
            self._h.write_many(pairs, _DELETE)
            return
        ops = [(self._key(k), v) for k, v in pairs]
        with self._lock:
            self._check_open()
            pending = list(self._pending.items())
            self._write(pending + ops)
            self._pending.clear()

    def get_many(self, keys: Iterable[K], *, default: Any = _MISSING) -> tuple[dict[K, V], list[K]]:
        """``(found, not_found)``: the values of the keys present (under the keys as you
        passed them) and the keys absent, in order. With ``default`` given, absent keys
        map to it in ``found`` and ``not_found`` still lists them."""
        found: dict[K, V] = {}
        missing: list[K] = []
        with self._lock:
            self._reader()
            for key in keys:
                raw = self._key(key)
                pending = self._pending.get(raw, _MISSING)
                if pending is not _MISSING:
                    value = _MISSING if pending is _DELETE else pending
                else:
                    value = self._h.get(raw, _MISSING)
                    if value is not _MISSING:
                        value = self._load(value)
                if value is _MISSING:
                    missing.append(key)
                    if default is not _MISSING:
                        found[key] = default
                else:
                    found[key] = value
        return found, missing

    def delete_many(self, keys: Iterable[K]) -> int:
        """Deletes the keys present, in one transaction; returns how many it deleted."""
        raws = [self._key(k) for k in keys]
        with self._lock:
            present = [r for r in dict.fromkeys(raws) if self._exists(r, flush=False)]
            pending = list(self._pending.items())
            self._write(pending + [(r, _DELETE) for r in present])
            self._pending.clear()
            return len(present)

    @property
    def name(self) -> str:
        """The collection the store lives in."""
        return self._name

    @property
    def pending(self) -> int:
        """Buffered writes not committed yet."""
        return len(self._pending)

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: V | _T) -> V | _T: ...
    def get(self, key: K, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        try:
            return self[key]
        except KeyError:
            return default


def _within(k: bytes, lo: bytes | None, lo_incl: bool, hi: bytes | None, hi_incl: bool) -> bool:
    if lo is not None and (k < lo or (k == lo and not lo_incl)):
        return False
    return not (hi is not None and (k > hi or (k == hi and not hi_incl)))


def _merge(
    stream: Iterator[Any],
    pending: list[tuple[bytes, Any]],
    reverse: bool,
    values: bool,
    load: Callable[[Any], Any],
) -> Iterator[tuple[bytes, Any]]:
    """Merges the snapshot's (key, value) stream with buffered writes (sorted the same
    way); a buffered write wins over the stored value, a buffered delete hides it."""

    def before(a: bytes, b: bytes) -> bool:
        return a > b if reverse else a < b

    i = 0
    for entry in stream:
        key, value = (entry, None) if not values else entry
        while i < len(pending) and before(pending[i][0], key):
            if pending[i][1] is not _DELETE:
                yield pending[i]
            i += 1
        if i < len(pending) and pending[i][0] == key:
            if pending[i][1] is not _DELETE:
                yield pending[i]
            i += 1
            continue
        yield key, (load(value) if values else None)
    for k, v in pending[i:]:
        if v is not _DELETE:
            yield k, v


class _Values_View(ValuesView[V]):
    _mapping: Store[Any, V]

    def __iter__(self) -> Iterator[V]:
        for _, value in self._mapping._scan(None, True, None, True, False, True):
            yield cast(V, value)


class _ItemsView(ItemsView[K, V]):
    _mapping: Store[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        store = self._mapping
        if store._fast:
            it = store._h.iter(None, True, None, True, False, True, store._str_keys)
            return cast("Iterator[tuple[K, V]]", it)
        return self._merged()

    def _merged(self) -> Iterator[tuple[K, V]]:
        store = self._mapping
        for raw, value in store._scan(None, True, None, True, False, True):
            yield cast(K, store._out(raw)), cast(V, value)
