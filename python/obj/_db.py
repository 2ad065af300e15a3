"""The database handle, :class:`Db`."""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Literal, NamedTuple, TypeVar, cast, overload

from . import _obj
from ._txn import IndexInfo, ReadTransaction, WriteTransaction, _check_target, _index_infos
from .document import rebased_doctype
from .errors import InvalidArgumentError, NotFoundError, ObjError
from .query import Query
from .stat import CollectionStat, IndexStat, Stat

__all__ = [
    "CheckpointInfo",
    "CompactInfo",
    "Db",
    "DocHeader",
    "Durability",
    "IntegrityReport",
    "RawRecord",
    "Sync",
]

D = TypeVar("D")

#: When a commit reaches the disk: ``"immediate"`` fsyncs the log on every commit (an
#: acknowledged commit survives power loss), ``"eventual"`` only at checkpoints (survives a
#: process crash), ``"none"`` never (scratch data).
Durability = Literal["immediate", "eventual", "none"]

_DURABILITIES = ("immediate", "eventual", "none")

#: SQLite-style names for the durability modes: ``"full"`` fsyncs the log on every commit
#: (survives power loss), ``"normal"`` syncs only at checkpoints (survives a process crash;
#: a power loss may drop the latest commits, never half of one), ``"off"`` never syncs.
Sync = Literal["full", "normal", "off"]

_SYNC_MODES = {"full": "immediate", "normal": "eventual", "off": "none"}


class IntegrityReport(NamedTuple):
    """What a successful :meth:`Db.integrity_check` walked."""

    page_count: int
    free_pages: int


class CompactInfo(NamedTuple):
    """What :meth:`Db.compact` did."""

    pages_before: int
    pages_after: int
    pages_moved: int
    #: False while a read transaction held an older snapshot: the file shrinks at the next
    #: checkpoint after it ends.
    truncated: bool


class CheckpointInfo(NamedTuple):
    """What :meth:`Db.checkpoint` did."""

    #: Page versions copied from the write-ahead log into the main file.
    frames_copied: int
    #: True when the log was reset to its header (everything was folded).
    wal_reset: bool
    #: True when a live read transaction kept some frames in the log; retry after it ends.
    deferred: bool


@dataclass(frozen=True)
class DocHeader:
    """The header stored in front of every document."""

    #: The engine's id of the collection the document was written to.
    collection_id: int
    #: The schema version of a typed document (0 for raw and dict-native documents).
    type_version: int
    #: How the payload is encoded: ``"raw"`` (bytes chosen by the caller), ``"value"``
    #: (a dict-native document) or ``"typed"`` (an ``@obj.document`` class's codec).
    kind: Literal["raw", "value", "typed"]
    #: Header flags (bit 0: the payload is stored lz4-compressed).
    flags: int


@dataclass(frozen=True)
class RawRecord:
    """One stored record, from :meth:`Db.dump_raw`."""

    id: int
    header: DocHeader
    #: The payload as the codecs read it (decompressed if it is stored compressed).
    payload: bytes


def _namespaced(target: object) -> tuple[str, str] | None:
    """``(namespace, collection)`` when ``target`` (a name or a document class) names a
    collection of an attached namespace, else None."""
    if isinstance(target, str):
        name = target
    elif isinstance(target, type):
        doctype = getattr(target, "__obj_doctype__", None)
        if not isinstance(doctype, _obj.DocType):
            return None
        name = doctype.collection
    else:
        return None
    namespace, dot, rest = name.partition(".")
    return (namespace, rest) if dot else None


def _fspath(path: object, name: str = "path") -> str:
    """``path`` as a str for the engine; ``name`` is the argument named in errors."""
    try:
        raw = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidArgumentError(
            f"{name} must be a str or os.PathLike, got {type(path).__name__}"
        ) from None
    text = os.fsdecode(raw)
    if not text:
        raise InvalidArgumentError(f"{name} must not be empty; give the database file's path")
    if "\0" in text:
        raise InvalidArgumentError(f"{name} must not contain a NUL byte, got {text!r}")
    return text


