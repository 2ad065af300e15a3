"""``obj.AsyncDb``: the blocking :class:`obj.Db` for asyncio code.

Every method mirrors the blocking method of the same name, with the same types, and runs
it on a worker thread, so the event loop never waits for the engine (which releases the
GIL while it works)::

    import asyncio
    import obj

    async def main() -> None:
        async with await obj.AsyncDb.open("app.obj", workers=4) as adb:
            oid = await adb.insert("events", {"kind": "click"})
            print(await adb.get("events", oid))
            async with adb.transaction() as tx:
                await tx.insert("events", {"kind": "view"})
            async for oid, event in adb.all("events"):
                ...
            rows = await adb.query("events").filter(obj.field("kind") == "view").fetch()

    asyncio.run(main())

How the work is spread (no extra dependency: :mod:`asyncio` and :mod:`concurrent.futures`):

- All blocking calls run on one pool of at most ``workers`` threads per :class:`AsyncDb`;
  no other thread is ever started. A call waits for a free worker; the loop goes on.
- An async write transaction holds one worker of that pool from its start to its end and
  runs every step there: the engine's write transaction belongs to the thread that began
  it. The calls a task makes inside its write transaction (and the tasks it starts there
  make while it is open), ``adb.get(...)`` and read transactions included, run on that
  same worker, so they never wait for another one. A ``Db``-level write or a second
  transaction from the task itself is refused at once with :class:`obj.BusyError`, as on
  a blocking transaction's thread (it could only wait for itself); from a task it started,
  it waits for the transaction to end, like any other writer.
- Write transactions and ``Db``-level writes (``insert``, ``upsert``, ``delete``,
  ``update``, ``migrate``, ``checkpoint``, ``compact``) of one :class:`AsyncDb` queue on
  the event loop, in order, before they take a worker: a writer that waits holds no
  thread, so the other workers keep serving reads. Like ``Db``, a writer waits up to
  ``busy_timeout`` for the one before it, then raises :class:`obj.BusyError`.
- A read transaction is a snapshot, valid on any thread: it holds no worker between calls
  (so even with ``workers=1`` a task may write while it keeps a snapshot open).
- With ``workers=1`` an open write transaction holds the only worker: calls from other
  tasks wait for it to end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
import os
import pathlib
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generic,
    Literal,
    TypeVar,
    overload,
)

from ._ablobs import AsyncBlobReader, AsyncBlobStore, AsyncBlobWriter
from ._acolumn import AsyncColumn
from ._astore import AsyncStore
from ._atable import AsyncTable
from ._changes import (
    CURRENT,
    ChangeFeed,
    ChangeLogInfo,
    Images,
    Retention,
    _check_context,
    _check_seq,
    _collections,
)
from ._changes import _timeout as _check_timeout
from ._db import (
    CheckpointInfo,
    CompactInfo,
    Db,
    DbOptions,
    IntegrityReport,
    RawRecord,
)
from ._offload import Rows, Runner, Worker, WriterGate
from ._txn import Collection, IndexInfo, ReadTransaction, WriteTransaction
from .errors import BusyError, InvalidArgumentError, ObjError
from .query import Expr, Query
from .stat import Stat
from .state import State, StateRecord
from .store import Normalize

if TYPE_CHECKING:
    from typing_extensions import Unpack

    _Writable = bytes | bytearray | memoryview | dict[str, Any]
    _Source = Db | WriteTransaction | ReadTransaction

__all__ = [
    "AsyncBlobReader",
    "AsyncBlobStore",
    "AsyncBlobWriter",
    "AsyncCollection",
    "AsyncColumn",
    "AsyncDb",
    "AsyncQuery",
    "AsyncReadTransaction",
    "AsyncStore",
    "AsyncTable",
    "AsyncTransaction",
]

D = TypeVar("D")
T = TypeVar("T")

#: ``insert(doc)`` was called without a value: the blocking call gets none either.
_NO_VALUE: Any = object()


def _workers_arg(workers: object) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise InvalidArgumentError(
            f"workers must be an int (the number of threads that run blocking calls), "
            f"got {type(workers).__name__}"
        )
    if workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, got {workers}")
    return workers


def _busy_timeout(options: DbOptions) -> float:
    """The ``busy_timeout`` of a ``Db`` opened with ``options`` (already validated by it);
    the default is read from ``Db`` so that it stays the one place that states it."""
    if "busy_timeout" in options:
        return float(options["busy_timeout"])
    return float(inspect.signature(Db).parameters["busy_timeout"].default)


#: The transactions open in the current task (and in tasks it started meanwhile): calls
#: made inside a write transaction run on its worker, and close() refuses to wait for one.
_OPEN: contextvars.ContextVar[tuple[AsyncTransaction | AsyncReadTransaction, ...]] = (
    contextvars.ContextVar("obj_aio_open", default=())
)


class AsyncQuery(Generic[T]):
    """An async :class:`obj.Query`: build it the same way (each builder returns a new
    query), then ``await`` a result or ``async for`` over it. It runs where the query was
    made: a database's worker pool, or a write transaction's own worker. Python callables
    given to :meth:`filter` and :meth:`sort_by` run on that worker thread::

        rows = await adb.query(Order).filter(obj.field("total") > 100).limit(10).fetch()
        async for oid, order in adb.query(Order).sort_by("total"):
            ...
    """

    __slots__ = ("_query", "_run")

    def __init__(self, query: Query[T], run: Runner) -> None:
        self._query = query
        self._run = run

    @property
    def query(self) -> Query[T]:
        """The blocking query underneath."""
        return self._query

    def filter(self, condition: Expr | Callable[[T], object]) -> AsyncQuery[T]:
        """See :meth:`obj.Query.filter`."""
        return AsyncQuery(self._query.filter(condition), self._run)

    def sort_by(self, key: str | Callable[[T], Any], reverse: bool = False) -> AsyncQuery[T]:
        """See :meth:`obj.Query.sort_by`."""
        return AsyncQuery(self._query.sort_by(key, reverse), self._run)

    def limit(self, n: int) -> AsyncQuery[T]:
        """See :meth:`obj.Query.limit`."""
        return AsyncQuery(self._query.limit(n), self._run)

    def offset(self, n: int) -> AsyncQuery[T]:
        """See :meth:`obj.Query.offset`."""
        return AsyncQuery(self._query.offset(n), self._run)

    def index_range(self, index: str, lo: Any = None, hi: Any = None) -> AsyncQuery[T]:
        """See :meth:`obj.Query.index_range`."""
        return AsyncQuery(self._query.index_range(index, lo, hi), self._run)

    def sort_buffer_limit(self, n: int) -> AsyncQuery[T]:
        """See :meth:`obj.Query.sort_buffer_limit`."""
        return AsyncQuery(self._query.sort_buffer_limit(n), self._run)

    async def fetch(self) -> list[tuple[int, T]]:
        """All results as a list of ``(id, document)``."""
        return await self._run(self._query.fetch)

    async def first(self) -> tuple[int, T] | None:
        """The first result, or None."""
        return await self._run(self._query.first)

    async def ids(self) -> list[int]:
        """The ids of the results."""
        return await self._run(self._query.ids)

    async def count(self) -> int:
        """How many documents match (after offset and limit)."""
        return await self._run(self._query.count)

    async def explain(self) -> str:
        """How the query runs (see :meth:`obj.Query.explain`)."""
        return await self._run(self._query.explain)

    def __aiter__(self) -> AsyncIterator[tuple[int, T]]:
        """Streams ``(id, document)`` pairs, fetched in batches."""
        return Rows(self._run, self._query.__iter__)

    def __repr__(self) -> str:
        return f"<obj.AsyncQuery {self._query!r}>"


class _AsyncReads:
    """The reads every async handle has (database, read and write transaction), written
    once over the blocking object they run on (:meth:`_source`) and where they run
    (:meth:`_run`)."""

    __slots__ = ()

    def _source(self) -> _Source:
        raise NotImplementedError

    async def _run(self, fn: Callable[[], T]) -> T:
        raise NotImplementedError

    @overload
    async def get(self, target: type[D], id: int, /) -> D | None: ...
    @overload
    async def get(self, target: str, id: int, /) -> Any | None: ...
    async def get(self, target: Any, id: int, /) -> Any:
        """The document ``id``, or None."""
        return await self._run(functools.partial(self._source().get, target, id))

    async def get_raw(self, collection: str, id: int, /) -> bytes | None:
        """The stored payload bytes of document ``id`` (whatever its encoding), or None."""
        return await self._run(functools.partial(self._source().get_raw, collection, id))

    async def count(self, target: type | str, /) -> int:
        """Number of documents in the collection (0 if it does not exist)."""
        return await self._run(functools.partial(self._source().count, target))

    @overload
    def all(self, target: type[D], /) -> AsyncIterator[tuple[int, D]]: ...
    @overload
    def all(self, target: str, /) -> AsyncIterator[tuple[int, Any]]: ...
    def all(self, target: Any, /) -> AsyncIterator[tuple[int, Any]]:
        """``async for oid, doc in x.all(Cls):`` in id order, fetched in batches, from a
        snapshot taken when the iteration starts."""
        return Rows(self._run, lambda: self._source().all(target))

    @overload
    def iter_all(self, target: type[D], /) -> AsyncIterator[tuple[int, D]]: ...
    @overload
    def iter_all(self, target: str, /) -> AsyncIterator[tuple[int, Any]]: ...
    def iter_all(self, target: Any, /) -> AsyncIterator[tuple[int, Any]]:
        """The same as :meth:`all`."""
        return self.all(target)

    @overload
    async def find_unique(self, target: type[D], index: str, value: object, /) -> D | None: ...
    @overload
    async def find_unique(self, target: str, index: str, value: object, /) -> Any | None: ...
    async def find_unique(self, target: Any, index: str, value: object, /) -> Any:
        """The document whose unique index ``index`` holds ``value``, or None."""
        return await self._run(functools.partial(self._source().find_unique, target, index, value))

    @overload
    def index_range(
        self, target: type[D], index: str, /, lo: object = None, hi: object = None
    ) -> AsyncIterator[tuple[int, D]]: ...
    @overload
    def index_range(
        self, target: str, index: str, /, lo: object = None, hi: object = None
    ) -> AsyncIterator[tuple[int, Any]]: ...
    def index_range(
        self, target: Any, index: str, /, lo: object = None, hi: object = None
    ) -> AsyncIterator[tuple[int, Any]]:
        """``async for`` over the documents whose ``index`` value lies in ``lo..hi``
        (inclusive, None = open), in key order."""
        return Rows(self._run, lambda: self._source().index_range(target, index, lo, hi))

    async def indexes(self, target: type | str, /) -> list[tuple[str, str, list[str], bool]]:
        """``(name, kind, key_paths, ready)`` of each index of the collection."""
        return await self._run(functools.partial(self._source().indexes, target))

    async def index_info(self, target: type | str) -> list[IndexInfo]:
        """The secondary indexes of a class's (or named) collection."""
        return await self._run(functools.partial(self._source().index_info, target))

    async def collections(self) -> list[str]:
        """Names of all collections, sorted."""
        return await self._run(self._source().collections)

    @overload
    def query(self, target: type[D]) -> AsyncQuery[D]: ...
    @overload
    def query(self, target: str) -> AsyncQuery[dict[str, Any]]: ...
    def query(self, target: Any) -> AsyncQuery[Any]:
        """A lazy, immutable query (see :class:`AsyncQuery`)."""
        return AsyncQuery(self._source().query(target), self._run)

    def _store_writes(self) -> Callable[[Callable[[], Any]], Awaitable[Any]]:
        """Where a store's writes run: as this handle's other writes do."""
        return self._run

    async def store(
        self,
        name: str,
        *,
        keys: Literal["str", "bytes"] = "str",
        normalize: Normalize | None = None,
        key_errors: str = "strict",
        values: Any = None,
        buffer: int | None = None,
        autoflush_on_read: bool = True,
    ) -> AsyncStore[Any, Any]:
        """The persistent dict over the keyed collection ``name`` (see
        :meth:`obj.Db.store`), its calls run on the worker threads."""
        make = functools.partial(
            self._source().store,
            name,
            keys=keys,
            normalize=normalize,
            key_errors=key_errors,
            values=values,
            buffer=buffer,
            autoflush_on_read=autoflush_on_read,
        )
        blocking = await self._run(make)
        return AsyncStore(blocking, self._run, self._store_writes())

    async def blobs(
        self, name: str, *, keys: Literal["str", "bytes"] = "str"
    ) -> AsyncBlobStore[Any]:
        """The blob store ``name`` (see :meth:`obj.Db.blobs`), its calls run on the worker
        threads."""
        blocking = await self._run(functools.partial(self._source().blobs, name, keys=keys))
        return AsyncBlobStore(blocking, self._run, self._store_writes())

    async def column(self, name: str, dtype: str | None = None) -> AsyncColumn:
        """The column ``name`` (see :meth:`obj.Db.column`), its calls run on the worker
        threads."""
        blocking = await self._run(functools.partial(self._source().column, name, dtype))
        return AsyncColumn(blocking, self._run, self._store_writes())

    async def table(
        self, name: str, indexes: Iterable[str | Sequence[str]] | None = None
    ) -> AsyncTable:
        """The table ``name`` (see :meth:`obj.Db.table`; missing ``indexes`` are built on
        a worker thread), its calls run on the worker threads::

            users = await adb.table("users", indexes=["email"])
            await users.put("org#acme", {"email": "ada@example.com"}, sk="user#1")
        """
        make = functools.partial(self._source().table, name, indexes)
        blocking = await self._run(make)
        return AsyncTable(blocking, self._run, self._store_writes())


