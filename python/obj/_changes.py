"""The change log: who changed what, when and why, recorded inside every commit.

A database opened with ``changes=True`` (or after :meth:`Db.enable_changes`) appends one
record to its change log in each commit, atomically with the commit's data. This module
holds the Python side of it: :class:`Retention`, the metadata context, the feed iterator
and the :class:`ChangeLog` mixin ``obj.Db`` inherits. The records themselves
(:class:`obj.Change`, :class:`obj.DocumentChange`) are native.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Union

from . import _obj
from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from ._obj import Change

__all__ = [
    "ChangeFeed",
    "ChangeLog",
    "ChangeLogInfo",
    "Images",
    "Retention",
]

#: What each record keeps of a changed document: ``"keys"`` (collection, key and operation
#: only), ``"new"`` (and the document as written), ``"old"`` (and the document before) or
#: ``"both"`` (the default), as DynamoDB streams name them.
Images = Literal["keys", "new", "old", "both"]

_IMAGES: tuple[Images, ...] = ("keys", "new", "old", "both")

#: ``changes=`` of :class:`obj.Db`: True (``"both"``), an :data:`Images` name, False (turn
#: the log off, dropping its records) or None (keep what the file says).
ChangesOption = Union[bool, Images, None]

#: The metadata ``with db.context(...)`` sets, per database handle:
#: ``{handle key: (action, user, meta)}``. The binding reads it when a transaction starts.
_Context = tuple[Union[str, None], Union[str, None], Union[dict[str, Any], None]]
CURRENT: contextvars.ContextVar[dict[int, _Context] | None] = contextvars.ContextVar(
    "obj_change_context", default=None
)

#: Entries read per batch by the feed (a record is never split).
_BATCH_ENTRIES = 4096


@dataclass(frozen=True)
class Retention:
    """How much of the change log later commits keep: at most ``max_records`` records and
    none older than ``max_age`` (a :class:`datetime.timedelta` or seconds). The newest
    record is always kept; ``None`` means no limit. Trimming happens a little at a time in
    later commits, never as a rewrite of live data::

        db = obj.Db("app.obj", changes=True,
                    retention=obj.Retention(max_records=100_000, max_age=timedelta(days=7)))
    """

    max_records: int | None = None
    max_age: _dt.timedelta | float | None = None

    def __post_init__(self) -> None:
        if self.max_records is not None:
            if isinstance(self.max_records, bool) or not isinstance(self.max_records, int):
                raise InvalidArgumentError(
                    f"max_records must be an int >= 1 or None, got {self.max_records!r}"
                )
            if self.max_records < 1:
                raise InvalidArgumentError(
                    f"max_records must be at least 1 (None keeps every record), got "
                    f"{self.max_records}"
                )
        if self.max_age is not None:
            seconds = _seconds(self.max_age)
            if not math.isfinite(seconds) or seconds <= 0:
                raise InvalidArgumentError(
                    f"max_age must be a positive timedelta or number of seconds, got "
                    f"{self.max_age!r}"
                )

    def _micros(self) -> int | None:
        if self.max_age is None:
            return None
        return max(1, round(_seconds(self.max_age) * 1_000_000))


def _seconds(age: object) -> float:
    if isinstance(age, _dt.timedelta):
        return age.total_seconds()
    if isinstance(age, (int, float)) and not isinstance(age, bool):
        return float(age)
    raise InvalidArgumentError(
        f"max_age must be a datetime.timedelta or a number of seconds, got {type(age).__name__}"
    )


class ChangeLogInfo(NamedTuple):
    """The change log's settings and extent (from :meth:`Db.change_log`)."""

    #: What each record keeps (see :data:`Images`).
    images: str
    retention: Retention
    #: The oldest record kept (``last + 1`` when the log is empty).
    oldest: int
    #: The newest record (0 before the first).
    last: int

    @property
    def records(self) -> int:
        """Records kept."""
        return self.last - self.oldest + 1


