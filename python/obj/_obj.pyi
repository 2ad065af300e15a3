"""Type stubs for the native module ``obj._obj`` (crates/obj-py). Use it through ``obj``."""

from collections.abc import Iterator
from types import TracebackType
from typing import Final, final

__all__ = [
    "WAL_HEADER_SIZE",
    "BusyError",
    "CorruptionError",
    "Db",
    "DocumentIterator",
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

_Value = bytes | bytearray | memoryview

__version__: Final[str]
WAL_HEADER_SIZE: Final[int]

class ObjError(Exception): ...
class NotFoundError(ObjError): ...
class BusyError(ObjError): ...
class CorruptionError(ObjError): ...
class IntegrityError(ObjError): ...
class InvalidArgumentError(ObjError): ...
class EncryptionError(ObjError): ...
class FeatureUnsupportedError(ObjError): ...

@final
class Db:
    def __new__(
        cls,
        path: str,
        *,
        read_only: bool = False,
        busy_timeout: float = 5.0,
        durability: str = "immediate",
        page_size: int = 4096,
        cache_size: int = 67108864,
        checkpoint_frames: int = 1000,
    ) -> Db: ...
    def begin_write(self) -> WriteTransaction: ...
    def begin_read(self) -> ReadTransaction: ...
    def checkpoint(self) -> tuple[int, bool, bool]: ...
    def close(self) -> None: ...
    def close_without_checkpoint(self) -> None: ...
    def wal_frames(self) -> int: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def page_size(self) -> int: ...

@final
class WriteTransaction:
    """The single write transaction of a database (from ``Db.transaction()``).

    Inside ``with``, a clean exit commits and an exception rolls back. Reads see the
    transaction's own uncommitted writes. Any use after it ended raises ``obj.ObjError``.
    """

    def insert(self, collection: str, value: _Value) -> int:
        """Stores ``value`` under a new id and returns the id."""
    def upsert(self, collection: str, id: int, value: _Value) -> bool:
        """Stores ``value`` under ``id``; True if it replaced a document."""
    def delete(self, collection: str, id: int) -> bool:
        """Removes document ``id``; True if it existed."""
    def get(self, collection: str, id: int) -> bytes | None:
        """The document ``id``, or None."""
    def count(self, collection: str) -> int:
        """Number of documents in the collection (0 if it does not exist)."""
    def iter_all(self, collection: str) -> DocumentIterator:
        """Lazy ``(id, bytes)`` pairs in id order."""
    def collections(self) -> list[str]:
        """Names of all collections, sorted."""
    def commit(self) -> None:
        """Makes every change durable and visible; the transaction ends."""
    def rollback(self) -> None:
        """Discards every change; the transaction ends."""
    @property
    def active(self) -> bool:
        """False once the transaction has committed or rolled back."""
    def __enter__(self) -> WriteTransaction: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

@final
class ReadTransaction:
    """A read-only snapshot (from ``Db.read_transaction()``), released when its block ends.

    Any use after that raises ``obj.ObjError``.
    """

    def get(self, collection: str, id: int) -> bytes | None:
        """The document ``id`` as of this snapshot, or None."""
    def count(self, collection: str) -> int:
        """Number of documents in the collection (0 if it does not exist)."""
    def iter_all(self, collection: str) -> DocumentIterator:
        """Lazy ``(id, bytes)`` pairs in id order."""
    def collections(self) -> list[str]:
        """Names of all collections, sorted."""
    def close(self) -> None:
        """Releases the snapshot (idempotent)."""
    @property
    def active(self) -> bool:
        """False once the snapshot has been released."""
    def __enter__(self) -> ReadTransaction: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

@final
class DocumentIterator(Iterator[tuple[int, bytes]]):
    """``(id, bytes)`` pairs of one collection in id order, fetched in bounded batches."""

    def __iter__(self) -> DocumentIterator: ...
    def __next__(self) -> tuple[int, bytes]: ...
