"""The database handle, :class:`Db`."""

from __future__ import annotations

import contextlib
import os
import pathlib
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Literal, NamedTuple, TypedDict, TypeVar, overload

from . import _obj
from ._changes import ChangeLog, ChangesOption, Retention, _check_context
from ._reads import Reads
from ._txn import ReadTransaction, WriteTransaction
from .errors import InvalidArgumentError, NotFoundError, ObjError
from .stat import CollectionStat, IndexStat, Stat

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .state import State

__all__ = [
    "CheckpointInfo",
    "CompactInfo",
    "Db",
    "DocHeader",
    "Durability",
    "IntegrityReport",
    "Locking",
    "RawRecord",
    "Sync",
]

D = TypeVar("D")

#: When a commit reaches the disk: ``"immediate"`` fsyncs the log on every commit (an
#: acknowledged commit survives power loss), ``"eventual"`` only at checkpoints (survives a
#: process crash), ``"none"`` never (scratch data).
Durability = Literal["immediate", "eventual", "none"]

#: SQLite-style names for the durability modes: ``"full"`` fsyncs the log on every commit
#: (survives power loss), ``"normal"`` syncs only at checkpoints (survives a process crash;
#: a power loss may drop the latest commits, never half of one), ``"off"`` never syncs.
Sync = Literal["full", "normal", "off"]

#: Whether other processes may open the file beside this handle: ``"shared"`` (the
#: default: any number of processes, readers never blocked, one writer at a time across
#: them, coordinated through ``<db>-shm``) or ``"exclusive"`` (this handle alone; no
#: ``-shm`` file; for network file systems, where shared memory between machines is unsafe).
Locking = Literal["shared", "exclusive"]

#: How ``Db`` opens its file: ``Db(path)``, ``Db.create(path)``, ``Db.open(path)``.
_OpenMode = Literal["open_or_create", "create", "open"]


class DbOptions(TypedDict, total=False):
    """The options of :class:`obj.Db` as keyword arguments (their defaults are ``Db``'s)."""

    read_only: bool
    busy_timeout: float
    durability: Durability
    page_size: int
    cache_size: int
    checkpoint_frames: int
    sync: Sync | None
    compression: Literal["lz4"] | None
    encryption_key: bytes | str | None
    locking: Locking
    changes: ChangesOption
    retention: Retention | None


#: The defaults of the options of :class:`Db`: the engine's own.
_DEFAULTS = _obj._defaults()

#: Every Db opened in this process (weakly), so a child after fork() can disown them.
_OPEN_HANDLES: weakref.WeakSet[Db] = weakref.WeakSet()


def _disown_after_fork() -> None:
    """In a child process after ``fork()``: every handle the parent opened refuses further
    use (open the database again in the child) and closing it releases none of the
    parent's locks."""
    for db in list(_OPEN_HANDLES):
        db._after_fork()


def _after_fork_in_child() -> None:
    _obj._after_fork_anywhere()
    _disown_after_fork()


if hasattr(os, "register_at_fork"):
    # Before: the engine's background thread lets go of its locks, so the child (which
    # gets no copy of it) can open databases afresh.
    os.register_at_fork(
        before=_obj._before_fork,
        after_in_parent=_obj._after_fork_anywhere,
        after_in_child=_after_fork_in_child,
    )


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

    #: The document id (0 in a keyed collection).
    id: int
    header: DocHeader
    #: The payload as the codecs read it (decompressed if it is stored compressed).
    payload: bytes
    #: The key of a record of a keyed collection (an :class:`obj.Store`); None under ids.
    key: bytes | None = None


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


