"""Running blocking calls from asyncio code, for :mod:`obj.aio`: the worker thread a write
transaction holds, the gate writers queue at on the event loop, and ``async for`` over a
blocking iterator in batches. Nothing here knows about databases."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import queue
from collections.abc import AsyncIterator, Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol, TypeVar

__all__ = ["Rows", "Runner", "Worker", "WriterGate"]

T = TypeVar("T")

#: Items fetched per worker round trip by async iterators.
_BATCH = 256


class Runner(Protocol):
    """Where a handle's blocking calls run: ``await run(fn)`` is ``fn()`` on a worker."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


class Worker:
    """One thread of the pool, held from the start of a write transaction to its end.

    It is a job of the pool that serves this object's own queue until released, so it is
    taken from the same bounded pool as every other call (waiting, like them, for a free
    thread) and every step of the transaction runs on that one thread, in order.
    """

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None
        ] = queue.SimpleQueue()
        executor.submit(self._serve)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    async def run(self, fn: Callable[[], T], *, finish: bool = False) -> T:
        """``fn()`` on this worker, after the steps queued before it. A cancelled caller
        drops a step that has not started, unless ``finish`` (ending the transaction must
        happen whatever happens to the task that asked for it)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        waiting = asyncio.wrap_future(future)
        return await (asyncio.shield(waiting) if finish else waiting)

    def post(self, fn: Callable[[], object]) -> None:
        """Queues ``fn()`` to run on this worker, with nobody waiting for it."""
        self._jobs.put((fn, concurrent.futures.Future()))

    def release(self) -> None:
        """Gives the thread back to the pool once the steps queued so far have run."""
        self._jobs.put(None)


class WriterGate:
    """One writer at a time, queued in order on the event loop, so a writer that waits
    holds no worker thread. The writer passes straight from one holder to the next."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: collections.deque[asyncio.Future[bool]] = collections.deque()

    async def acquire(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds for the writer; False if it did not come."""
        if not self._held and not self._waiters:
            self._held = True
            return True
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(turn)
        timer = loop.call_later(timeout, self._expire, turn)
        try:
            granted = await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result():
                self.release()  # handed over just as the task was cancelled
            elif turn in self._waiters:
                self._waiters.remove(turn)
            raise
        finally:
            timer.cancel()
        return granted

    def _expire(self, turn: asyncio.Future[bool]) -> None:
        if not turn.done():
            self._waiters.remove(turn)
            turn.set_result(False)

    def release(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(True)
                return
        self._held = False


class Rows(AsyncIterator[tuple[int, T]]):
    """``async for`` over a blocking iterator, drained in batches on a worker thread. The
    blocking iterator (and so its snapshot) is made by the first batch."""

    def __init__(self, run: Runner, make: Callable[[], Iterator[tuple[int, T]]]) -> None:
        self._run = run
        self._make = make
        self._it: Iterator[tuple[int, T]] | None = None
        self._buffer: list[tuple[int, T]] = []
        self._done = False

    def __aiter__(self) -> Rows[T]:
        return self

    def _next_batch(self) -> list[tuple[int, T]]:
        if self._it is None:
            self._it = iter(self._make())
        return list(itertools.islice(self._it, _BATCH))

    async def __anext__(self) -> tuple[int, T]:
        if not self._buffer:
            if self._done:
                raise StopAsyncIteration
            batch: list[tuple[int, T]] = await self._run(self._next_batch)
            if not batch:
                self._done = True
                raise StopAsyncIteration
            batch.reverse()
            self._buffer = batch
        return self._buffer.pop()