def _int_option(name: str, value: object, minimum: int, maximum: int = 2**64 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise InvalidArgumentError(f"{name} must be from {minimum} to {maximum}, got {value}")
    return value


class Db(_obj.Db):
    """An open database: the file at ``path`` and its write-ahead log ``<path>-wal``.

    The file is created if it does not exist (unless ``read_only``). A read-write handle
    holds an exclusive lock on the file; another process that tries to open it waits up to
    ``busy_timeout`` seconds, then gets :class:`obj.BusyError`. One handle may be shared by
    any number of threads.

    Use it as a context manager::

        with obj.Db("app.obj") as db:
            oid = db.insert(Order(customer_id=1, total=9.5, status="new"))
            order = db.get(Order, oid)
            with db.transaction() as tx:
                tx.insert("events", {"event": "ordered", "order": oid})

    A clean exit from the ``with`` block checkpoints (best-effort) and closes. An exit through
    an exception closes without the checkpoint and lets the exception propagate unchanged.

    Options: ``read_only``; ``busy_timeout`` (seconds to wait for the file lock or the
    writer); ``durability`` (see :data:`Durability`); ``page_size`` for a new file (a power
    of two from 4096 to 65536); ``cache_size`` in bytes of the shared page cache;
    ``checkpoint_frames``, the log length that triggers an automatic checkpoint.

    Single-document methods (``insert``, ``get``, ``upsert``, ``delete``, ``count``,
    ``all``, ``find_unique``, ``index_range``, ``get_raw``) each run in a transaction of
    their own. They take an ``@obj.document`` class (or instance, for ``insert``) for typed
    documents, or a collection name: then reads return what was written (``bytes``, a
    dict, or a typed record as a dict) and writes take ``bytes`` or a dict.
    """

    __slots__ = ("_attached", "_path", "_views")

    _path: pathlib.Path
    _attached: dict[str, Db]
    _views: dict[tuple[str, type], type]

    def __new__(
        cls,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout: float = 5.0,
        durability: Durability = "immediate",
        page_size: int = 4096,
        cache_size: int = 256 << 20,
        checkpoint_frames: int = 1000,
        sync: Sync | None = None,
        compression: Literal["lz4"] | None = None,
        encryption_key: bytes | str | None = None,
    ) -> Db:
        where = pathlib.Path(_fspath(path))
        if sync is not None:
            if not isinstance(sync, str) or sync not in _SYNC_MODES:
                raise InvalidArgumentError(f"sync must be 'full', 'normal' or 'off', got {sync!r}")
            if durability != "immediate" and durability != _SYNC_MODES[sync]:
                raise InvalidArgumentError(
                    f"sync={sync!r} and durability={durability!r} disagree; pass only one"
                )
            durability = _SYNC_MODES[sync]  # type: ignore[assignment]
        if compression is not None and compression != "lz4":
            raise InvalidArgumentError(f"compression must be 'lz4' or None, got {compression!r}")
        if not isinstance(read_only, bool):
            raise InvalidArgumentError(f"read_only must be a bool, got {type(read_only).__name__}")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise InvalidArgumentError(
                f"busy_timeout must be a number of seconds, got {type(busy_timeout).__name__}"
            )
        if not math.isfinite(busy_timeout) or busy_timeout < 0:
            raise InvalidArgumentError(
                f"busy_timeout must be a finite number of seconds >= 0, got {busy_timeout}"
            )
        if not isinstance(durability, str) or durability not in _DURABILITIES:
            raise InvalidArgumentError(
                f"durability must be one of {', '.join(map(repr, _DURABILITIES))}, "
                f"got {durability!r}"
            )
        self = super().__new__(
            cls,
            str(where),
            read_only=read_only,
            busy_timeout=float(busy_timeout),
            durability=durability,
            page_size=_int_option("page_size", page_size, 1, 2**32 - 1),
            cache_size=_int_option("cache_size", cache_size, 0),
            checkpoint_frames=_int_option("checkpoint_frames", checkpoint_frames, 1),
            compression=compression,
            encryption_key=encryption_key,
        )
        self._path = where
        self._attached = {}
        self._views = {}
        return self

    @classmethod
    def memory(cls, **options: Any) -> Db:
        """A database that lives in memory only (same as ``Db(":memory:")``): the same
        engine and semantics, nothing touches the disk, and it is gone when closed::

            with obj.Db.memory() as db:
                db.insert("scratch", {"n": 1})
        """
        return cls(":memory:", **options)

    def backup(self, dest: str | os.PathLike[str], overwrite: bool = False) -> int:
        """Writes a consistent copy of the latest commit to ``dest`` while readers and
        writers go on; returns its size in bytes. The copy is a database of its own (same
        encryption key, if any). An existing ``dest`` is refused unless ``overwrite``::

            db.backup("app-backup.obj")
        """
        if not isinstance(overwrite, bool):
            raise InvalidArgumentError(f"overwrite must be a bool, got {type(overwrite).__name__}")
        return int(super().backup(_fspath(dest, "dest"), overwrite))

    def compact(self) -> CompactInfo:
        """Rewrites the database so it uses only the pages it needs and gives the rest back
        to the file system (for example after deleting most documents)::

            info = db.compact()
            print(info.pages_before, "->", info.pages_after)
        """
        return CompactInfo(*super().compact())

    def integrity_check(self) -> IntegrityReport:
        """Walks every tree, index and the freelist of the latest commit, checking
        checksums, key order, page accounting and that every index agrees with the
        documents. Raises :class:`obj.IntegrityError` listing the problems found::

            report = db.integrity_check()
        """
        return IntegrityReport(*super().integrity_check())

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout: float = 5.0,
        durability: Durability = "immediate",
        page_size: int = 4096,
        cache_size: int = 256 << 20,
        checkpoint_frames: int = 1000,
        sync: Sync | None = None,
        compression: Literal["lz4"] | None = None,
        encryption_key: bytes | str | None = None,
    ) -> None:
        """Opens (or creates) the database at ``path``; see the class documentation."""

    # -- attached namespaces --------------------------------------------------------------

    def attach(self, path: str | os.PathLike[str], namespace: str) -> None:
        """Opens the obj database at ``path`` read-only under ``namespace``: its collection
        ``orders`` is then read here as ``"namespace.orders"`` (by name, or through a
        document class declared with ``collection="namespace.orders"``)::

            db.attach("archive-2024.obj", "archive")
            old = db.get("archive.orders", 1)
            n = db.count("archive.orders")

        Attached databases are read-only: a write to ``"namespace.x"`` is an
        :class:`obj.InvalidArgumentError`. A missing file is :class:`obj.NotFoundError`, a
        file that is not an obj database :class:`obj.CorruptionError`, and a namespace that
        is already attached :class:`obj.InvalidArgumentError`.
        """
        if not isinstance(namespace, str):
            raise InvalidArgumentError(f"namespace must be a str, got {type(namespace).__name__}")
        if not namespace or "." in namespace:
            raise InvalidArgumentError(
                f"namespace must be a non-empty name without '.', got {namespace!r}"
            )
        if namespace in self._attached:
            raise InvalidArgumentError(
                f"namespace {namespace!r} is already attached "
                f"({self._attached[namespace].path}); detach it first"
            )
        where = pathlib.Path(_fspath(path))
        if not where.is_file():
            raise NotFoundError(f"cannot attach {str(where)!r}: no such database file")
        self._attached[namespace] = Db(where, read_only=True)
        if not isinstance(self, _Routing):
            self.__class__ = _routed_class(type(self))

    def detach(self, namespace: str) -> None:
        """Closes the database attached under ``namespace`` (:class:`obj.NotFoundError` if
        none is)."""
        handle = self._attached.pop(namespace, None) if isinstance(namespace, str) else None
        if handle is None:
            raise NotFoundError(f"namespace {namespace!r} is not attached")
        self._views = {k: v for k, v in self._views.items() if k[0] != namespace}
        if not self._attached:
            self._unroute()
        handle.close()

    def _unroute(self) -> None:
        unrouted = getattr(type(self), "_unrouted", None)
        if unrouted is not None:
            self.__class__ = unrouted

    @property
    def attached(self) -> dict[str, pathlib.Path]:
        """The attached namespaces and the files they read."""
        return {ns: handle.path for ns, handle in self._attached.items()}

    def _route(self, target: Any) -> tuple[Db, Any] | None:
        """The attached handle and the target to use there, when ``target`` names an
        attached namespace (None otherwise: the native call reports an unknown one)."""
        split = _namespaced(target)
        if split is None:
            return None
        namespace, collection = split
        handle = self._attached.get(namespace)
        if handle is None:
            return None
        if isinstance(target, str):
            return handle, collection
        view = self._views.get((namespace, target))
        if view is None:
            # A subclass whose codec names the bare collection: records decode into
            # instances of ``target`` itself, checked against the attached file's schema.
            doctype = rebased_doctype(target, collection)
            view = type(
                target.__name__,
                (target,),
                {
                    "__obj_doctype__": doctype,
                    "__slots__": (),
                    "__module__": target.__module__,
                    "__qualname__": target.__qualname__,
                },
            )
            doctype._bind(view)
            self._views[(namespace, target)] = view
        return handle, view

    def dump_raw(self, collection: Any, max_records: int = 1000) -> list[RawRecord]:
        """Up to ``max_records`` records of a collection (named, or a document class's) as
        stored, in id order: id, header (collection id, type version, kind, flags) and
        payload bytes. For inspecting a file; reads never decode the payload::

            for rec in db.dump_raw("orders", max_records=10):
                print(rec.id, rec.header.kind, len(rec.payload))
        """
        limit = _int_option("max_records", max_records, 0)
        if self._attached:
            routed = self._route(collection)
            if routed is not None:
                return routed[0].dump_raw(routed[1], limit)
        return [
            RawRecord(id, DocHeader(collection_id, type_version, kind, flags), payload)
            for id, kind, flags, type_version, collection_id, payload in self._dump_raw(
                collection, limit
            )
        ]

    def close(self) -> None:
        """Checkpoints best-effort, closes the attached databases, then releases the file
        lock. Idempotent."""
        self._close_attached()
        _obj.Db.close(self)

    def close_without_checkpoint(self) -> None:
        """Closes the attached databases and releases the file lock without checkpointing.
        Idempotent."""
        self._close_attached()
        _obj.Db.close_without_checkpoint(self)

    def _close_attached(self) -> None:
        attached, self._attached, self._views = self._attached, {}, {}
        self._unroute()
        for handle in attached.values():
            with contextlib.suppress(ObjError):
                handle.close()

    def transaction(self) -> WriteTransaction:
        """Starts the write transaction.

        Only one write transaction runs at a time per database; this waits up to
        ``busy_timeout`` for the current one, then raises :class:`obj.BusyError`. Inside a
        ``with`` block a clean exit commits and an exception rolls back. Many writes in one
        transaction are one commit (one fsync)::

            with db.transaction() as tx:
                for order in orders:
                    tx.insert(order)
        """
        return WriteTransaction(self)

    def read_transaction(self) -> ReadTransaction:
        """Starts a read-only snapshot of the latest commit.

        It never waits for or blocks the writer and never sees uncommitted work. The
        snapshot is released when its ``with`` block ends::

            with db.read_transaction() as tx:
                order = tx.get(Order, 1)
        """
        return ReadTransaction(self)

    @overload
    def update(self, target: type[D], id: int, fn: Callable[[D], D | None]) -> D: ...
    @overload
    def update(self, target: str, id: int, fn: Callable[[Any], Any]) -> Any: ...
    def update(self, target: Any, id: int, fn: Callable[[Any], Any]) -> Any:
        """Atomic read-modify-write of document ``id`` in one write transaction.

        ``fn`` receives the document and may change it in place (returning None) or return
        a new one; the result is written back and returned. If ``fn`` raises, nothing is
        written and the exception propagates. A missing ``id`` raises
        :class:`obj.NotFoundError`::

            db.update(Order, oid, lambda o: setattr(o, "status", "shipped"))
        """
        with self.transaction() as tx:
            return tx.update(target, id, fn)

    @overload
    def query(self, target: type[D]) -> Query[D]: ...
    @overload
    def query(self, target: str) -> Query[dict[str, Any]]: ...
    def query(self, target: Any) -> Query[Any]:
        """A lazy, immutable query over a document class (instances) or a collection name
        (dicts); it runs on a snapshot taken when results are first requested::

            big = db.query(Order).filter(obj.field("total") > 100).limit(10).fetch()
        """
        _check_target(target)
        if self._attached:
            routed = self._route(target)
            if routed is not None:
                return Query(routed[0], routed[1])
        return Query(self, target)

    def index_info(self, target: type | str) -> list[IndexInfo]:
        """The secondary indexes of a class's (or named) collection: name, kind, key paths
        and status. For a class, indexes it declares are built first if they are missing."""
        return _index_infos(self.indexes(target))

    def stat(self) -> Stat:
        """Sizes and counts of the latest commit: pages, log frames, live snapshots (how
        many, and the commit the oldest reads: a half-consumed iterator kept in a variable
        is a live snapshot, and the log cannot be reset past it), and per collection its
        document count, the bytes it occupies and its indexes (name, kind, key paths,
        status)::

            for cs in db.stat().collections:
                for idx in cs.indexes:
                    print(cs.name, idx.name, idx.kind, idx.key_paths, idx.status)
        """
        commit_seq, readers, oldest_seq, oldest_age = self._readers()
        page_size, page_count, free_pages, wal_frames, collections = self._stat()
        return Stat(
            page_size,
            page_count,
            free_pages,
            wal_frames,
            tuple(
                CollectionStat(
                    name,
                    docs,
                    size,
                    tuple(IndexStat(i[0], i[1], list(i[2]), i[3], i[4]) for i in indexes),
                )
                for name, docs, size, indexes in collections
            ),
            commit_seq,
            readers,
            oldest_seq,
            oldest_age,
        )

    def checkpoint(self) -> CheckpointInfo:
        """Folds committed log frames into the main file and resets the log to its header.

        A no-op when there is nothing to fold. Deferred (partly or wholly) while a read
        transaction still needs older frames. Raises :class:`obj.ObjError` on a read-only
        handle::

            info = db.checkpoint()
            assert info.wal_reset or info.deferred
        """
        return CheckpointInfo(*super().checkpoint())

    @property
    def path(self) -> pathlib.Path:
        """The main database file."""
        return self._path

    @property
    def wal_path(self) -> pathlib.Path:
        """The write-ahead log, ``<path>-wal``."""
        return self._path.with_name(self._path.name + "-wal")

    def __enter__(self) -> Db:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        # The caller's exception is the one that matters: it propagates unchanged, and a
        # failure to release the lock here must not replace it.
        with contextlib.suppress(ObjError):
            self.close_without_checkpoint()

    def __repr__(self) -> str:
        state = " closed" if self.closed else (" read-only" if self.read_only else "")
        return f"<obj.Db {str(self._path)!r}{state}>"


