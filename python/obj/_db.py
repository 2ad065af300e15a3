"""The database handle, :class:`Db`."""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
from types import TracebackType
from typing import Literal, NamedTuple

from . import _obj
from ._obj import ReadTransaction, WriteTransaction
from .errors import InvalidArgumentError, ObjError

__all__ = ["CheckpointInfo", "Db", "Durability"]

#: When a commit reaches the disk: ``"immediate"`` fsyncs the log on every commit (an
#: acknowledged commit survives power loss), ``"eventual"`` only at checkpoints (survives a
#: process crash), ``"none"`` never (scratch data).
Durability = Literal["immediate", "eventual", "none"]

_DURABILITIES = ("immediate", "eventual", "none")


class CheckpointInfo(NamedTuple):
    """What :meth:`Db.checkpoint` did."""

    #: Page versions copied from the write-ahead log into the main file.
    frames_copied: int
    #: True when the log was reset to its header (everything was folded).
    wal_reset: bool
    #: True when a live read transaction kept some frames in the log; retry after it ends.
    deferred: bool


def _fspath(path: object) -> str:
    try:
        raw = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidArgumentError(
            f"path must be a str or os.PathLike, got {type(path).__name__}"
        ) from None
    return os.fsdecode(raw)


def _int_option(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    return value


class Db:
    """An open database: the file at ``path`` and its write-ahead log ``<path>-wal``.

    The file is created if it does not exist (unless ``read_only``). A read-write handle
    holds an exclusive lock on the file; another process that tries to open it waits up to
    ``busy_timeout`` seconds, then gets :class:`obj.BusyError`. One handle may be shared by
    any number of threads.

    Use it as a context manager::

        with obj.Db("app.obj") as db:
            with db.transaction() as tx:
                tx.insert("events", b"started")

    A clean exit from the ``with`` block checkpoints (best-effort) and closes. An exit through
    an exception closes without the checkpoint and lets the exception propagate unchanged.

    Options: ``read_only``; ``busy_timeout`` (seconds to wait for the file lock or the
    writer); ``durability`` (see :data:`Durability`); ``page_size`` for a new file (a power
    of two from 4096 to 65536); ``cache_size`` in bytes of the shared page cache;
    ``checkpoint_frames``, the log length that triggers an automatic checkpoint.
    """

    __slots__ = ("_native", "_path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout: float = 5.0,
        durability: Durability = "immediate",
        page_size: int = 4096,
        cache_size: int = 64 << 20,
        checkpoint_frames: int = 1000,
    ) -> None:
        self._path = pathlib.Path(_fspath(path))
        if not isinstance(read_only, bool):
            raise InvalidArgumentError(f"read_only must be a bool, got {type(read_only).__name__}")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise InvalidArgumentError(
                f"busy_timeout must be a number of seconds, got {type(busy_timeout).__name__}"
            )
        if not math.isfinite(busy_timeout) or busy_timeout < 0:
            raise InvalidArgumentError(
                f"busy_timeout must be a finite number of seconds >= 0, got {busy_timeout}"
            )
        if durability not in _DURABILITIES:
            raise InvalidArgumentError(
                f"durability must be one of {', '.join(map(repr, _DURABILITIES))}, "
                f"got {durability!r}"
            )
        self._native = _obj.Db(
            str(self._path),
            read_only=read_only,
            busy_timeout=float(busy_timeout),
            durability=durability,
            page_size=_int_option("page_size", page_size, 1),
            cache_size=_int_option("cache_size", cache_size, 0),
            checkpoint_frames=_int_option("checkpoint_frames", checkpoint_frames, 1),
        )

    def transaction(self) -> WriteTransaction:
        """Starts the write transaction.

        Only one write transaction runs at a time per database; this waits up to
        ``busy_timeout`` for the current one, then raises :class:`obj.BusyError`. Inside a
        ``with`` block a clean exit commits and an exception rolls back::

            with db.transaction() as tx:
                doc_id = tx.insert("orders", b"...")
                tx.upsert("orders", doc_id, b"changed")
        """
        return self._native.begin_write()

    def read_transaction(self) -> ReadTransaction:
        """Starts a read-only snapshot of the latest commit.

        It never waits for or blocks the writer and never sees uncommitted work. The
        snapshot is released when its ``with`` block ends::

            with db.read_transaction() as tx:
                payload = tx.get("orders", 1)
        """
        return self._native.begin_read()

    def checkpoint(self) -> CheckpointInfo:
        """Folds committed log frames into the main file and resets the log to its header.

        A no-op when there is nothing to fold. Deferred (partly or wholly) while a read
        transaction still needs older frames. Raises :class:`obj.ObjError` on a read-only
        handle::

            info = db.checkpoint()
            assert info.wal_reset or info.deferred
        """
        return CheckpointInfo(*self._native.checkpoint())

    def close(self) -> None:
        """Checkpoints best-effort, then releases the file lock. Closing twice is harmless.

        Transactions still open on this handle raise :class:`obj.ObjError` afterwards.
        """
        self._native.close()

    @property
    def path(self) -> pathlib.Path:
        """The main database file."""
        return self._path

    @property
    def wal_path(self) -> pathlib.Path:
        """The write-ahead log, ``<path>-wal``."""
        return self._path.with_name(self._path.name + "-wal")

    @property
    def read_only(self) -> bool:
        """True if the handle was opened with ``read_only=True``."""
        return self._native.read_only

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run (or a ``with`` block has ended)."""
        return self._native.closed

    def __enter__(self) -> Db:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        # The caller's exception is the one that matters: it propagates unchanged, and a
        # failure to release the lock here must not replace it.
        with contextlib.suppress(ObjError):
            self._native.close_without_checkpoint()

    def __repr__(self) -> str:
        state = " closed" if self.closed else (" read-only" if self.read_only else "")
        return f"<obj.Db {str(self._path)!r}{state}>"
