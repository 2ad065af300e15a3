"""``obj.AsyncDb``: the blocking :class:`obj.Db` for asyncio code.

Every method of :class:`AsyncDb` mirrors the :class:`obj.Db` method of the same name and
runs it on a worker thread, so the event loop never waits for the engine (which releases the
GIL while it works). A write transaction pins one worker thread for its whole lifetime,
so it can be driven step by step from coroutines::

    import asyncio
    import obj

    async def main() -> None:
        async with await obj.AsyncDb.open("app.obj") as adb:
            oid = await adb.insert("events", {"kind": "click"})
            print(await adb.get("events", oid))
            async with adb.transaction() as tx:
                await tx.insert("events", {"kind": "view"})
            async for oid, event in adb.all("events"):
                ...
            rows = await adb.query("events").filter(obj.field("kind") == "view").fetch()

    asyncio.run(main())

No extra dependency: it uses :mod:`asyncio` and :mod:`concurrent.futures` only.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Callable, TypeVar

from ._db import Db

__all__ = ["AsyncDb", "AsyncQuery", "AsyncTransaction"]

T = TypeVar("T")

#: Items fetched per worker round trip by async iterators.
_BATCH = 256


async def _run(
    executor: ThreadPoolExecutor | None, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))


class _AsyncIter(AsyncIterator[Any]):
    """Drains a blocking iterator in batches on a worker thread."""

    def __init__(
        self, executor: ThreadPoolExecutor | None, make: Callable[[], Iterator[Any]]
    ) -> None:
        self._executor = executor
        self._make = make
        self._it: Iterator[Any] | None = None
        self._buffer: list[Any] = []
        self._done = False

    def __aiter__(self) -> _AsyncIter:
        return self

    def _next_batch(self) -> list[Any]:
        if self._it is None:
            self._it = iter(self._make())
        return list(itertools.islice(self._it, _BATCH))

    async def __anext__(self) -> Any:
        if not self._buffer:
            if self._done:
                raise StopAsyncIteration
            self._buffer = await _run(self._executor, self._next_batch)
            self._buffer.reverse()
            if not self._buffer:
                self._done = True
                raise StopAsyncIteration
        return self._buffer.pop()


class AsyncQuery:
    """An async view of :class:`obj.Query`: build it the same way, then ``await`` a result."""

    def __init__(self, query: Any, executor: ThreadPoolExecutor | None) -> None:
        self._query = query
        self._executor = executor

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._query, name)
        if name in ("filter", "sort_by", "limit", "offset", "index_range", "sort_buffer_limit"):

            @functools.wraps(attr)
            def build(*args: Any, **kwargs: Any) -> AsyncQuery:
                return AsyncQuery(attr(*args, **kwargs), self._executor)

            return build
        raise AttributeError(name)

    async def fetch(self) -> list[tuple[int, Any]]:
        return await _run(self._executor, self._query.fetch)

    async def count(self) -> int:
        return await _run(self._executor, self._query.count)

    async def first(self) -> tuple[int, Any] | None:
        return await _run(self._executor, self._query.first)

    async def ids(self) -> list[int]:
        return await _run(self._executor, self._query.ids)

    async def explain(self) -> str:
        return await _run(self._executor, self._query.explain)

    def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        return _AsyncIter(self._executor, lambda: iter(self._query))


class AsyncTransaction:
    """A transaction whose every operation runs on the one thread it was started on."""

    def __init__(self, start: Callable[[], Any]) -> None:
        self._start = start
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="obj-txn")
        self._tx: Any = None

    async def __aenter__(self) -> AsyncTransaction:
        try:
            self._tx = await _run(self._executor, self._start)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await _run(self._executor, self._tx.__exit__, exc_type, exc, tb)
        finally:
            self._executor.shutdown(wait=False)

    def __getattr__(self, name: str) -> Any:
        if self._tx is None:
            raise AttributeError(f"use 'async with' before calling {name}()")
        attr = getattr(self._tx, name)
        if name == "query":

            def query(*args: Any, **kwargs: Any) -> AsyncQuery:
                return AsyncQuery(attr(*args, **kwargs), self._executor)

            return query
        if name in ("all", "iter_all", "index_range"):

            def iterate(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                return _AsyncIter(self._executor, lambda: attr(*args, **kwargs))

            return iterate
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await _run(self._executor, attr, *args, **kwargs)

        return call


class AsyncDb:
    """An open database for asyncio callers; create it with ``await AsyncDb.open(path)``."""

    def __init__(self, db: Db, executor: ThreadPoolExecutor) -> None:
        self._db = db
        self._executor = executor

    @classmethod
    async def open(cls, path: Any, *, workers: int = 4, **options: Any) -> AsyncDb:
        """Opens ``path`` with the options of :class:`obj.Db` (on a worker thread)."""
        executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="obj")
        try:
            db = await _run(executor, Db, path, **options)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor)

    @property
    def db(self) -> Db:
        """The blocking handle underneath."""
        return self._db

    async def __aenter__(self) -> AsyncDb:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await _run(self._executor, self._db.__exit__, exc_type, exc, tb)
        self._executor.shutdown(wait=False)

    async def close(self) -> None:
        """Closes the database (checkpointing best-effort, like ``Db.close``)."""
        await _run(self._executor, self._db.close)
        self._executor.shutdown(wait=False)

    def transaction(self) -> AsyncTransaction:
        """``async with adb.transaction() as tx:`` — commits on a clean exit."""
        return AsyncTransaction(lambda: self._db.transaction().__enter__())

    def read_transaction(self) -> AsyncTransaction:
        """``async with adb.read_transaction() as tx:`` — a snapshot."""
        return AsyncTransaction(lambda: self._db.read_transaction().__enter__())

    def query(self, target: Any) -> AsyncQuery:
        """Like ``Db.query``; ``await`` its ``fetch()``, ``count()`` or ``first()``."""
        return AsyncQuery(self._db.query(target), self._executor)

    def all(self, target: Any) -> AsyncIterator[tuple[int, Any]]:
        """``async for oid, doc in adb.all(Cls):`` in id order."""
        return _AsyncIter(self._executor, lambda: self._db.all(target))

    def index_range(
        self, target: Any, index: str, lo: Any = None, hi: Any = None
    ) -> AsyncIterator[tuple[int, Any]]:
        """``async for`` over an index slice, like ``Db.index_range``."""
        return _AsyncIter(self._executor, lambda: self._db.index_range(target, index, lo, hi))

    def __getattr__(self, name: str) -> Any:
        # Every other Db method (insert, get, update, upsert, delete, count, find_unique,
        # checkpoint, stat, ...) runs on a worker thread.
        attr = getattr(self._db, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await _run(self._executor, attr, *args, **kwargs)

        call.__name__ = name
        call.__doc__ = getattr(attr, "__doc__", None)
        return call
