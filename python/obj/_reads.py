"""The reads :class:`obj.Db`, :class:`obj.ReadTransaction` and :class:`obj.WriteTransaction`
share: the native ones (``get``, ``count``, ``all``, ``find_unique``, ``index_range``, ...,
from ``obj._obj.Reads``) and the Python conveniences over them, written once here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, overload

from . import _obj
from .document import doctype_of
from .errors import InvalidArgumentError
from .query import Query

if TYPE_CHECKING:
    from .blobs import BlobStore
    from .columns import Column
    from .store import Normalize, Store
    from .table import Table

__all__ = ["IndexInfo", "Reads"]

D = TypeVar("D")


class IndexInfo(NamedTuple):
    """One secondary index of a collection."""

    #: The field name for a field index, the declared name for a composite.
    name: str
    #: ``"standard"``, ``"unique"``, ``"each"`` or ``"composite"``.
    kind: str
    #: The dotted field paths the index reads, in key order.
    key_paths: list[str]
    #: ``"ready"`` once built (indexes are built in the write transaction that adds them).
    status: str


def _check_target(target: object) -> None:
    if isinstance(target, str):
        return
    doctype_of(target)
    if not isinstance(target, type):
        raise InvalidArgumentError(
            f"pass the document class ({type(target).__name__}), not one of its instances"
        )


class Reads(_obj.Reads):
    """The read surface of a database and of its transactions.

    Reads take an ``@obj.document`` class (they return instances) or a collection name
    (they return what was written). A name in an attached namespace (``"archive.orders"``,
    or a class declared for it) reads the attached database: from a :class:`obj.Db` on a
    snapshot taken for the read, from a transaction on the snapshot of that file it took
    at its first read there.
    """

    __slots__ = ()

    @overload
    def query(self, target: type[D]) -> Query[D]: ...
    @overload
    def query(self, target: str) -> Query[dict[str, Any]]: ...
    def query(self, target: Any) -> Query[Any]:
        """A lazy, immutable query over a document class (instances) or a collection name
        (dicts). From a :class:`obj.Db` it runs on a snapshot taken when results are first
        requested; in a transaction it reads what the transaction sees (a write
        transaction's own writes included)::

            big = db.query(Order).filter(obj.field("total") > 100).limit(10).fetch()
        """
        _check_target(target)
        return Query(self, target)

    def index_info(self, target: type | str) -> list[IndexInfo]:
        """The secondary indexes of a class's (or named) collection: name, kind, key paths
        and status. For a class, indexes it declares are built first if they are missing
        (a read transaction reports what its snapshot holds)."""
        return [
            IndexInfo(name, kind, list(paths), "ready" if ready else "building")
            for name, kind, paths, ready in self.indexes(target)
        ]

    @overload
    def store(
        self,
        name: str,
        *,
        keys: Literal["str"] = "str",
        normalize: Normalize | None = None,
        key_errors: str = "strict",
        values: Literal["pickle"] | None = None,
        buffer: int | None = None,
        autoflush_on_read: bool = True,
    ) -> Store[str, Any]: ...
    @overload
    def store(
        self,
        name: str,
        *,
        keys: Literal["bytes"],
        normalize: Normalize | None = None,
        key_errors: str = "strict",
        values: Literal["pickle"] | None = None,
        buffer: int | None = None,
        autoflush_on_read: bool = True,
    ) -> Store[bytes, Any]: ...
    @overload
    def store(
        self,
        name: str,
        *,
        keys: Literal["str"] = "str",
        normalize: Normalize | None = None,
        key_errors: str = "strict",
        values: type[D],
        buffer: int | None = None,
        autoflush_on_read: bool = True,
    ) -> Store[str, D]: ...
    @overload
    def store(
        self,
        name: str,
        *,
        keys: Literal["bytes"],
        normalize: Normalize | None = None,
        key_errors: str = "strict",
        values: type[D],
        buffer: int | None = None,
        autoflush_on_read: bool = True,
    ) -> Store[bytes, D]: ...
    def store(
        self,
        name: str,
        *,
        keys: Literal["str", "bytes"] = "str",
        normalize: Normalize | None = None,
        key_errors: str = "strict",
        values: Any = None,
        buffer: int | None = None,
        autoflush_on_read: bool = True,
    ) -> Store[Any, Any]:
        """A persistent dict (:class:`obj.Store`) over the keyed collection ``name``,
        created at its first write::

            sessions = db.store("sessions")
            sessions["user:42"] = {"plan": "pro", "seen": datetime.now(timezone.utc)}

        ``keys``: iteration returns ``str`` keys (``"str"``, UTF-8) or ``bytes``
        (``"bytes"``); both accept ``str`` and bytes-like keys. ``normalize`` applies a
        Unicode normal form (``"NFC"``, ``"NFKC"``, ``"NFD"``, ``"NFKD"``) to ``str`` keys,
        so equivalent spellings are one key; ``key_errors`` is the codec error handler for
        encoding and decoding them.

        ``values``: None (the default) stores any value of obj's dict-native model (None,
        bool, int, float, str, bytes, list, dict with str keys, datetime, date, UUID,
        nested) and returns it equal; ``bytes`` stores raw bytes untouched; an
        ``@obj.document`` class stores its instances through the Rust codec.
        ``values="pickle"`` stores any picklable object, and only when asked for by name:
        unpickling runs arbitrary code, so anyone who can write to the file can take over
        the process that reads it (as diskcache's CVE-2025-69872 showed). Nothing is ever
        pickled by default.

        ``buffer=N`` (on a :class:`obj.Db` only) keeps up to N writes in memory and commits
        them as one transaction when full, on :meth:`Store.flush`, on :meth:`Store.close`,
        and on a read when ``autoflush_on_read``; reads always see the buffered writes.
        Without it each write is its own durable transaction; in a transaction
        (``tx.store(name)``) writes belong to the transaction.
        """
        from .store import Store

        return Store(
            self,  # type: ignore[arg-type]
            name,
            keys=keys,
            normalize=normalize,
            key_errors=key_errors,
            values=values,
            buffer=buffer,
            autoflush_on_read=autoflush_on_read,
        )

    @overload
    def blobs(self, name: str, *, keys: Literal["str"] = "str") -> BlobStore[str]: ...
    @overload
    def blobs(self, name: str, *, keys: Literal["bytes"]) -> BlobStore[bytes]: ...
    def blobs(self, name: str, *, keys: Literal["str", "bytes"] = "str") -> BlobStore[Any]:
        """The blob store ``name`` (:class:`obj.BlobStore`): values of any size under keys,
        streamed in and out in chunks, created at its first write::

            media = db.blobs("media")
            media["cover:001"] = png_bytes
            with media.open("video:7", "wb", content_type="video/mp4") as f:
                f.write(chunk)

        Keys follow :class:`obj.Store`'s rules; ``keys`` says what iteration returns.
        """
        from .blobs import BlobStore

        return BlobStore(self, name, keys=keys)  # type: ignore[arg-type]

    def column(self, name: str, dtype: str | None = None) -> Column:
        """The column ``name`` (:class:`obj.Column`), created with ``dtype`` if it does not
        exist (``"i64"``, ``"f64"``, ``"str"``, ``"vec:f32:128"``, ... see
        :mod:`obj.columns`); another dtype for an existing column is
        :class:`obj.InvalidArgumentError`, no dtype for a missing one
        :class:`obj.NotFoundError`::

            temps = db.column("temperatures", "f64")
            temps.extend(readings)
            temps[-10:], temps.to_numpy()
        """
        from .columns import Column

        return Column(self, name, dtype)  # type: ignore[arg-type]

    def table(self, name: str, indexes: Iterable[str | Sequence[str]] | None = None) -> Table:
        """The table ``name`` (:class:`obj.Table`): items addressed by a partition key and
        an optional sort key, created at its first write::

            users = db.table("users")
            users.put("org#acme", {"name": "Ada"}, sk="user#1")
            page = users.query("org#acme", sk=obj.sk.begins_with("user#"))

        From a transaction, the table reads and writes inside it and sees its own writes.

        ``indexes`` lists secondary indexes on item attributes, each a field name or a
        tuple of names (a composite index): missing ones are built (from the items there
        now; in the transaction, from a transaction) and every write keeps them, queried
        with :meth:`Table.query_index`.
        """
        from .table import Table

        return Table(self, name, indexes)