def _images(changes: object) -> Images:
    if changes is True:
        return "both"
    for name in _IMAGES:
        if changes == name:
            return name
    raise InvalidArgumentError(
        f"changes must be True, False, None or one of 'keys', 'new', 'old', 'both'; got {changes!r}"
    )


def _check_seq(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name} must be a seq (an int >= 0), got {value!r}")


def _collections(collections: object) -> list[str] | None:
    if collections is None:
        return None
    if isinstance(collections, str):
        return [collections]
    try:
        names: list[object] = list(collections)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidArgumentError(
            f"collections must be a collection name or an iterable of them, got "
            f"{type(collections).__name__}"
        ) from None
    for n in names:
        if not isinstance(n, str):
            raise InvalidArgumentError(
                f"collections must hold collection names (str), got {type(n).__name__}"
            )
    return [str(n) for n in names]


def _timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise InvalidArgumentError(
            f"timeout must be None or a number of seconds >= 0, got {timeout!r}"
        )
    return float(timeout)


class ChangeFeed(Iterator["Change"]):
    """The records of a change log after a ``seq``, in order (from :meth:`Db.changes`).

    Each batch is read on a snapshot; with ``follow=True`` the feed then waits for the
    next commit (woken by it, not polling) and goes on, ending only when ``timeout``
    seconds pass with no new record (never, with ``timeout=None``). :attr:`position` is
    the last ``seq`` read: pass it as ``since`` to resume after a restart, losing and
    repeating nothing.
    """

    __slots__ = (
        "_buffer",
        "_collections",
        "_db",
        "_done",
        "_follow",
        "_seen",
        "_through",
        "_timeout",
        "_until",
        "position",
    )

    def __init__(
        self,
        db: _obj.Db,
        since: int,
        until: int | None,
        collections: list[str] | None,
        follow: bool,
        timeout: float | None,
    ) -> None:
        self._db = db
        self.position = since
        self._until = until
        self._collections = collections
        self._follow = follow
        self._timeout = timeout
        self._buffer: list[Change] = []
        self._done = False
        self._seen = 0
        self._through = since
        self._fill()

    def _fill(self) -> None:
        records, through, done, seen = self._db._changes(
            self.position, self._until, self._collections, _BATCH_ENTRIES
        )
        self._buffer = records
        self._buffer.reverse()
        self._done = done
        self._seen = seen
        self._through = through

    def __iter__(self) -> ChangeFeed:
        return self

    def __next__(self) -> Change:
        while True:
            if self._buffer:
                change = self._buffer.pop()
                self.position = change.seq
                return change
            if self._through > self.position:
                self.position = self._through
            if self._until is not None and self.position >= self._until:
                raise StopIteration
            if self._done:
                if not self._follow:
                    raise StopIteration
                latest = self._db._wait_commit(self._seen, self._timeout)
                if latest <= self._seen:
                    raise StopIteration
            self._fill()


