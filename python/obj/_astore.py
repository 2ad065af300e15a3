"""``obj.aio.AsyncStore``: :class:`obj.Store` for asyncio callers."""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

from .store import Store

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
Run = Callable[[Callable[[], Any]], Awaitable[Any]]

_BATCH = 256
_MISSING: Any = object()


class _Batches(AsyncIterator[T]):
    """``async for`` over a blocking iterator, drained in batches on a worker thread; the
    blocking iterator (and so its snapshot) is made by the first batch."""

    def __init__(self, run: Run, make: Callable[[], Iterator[T]]) -> None:
        self._run = run
        self._make = make
        self._it: Iterator[T] | None = None
        self._buffer: list[T] = []
        self._done = False

    def __aiter__(self) -> _Batches[T]:
        return self

    def _next_batch(self) -> list[T]:
        if self._it is None:
            self._it = iter(self._make())
        return list(itertools.islice(self._it, _BATCH))

    async def __anext__(self) -> T:
        if not self._buffer:
            if self._done:
                raise StopAsyncIteration
            self._buffer = list(reversed(await self._run(self._next_batch)))
            if not self._buffer:
                self._done = True
                raise StopAsyncIteration
        return self._buffer.pop()


class AsyncStore(Generic[K, V]):
    """A :class:`obj.Store` whose calls run on the async database's worker threads (from
    ``adb.store(name)`` or ``tx.store(name)``). Each mapping operation is a coroutine::

        sessions = adb.store("sessions")
        await sessions.set("user:42", {"plan": "pro"})
        plan = (await sessions.get("user:42"))["plan"]
        async for key, value in sessions.prefix("user:"):
            ...
    """

    __slots__ = ("_read", "_store", "_write")

    def __init__(self, store: Store[Any, V], read: Run, write: Run) -> None:
        self._store: Store[Any, V] = store
        self._read = read
        self._write = write

    @property
    def store(self) -> Store[Any, V]:
        """The blocking store underneath (call it only from a worker thread)."""
        return self._store

    async def get(self, key: K, default: Any = None) -> V | Any:
        """The value of ``key``, or ``default``."""
        return await self._read(functools.partial(self._store.get, key, default))

    async def getitem(self, key: K) -> V:
        """The value of ``key``; :class:`KeyError` when it is missing (``store[key]``)."""
        return await self._read(functools.partial(self._store.__getitem__, key))  # type: ignore[no-any-return]

    async def set(self, key: K, value: V) -> None:
        """``store[key] = value``."""
        await self._write(functools.partial(self._store.__setitem__, key, value))

    async def delete(self, key: K) -> None:
        """``del store[key]``: :class:`KeyError` when it is missing."""
        await self._write(functools.partial(self._store.__delitem__, key))

    async def contains(self, key: object) -> bool:
        """``key in store`` (no side effects)."""
        return bool(await self._read(functools.partial(self._store.__contains__, key)))

    async def exists(self, key: K, *, flush: bool | None = None) -> bool:
        """See :meth:`obj.Store.exists`."""
        return bool(await self._write(functools.partial(self._store.exists, key, flush=flush)))

    async def len(self) -> int:
        """``len(store)`` (O(1))."""
        return int(await self._read(self._store.__len__))

    async def pop(self, key: K, default: Any = _MISSING) -> V | Any:
        """Removes ``key`` and returns its value (or ``default``; KeyError without one)."""
        call = (
            functools.partial(self._store.pop, key)
            if default is _MISSING
            else functools.partial(self._store.pop, key, default)
        )
        return await self._write(call)

    async def put_many(self, items: Mapping[K, V] | Iterable[tuple[K, V]]) -> None:
        """See :meth:`obj.Store.put_many` (one atomic transaction)."""
        await self._write(functools.partial(self._store.put_many, items))

    async def get_many(
        self, keys: Iterable[K], *, default: Any = _MISSING
    ) -> tuple[dict[K, V], list[K]]:
        """See :meth:`obj.Store.get_many`."""
        call = (
            functools.partial(self._store.get_many, keys)
            if default is _MISSING
            else functools.partial(self._store.get_many, keys, default=default)
        )
        return await self._read(call)  # type: ignore[no-any-return]

    async def delete_many(self, keys: Iterable[K]) -> int:
        """See :meth:`obj.Store.delete_many`."""
        return int(await self._write(functools.partial(self._store.delete_many, keys)))

    async def clear(self) -> None:
        """Deletes every key, in one transaction."""
        await self._write(self._store.clear)

    async def flush(self) -> None:
        """Commits the buffered writes (see :meth:`obj.Store.flush`)."""
        await self._write(self._store.flush)

    async def close(self, strict: bool = False) -> None:
        """See :meth:`obj.Store.close`."""
        await self._write(functools.partial(self._store.close, strict))

    def keys(self) -> AsyncIterator[K]:
        """``async for key in store.keys():`` in key order, over one snapshot."""
        return _Batches(self._read, lambda: iter(self._store))

    def __aiter__(self) -> AsyncIterator[K]:
        """``async for key in store:`` (the same as :meth:`keys`)."""
        return self.keys()

    def items(self) -> AsyncIterator[tuple[K, V]]:
        """``async for key, value in store.items():`` in key order, over one snapshot."""
        return _Batches(self._read, lambda: iter(self._store.items()))

    def range(
        self, lo: K | None = None, hi: K | None = None, *, reverse: bool = False
    ) -> AsyncIterator[tuple[K, V]]:
        """See :meth:`obj.Store.range`."""
        return _Batches(self._read, lambda: self._store.range(lo, hi, reverse=reverse))

    def prefix(self, p: K, *, reverse: bool = False) -> AsyncIterator[tuple[K, V]]:
        """See :meth:`obj.Store.prefix`."""
        return _Batches(self._read, lambda: self._store.prefix(p, reverse=reverse))

    async def find_unique(self, index: str, value: object) -> V | None:
        """See :meth:`obj.Store.find_unique` (it flushes buffered writes first)."""
        found = await self._write(functools.partial(self._store.find_unique, index, value))
        return cast("V | None", found)

    def index_range(
        self, index: str, lo: object = None, hi: object = None
    ) -> AsyncIterator[tuple[K, V]]:
        """See :meth:`obj.Store.index_range`."""
        return _Batches(self._read, lambda: self._store.index_range(index, lo, hi))

    def __repr__(self) -> str:
        return f"<obj.AsyncStore {self._store.name!r}>"
