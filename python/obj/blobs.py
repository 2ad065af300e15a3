"""``obj.BlobStore``: values of any size under keys, streamed in and out in chunks.

``db.blobs("media")`` is a ``MutableMapping`` of keys to ``bytes`` (the key rules of
:class:`obj.Store`) that also streams: ``open(key, "wb")`` is a writable binary file whose
blob appears atomically when it closes cleanly, ``open(key)`` a seekable readable one that
reads the chunks it needs on the snapshot it opened. Each blob keeps its size, a SHA-256
of its content (computed as it streams in), an optional content type and a dict of user
metadata (:meth:`BlobStore.stat`). The chunking, hashing and storage are the engine's
(``crates/obj-core/src/blob.rs``); this module is the Python face::

    media = db.blobs("media")
    media["cover:001"] = png_bytes
    with media.open("video:7", "wb", content_type="video/mp4") as f:
        for chunk in source:
            f.write(chunk)
    with media.open("video:7") as f:
        f.seek(1 << 20)
        header = f.read(4096)
    media.stat("video:7").sha256

A store of a :class:`obj.Db` writes each change in a transaction of its own (a stream
holds the database's writer until it closes); one of a write transaction writes into it
and sees its own writes; one of a read transaction reads its snapshot.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import os
import shutil
from collections.abc import Iterator, MutableMapping
from typing import IO, TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar, Union

from ._handles import Given, Own
from .errors import InvalidArgumentError, ObjError
from .store import Store

if TYPE_CHECKING:
    from ._db import Db
    from ._txn import ReadTransaction, WriteTransaction

__all__ = ["BlobInfo", "BlobReader", "BlobStore", "BlobWriter"]

K = TypeVar("K", str, bytes)

#: Where a blob store reads and writes: a database or one of its transactions.
_Owner = Union["Db", "WriteTransaction", "ReadTransaction"]

#: Bytes copied per step by put_file / get_to_file.
_COPY = 1 << 20

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class BlobInfo(NamedTuple):
    """What :meth:`BlobStore.stat` says of a blob (read from its header, not its data)."""

    key: Any
    size: int
    #: SHA-256 of the content, hex.
    sha256: str
    content_type: str | None
    meta: dict[str, Any] | None
    #: When the blob was written (UTC).
    created: _dt.datetime


def _info(key: Any, t: tuple[Any, ...]) -> BlobInfo:
    _id, size, sha, content_type, meta, micros, _chunk = t
    created = _EPOCH + _dt.timedelta(microseconds=micros)
    return BlobInfo(key, size, sha.hex(), content_type, meta, created)


def _data(value: object) -> bytes | bytearray | memoryview:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return value
    try:
        return memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgumentError(
            f"a blob's value must be bytes-like (bytes, bytearray, memoryview), got "
            f"{type(value).__name__}"
        ) from None


class BlobStore(MutableMapping[K, bytes], Generic[K]):
    """A blob store of a database or transaction (see the module docstring). ``len()`` is
    O(1), iteration runs in key order over one snapshot, ``in`` reads only the header."""

    def __init__(self, owner: _Owner, name: str, *, keys: Literal["str", "bytes"] = "str") -> None:
        from ._obj import Db as _NativeDb

        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"blob store name must be a non-empty str, got {name!r}")
        self._owner: Any = owner
        self._name = name
        self._h = self._owner._blob_handle(name)
        self._headers: Store[Any, Any] = Store(owner, name, keys=keys)  # type: ignore[arg-type]
        self._is_db = isinstance(owner, _NativeDb)

    @property
    def name(self) -> str:
        return self._name

    def _key(self, key: object) -> bytes:
        return self._headers._key(key)

    # -- where reads and writes go ----------------------------------------------------------

    def _reading(self) -> Any:
        """A context giving the blob handle to read on one snapshot."""
        if self._is_db:
            name = self._name
            return Own(self._owner.read_transaction, lambda tx: tx._blob_handle(name))
        return Given(self._h)

    def _writing(self) -> Any:
        """A context giving the blob handle to write with: a transaction of its own for a
        database, the owner's for a transaction."""
        if self._is_db:
            name = self._name
            return Own(self._owner.transaction, lambda tx: tx._blob_handle(name))
        if not hasattr(self._owner, "commit"):
            raise ObjError("a blob store of a read transaction cannot write")
        return Given(self._h)

    # -- whole values -----------------------------------------------------------------------

    def __getitem__(self, key: K) -> bytes:
        raw = self._key(key)
        with self._reading() as h:
            t = h.info(raw)
            if t is None:
                raise KeyError(key)
            return b"".join(_chunks(h, t))

    def __setitem__(self, key: K, value: bytes) -> None:
        self.put(key, value)

    def put(
        self,
        key: K,
        value: bytes | bytearray | memoryview,
        *,
        content_type: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> BlobInfo:
        """Stores ``value`` under ``key`` (replacing any blob there) with its metadata."""
        raw = self._key(key)
        data = _data(value)
        _check_meta(content_type, meta)
        with self._writing() as h:
            return _info(key, h.put(raw, data, content_type, meta))

    def __delitem__(self, key: K) -> None:
        raw = self._key(key)
        with self._writing() as h:
            if not h.delete(raw):
                raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self._headers.__contains__(key)

    def __len__(self) -> int:
        return len(self._headers)

    def __iter__(self) -> Iterator[K]:
        return iter(self._headers)

    def __repr__(self) -> str:
        return f"<obj.BlobStore {self._name!r}>"

    # -- metadata ---------------------------------------------------------------------------

    def stat(self, key: K) -> BlobInfo:
        """Size, SHA-256, content type, metadata and creation time of the blob under
        ``key`` (KeyError when there is none), without reading its data."""
        raw = self._key(key)
        with self._reading() as h:
            t = h.info(raw)
        if t is None:
            raise KeyError(key)
        return _info(key, t)

    def size(self, key: K) -> int:
        """The blob's length in bytes, without reading its data."""
        return self.stat(key).size

    # -- streams ----------------------------------------------------------------------------

    def open(
        self,
        key: K,
        mode: str = "rb",
        *,
        content_type: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Any:
        """``"rb"``: a :class:`BlobReader` on the blob (KeyError when there is none);
        ``"wb"``: a :class:`BlobWriter` whose blob replaces ``key`` when it closes cleanly
        (an exception in its ``with`` block, or :meth:`BlobWriter.abort`, stores nothing)."""
        raw = self._key(key)
        if mode in ("rb", "r"):
            if content_type is not None or meta is not None:
                raise InvalidArgumentError("content_type and meta are for mode 'wb'")
            return BlobReader(self, key, raw)
        if mode in ("wb", "w"):
            _check_meta(content_type, meta)
            return BlobWriter(self, key, raw, content_type, meta)
        raise InvalidArgumentError(f"mode must be 'rb' or 'wb', got {mode!r}")

    def put_file(
        self,
        key: K,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        content_type: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Streams a file (a path or a binary file object) in as the blob under ``key``;
        returns its size."""
        with self.open(key, "wb", content_type=content_type, meta=meta) as out:
            if isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as f:
                    shutil.copyfileobj(f, out, _COPY)
            else:
                shutil.copyfileobj(source, out, _COPY)
            return int(out.tell())

    def get_to_file(self, key: K, target: str | os.PathLike[str] | IO[bytes]) -> int:
        """Streams the blob under ``key`` out to a path or binary file object; returns its
        size."""
        with self.open(key) as src:
            if isinstance(target, (str, os.PathLike)):
                with open(target, "wb") as f:
                    shutil.copyfileobj(src, f, _COPY)
            else:
                shutil.copyfileobj(src, target, _COPY)
            return int(src.size)


def _check_meta(content_type: object, meta: object) -> None:
    if content_type is not None and not isinstance(content_type, str):
        raise InvalidArgumentError(
            f"content_type must be a str or None, got {type(content_type).__name__}"
        )
    if meta is not None and not isinstance(meta, dict):
        raise InvalidArgumentError(f"meta must be a dict or None, got {type(meta).__name__}")


def _chunks(h: Any, t: tuple[Any, ...]) -> Iterator[bytes]:
    blob_id, size, _sha, _ct, _meta, _micros, chunk = t
    for i in range(-(-size // chunk)):
        yield h.chunk(blob_id, size, chunk, i)


class BlobReader(io.RawIOBase):
    """A readable, seekable binary file over one blob, on the snapshot taken when it was
    opened: it reads the chunks it needs as it goes (one chunk in memory at a time), and a
    writer replacing or deleting the blob meanwhile changes nothing it reads."""

    def __init__(self, store: BlobStore[Any], key: Any, raw: bytes) -> None:
        super().__init__()
        self._ctx = store._reading()
        self._h = self._ctx.__enter__()
        try:
            t = self._h.info(raw)
        except BaseException:
            self._ctx.__exit__(None, None, None)
            raise
        if t is None:
            self._ctx.__exit__(None, None, None)
            raise KeyError(key)
        self._t = t
        self._info = _info(key, t)
        self._id: int = t[0]
        self._size: int = t[1]
        self._chunk: int = t[6]
        self._pos = 0
        self._cached = -1
        self._data = b""
        self.name = key

    @property
    def size(self) -> int:
        return self._size

    @property
    def info(self) -> BlobInfo:
        return self._info

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check()
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._size + offset
        else:
            raise InvalidArgumentError(f"whence must be 0, 1 or 2, got {whence!r}")
        if pos < 0:
            raise InvalidArgumentError(f"cannot seek to a negative position ({pos})")
        self._pos = pos
        return pos

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed blob reader")

    def _chunk_at(self, index: int) -> bytes:
        if index != self._cached:
            self._data = self._h.chunk(self._id, self._size, self._chunk, index)
            self._cached = index
        return self._data

    def read(self, size: int | None = -1) -> bytes:
        self._check()
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        parts = []
        while self._pos < end:
            index, at = divmod(self._pos, self._chunk)
            data = self._chunk_at(index)
            take = min(len(data) - at, end - self._pos)
            parts.append(data[at : at + take] if (at or take < len(data)) else data)
            self._pos += take
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        self._check()
        limit = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        parts = []
        while self._pos < limit:
            index, at = divmod(self._pos, self._chunk)
            data = self._chunk_at(index)
            stop = min(len(data), at + (limit - self._pos))
            nl = data.find(b"\n", at, stop)
            end = stop if nl < 0 else nl + 1
            parts.append(data[at:end])
            self._pos += end - at
            if nl >= 0:
                break
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._data = b""
            self._ctx.__exit__(None, None, None)
        super().close()

    def __repr__(self) -> str:
        return f"<obj.BlobReader {self.name!r} size={self._size}>"


class BlobWriter(io.RawIOBase):
    """A writable binary file that streams one blob into the database. The blob replaces
    ``key`` when the writer closes cleanly (``close()``, or the end of its ``with`` block
    without an exception); :meth:`abort`, an exception in the block, or a writer dropped
    without closing stores nothing. A writer of a :class:`obj.Db` store holds the
    database's writer until then."""

    def __init__(
        self,
        store: BlobStore[Any],
        key: Any,
        raw: bytes,
        content_type: str | None,
        meta: dict[str, Any] | None,
    ) -> None:
        super().__init__()
        self._ctx = store._writing()
        h = self._ctx.__enter__()
        try:
            self._w = h.writer(raw, content_type, meta)
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        self._done = False
        self.name = key
        self.info: BlobInfo | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed blob writer")
        return int(self._w.write(data))

    def tell(self) -> int:
        if self.closed:
            raise ValueError("I/O operation on a closed blob writer")
        return int(self._w.size)

    def abort(self) -> None:
        """Discards the blob; nothing is stored. The writer closes."""
        if self._done:
            return
        self._done = True
        try:
            self._w.abort()
        finally:
            error = ObjError("blob write aborted")
            self._ctx.__exit__(type(error), error, None)
            super().close()

    def close(self) -> None:
        """Stores the blob (atomically: readers see the old value or none until now)."""
        if self._done:
            super().close()
            return
        self._done = True
        try:
            t = self._w.finish()
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            super().close()
            raise
        self._ctx.__exit__(None, None, None)
        self.info = _info(self.name, t)
        super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # Dropped without close(): store nothing (IOBase would close, i.e. commit).
        if not getattr(self, "_done", True):
            with contextlib.suppress(Exception):
                self.abort()

    def __repr__(self) -> str:
        return f"<obj.BlobWriter {self.name!r}>"