class ChangeLog:
    """The change-log methods of :class:`obj.Db` (a mixin over the native handle)."""

    __slots__ = ()

    def _configure_changes(self, changes: ChangesOption, retention: Retention | None) -> None:
        """Applies the ``changes=``/``retention=`` options of ``Db(...)``."""
        if changes is None:
            if retention is not None:
                raise InvalidArgumentError(
                    "retention= needs changes= (True or an images name) to say which log it is for"
                )
            return
        if changes is False:
            if retention is not None:
                raise InvalidArgumentError("retention= makes no sense with changes=False")
            self.disable_changes()
            return
        info = self.change_log()
        images = _images(changes)
        if info is not None and retention is None:
            retention = info.retention
        if info is None or info.images != images or info.retention != (retention or Retention()):
            self.enable_changes(images, retention=retention)

    def enable_changes(
        self, images: Images = "both", *, retention: Retention | None = None
    ) -> bool:
        """Turns the change log on (or changes its settings), in a commit of its own: from
        the next commit on, every commit of any handle appends one record. The setting is
        stored in the file. Returns whether anything changed::

            db.enable_changes("keys", retention=obj.Retention(max_records=10_000))
        """
        images = _images(images)
        if retention is not None and not isinstance(retention, Retention):
            raise InvalidArgumentError(
                f"retention must be an obj.Retention, got {type(retention).__name__}"
            )
        r = retention or Retention()
        return bool(_native(self)._set_changes(images, r.max_records, r._micros()))

    def disable_changes(self) -> bool:
        """Turns the change log off and drops its records (in a commit of its own); returns
        whether there was one."""
        return bool(_native(self)._set_changes(None))

    def change_log(self) -> ChangeLogInfo | None:
        """The change log's settings and extent, or None when the database keeps none."""
        info = _native(self)._change_log()
        if info is None:
            return None
        images, max_records, max_age, oldest, next_seq = info
        age = None if max_age is None else _dt.timedelta(microseconds=max_age)
        return ChangeLogInfo(images, Retention(max_records, age), oldest, next_seq - 1)

    def changes(
        self,
        since: int = 0,
        *,
        collections: str | Iterable[str] | None = None,
        until: int | None = None,
        follow: bool = False,
        timeout: float | None = None,
    ) -> ChangeFeed:
        """The change records after ``since`` (up to ``until``, inclusive), in ``seq``
        order, as :class:`obj.Change` objects; ``collections`` keeps only those
        collections' changes (records without any are skipped). ``since`` older than what
        retention kept raises :class:`obj.ChangesExpiredError` (its ``oldest`` says where
        the log starts). With ``follow=True`` the feed waits for new commits instead of
        ending, until ``timeout`` seconds pass without one::

            for change in db.changes(since=last_seen, follow=True):
                for doc in change.changes:
                    print(change.seq, change.action, doc.collection, doc.key, doc.op)
                last_seen = change.seq
        """
        _check_seq("since", since)
        _check_seq("until", until, optional=True)
        if not isinstance(follow, bool):
            raise InvalidArgumentError(f"follow must be a bool, got {type(follow).__name__}")
        return ChangeFeed(
            _native(self), since, until, _collections(collections), follow, _timeout(timeout)
        )

    def apply_changes(self, changes: Iterable[Change | bytes]) -> int:
        """Applies another database's change records to this one, each in a commit of its
        own, in order: records already applied are skipped (so a replica may be fed the
        same records twice), a gap is refused with :class:`obj.InvalidArgumentError`. This
        keeps a second file equal to the primary (a backup brought forward, or a read
        replica fed from ``changes(follow=True)``, in another process or on another machine
        through ``Change.to_bytes()``). Needs records with new images (``changes="new"`` or
        ``"both"``). Returns how many were applied::

            replica.apply_changes(primary.changes(since=replica.change_log().last))
        """
        return int(_native(self)._apply_changes(iter(changes)))

    def revert(self, seq: int) -> int:
        """Undoes the document changes of change record ``seq`` as a new transaction, and
        returns that transaction's ``seq``. Refused with :class:`obj.ConditionFailedError`
        (changing nothing) when a later commit changed one of those documents; needs a log
        that keeps both images."""
        _check_seq("seq", seq)
        return int(_native(self)._revert(seq))

    @contextlib.contextmanager
    def context(
        self,
        action: str | None = None,
        user: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Iterator[None]:
        """Metadata for the commits this handle makes in the block (its single-call writes
        and the transactions started in it without their own ``action=``/``user=``), in
        this thread or asyncio task only::

            with db.context(action="import", user="cron"):
                db.insert("orders", {...})
        """
        _check_context(action, user, meta)
        current = CURRENT.get() or {}
        token = CURRENT.set({**current, _native(self)._context_key(): (action, user, meta)})
        try:
            yield
        finally:
            CURRENT.reset(token)


def _check_context(action: object, user: object, meta: object) -> None:
    for name, value in (("action", action), ("user", user)):
        if value is not None and not isinstance(value, str):
            raise InvalidArgumentError(f"{name} must be a str or None, got {type(value).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidArgumentError(f"meta must be a dict or None, got {type(meta).__name__}")


def _native(db: object) -> _obj.Db:
    assert isinstance(db, _obj.Db)
    return db
