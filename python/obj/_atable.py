"""``obj.aio.AsyncTable``: :class:`obj.Table` for asyncio callers."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .query import Expr
from .table import Item, Key, KeyPart, Page, Put, SortKeyCondition, Table

Run = Callable[[Callable[[], Any]], Awaitable[Any]]


class AsyncTable:
    """A :class:`obj.Table` whose calls run on the async database's worker threads (from
    ``await adb.table(name)`` or ``await tx.table(name)``); each method is a coroutine
    with the arguments and result of the blocking one::

        users = await adb.table("users")
        await users.put("org#acme", {"name": "Ada"}, sk="user#1")
        page = await users.query("org#acme", sk=obj.sk.begins_with("user#"))
    """

    __slots__ = ("_read", "_table", "_write")

    def __init__(self, table: Table, read: Run, write: Run) -> None:
        self._table = table
        self._read = read
        self._write = write

    @property
    def table(self) -> Table:
        """The blocking table underneath (call it only from a worker thread)."""
        return self._table

    @property
    def name(self) -> str:
        """The name of the table's collection."""
        return self._table.name

    async def put(
        self,
        pk: KeyPart,
        item: Mapping[str, Any],
        *,
        sk: KeyPart | None = None,
        condition: Expr | None = None,
        ttl: float | timedelta | datetime | None = None,
    ) -> None:
        """See :meth:`obj.Table.put`."""
        call = functools.partial(self._table.put, pk, item, sk=sk, condition=condition, ttl=ttl)
        await self._write(call)

    async def get(self, pk: KeyPart, *, sk: KeyPart | None = None) -> Item | None:
        """See :meth:`obj.Table.get`."""
        result: Item | None = await self._read(functools.partial(self._table.get, pk, sk=sk))
        return result

    async def delete(
        self, pk: KeyPart, *, sk: KeyPart | None = None, condition: Expr | None = None
    ) -> bool:
        """See :meth:`obj.Table.delete`."""
        call = functools.partial(self._table.delete, pk, sk=sk, condition=condition)
        return bool(await self._write(call))

    async def update(
        self,
        pk: KeyPart,
        *,
        sk: KeyPart | None = None,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] | None = None,
        add: Mapping[str, int | float | set[Any] | frozenset[Any]] | None = None,
        condition: Expr | None = None,
    ) -> Item:
        """See :meth:`obj.Table.update`."""
        call = functools.partial(
            self._table.update, pk, sk=sk, set=set, remove=remove, add=add, condition=condition
        )
        result: Item = await self._write(call)
        return result

    async def put_with_sk(self, pk: KeyPart, sk: KeyPart, item: Mapping[str, Any]) -> None:
        """See :meth:`obj.Table.put_with_sk`."""
        await self.put(pk, item, sk=sk)

    async def get_with_sk(self, pk: KeyPart, sk: KeyPart) -> Item | None:
        """See :meth:`obj.Table.get_with_sk`."""
        return await self.get(pk, sk=sk)

    async def delete_with_sk(self, pk: KeyPart, sk: KeyPart) -> bool:
        """See :meth:`obj.Table.delete_with_sk`."""
        return await self.delete(pk, sk=sk)

    async def query(
        self,
        pk: KeyPart,
        *,
        sk: KeyPart | SortKeyCondition | None = None,
        filter: Expr | None = None,
        reverse: bool = False,
        limit: int | None = None,
        start_after: Key | KeyPart | None = None,
    ) -> Page:
        """See :meth:`obj.Table.query`."""
        call = functools.partial(
            self._table.query,
            pk,
            sk=sk,
            filter=filter,
            reverse=reverse,
            limit=limit,
            start_after=start_after,
        )
        result: Page = await self._read(call)
        return result

    async def scan(
        self,
        *,
        filter: Expr | None = None,
        limit: int | None = None,
        start_after: Key | None = None,
    ) -> Page:
        """See :meth:`obj.Table.scan`."""
        call = functools.partial(
            self._table.scan, filter=filter, limit=limit, start_after=start_after
        )
        result: Page = await self._read(call)
        return result

    async def query_index(
        self,
        index: str | Sequence[str],
        value: Any = None,
        *,
        filter: Expr | None = None,
        reverse: bool = False,
        limit: int | None = None,
        start_after: bytes | None = None,
    ) -> Page:
        """See :meth:`obj.Table.query_index`."""
        call = functools.partial(
            self._table.query_index,
            index,
            value,
            filter=filter,
            reverse=reverse,
            limit=limit,
            start_after=start_after,
        )
        result: Page = await self._read(call)
        return result

    async def count(self, pk: KeyPart | None = None) -> int:
        """See :meth:`obj.Table.count`."""
        return int(await self._read(functools.partial(self._table.count, pk)))

    async def batch_get(self, keys: Iterable[KeyPart | Key]) -> list[Item | None]:
        """See :meth:`obj.Table.batch_get`."""
        keys = list(keys)
        result: list[Item | None] = await self._read(functools.partial(self._table.batch_get, keys))
        return result

    async def batch_write(
        self,
        puts: Iterable[Put] = (),
        deletes: Iterable[KeyPart | Key] = (),
        *,
        ttl: float | timedelta | datetime | None = None,
    ) -> None:
        """See :meth:`obj.Table.batch_write`."""
        call = functools.partial(self._table.batch_write, list(puts), list(deletes), ttl=ttl)
        await self._write(call)

    def __repr__(self) -> str:
        return f"<obj.aio.AsyncTable {self._table.name!r}>"
