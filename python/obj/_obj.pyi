"""Type stubs for the native module ``obj._obj`` (crates/obj-py). Use it through ``obj``.

Methods dispatch on their first argument: an ``@obj.document`` class (or, for ``insert``,
an instance) for typed documents, or a collection name (``str``). Reads by name return
what was written: ``bytes`` for raw records, a dict for dict-native records and for typed
records (decoded by their stored schema), hence ``Any`` in those overloads.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, Generic, Literal, Protocol, TypedDict, TypeVar, final, overload

from typing_extensions import Self, disjoint_base

__all__ = [
    "MAX_KEY_LEN",
    "WAL_HEADER_SIZE",
    "BlobHandle",
    "BlobWriter",
    "BusyError",
    "Change",
    "ChangesExpiredError",
    "ColumnHandle",
    "ConditionFailedError",
    "CorruptionError",
    "DatabaseExistsError",
    "DatabaseNotFoundError",
    "Db",
    "DocType",
    "DocumentChange",
    "DocumentIterator",
    "EncryptionError",
    "FeatureUnsupportedError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidValueError",
    "KeyIterator",
    "KeyedHandle",
    "NotFoundError",
    "ObjError",
    "ObjIOError",
    "QueryCursor",
    "ReadTransaction",
    "Reads",
    "TableHandle",
    "Vector",
    "WriteTransaction",
    "__version__",
    "_after_fork_anywhere",
    "_before_fork",
    "_blob_chunks_of",
    "_defaults",
    "_set_clock",
    "sort_key",
]

_D = TypeVar("_D")
_D_co = TypeVar("_D_co", covariant=True)

_Value = bytes | bytearray | memoryview
_Writable = _Value | dict[str, Any]
_Target = type | str
_Node = tuple[Any, ...]
_IndexRow = tuple[str, str, list[str], bool]

__version__: Final[str]
WAL_HEADER_SIZE: Final[int]
MAX_KEY_LEN: Final[int]

class ObjError(Exception): ...
class NotFoundError(ObjError): ...
class BusyError(ObjError): ...
class CorruptionError(ObjError): ...
class IntegrityError(ObjError): ...
class InvalidArgumentError(ObjError): ...
class EncryptionError(ObjError): ...
class FeatureUnsupportedError(ObjError): ...
class ObjIOError(ObjError, OSError): ...
class ConditionFailedError(ObjError): ...
class DatabaseExistsError(InvalidArgumentError, FileExistsError): ...
class DatabaseNotFoundError(NotFoundError, FileNotFoundError): ...
class InvalidValueError(InvalidArgumentError, ValueError): ...

class ChangesExpiredError(ObjError):
    oldest: int

class _Defaults(TypedDict):
    read_only: bool
    busy_timeout: float
    durability: Literal["immediate", "eventual", "none"]
    page_size: int
    cache_size: int
    checkpoint_frames: int
    locking: Literal["shared", "exclusive"]

def _set_clock(seconds: float | None, /) -> None:
    """Sets the clock expiry checks read (None: the system time); for tests."""

def _before_fork() -> None:
    """Right before fork(): the engine's background thread holds none of its locks."""

def _after_fork_anywhere() -> None:
    """Right after fork(), in the parent and the child."""

def _defaults() -> _Defaults:
    """The defaults of the options of ``Db`` (the engine's)."""

@disjoint_base
class Reads:
    """The reads of ``Db``, ``ReadTransaction`` and ``WriteTransaction``.

    A name in an attached namespace (``"archive.orders"``, or a class declared for it)
    reads the database attached under it.
    """

    @overload
    def get(self, target: type[_D], id: int, /) -> _D | None:
        """The document ``id``, or None."""
    @overload
    def get(self, target: str, id: int, /) -> Any | None: ...
    def get_raw(self, collection: str, id: int, /) -> bytes | None: ...
    def count(self, target: _Target, /) -> int:
        """Number of documents in the collection (0 if it does not exist)."""
    @overload
    def all(self, target: type[_D], /) -> DocumentIterator[_D]:
        """Lazy ``(id, document)`` pairs in id order."""
    @overload
    def all(self, target: str, /) -> DocumentIterator[Any]: ...
    @overload
    def iter_all(self, target: type[_D], /) -> DocumentIterator[_D]:
        """Lazy ``(id, document)`` pairs in id order."""
    @overload
    def iter_all(self, target: str, /) -> DocumentIterator[Any]: ...
    @overload
    def find_unique(self, target: type[_D], index: str, value: object, /) -> _D | None: ...
    @overload
    def find_unique(self, target: str, index: str, value: object, /) -> Any | None: ...
    @overload
    def index_range(
        self, target: type[_D], index: str, /, lo: object = None, hi: object = None
    ) -> QueryCursor[_D]: ...
    @overload
    def index_range(
        self, target: str, index: str, /, lo: object = None, hi: object = None
    ) -> QueryCursor[Any]: ...
    def _query_cursor(
        self,
        target: _Target,
        node: _Node | None,
        index_range: tuple[str, Any, Any] | None,
        sort_field: str | None,
        reverse: bool,
        decode: bool,
        /,
    ) -> QueryCursor[Any]: ...
    def indexes(self, target: _Target, /) -> list[_IndexRow]: ...
    def collections(self) -> list[str]:
        """Names of all collections, sorted."""
    def _key_kind(self, collection: str, /) -> str | None: ...
    def _key_handle(
        self, target: _Target, raw: bool, key_type_error: type[Exception], key_errors: str, /
    ) -> KeyedHandle: ...
    def _blob_handle(self, store: str, /) -> BlobHandle: ...
    def _column_handle(self, name: str, /) -> ColumnHandle: ...

