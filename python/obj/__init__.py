"""obj: an embedded document database with a Rust storage engine.

One database is one file plus its write-ahead log (``<path>-wal``). Documents are byte
strings stored in named collections under integer ids that start at 1::

    import obj

    with obj.Db("app.obj") as db:
        with db.transaction() as tx:          # commits when the block ends cleanly
            order_id = tx.insert("orders", b'{"total": 9.5}')
        with db.read_transaction() as tx:     # a consistent snapshot
            assert tx.get("orders", order_id) == b'{"total": 9.5}'
            for doc_id, payload in tx.iter_all("orders"):
                ...
"""

from ._db import CheckpointInfo, Db, Durability
from ._obj import WAL_HEADER_SIZE, DocumentIterator, ReadTransaction, WriteTransaction
from ._obj import __version__ as __version__
from .errors import (
    BusyError,
    CorruptionError,
    EncryptionError,
    FeatureUnsupportedError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    ObjError,
)

__all__ = [
    "WAL_HEADER_SIZE",
    "BusyError",
    "CheckpointInfo",
    "CorruptionError",
    "Db",
    "DocumentIterator",
    "Durability",
    "EncryptionError",
    "FeatureUnsupportedError",
    "IntegrityError",
    "InvalidArgumentError",
    "NotFoundError",
    "ObjError",
    "ReadTransaction",
    "WriteTransaction",
    "__version__",
]