def _not_started(what: str, how: str) -> ObjError:
    return ObjError(f"{what} has not started: use 'async with {how} as tx:' first")


class AsyncReadTransaction(_AsyncReads):
    """A read-only snapshot (from :meth:`AsyncDb.read_transaction`), released when its
    ``async with`` block ends (or by :meth:`close`)::

        async with adb.read_transaction() as snap:
            order = await snap.get(Order, 1)
            n = await snap.count(Order)

    A snapshot is valid on any thread, so it holds no worker between calls: each call takes
    one from the pool (or runs on the worker of the write transaction it is opened in).
    """

    __slots__ = ("_adb", "_open", "_token", "_tx")

    def __init__(self, adb: AsyncDb) -> None:
        self._adb = adb
        self._tx: ReadTransaction | None = None
        self._open = False
        self._token: contextvars.Token[Any] | None = None

    def _source(self) -> ReadTransaction:
        if self._tx is None:
            raise _not_started("this read transaction", "adb.read_transaction()")
        return self._tx

    async def _run(self, fn: Callable[[], T]) -> T:
        return await self._adb._submit(fn)

    @property
    def active(self) -> bool:
        """True from the start of the ``async with`` block until the snapshot is released."""
        return self._open

    async def __aenter__(self) -> AsyncReadTransaction:
        if self._tx is not None:
            raise ObjError("this read transaction was already used; start a new one")
        adb = self._adb
        adb._admit()
        adb._users += 1
        try:
            self._tx = await adb._submit(adb._db.read_transaction)
        except BaseException:
            adb._leave()
            raise
        self._open = True
        self._token = _OPEN.set((*_OPEN.get(), self))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Releases the snapshot (idempotent)."""
        if not self._open or self._tx is None:
            return
        self._open = False
        try:
            await self._adb._submit(self._tx.close, finish=True)
        finally:
            token, self._token = self._token, None
            if token is not None:
                _reset(token)
            self._adb._leave()

    def __repr__(self) -> str:
        return f"<obj.AsyncReadTransaction {'active' if self.active else 'inactive'}>"


class AsyncTransaction(_AsyncReads):
    """The write transaction of an :class:`AsyncDb` (from :meth:`AsyncDb.transaction`).

    ``async with`` starts it, a clean exit commits and an exception (a cancelled task
    included) rolls back. It holds one worker thread of the database's pool from start to
    end, and every step runs there, in order; other writers of the same ``AsyncDb`` wait
    for it on the event loop (up to ``busy_timeout``), holding no thread::

        async with adb.transaction() as tx:
            oid = await tx.insert(Order(customer_id=1, total=9.5, status="new"))
            await tx.update(Order, oid, lambda o: setattr(o, "status", "paid"))

    Inside the block, calls on the database itself run on the transaction's worker too:
    ``await adb.get(...)`` reads the latest commit, and ``await adb.insert(...)`` is
    refused at once with :class:`obj.BusyError`, as ``Db``-level writes inside a blocking
    transaction are (use ``tx.insert``); a task started in the block that writes waits for
    the transaction to end instead. :meth:`commit` and :meth:`rollback` end it early.
    """

    __slots__ = ("_adb", "_context", "_meta", "_started", "_task", "_token", "_tx", "_worker")

    def __init__(
        self,
        adb: AsyncDb,
        action: str | None = None,
        user: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        _check_context(action, user, meta)
        self._adb = adb
        self._meta = (action, user, meta)
        #: The caller's context (a surrounding ``adb.context``), for the worker's begin.
        self._context: contextvars.Context | None = None
        self._task: asyncio.Task[Any] | None = None
        self._tx: WriteTransaction | None = None
        self._worker: Worker | None = None
        self._token: contextvars.Token[Any] | None = None
        self._started = False

    def _source(self) -> WriteTransaction:
        if self._tx is None:
            raise _not_started("this write transaction", "adb.transaction()")
        return self._tx

    async def _run(self, fn: Callable[[], T]) -> T:
        worker = self._worker
        if worker is None:
            # Ended (or never started): the blocking call reports that, from any thread.
            self._source()
            return await self._adb._submit(fn)
        return await worker.run(fn)

    @property
    def active(self) -> bool:
        """False before the ``async with`` block and once the transaction has committed or
        rolled back."""
        return self._worker is not None

    async def __aenter__(self) -> AsyncTransaction:
        if self._started:
            raise ObjError("this write transaction was already used; start a new one")
        self._started = True
        adb = self._adb
        if adb._writer_of_this_task():
            raise BusyError(
                "this task is inside a write transaction of this database already, and only "
                "one transaction holds the writer at a time: use that transaction, or commit "
                "it first"
            )
        adb._admit()
        adb._users += 1
        try:
            await adb._take_writer()
            try:
                worker = Worker(adb._executor)
                self._context = contextvars.copy_context()
                try:
                    await worker.run(self._begin)
                except BaseException:
                    # Cancelled or failed while waiting for a worker or for the engine's
                    # writer: if the begin still happens, it is rolled back right after.
                    worker.post(self._abandon)
                    worker.release()
                    raise
            except BaseException:
                adb._gate.release()
                raise
        except BaseException:
            adb._leave()
            raise
        self._worker = worker
        self._task = asyncio.current_task()
        self._token = _OPEN.set((*_OPEN.get(), self))
        return self

    def _begin(self) -> None:
        action, user, meta = self._meta
        begin = functools.partial(self._adb._db.transaction, action=action, user=user, meta=meta)
        context = self._context
        self._tx = begin() if context is None else context.run(begin)

    def _abandon(self) -> None:
        if self._tx is not None and self._tx.active:
            self._tx.rollback()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        worker, tx = self._worker, self._tx
        if worker is None or tx is None:
            return  # ended by commit() or rollback()
        try:
            await worker.run(functools.partial(tx.__exit__, exc_type, exc, tb), finish=True)
        finally:
            self._end()

    async def commit(self) -> None:
        """Makes every change durable and visible; the transaction ends (and gives its
        worker back)."""
        await self._finish(self._source().commit)

    async def rollback(self) -> None:
        """Discards every change; the transaction ends (and gives its worker back)."""
        await self._finish(self._source().rollback)

    async def _finish(self, fn: Callable[[], None]) -> None:
        worker = self._worker
        if worker is None:
            await self._run(fn)  # already ended: the blocking call says so
            return
        try:
            await worker.run(fn, finish=True)
        finally:
            self._end()

    def _end(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.release()
        self._adb._gate.release()
        self._adb._leave()
        token, self._token = self._token, None
        if token is not None:
            _reset(token)

    @overload
    async def insert(self, document: str, value: _Writable, /) -> int: ...
    @overload
    async def insert(self, document: object, value: None = None, /) -> int: ...
    async def insert(self, document: Any, value: Any = _NO_VALUE, /) -> int:
        """Stores a document under a new id and returns the id: an ``@obj.document``
        instance, or bytes or a dict under a collection name."""
        tx = self._source()
        call = (
            functools.partial(tx.insert, document)
            if value is _NO_VALUE
            else functools.partial(tx.insert, document, value)
        )
        return await self._run(call)

    @overload
    async def insert_many(self, documents: str, values: Iterable[_Writable], /) -> list[int]: ...
    @overload
    async def insert_many(
        self, documents: Iterable[object], values: None = None, /
    ) -> list[int]: ...
    async def insert_many(self, documents: Any, values: Any = None, /) -> list[int]:
        """Stores each document under a new id, in order, and returns the ids (see
        :meth:`obj.Db.insert_many`)."""
        return await self._run(functools.partial(self._source().insert_many, documents, values))

    @overload
    async def upsert(self, target: type[D], id: int, value: D, /) -> bool: ...
    @overload
    async def upsert(self, target: str, id: int, value: _Writable, /) -> bool: ...
    async def upsert(self, target: Any, id: int, value: Any, /) -> bool:
        """Stores a document under ``id``; True if it replaced one."""
        return await self._run(functools.partial(self._source().upsert, target, id, value))

    async def delete(self, target: type | str, id: int, /) -> bool:
        """Removes document ``id``; True if it existed."""
        return await self._run(functools.partial(self._source().delete, target, id))

    @overload
    async def update(self, target: type[D], id: int, fn: Callable[[D], D | None]) -> D: ...
    @overload
    async def update(self, target: str, id: int, fn: Callable[[Any], Any]) -> Any: ...
    async def update(self, target: Any, id: int, fn: Callable[[Any], Any]) -> Any:
        """Reads document ``id``, passes it to ``fn`` (a plain function, run on the
        transaction's worker thread) and writes the result back (see
        :meth:`obj.WriteTransaction.update`)."""
        return await self._run(functools.partial(self._source().update, target, id, fn))

    @overload
    def collection(self, target: type[D]) -> AsyncCollection[D]: ...
    @overload
    def collection(self, target: str) -> AsyncCollection[Any]: ...
    def collection(self, target: Any) -> AsyncCollection[Any]:
        """A handle bound to one document class (or collection name) in this
        transaction (see :class:`AsyncCollection`)."""
        return AsyncCollection(self._source().collection(target), self._run)

    def __repr__(self) -> str:
        return f"<obj.AsyncTransaction {'active' if self.active else 'inactive'}>"


class AsyncCollection(Generic[D]):
    """Typed access to one collection inside an async write transaction (from
    :meth:`AsyncTransaction.collection`); every method acts in that transaction::

        orders = tx.collection(Order)
        oid = await orders.insert(Order(...))
        n = await orders.count_all()
    """

    __slots__ = ("_collection", "_run")

    def __init__(self, collection: Collection[D], run: Runner) -> None:
        self._collection = collection
        self._run = run

    @property
    def target(self) -> type[D] | str:
        """The document class or collection name this handle is bound to."""
        return self._collection.target

    async def insert(self, doc: D) -> int:
        """Stores ``doc`` under a new id and returns the id."""
        return await self._run(functools.partial(self._collection.insert, doc))

    async def get(self, id: int) -> D | None:
        """The document ``id``, or None."""
        return await self._run(functools.partial(self._collection.get, id))

    async def update(self, id: int, fn: Callable[[D], D | None]) -> D:
        """Read-modify-write of document ``id`` (see :meth:`AsyncTransaction.update`)."""
        return await self._run(functools.partial(self._collection.update, id, fn))

    async def upsert(self, id: int, doc: D) -> bool:
        """Stores ``doc`` under ``id``; True if it replaced a document."""
        return await self._run(functools.partial(self._collection.upsert, id, doc))

    async def delete(self, id: int) -> bool:
        """Removes document ``id``; True if it existed."""
        return await self._run(functools.partial(self._collection.delete, id))

    def all(self) -> AsyncIterator[tuple[int, D]]:
        """``(id, document)`` pairs in id order, fetched in batches."""
        return Rows(self._run, self._collection.all)

    async def count_all(self) -> int:
        """Number of documents in the collection, this transaction's writes included."""
        return await self._run(self._collection.count_all)

    def __repr__(self) -> str:
        return f"<obj.AsyncCollection {self._collection!r}>"