@disjoint_base
class Db(Reads):
    def __new__(
        cls,
        path: str,
        *,
        read_only: bool,
        busy_timeout: float,
        durability: str,
        page_size: int,
        cache_size: int,
        checkpoint_frames: int,
        sync: str | None,
        compression: str | None,
        encryption_key: bytes | str | None,
        locking: str,
        mode: Literal["open_or_create", "create", "open"] = "open_or_create",
    ) -> Self: ...
    @overload
    def insert(self, document: str, value: _Writable, /) -> int:
        """Stores bytes or a dict under a new id of the named collection."""
    @overload
    def insert(self, document: object, value: None = None, /) -> int:
        """Stores an ``@obj.document`` instance under a new id."""
    @overload
    def insert_many(self, documents: str, values: Iterable[_Writable], /) -> list[int]:
        """Stores bytes or dicts under new ids of the named collection, in order."""
    @overload
    def insert_many(self, documents: Iterable[object], values: None = None, /) -> list[int]:
        """Stores ``@obj.document`` instances under new ids, in order (one call)."""
    @overload
    def upsert(self, target: type[_D], id: int, value: _D, /) -> bool: ...
    @overload
    def upsert(self, target: str, id: int, value: _Writable, /) -> bool: ...
    def delete(self, target: _Target, id: int, /) -> bool: ...
    def _dump_raw(
        self, target: _Target, max_records: int, /
    ) -> list[tuple[int, Literal["raw", "value", "typed"], int, int, int, bytes]]: ...
    def _dump_raw_keys(
        self, target: _Target, max_records: int, /
    ) -> list[tuple[bytes, Literal["raw", "value", "typed"], int, int, int, bytes]]: ...
    def _attach(self, namespace: str, handle: Db, /) -> bool:
        """Attaches ``handle`` (opened read-only) under ``namespace``; False if taken."""
    def _detach(self, namespace: str, /) -> Db | None:
        """Forgets the database attached under ``namespace``; its handle."""
    def _detach_all(self) -> list[Db]: ...
    def _attachments(self) -> list[tuple[str, Db]]: ...
    def migrate(self, target: type, /) -> int:
        """Rewrites the documents of the class's collection stored at older versions
        through its ``migrate`` classmethod; returns how many were rewritten."""
    def _readers(
        self,
    ) -> tuple[int, int, int | None, float | None, int, int, int | None, float | None]: ...
    def _stat(
        self,
    ) -> tuple[
        int,
        int,
        int,
        int,
        list[
            tuple[
                str,
                Literal["id", "keyed"],
                int,
                int,
                list[tuple[str, str, list[str], str, int]],
                int,
            ]
        ],
    ]: ...
    def checkpoint(self) -> tuple[int, bool, bool]: ...
    def flush(self) -> None: ...
    def _after_fork(self) -> None:
        """In a child after fork(): the handle is the parent's; every later call refuses."""
    def backup(self, dest: str, overwrite: bool = False) -> int: ...
    def compact(self) -> tuple[int, int, int, bool]: ...
    def integrity_check(self) -> tuple[int, int]: ...
    def close(self) -> None: ...
    def close_without_checkpoint(self) -> None: ...
    def wal_frames(self) -> int: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def page_size(self) -> int: ...
    def _schemas(self, target: _Target, /) -> list[tuple[int, dict[str, Any]]]:
        """``(version, schema)`` of every stored schema, the schema as plain data."""
    def _set_changes(
        self, images: str | None, max_records: int | None = None, max_age_micros: int | None = None
    ) -> bool:
        """Turns the change log on, changes its settings or (None) turns it off."""
    def _change_log(self) -> tuple[str, int | None, int | None, int, int] | None:
        """``(images, max_records, max_age_micros, oldest, next_seq)``, or None."""
    def _changes(
        self, since: int, until: int | None, collections: list[str] | None, max_entries: int
    ) -> tuple[list[Change], int, bool, int]:
        """One batch of records after ``since``: ``(changes, through, done, commit)``."""
    def _wait_commit(self, after: int, timeout: float | None) -> int:
        """Waits for a commit after number ``after``; the latest commit number."""
    def _apply_changes(self, records: Iterator[Change | bytes]) -> int:
        """Applies change records, each in a commit of its own; how many were applied."""
    def _revert(self, seq: int) -> int:
        """Undoes record ``seq`` in a commit of its own; the new record's seq."""
    def _context_key(self) -> int:
        """The key ``db.context`` files this handle's metadata under."""
    def _records(
        self, target: _Target, /
    ) -> DocumentIterator[tuple[Literal["raw", "value", "typed"], int, Any]]:
        """``(id, (kind, type_version, document))`` of every record, read by name."""
    def _key_records(self, target: _Target, /) -> KeyIterator:
        """``(key, (kind, type_version, document))`` of every record of a keyed
        collection, in key order, read by name."""