class Db(Reads, ChangeLog, _obj.Db):
    """An open database: the file at ``path`` and its write-ahead log ``<path>-wal``.

    The file is created if it does not exist (unless ``read_only``). Any number of
    processes (and handles) may have it open at once: their snapshots never block anyone,
    and one write transaction runs at a time across all of them (another waits up to
    ``busy_timeout`` seconds, then gets :class:`obj.BusyError`). With
    ``locking="exclusive"`` the handle has the file to itself instead. One handle may be
    shared by any number of threads.

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
    ``checkpoint_frames``, the log length that triggers an automatic checkpoint;
    ``locking`` (see :data:`Locking`): by default any number of processes open the file at
    once, each reading snapshots without blocking anyone, one writer at a time across all
    of them; ``changes`` turns the change log on (True, or which images to keep: see
    :meth:`enable_changes`), with ``retention`` (an :class:`obj.Retention`).

    Single-document methods (``insert``, ``get``, ``upsert``, ``delete``, ``count``,
    ``all``, ``iter_all``, ``find_unique``, ``index_range``, ``get_raw``) each run in a
    transaction of their own. They take an ``@obj.document`` class (or instance, for
    ``insert``) for typed documents, or a collection name: then reads return what was
    written (``bytes``, a dict, or a typed record as a dict) and writes take ``bytes`` or a
    dict.
    """

    __slots__ = ("__weakref__", "_path")

    _path: pathlib.Path

    def __new__(
        cls,
        path: str | os.PathLike[str],
        *,
        read_only: bool = _DEFAULTS["read_only"],
        busy_timeout: float = _DEFAULTS["busy_timeout"],
        durability: Durability = _DEFAULTS["durability"],
        page_size: int = _DEFAULTS["page_size"],
        cache_size: int = _DEFAULTS["cache_size"],
        checkpoint_frames: int = _DEFAULTS["checkpoint_frames"],
        sync: Sync | None = None,
        compression: Literal["lz4"] | None = None,
        encryption_key: bytes | str | None = None,
        locking: Locking = _DEFAULTS["locking"],
        changes: ChangesOption = None,
        retention: Retention | None = None,
        _mode: _OpenMode = "open_or_create",
    ) -> Db:
        where = pathlib.Path(_fspath(path))
        self = super().__new__(
            cls,
            str(where),
            read_only=read_only,
            busy_timeout=busy_timeout,
            durability=durability,
            page_size=page_size,
            cache_size=cache_size,
            checkpoint_frames=checkpoint_frames,
            sync=sync,
            compression=compression,
            encryption_key=encryption_key,
            locking=locking,
            mode=_mode,
        )
        self._path = where
        _OPEN_HANDLES.add(self)
        if changes is not None or retention is not None:
            try:
                self._configure_changes(changes, retention)
            except BaseException:
                self.close()
                raise
        return self

    @classmethod
    def create(cls, path: str | os.PathLike[str], **options: Unpack[DbOptions]) -> Db:
        """Creates a new database at ``path`` (with the options of :class:`Db`). A file
        already there is refused with :class:`obj.DatabaseExistsError`, which is both an
        :class:`obj.InvalidArgumentError` and a :class:`FileExistsError`::

            db = obj.Db.create("fresh.obj")
        """
        return cls(path, _mode="create", **options)

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Unpack[DbOptions]) -> Db:
        """Opens the existing database at ``path`` (with the options of :class:`Db`). A
        missing file is refused with :class:`obj.DatabaseNotFoundError`, which is both an
        :class:`obj.NotFoundError` and a :class:`FileNotFoundError`; ``Db(path)`` would
        create it instead::

            db = obj.Db.open("app.obj")
        """
        return cls(path, _mode="open", **options)

    def flush(self) -> None:
        """Makes every commit acknowledged so far durable now, as ``durability="immediate"``
        (``sync="full"``) does for each commit; under that level it has nothing to do::

            db = obj.Db("app.obj", sync="normal")   # fast commits, synced at checkpoints
            db.insert("events", {"n": 1})
            db.flush()                             # ... and now on disk for sure
        """
        super().flush()

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
        read_only: bool = _DEFAULTS["read_only"],
        busy_timeout: float = _DEFAULTS["busy_timeout"],
        durability: Durability = _DEFAULTS["durability"],
        page_size: int = _DEFAULTS["page_size"],
        cache_size: int = _DEFAULTS["cache_size"],
        checkpoint_frames: int = _DEFAULTS["checkpoint_frames"],
        sync: Sync | None = None,
        compression: Literal["lz4"] | None = None,
        encryption_key: bytes | str | None = None,
        locking: Locking = _DEFAULTS["locking"],
        changes: ChangesOption = None,
        retention: Retention | None = None,
        _mode: _OpenMode = "open_or_create",
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

        Reads of an attached namespace work the same from the transactions of this handle
        (``tx.get("archive.orders", 1)``): a transaction reads the attached file on the
        snapshot it takes at its first read there, so its reads of one file agree with each
        other; the files commit independently, so a transaction is not one snapshot across
        them.

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
        attached = self.attached
        if namespace in attached:
            raise InvalidArgumentError(
                f"namespace {namespace!r} is already attached ({attached[namespace]}); "
                "detach it first"
            )
        where = pathlib.Path(_fspath(path))
        if not where.is_file():
            raise NotFoundError(f"cannot attach {str(where)!r}: no such database file")
        handle = Db(where, read_only=True)
        if not self._attach(namespace, handle):
            handle.close()
            raise InvalidArgumentError(
                f"namespace {namespace!r} was attached meanwhile; detach it first"
            )

    def detach(self, namespace: str) -> None:
        """Closes the database attached under ``namespace`` (:class:`obj.NotFoundError` if
        none is)."""
        handle = self._detach(namespace) if isinstance(namespace, str) else None
        if handle is None:
            raise NotFoundError(f"namespace {namespace!r} is not attached")
        handle.close()

    @property
    def attached(self) -> dict[str, pathlib.Path]:
        """The attached namespaces and the files they read."""
        return {ns: _handle(h).path for ns, h in self._attachments()}

    def dump_raw(self, collection: Any, max_records: int = 1000) -> list[RawRecord]:
        """Up to ``max_records`` records of a collection (named, or a document class's) as
        stored, in id order (in key order, with ``key`` set, for a keyed collection): id,
        header (collection id, type version, kind, flags) and payload bytes. For inspecting
        a file; reads never decode the payload::

            for rec in db.dump_raw("orders", max_records=10):
                print(rec.id, rec.header.kind, len(rec.payload))
        """
        limit = _int_option("max_records", max_records, 0)
        doctype = getattr(collection, "__obj_doctype__", None)
        name = doctype.collection if isinstance(collection, type) and doctype else collection
        if isinstance(name, str) and self._key_kind(name) == "keyed":
            return [
                RawRecord(0, DocHeader(collection_id, type_version, kind, flags), payload, key)
                for key, kind, flags, type_version, collection_id, payload in (
                    self._dump_raw_keys(collection, limit)
                )
            ]
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
        for handle in self._detach_all():
            with contextlib.suppress(ObjError):
                _handle(handle).close()

    def transaction(
        self,
        *,
        action: str | None = None,
        user: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> WriteTransaction:
        """Starts the write transaction.

        Only one write transaction runs at a time per database; this waits up to
        ``busy_timeout`` for the current one, then raises :class:`obj.BusyError`. Inside a
        ``with`` block a clean exit commits and an exception rolls back. Many writes in one
        transaction are one commit (one fsync)::

            with db.transaction() as tx:
                for order in orders:
                    tx.insert(order)

        With a change log (``changes=True``), ``action``, ``user`` and ``meta`` (a dict) are
        recorded with the commit (they override a surrounding :meth:`context`)::

            with db.transaction(action="create_user", user="ana") as tx:
                tx.insert("users", {"name": "Alice"})
        """
        tx = WriteTransaction(self)
        if action is not None or user is not None or meta is not None:
            try:
                _check_context(action, user, meta)
                tx._set_context(action, user, meta)
            except BaseException:
                tx.rollback()
                raise
        return tx

    def state(self, cls: type[D], name: str = "state") -> State[D]:
        """The root object ``name`` of this database (see :class:`obj.State`), created
        from ``cls()`` on first use; ``cls`` is a dataclass, attrs class, ``msgspec.Struct``
        or pydantic model (an undecorated class is declared
        ``@obj.document(collection="state:<name>")`` here)::

            state = db.state(Data, name="app")
            with state.transaction(action="create_user", user="ana") as data:
                data.users["alice"] = User(name="Alice")
        """
        from .state import State

        return State(self, cls, name)

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
        (
            commit_seq,
            mine,
            my_oldest,
            my_age,
            others,
            other_marks,
            other_oldest,
            other_age,
        ) = self._readers()
        # Snapshots on the whole file: this handle's and every other handle's (process's).
        oldests = [s for s in (my_oldest, other_oldest) if s is not None]
        ages = [a for a in (my_age, other_age if others else None) if a is not None]
        page_size, page_count, free_pages, wal_frames, collections = self._stat()
        collections = _kinds(self, collections)
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
                    kind,
                    expired,
                )
                for name, kind, docs, size, indexes, expired in collections
            ),
            commit_seq,
            mine + others,
            min(oldests) if oldests else None,
            max(ages) if ages else None,
            others,
            other_marks,
            other_oldest,
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


def _handle(handle: object) -> Db:
    """An attached database's handle (the native registry holds it untyped)."""
    assert isinstance(handle, Db)
    return handle


def _kinds(db: Db, collections: list[Any]) -> list[Any]:
    """The stat rows with the collections of blob stores and columns named for what they
    are: a blob store's headers ``"blobs"``, its chunks ``"blob chunks"``; a column's
    ``"column <dtype>"``."""
    names = {row[0] for row in collections}
    chunks = {_obj._blob_chunks_of(name): name for name in names}
    out = []
    for name, kind, *rest in collections:
        if _obj._blob_chunks_of(name) in names:
            kind = "blobs"
        elif name in chunks:
            kind = "blob chunks"
        elif kind == "keyed":
            try:
                header = db._column_handle(name).header()
            except ObjError:
                header = None
            if header is not None:
                kind = f"column {header[0]}"
        out.append((name, kind, *rest))
    return out
