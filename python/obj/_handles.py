"""Where a façade over a native handle (a blob store, a column) reads and writes: the
handle it was given (a transaction's), or one of a transaction or snapshot of its own for
each call on a :class:`obj.Db`."""

from __future__ import annotations

from typing import Any, Callable


class Given:
    """The handle itself (a transaction's façade uses the transaction's)."""

    def __init__(self, h: Any) -> None:
        self._h = h

    def __enter__(self) -> Any:
        return self._h

    def __exit__(self, *exc: object) -> None:
        pass


class Own:
    """A transaction or read snapshot of the database for one call: ``begin()`` starts
    it, ``handle(tx)`` is the façade's handle in it; leaving commits (or rolls back on an
    exception)."""

    def __init__(self, begin: Callable[[], Any], handle: Callable[[Any], Any]) -> None:
        self._tx = begin()
        self._handle = handle

    def __enter__(self) -> Any:
        return self._handle(self._tx.__enter__())

    def __exit__(self, *exc: Any) -> None:
        self._tx.__exit__(*exc)