@disjoint_base
class WriteTransaction(Reads):
    """The single write transaction of a database (from ``Db.transaction()``).

    Inside ``with``, a clean exit commits and an exception rolls back. Reads see the
    transaction's own uncommitted writes. Any use after it ended raises ``obj.ObjError``.
    """

    def __new__(cls, db: Db) -> Self: ...
    @overload
    def insert(self, document: str, value: _Writable, /) -> int:
        """Stores bytes or a dict under a new id of the named collection."""
    @overload
    def insert(self, document: object, value: None = None, /) -> int:
        """Stores an ``@obj.document`` instance under a new id."""
    @overload
    def insert_many(self, documents: str, values: Iterable[_Writable], /) -> list[int]:
        """Stores bytes or dicts under new ids of the named collection, in order."""
    @overload
    def insert_many(self, documents: Iterable[object], values: None = None, /) -> list[int]:
        """Stores ``@obj.document`` instances under new ids, in order (one call)."""
    @overload
    def upsert(self, target: type[_D], id: int, value: _D, /) -> bool:
        """Stores a document under ``id``; True if it replaced one."""
    @overload
    def upsert(self, target: str, id: int, value: _Writable, /) -> bool: ...
    def delete(self, target: _Target, id: int, /) -> bool:
        """Removes document ``id``; True if it existed."""
    def commit(self) -> None:
        """Makes every change durable and visible; the transaction ends."""
    def rollback(self) -> None:
        """Discards every change; the transaction ends."""
    @property
    def active(self) -> bool:
        """False once the transaction has committed or rolled back."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
    def _set_context(
        self, action: str | None = None, user: str | None = None, meta: dict[str, Any] | None = None
    ) -> None:
        """Who makes this commit and why, as its change record says."""
    def _register_schema(self, collection: str, schema: dict[str, Any], /) -> int:
        """Stores a schema given as ``Db._schemas`` gives it (or checks it); its version."""
    def _write_typed(
        self, collection: str, id: int | None, version: int, doc: dict[str, Any], /
    ) -> int:
        """Encodes ``doc`` by the stored schema of ``version`` and stores it; the id."""
    def _write_typed_key(
        self, collection: str, key: bytes, version: int, doc: dict[str, Any], /
    ) -> None:
        """As ``_write_typed``, under ``key`` of a keyed collection."""

@disjoint_base
class ReadTransaction(Reads):
    """A read-only snapshot (from ``Db.read_transaction()``), released when its block ends.

    Any use after that raises ``obj.ObjError``.
    """

    def __new__(cls, db: Db) -> Self: ...
    def close(self) -> None:
        """Releases the snapshot (idempotent)."""
    @property
    def active(self) -> bool:
        """False once the snapshot has been released."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