def _reset(token: contextvars.Token[Any]) -> None:
    # Ended from another task, the entry stays in the opening task's context, inactive.
    with contextlib.suppress(ValueError):
        _OPEN.reset(token)


_OPEN_STATE, _CLOSING, _CLOSED = "open", "closing", "closed"


class AsyncDb(_AsyncReads):
    """An open database for asyncio callers; create it with ``await AsyncDb.open(path)``.

    Each method mirrors the :class:`obj.Db` method of the same name (same arguments, same
    result types) and runs it on the database's pool of worker threads; see the module
    documentation for how transactions and writers share that pool. Use it from one event
    loop (its writers queue on that loop). ``async with`` closes it at the end of the
    block, as ``with`` closes a ``Db``::

        async with await obj.AsyncDb.open("app.obj") as adb:
            oid = await adb.insert(Order(customer_id=1, total=9.5, status="new"))
            order = await adb.get(Order, oid)
    """

    __slots__ = (
        "_busy_timeout",
        "_closer",
        "_db",
        "_executor",
        "_gate",
        "_idle",
        "_state",
        "_users",
        "_workers",
    )

    def __init__(
        self, db: Db, executor: ThreadPoolExecutor, workers: int, busy_timeout: float
    ) -> None:
        """Internal: use :meth:`open`."""
        self._db = db
        self._executor = executor
        self._workers = workers
        self._busy_timeout = busy_timeout
        self._gate = WriterGate()
        self._state = _OPEN_STATE
        #: Calls in progress and open transactions: close() waits for them.
        self._users = 0
        self._idle: asyncio.Event | None = None
        self._closer: asyncio.Future[None] | None = None

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, workers: int = 4, **options: Unpack[DbOptions]
    ) -> AsyncDb:
        """Opens (or creates) the database at ``path`` with the options of
        :class:`obj.Db`, on a pool of ``workers`` threads (at least 1) that runs every
        blocking call::

            adb = await obj.AsyncDb.open("app.obj", workers=8, busy_timeout=2.0)
        """
        return await cls._start(functools.partial(Db, path, **options), workers, options)

    @classmethod
    async def create(
        cls, path: str | os.PathLike[str], *, workers: int = 4, **options: Unpack[DbOptions]
    ) -> AsyncDb:
        """Creates a new database at ``path``, refusing a file already there (see
        :meth:`obj.Db.create`)."""
        return await cls._start(functools.partial(Db.create, path, **options), workers, options)

    @classmethod
    async def open_existing(
        cls, path: str | os.PathLike[str], *, workers: int = 4, **options: Unpack[DbOptions]
    ) -> AsyncDb:
        """Opens the existing database at ``path``, refusing a missing file (see
        :meth:`obj.Db.open`; ``AsyncDb.open`` creates one, as ``Db(path)`` does)."""
        return await cls._start(functools.partial(Db.open, path, **options), workers, options)

    @classmethod
    async def _start(cls, opener: Callable[[], Db], workers: int, options: DbOptions) -> AsyncDb:
        count = _workers_arg(workers)
        executor = ThreadPoolExecutor(max_workers=count, thread_name_prefix="obj-aio")
        opening = executor.submit(opener)
        try:
            db = await asyncio.shield(asyncio.wrap_future(opening))
        except asyncio.CancelledError:
            # The open goes on in its thread: close what it opens, then drop the pool.
            opening.add_done_callback(_close_opened)
            executor.shutdown(wait=False)
            raise
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor, count, _busy_timeout(options))

    @classmethod
    async def memory(cls, *, workers: int = 4, **options: Unpack[DbOptions]) -> AsyncDb:
        """A database that lives in memory only (see :meth:`obj.Db.memory`)."""
        return await cls.open(":memory:", workers=workers, **options)

    # -- where calls run ------------------------------------------------------------------

    def _source(self) -> Db:
        return self._db

    def _writer_here(self) -> AsyncTransaction | None:
        """This database's write transaction open in the current task (or in the task that
        started it, while it is open)."""
        for tx in reversed(_OPEN.get()):
            if isinstance(tx, AsyncTransaction) and tx._adb is self and tx._worker is not None:
                return tx
        return None

    def _writer_of_this_task(self) -> bool:
        """True when the current task itself holds this database's write transaction: a
        second writer could only wait for it."""
        tx = self._writer_here()
        return tx is not None and tx._task is asyncio.current_task()

    async def _submit(self, fn: Callable[[], T], *, finish: bool = False) -> T:
        """``fn()`` on the write transaction's worker when the current task is inside one,
        else on a free worker of the pool."""
        tx = self._writer_here()
        if tx is not None and tx._worker is not None:
            return await tx._worker.run(fn, finish=finish)
        if self._state == _CLOSED:
            raise ObjError("this AsyncDb has been closed; open the database again")
        if CURRENT.get() is not None:
            # An `adb.context(...)` block: the worker's writes see its metadata.
            fn = functools.partial(contextvars.copy_context().run, fn)
        future = asyncio.wrap_future(self._executor.submit(fn))
        return await (asyncio.shield(future) if finish else future)

    def _admit(self) -> None:
        """Refuses new work once close() has begun (work inside an open transaction goes on:
        close() waits for it)."""
        if self._state != _OPEN_STATE and not any(
            tx._adb is self and tx.active for tx in _OPEN.get()
        ):
            raise ObjError(
                f"this AsyncDb is {self._state} (close() was called): it takes no new calls "
                "or transactions; open the database again to go on"
            )

    def _leave(self) -> None:
        self._users -= 1
        if self._users == 0 and self._idle is not None:
            self._idle.set()

    async def _run(self, fn: Callable[[], T]) -> T:
        self._admit()
        self._users += 1
        try:
            return await self._submit(fn)
        finally:
            self._leave()

    async def _take_writer(self) -> None:
        """Waits, holding no thread, for the writers of this database queued before."""
        if not await self._gate.acquire(self._busy_timeout):
            raise BusyError(
                "another write transaction of this AsyncDb held the writer lock for longer "
                f"than {self._busy_timeout:.1f}s (busy_timeout)"
            )

    async def _write(self, fn: Callable[[], T]) -> T:
        """``fn()``, which needs the engine's writer, after the writers queued before it."""
        if self._writer_of_this_task():
            # On the transaction's own thread: the binding refuses it at once.
            return await self._run(fn)
        self._admit()
        self._users += 1
        try:
            await self._take_writer()
            try:
                return await self._submit(fn)
            finally:
                self._gate.release()
        finally:
            self._leave()

    # -- properties -----------------------------------------------------------------------

    @property
    def db(self) -> Db:
        """The blocking handle underneath (calling it blocks the event loop)."""
        return self._db

    @property
    def workers(self) -> int:
        """The most threads this database's blocking calls run on."""
        return self._workers

    @property
    def path(self) -> pathlib.Path:
        """The main database file."""
        return self._db.path

    @property
    def wal_path(self) -> pathlib.Path:
        """The write-ahead log, ``<path>-wal``."""
        return self._db.wal_path

    @property
    def read_only(self) -> bool:
        """True for a handle opened with ``read_only=True``."""
        return self._db.read_only

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has finished (or the blocking handle was closed)."""
        return self._state == _CLOSED or self._db.closed

    @property
    def page_size(self) -> int:
        """The page size of the file, in bytes."""
        return self._db.page_size

    @property
    def attached(self) -> dict[str, pathlib.Path]:
        """The attached namespaces and the files they read."""
        return self._db.attached

    # -- transactions ---------------------------------------------------------------------

    def transaction(
        self,
        *,
        action: str | None = None,
        user: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> AsyncTransaction:
        """``async with adb.transaction() as tx:`` — the write transaction; commits on a
        clean exit, rolls back on an exception or cancellation (see
        :class:`AsyncTransaction`). ``action``, ``user`` and ``meta`` are recorded with the
        commit in the change log (see :meth:`obj.Db.transaction`)."""
        return AsyncTransaction(self, action, user, meta)

    def read_transaction(self) -> AsyncReadTransaction:
        """``async with adb.read_transaction() as snap:`` — a snapshot of the latest commit
        (see :class:`AsyncReadTransaction`)."""
        return AsyncReadTransaction(self)

    # -- writes ---------------------------------------------------------------------------

    @overload
    async def insert(self, document: str, value: _Writable, /) -> int: ...
    @overload
    async def insert(self, document: object, value: None = None, /) -> int: ...
    async def insert(self, document: Any, value: Any = _NO_VALUE, /) -> int:
        """Stores a document under a new id (in a transaction of its own) and returns the
        id: an ``@obj.document`` instance, or bytes or a dict under a collection name."""
        db = self._db
        call = (
            functools.partial(db.insert, document)
            if value is _NO_VALUE
            else functools.partial(db.insert, document, value)
        )
        return await self._write(call)

    @overload
    async def insert_many(self, documents: str, values: Iterable[_Writable], /) -> list[int]: ...
    @overload
    async def insert_many(
        self, documents: Iterable[object], values: None = None, /
    ) -> list[int]: ...
    async def insert_many(self, documents: Any, values: Any = None, /) -> list[int]:
        """Stores each document under a new id, in order, in one transaction of its own,
        and returns the ids: ``@obj.document`` instances, or bytes or dicts under a
        collection name. A bad item writes nothing. (A generator is consumed on a worker
        thread.)"""
        return await self._write(functools.partial(self._db.insert_many, documents, values))

    @overload
    async def upsert(self, target: type[D], id: int, value: D, /) -> bool: ...
    @overload
    async def upsert(self, target: str, id: int, value: _Writable, /) -> bool: ...
    async def upsert(self, target: Any, id: int, value: Any, /) -> bool:
        """Stores a document under ``id``; True if it replaced one."""
        return await self._write(functools.partial(self._db.upsert, target, id, value))

    async def delete(self, target: type | str, id: int, /) -> bool:
        """Removes document ``id``; True if it existed."""
        return await self._write(functools.partial(self._db.delete, target, id))

    @overload
    async def update(self, target: type[D], id: int, fn: Callable[[D], D | None]) -> D: ...
    @overload
    async def update(self, target: str, id: int, fn: Callable[[Any], Any]) -> Any: ...
    async def update(self, target: Any, id: int, fn: Callable[[Any], Any]) -> Any:
        """Atomic read-modify-write of document ``id`` (see :meth:`obj.Db.update`); ``fn``
        is a plain function, run on a worker thread."""
        return await self._write(functools.partial(self._db.update, target, id, fn))

    async def migrate(self, target: type, /) -> int:
        """Rewrites the documents stored at older versions of the class (see
        :meth:`obj.Db.migrate`); returns how many were rewritten."""
        return await self._write(functools.partial(self._db.migrate, target))

    # -- the change log -------------------------------------------------------------------

    async def enable_changes(
        self, images: Images = "both", *, retention: Retention | None = None
    ) -> bool:
        """Turns the change log on or changes its settings (see :meth:`obj.Db.enable_changes`)."""
        return await self._write(
            functools.partial(self._db.enable_changes, images, retention=retention)
        )

    async def disable_changes(self) -> bool:
        """Turns the change log off, dropping its records (see :meth:`obj.Db.disable_changes`)."""
        return await self._write(self._db.disable_changes)

    async def change_log(self) -> ChangeLogInfo | None:
        """The change log's settings and extent (see :meth:`obj.Db.change_log`)."""
        return await self._run(self._db.change_log)

    def changes(
        self,
        since: int = 0,
        *,
        collections: str | Iterable[str] | None = None,
        until: int | None = None,
        follow: bool = False,
        timeout: float | None = None,
    ) -> AsyncChangeFeed:
        """``async for change in adb.changes(since, follow=True):`` — the change records
        after ``since`` (see :meth:`obj.Db.changes`), read in batches on a worker thread;
        while following, a worker waits for the next commit a fraction of a second at a
        time (other calls get the pool's other threads)."""
        return AsyncChangeFeed(self, since, until, collections, follow, timeout)

    async def apply_changes(self, changes: Iterable[Any]) -> int:
        """Applies another database's change records (see :meth:`obj.Db.apply_changes`);
        an iterable is consumed on a worker thread."""
        return await self._write(functools.partial(self._db.apply_changes, changes))

    async def revert(self, seq: int) -> int:
        """Undoes change record ``seq`` as a new transaction (see :meth:`obj.Db.revert`)."""
        return await self._write(functools.partial(self._db.revert, seq))

    def context(
        self,
        action: str | None = None,
        user: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        """``with adb.context(action=..., user=...):`` — metadata for the commits this task
        makes in the block (see :meth:`obj.Db.context`)."""
        return self._db.context(action, user, meta)

    async def state(self, cls: type[D], name: str = "state") -> AsyncState[D]:
        """The root object ``name`` of this database (see :meth:`obj.Db.state`), created
        on first use; mutate it in ``async with state.transaction(...) as data:``."""
        return AsyncState(self, await self._write(functools.partial(self._db.state, cls, name)))

    # -- maintenance ----------------------------------------------------------------------

    def _store_writes(self) -> Callable[[Callable[[], Any]], Awaitable[Any]]:
        return self._write

    async def flush(self) -> None:
        """Makes every commit so far durable now (see :meth:`obj.Db.flush`)."""
        await self._run(self._db.flush)

    async def checkpoint(self) -> CheckpointInfo:
        """Folds committed log frames into the main file (see :meth:`obj.Db.checkpoint`)."""
        return await self._write(self._db.checkpoint)

    async def compact(self) -> CompactInfo:
        """Gives unused pages back to the file system (see :meth:`obj.Db.compact`)."""
        return await self._write(self._db.compact)

    async def backup(self, dest: str | os.PathLike[str], overwrite: bool = False) -> int:
        """Writes a consistent copy of the latest commit to ``dest``; its size in bytes."""
        return await self._run(functools.partial(self._db.backup, dest, overwrite))

    async def integrity_check(self) -> IntegrityReport:
        """Walks every tree, index and the freelist (see :meth:`obj.Db.integrity_check`)."""
        return await self._run(self._db.integrity_check)

    async def stat(self) -> Stat:
        """Sizes and counts of the latest commit (see :meth:`obj.Db.stat`)."""
        return await self._run(self._db.stat)

    async def wal_frames(self) -> int:
        """Committed frames currently in the write-ahead log."""
        return await self._run(self._db.wal_frames)

    async def dump_raw(self, collection: type | str, max_records: int = 1000) -> list[RawRecord]:
        """Up to ``max_records`` records as stored (see :meth:`obj.Db.dump_raw`)."""
        return await self._run(functools.partial(self._db.dump_raw, collection, max_records))

    async def attach(self, path: str | os.PathLike[str], namespace: str) -> None:
        """Opens the database at ``path`` read-only under ``namespace`` (see
        :meth:`obj.Db.attach`)."""
        await self._run(functools.partial(self._db.attach, path, namespace))

    async def detach(self, namespace: str) -> None:
        """Closes the database attached under ``namespace``."""
        await self._run(functools.partial(self._db.detach, namespace))

    # -- closing --------------------------------------------------------------------------

    async def close(self) -> None:
        """Closes the database (checkpointing best-effort, like :meth:`obj.Db.close`) and
        stops its worker threads. Idempotent.

        From the moment it is called, new calls and transactions are refused with
        :class:`obj.ObjError`; it waits for the calls in progress and the open transactions
        (they go on normally) to end first. Called inside a transaction of this database it
        would wait for itself, so it raises :class:`obj.ObjError` at once instead.
        """
        await self._shut(self._db.close)

    async def close_without_checkpoint(self) -> None:
        """Like :meth:`close`, without the checkpoint."""
        await self._shut(self._db.close_without_checkpoint)

    async def _shut(self, close: Callable[[], None]) -> None:
        if any(tx._adb is self and tx.active for tx in _OPEN.get()):
            raise ObjError(
                "close() was called inside a transaction of this AsyncDb, and it waits for "
                "open transactions to end: leave the 'async with' block first"
            )
        if self._closer is None:
            self._state = _CLOSING
            self._closer = asyncio.ensure_future(self._close_when_idle(close))
        await asyncio.shield(self._closer)

    async def _close_when_idle(self, close: Callable[[], None]) -> None:
        while self._users:
            self._idle = asyncio.Event()
            await self._idle.wait()
        try:
            await asyncio.wrap_future(self._executor.submit(close))
        finally:
            self._state = _CLOSED
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> AsyncDb:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A clean exit closes with a checkpoint; an exit through an exception closes
        without one and lets the exception propagate (as ``Db.__exit__`` does)."""
        await self._shut(functools.partial(self._db.__exit__, exc_type, exc, tb))

    def __repr__(self) -> str:
        state = "" if self._state == _OPEN_STATE else f" {self._state}"
        return f"<obj.AsyncDb {str(self._db.path)!r} workers={self._workers}{state}>"


class AsyncState(Generic[D]):
    """A database's root object for asyncio callers (from :meth:`AsyncDb.state`): the
    same root, history and diffs as :class:`obj.State`, with ``async with`` transactions
    that run their database work on the transaction's worker thread."""

    __slots__ = ("_adb", "_lock", "_state", "_task")

    def __init__(self, adb: AsyncDb, state: State[D]) -> None:
        self._adb = adb
        self._state = state
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[Any] | None = None

    @property
    def data(self) -> D:
        """The live root (see :attr:`obj.State.data`)."""
        return self._state.data

    @property
    def name(self) -> str:
        """The key the root is stored under."""
        return self._state.name

    @contextlib.asynccontextmanager
    async def transaction(
        self,
        action: str | None = None,
        *,
        user: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> AsyncIterator[D]:
        """``async with state.transaction(action=..., user=...) as data:`` (see
        :meth:`obj.State.transaction`)."""
        if self._task is not None and self._task is asyncio.current_task():
            raise ObjError(
                "a state transaction of this root is already open in this task; nested "
                "state transactions are refused"
            )
        st = self._state
        async with self._lock:
            self._task = asyncio.current_task()
            try:
                st._refuse_outside_changes()
                after = None
                async with self._adb.transaction(action=action, user=user, meta=meta) as atx:

                    def read() -> Any:
                        return atx._source().store(st.collection, values=st._cls).get(st.name)

                    st._follow(await atx._run(read))
                    before = st._committed
                    try:
                        yield st.data
                        plan = st._plan(before, meta)
                        if plan is not None:
                            after, record = plan

                            def write() -> None:
                                tx = atx._source()
                                tx._set_context(action, user, record)
                                tx.store(st.collection, values=st._cls)[st.name] = st.data

                            await atx._run(write)
                    except BaseException:
                        st._restore(before)
                        raise
                if after is not None:
                    st._committed_as(after)
            finally:
                self._task = None

    async def history(self, since: int = 0) -> list[StateRecord]:
        """The commits after ``since`` that changed the root (see :meth:`obj.State.history`)."""
        return await self._adb._run(functools.partial(self._state.history, since))

    async def at(self, seq: int) -> D:
        """The root as it was right after record ``seq`` (see :meth:`obj.State.at`)."""
        return await self._adb._run(functools.partial(self._state.at, seq))

    def __repr__(self) -> str:
        return repr(self._state).replace("<obj.State", "<obj.AsyncState", 1)


class AsyncChangeFeed:
    """The change records of an :class:`AsyncDb` after a ``seq`` (from
    :meth:`AsyncDb.changes`): ``async for`` yields :class:`obj.Change` objects in order;
    :attr:`position` is the last ``seq`` read."""

    __slots__ = ("_adb", "_args", "_buffer", "_feed", "_follow", "_timeout", "position")

    #: Longest single wait on a worker thread while following, in seconds.
    _WAIT_SLICE = 0.25

    def __init__(
        self,
        adb: AsyncDb,
        since: int,
        until: int | None,
        collections: str | Iterable[str] | None,
        follow: bool,
        timeout: float | None,
    ) -> None:
        if not isinstance(follow, bool):
            raise InvalidArgumentError(f"follow must be a bool, got {type(follow).__name__}")
        self._adb = adb
        self._args = (until, collections)
        self._follow = follow
        self._timeout = timeout
        self.position = since
        self._feed: ChangeFeed | None = None
        self._buffer: list[Any] = []
        # Checked now, as Db.changes checks them.
        _check_seq("since", since)
        _check_seq("until", until, optional=True)
        _collections(collections)
        _check_timeout(timeout)

    def _open(self) -> ChangeFeed:
        until, collections = self._args
        return self._adb._db.changes(self.position, collections=collections, until=until)

    def _take(self) -> list[Any]:
        if self._feed is None:
            self._feed = self._open()
        out = []
        for change in self._feed:
            out.append(change)
            if len(out) >= 256:
                break
        return out

    def __aiter__(self) -> AsyncChangeFeed:
        return self

    async def __anext__(self) -> Any:
        loop = asyncio.get_running_loop()
        deadline = None if self._timeout is None else loop.time() + self._timeout
        while True:
            if self._buffer:
                change = self._buffer.pop()
                self.position = change.seq
                return change
            batch = await self._adb._run(self._take)
            feed = self._feed
            if feed is not None and feed.position > self.position and not batch:
                self.position = feed.position
            if batch:
                batch.reverse()
                self._buffer = batch
                continue
            until = self._args[0]
            if not self._follow or (until is not None and self.position >= until):
                raise StopAsyncIteration
            seen = feed._seen if feed is not None else 0
            while True:
                wait = self._WAIT_SLICE
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        raise StopAsyncIteration
                latest = await self._adb._run(
                    functools.partial(self._adb._db._wait_commit, seen, wait)
                )
                if latest > seen:
                    break
            self._feed = None


def _close_opened(opening: concurrent.futures.Future[Db]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