class _Routing:
    """The reads that route ``"namespace.collection"`` to an attached database.

    While a namespace is attached, a :class:`Db` is an instance of a subclass that puts this
    class in front of its own (see :meth:`Db.attach`); otherwise reads such as
    ``db.get(Order, id)`` stay one native call each, with nothing in Python on the way.
    """

    __slots__ = ()

    def get(self, target: Any, id: Any, /) -> Any:
        """The document ``id``, or None (see the class documentation)."""
        routed = _routed(self, target)
        if routed is not None:
            return routed[0].get(routed[1], id)
        return _next(self).get(target, id)

    def get_raw(self, collection: Any, id: Any, /) -> bytes | None:
        """The stored payload bytes of document ``id`` (whatever its encoding), or None."""
        routed = _routed(self, collection)
        if routed is not None:
            return routed[0].get_raw(routed[1], id)
        return _next(self).get_raw(collection, id)

    def count(self, target: Any, /) -> int:
        """Number of documents in the collection (0 if it does not exist)."""
        routed = _routed(self, target)
        if routed is not None:
            return routed[0].count(routed[1])
        return _next(self).count(target)

    def all(self, target: Any, /) -> Iterator[tuple[int, Any]]:
        """Lazy ``(id, document)`` pairs in id order, from a snapshot taken now."""
        routed = _routed(self, target)
        if routed is not None:
            return routed[0].all(routed[1])
        return _next(self).all(target)

    def find_unique(self, target: Any, index: str, value: Any, /) -> Any:
        """The document whose unique index ``index`` holds ``value``, or None."""
        routed = _routed(self, target)
        if routed is not None:
            return routed[0].find_unique(routed[1], index, value)
        return _next(self).find_unique(target, index, value)

    def index_range(
        self, target: Any, index: str, /, lo: Any = None, hi: Any = None
    ) -> _obj.QueryCursor[Any]:
        """Lazy ``(id, document)`` pairs whose ``index`` value lies in ``lo..hi``
        (inclusive, None = open), in key order."""
        routed = _routed(self, target)
        if routed is not None:
            return routed[0].index_range(routed[1], index, lo, hi)
        return _next(self).index_range(target, index, lo=lo, hi=hi)

    def indexes(self, target: Any, /) -> list[tuple[str, str, list[str], bool]]:
        """``(name, kind, key_paths, ready)`` of each index of the collection."""
        routed = _routed(self, target)
        if routed is not None:
            return routed[0].indexes(routed[1])
        return _next(self).indexes(target)


def _routed(db: object, target: Any) -> tuple[Db, Any] | None:
    assert isinstance(db, Db)
    return db._route(target)


def _next(db: _Routing) -> Db:
    """The methods ``db`` has without :class:`_Routing`."""
    return cast("Db", super(_Routing, db))


_ROUTED: dict[type, type] = {}


def _routed_class(cls: type[Db]) -> type[Db]:
    """``cls`` with :class:`_Routing` in front (the same layout, so an instance can switch)."""
    routed = _ROUTED.get(cls)
    if routed is None:
        routed = type(cls.__name__, (_Routing, cls), {"__slots__": (), "_unrouted": cls})
        routed.__module__ = cls.__module__
        routed.__qualname__ = cls.__qualname__
        _ROUTED[cls] = routed
    return routed