@final
class Vector:
    """A read-only sequence of float32 values (an embedding) with the buffer protocol:
    ``numpy.asarray(v)`` and ``memoryview(v)`` share its memory. A stored
    ``array.array('f')``, one-dimensional ``numpy.float32`` array or ``Vector`` reads back
    as one; it equals a sequence of the same float32 values."""

    def __new__(cls, values: Iterable[float] | None = None, /) -> Self: ...
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: int, /) -> float: ...
    @overload
    def __getitem__(self, index: slice, /) -> Vector: ...
    def __iter__(self) -> Iterator[float]: ...
    def __contains__(self, value: object, /) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]
    def tolist(self) -> list[float]: ...
    def tobytes(self) -> bytes:
        """The floats as little-endian float32 bytes (how they are stored)."""
    def __reduce__(self) -> tuple[type[Vector], tuple[list[float]]]: ...

_KeyPart = str | bytes | int
_Key = tuple[_KeyPart, _KeyPart | None]
_Item = dict[str, Any]

class _Expr(Protocol):
    """An ``obj.Expr`` (a filter node under ``node``)."""

    @property
    def node(self) -> tuple[Any, ...]: ...

@disjoint_base
class TableHandle:
    """A table's binding to its keyed collection (``obj.Table`` extends it)."""

    def __new__(cls, owner: Reads, name: str, /) -> Self: ...
    @property
    def name(self) -> str:
        """The name of the table's collection."""
    def put(
        self,
        pk: _KeyPart,
        item: Mapping[str, Any],
        *,
        sk: _KeyPart | None = None,
        condition: _Expr | None = None,
        ttl: float | timedelta | datetime | None = None,
    ) -> None:
        """Stores ``item`` under ``pk`` (and ``sk``), replacing any item there."""
    def get(self, pk: _KeyPart, *, sk: _KeyPart | None = None) -> _Item | None:
        """The item under ``pk`` (and ``sk``), or None."""
    def delete(
        self, pk: _KeyPart, *, sk: _KeyPart | None = None, condition: _Expr | None = None
    ) -> bool:
        """Removes the item under ``pk`` (and ``sk``); True if there was one."""
    def _update(
        self,
        pk: _KeyPart,
        sk: _KeyPart | None,
        set: dict[str, Any] | None,
        remove: list[str] | None,
        add: dict[str, Any] | None,
        condition: _Expr | None,
        /,
    ) -> _Item: ...
    def _query(
        self,
        pk: _KeyPart,
        sk: _Node | None,
        filter: _Expr | None,
        reverse: bool,
        limit: int | None,
        start_after: object,
        /,
    ) -> tuple[list[_Item], _Key | None]: ...
    def _scan(
        self, filter: _Expr | None, limit: int | None, start_after: object, /
    ) -> tuple[list[_Item], _Key | None]: ...
    def _count(self, pk: _KeyPart | None, /) -> int: ...
    def _batch_get(self, keys: Iterable[object], /) -> list[_Item | None]: ...
    def _batch_write(
        self,
        puts: Iterable[object],
        deletes: Iterable[object],
        ttl: float | timedelta | datetime | None,
        /,
    ) -> None: ...
    def _ensure_indexes(self, indexes: list[list[str]], /) -> None: ...
    def _query_index(
        self,
        index: str,
        cond: _Node | None,
        filter: _Expr | None,
        reverse: bool,
        limit: int | None,
        start_after: bytes | None,
        /,
    ) -> tuple[list[_Item], bytes | None]: ...

#: ``(id, size, sha256, content_type, meta, created_micros, chunk_size)`` of a blob.
_BlobHeader = tuple[int, int, bytes, str | None, dict[str, Any] | None, int, int]

