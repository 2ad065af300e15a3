"""obj: an embedded document database with a Rust storage engine.

One database is one file plus its write-ahead log (``<path>-wal``). Documents live in named
collections under integer ids that start at 1. They are typed dataclasses, dicts, or byte
strings you encode yourself::

    from dataclasses import dataclass
    from typing import Annotated
    import obj

    @obj.document(collection="orders", version=1)
    @dataclass
    class Order:
        email: Annotated[str, obj.Unique]
        region: Annotated[str, obj.Index]
        total: float

    with obj.Db("app.obj") as db:
        oid = db.insert(Order(email="a@b.com", region="eu", total=9.5))
        assert db.get(Order, oid).total == 9.5
        big = db.query(Order).filter(obj.field("total") > 5).fetch()
        with db.transaction() as tx:          # commits when the block ends cleanly
            tx.insert("events", {"event": "ordered", "order": oid})
            tx.insert("blobs", b"raw bytes")
"""

from typing import TYPE_CHECKING, Any

from ._changes import ChangeFeed, ChangeLogInfo, Retention
from ._db import (
    CheckpointInfo,
    CompactInfo,
    Db,
    DbOptions,
    DocHeader,
    Durability,
    IntegrityReport,
    Locking,
    RawRecord,
    Sync,
)
from ._obj import WAL_HEADER_SIZE, Change, DocumentChange, DocumentIterator, QueryCursor, Vector
from ._obj import __version__ as __version__
from ._txn import Collection, IndexInfo, ReadTransaction, WriteTransaction
from .blobs import BlobInfo, BlobReader, BlobStore, BlobWriter
from .columns import Column
from .document import Composite, Each, Index, Unique, document, is_document
from .errors import (
    BusyError,
    ChangesExpiredError,
    ConditionFailedError,
    CorruptionError,
    DatabaseExistsError,
    DatabaseNotFoundError,
    EncryptionError,
    FeatureUnsupportedError,
    IntegrityError,
    InvalidArgumentError,
    InvalidValueError,
    NotFoundError,
    ObjError,
    ObjIOError,
)
from .query import MAX_SORT_BUFFER, Expr, Field, Query, field
from .stat import CollectionStat, IndexStat, Stat
from .state import DiffEntry, State, StateRecord
from .store import MAX_KEY_LEN, KeyTypeError, Store
from .table import Page, SortKeyCondition, Table, sk

if TYPE_CHECKING:
    from .aio import AsyncDb, AsyncQuery, AsyncTransaction

#: Loaded on first use: asyncio and the thread pool cost more than the rest of `import obj`.
_LAZY = {"AsyncDb": "aio", "AsyncQuery": "aio", "AsyncTransaction": "aio"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'obj' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "MAX_KEY_LEN",
    "MAX_SORT_BUFFER",
    "WAL_HEADER_SIZE",
    "AsyncDb",
    "AsyncQuery",
    "AsyncTransaction",
    "BlobInfo",
    "BlobReader",
    "BlobStore",
    "BlobWriter",
    "BusyError",
    "Change",
    "ChangeFeed",
    "ChangeLogInfo",
    "ChangesExpiredError",
    "CheckpointInfo",
    "Collection",
    "CollectionStat",
    "Column",
    "CompactInfo",
    "Composite",
    "ConditionFailedError",
    "CorruptionError",
    "DatabaseExistsError",
    "DatabaseNotFoundError",
    "Db",
    "DbOptions",
    "DiffEntry",
    "DocHeader",
    "DocumentChange",
    "DocumentIterator",
    "Durability",
    "Each",
    "EncryptionError",
    "Expr",
    "FeatureUnsupportedError",
    "Field",
    "Index",
    "IndexInfo",
    "IndexStat",
    "IntegrityError",
    "IntegrityReport",
    "InvalidArgumentError",
    "InvalidValueError",
    "KeyTypeError",
    "Locking",
    "NotFoundError",
    "ObjError",
    "ObjIOError",
    "Page",
    "Query",
    "QueryCursor",
    "RawRecord",
    "ReadTransaction",
    "Retention",
    "SortKeyCondition",
    "Stat",
    "State",
    "StateRecord",
    "Store",
    "Sync",
    "Table",
    "Unique",
    "Vector",
    "WriteTransaction",
    "__version__",
    "document",
    "field",
    "is_document",
    "sk",
]
