"""``obj.aio.AsyncBlobStore``: :class:`obj.BlobStore` for asyncio callers."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, Any, Generic, TypeVar

from ._astore import _Batches
from .blobs import BlobInfo, BlobReader, BlobStore, BlobWriter

K = TypeVar("K")
Run = Callable[[Callable[[], Any]], Awaitable[Any]]


class AsyncBlobStore(Generic[K]):
    """A :class:`obj.BlobStore` whose calls run on the async database's worker threads
    (from ``await adb.blobs(name)`` or ``await tx.blobs(name)``)::

        media = await adb.blobs("media")
        await media.put("cover:001", png_bytes, content_type="image/png")
        data = await media.get("cover:001")
        async with await media.open("video:7", "wb") as f:
            await f.write(chunk)
        async with await media.open("video:7") as f:
            head = await f.read(4096)
    """

    __slots__ = ("_read", "_store", "_write")

    def __init__(self, store: BlobStore[Any], read: Run, write: Run) -> None:
        self._store = store
        self._read = read
        self._write = write

    @property
    def store(self) -> BlobStore[Any]:
        """The blocking store underneath (call it only from a worker thread)."""
        return self._store

    async def get(self, key: K, default: Any = None) -> bytes | Any:
        """The blob under ``key`` (whole), or ``default``."""
        return await self._read(functools.partial(self._store.get, key, default))

    async def getitem(self, key: K) -> bytes:
        """The blob under ``key``; :class:`KeyError` when it is missing."""
        return await self._read(functools.partial(self._store.__getitem__, key))  # type: ignore[no-any-return]

    async def put(
        self,
        key: K,
        value: bytes | bytearray | memoryview,
        *,
        content_type: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> BlobInfo:
        """Stores ``value`` under ``key`` (see :meth:`obj.BlobStore.put`)."""
        put = functools.partial(self._store.put, key, value, content_type=content_type, meta=meta)
        return await self._write(put)  # type: ignore[no-any-return]

    async def set(self, key: K, value: bytes | bytearray | memoryview) -> None:
        """``store[key] = value``."""
        await self.put(key, value)

    async def delete(self, key: K) -> None:
        """``del store[key]``; :class:`KeyError` when it is missing."""
        await self._write(functools.partial(self._store.__delitem__, key))

    async def contains(self, key: object) -> bool:
        return await self._read(functools.partial(self._store.__contains__, key))  # type: ignore[no-any-return]

    async def len(self) -> int:
        return await self._read(self._store.__len__)  # type: ignore[no-any-return]

    async def stat(self, key: K) -> BlobInfo:
        return await self._read(functools.partial(self._store.stat, key))  # type: ignore[no-any-return]

    async def size(self, key: K) -> int:
        return await self._read(functools.partial(self._store.size, key))  # type: ignore[no-any-return]

    async def put_file(
        self,
        key: K,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        content_type: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        put = functools.partial(
            self._store.put_file, key, source, content_type=content_type, meta=meta
        )
        return await self._write(put)  # type: ignore[no-any-return]

    async def get_to_file(self, key: K, target: str | os.PathLike[str] | IO[bytes]) -> int:
        return await self._read(functools.partial(self._store.get_to_file, key, target))  # type: ignore[no-any-return]

    async def open(
        self,
        key: K,
        mode: str = "rb",
        *,
        content_type: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> AsyncBlobReader | AsyncBlobWriter:
        """An async file object on the blob (see :meth:`obj.BlobStore.open`): a reader for
        ``"rb"``, a writer for ``"wb"`` (its calls run where this handle's writes run)."""
        opened = functools.partial(
            self._store.open, key, mode, content_type=content_type, meta=meta
        )
        if mode in ("wb", "w"):
            return AsyncBlobWriter(await self._write(opened), self._write)
        return AsyncBlobReader(await self._read(opened), self._read)

    def keys(self) -> AsyncIterator[K]:
        """The keys in key order, over one snapshot."""
        return _Batches(self._read, lambda: iter(self._store))

    def __aiter__(self) -> AsyncIterator[K]:
        return self.keys()

    def __repr__(self) -> str:
        return f"<obj.aio.AsyncBlobStore {self._store.name!r}>"


class AsyncBlobReader:
    """:class:`obj.BlobReader` with awaitable reads."""

    def __init__(self, reader: BlobReader, run: Run) -> None:
        self._r = reader
        self._run = run

    @property
    def size(self) -> int:
        return self._r.size

    async def read(self, size: int = -1) -> bytes:
        return await self._run(functools.partial(self._r.read, size))  # type: ignore[no-any-return]

    async def readline(self, size: int = -1) -> bytes:
        return await self._run(functools.partial(self._r.readline, size))  # type: ignore[no-any-return]

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._r.seek(offset, whence)

    def tell(self) -> int:
        return self._r.tell()

    async def close(self) -> None:
        await self._run(self._r.close)

    async def __aenter__(self) -> AsyncBlobReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncBlobWriter:
    """:class:`obj.BlobWriter` with awaitable writes; ``async with`` stores the blob on a
    clean exit and nothing on an exception."""

    def __init__(self, writer: BlobWriter, run: Run) -> None:
        self._w = writer
        self._run = run

    async def write(self, data: bytes | bytearray | memoryview) -> int:
        return await self._run(functools.partial(self._w.write, data))  # type: ignore[no-any-return]

    def tell(self) -> int:
        return self._w.tell()

    async def close(self) -> None:
        """Stores the blob."""
        await self._run(self._w.close)

    async def abort(self) -> None:
        """Discards the blob."""
        await self._run(self._w.abort)

    @property
    def info(self) -> BlobInfo | None:
        return self._w.info

    async def __aenter__(self) -> AsyncBlobWriter:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            await self.abort()
        else:
            await self.close()