@final
class BlobHandle:
    """One blob store of a database or transaction (see ``python/obj/blobs.py``)."""

    def info(self, key: bytes) -> _BlobHeader | None: ...
    def chunk(self, id: int, size: int, chunk_size: int, index: int) -> bytes: ...
    def put(
        self,
        key: bytes,
        data: bytes | bytearray | memoryview,
        content_type: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> _BlobHeader: ...
    def delete(self, key: bytes) -> bool: ...
    def writer(
        self, key: bytes, content_type: str | None = None, meta: dict[str, Any] | None = None
    ) -> BlobWriter: ...

@final
class ColumnHandle:
    """One column of a database or transaction (see ``python/obj/columns.py``)."""

    def header(self) -> tuple[str, int] | None: ...
    def ensure(self, dtype: str) -> int: ...
    def __len__(self) -> int: ...
    def range(self, a: int, b: int) -> list[Any]: ...
    def packed(self, a: int, b: int) -> bytes: ...
    def extend(self, values: Any, packed: bool = False) -> int: ...
    def set(self, a: int, values: Any) -> None: ...
    def insert(self, at: int, values: Any) -> None: ...
    def delete(self, a: int, b: int) -> None: ...
    def truncate(self, len: int) -> None: ...

@final
class BlobWriter:
    """A blob being streamed into a write transaction."""

    def write(self, data: bytes | bytearray | memoryview) -> int: ...
    @property
    def size(self) -> int: ...
    def finish(self) -> _BlobHeader: ...
    def abort(self) -> None: ...

@final
class KeyedHandle:
    def key(self, key: object) -> bytes: ...
    @staticmethod
    def prefix_end(prefix: bytes) -> bytes | None: ...
    def check(self, value: object) -> None: ...
    def set(self, key: object, value: object) -> None: ...
    def delete(self, key: object) -> bool: ...
    def write_many(self, pairs: Iterable[tuple[object, object]], tombstone: object) -> None: ...
    def get(self, key: object, default: Any) -> Any: ...
    def count(self) -> int: ...
    def iter(
        self,
        lo: bytes | None,
        lo_inclusive: bool,
        hi: bytes | None,
        hi_inclusive: bool,
        reverse: bool,
        values: bool,
        str_keys: bool,
    ) -> KeyIterator: ...

@final
class KeyIterator(Iterator[Any]):
    def __iter__(self) -> KeyIterator: ...
    def __next__(self) -> Any: ...

@final
class DocumentIterator(Iterator[tuple[int, _D_co]], Generic[_D_co]):
    """``(id, document)`` pairs of one collection in id order, fetched in bounded batches."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> tuple[int, _D_co]: ...

@final
class QueryCursor(Iterator[tuple[int, _D_co]], Generic[_D_co]):
    """Matching ``(id, document)`` pairs of a query or index range, fetched in batches."""

    def next_batch(self, n: int) -> list[tuple[Any, ...]]:
        """``(id, document)`` pairs, or ``(id, document, sort_key)`` when the query sorts
        by a field that its plan does not read in order."""
    def count(self) -> int: ...
    def explain(self) -> str: ...
    @property
    def sorted_by_index(self) -> bool: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> tuple[int, _D_co]: ...

@final
class DocType:
    """The compiled codec of one ``@obj.document`` class (see ``obj.document``)."""

    def __new__(
        cls,
        collection: str,
        version: int,
        description: tuple[Any, ...],
        indexes: list[tuple[str, str, list[str]]],
        history: list[DocType],
        migrate: Callable[..., Any] | None,
        migrations: list[tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]] | None = None,
    ) -> Self: ...
    @property
    def collection(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def cls(self) -> type: ...
    @property
    def owner(self) -> type | None: ...
    def _bind(self, cls: type) -> None: ...
    @property
    def indexes(self) -> list[tuple[str, str, list[str]]]: ...
    @property
    def schema_bytes(self) -> bytes: ...
    def describe(self) -> str: ...
    def check_path(self, path: str, what: str) -> None: ...
    def difference(self, other: DocType) -> str | None: ...
    def encode(self, obj: object) -> bytes: ...
    def decode(self, version: int, payload: bytes) -> Any: ...
    def _payload_to_value(self, payload: bytes) -> dict[str, Any]:
        """A payload of this version as the dict a read by collection name returns."""

@final
class Change:
    """One commit's change record (see ``obj.Db.changes``)."""

    @property
    def seq(self) -> int: ...
    @property
    def time(self) -> datetime: ...
    @property
    def action(self) -> str | None: ...
    @property
    def user(self) -> str | None: ...
    @property
    def meta(self) -> dict[str, Any] | None: ...
    @property
    def changes(self) -> list[DocumentChange]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> Change: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[DocumentChange]: ...

@final
class DocumentChange:
    """One changed document of a change record: also ``collection, key, op, old, new``."""

    @property
    def collection(self) -> str: ...
    @property
    def key(self) -> int | bytes: ...
    @property
    def id(self) -> int | None: ...
    @property
    def table_key(self) -> tuple[Any, Any]: ...
    @property
    def op(self) -> Literal["insert", "update", "delete"]: ...
    @property
    def old(self) -> Any: ...
    @property
    def new(self) -> Any: ...
    def _image(self, new: bool) -> tuple[str, int, bytes] | None:
        """``(kind, type_version, payload)`` of the old or new image, or None."""
    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...

def _blob_chunks_of(store: str) -> str:
    """The collection holding the chunks of blob store ``store``."""

def sort_key(value: object, /) -> bytes:
    """The bytes a query orders ``value`` by (the order of index keys)."""
