"""``obj.aio.AsyncColumn``: :class:`obj.Column` for asyncio callers."""

from __future__ import annotations

import builtins
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from ._astore import _Batches
from .columns import Column

Run = Callable[[Callable[[], Any]], Awaitable[Any]]


class AsyncColumn:
    """A :class:`obj.Column` whose calls run on the async database's worker threads (from
    ``await adb.column(name, dtype)`` or ``await tx.column(name)``)::

        temps = await adb.column("temperatures", "f64")
        await temps.extend(readings)
        last = await temps.get(-1)
        window = await temps.slice(-100, None)
    """

    __slots__ = ("_column", "_read", "_write")

    def __init__(self, column: Column, read: Run, write: Run) -> None:
        self._column = column
        self._read = read
        self._write = write

    @property
    def column(self) -> Column:
        """The blocking column underneath (call it only from a worker thread)."""
        return self._column

    @property
    def dtype(self) -> str:
        return self._column.dtype

    async def len(self) -> int:
        return await self._read(self._column.__len__)  # type: ignore[no-any-return]

    async def get(self, index: int) -> Any:
        """``column[index]``."""
        return await self._read(functools.partial(self._column.__getitem__, index))

    async def slice(
        self, start: int | None, stop: int | None, step: int | None = None
    ) -> list[Any]:
        """``column[start:stop:step]``."""
        part = slice(start, stop, step)
        return await self._read(functools.partial(self._column.__getitem__, part))  # type: ignore[no-any-return]

    async def to_numpy(self, start: int | None = None, stop: int | None = None) -> Any:
        return await self._read(functools.partial(self._column.to_numpy, start, stop))

    async def extend(self, values: Iterable[Any]) -> None:
        await self._write(functools.partial(self._column.extend, values))

    async def append(self, value: Any) -> None:
        await self._write(functools.partial(self._column.append, value))

    async def set(self, index: int | builtins.slice, value: Any) -> None:
        """``column[index] = value``."""
        await self._write(functools.partial(self._column.__setitem__, index, value))

    async def insert(self, index: int, value: Any) -> None:
        await self._write(functools.partial(self._column.insert, index, value))

    async def delete(self, index: int | builtins.slice) -> None:
        """``del column[index]``."""
        await self._write(functools.partial(self._column.__delitem__, index))

    async def pop(self, index: int = -1) -> Any:
        return await self._write(functools.partial(self._column.pop, index))

    async def clear(self) -> None:
        await self._write(self._column.clear)

    def __aiter__(self) -> AsyncIterator[Any]:
        return _Batches(self._read, lambda: iter(self._column))

    def __repr__(self) -> str:
        return f"<obj.aio.AsyncColumn {self._column.name!r} {self._column.dtype}>"
