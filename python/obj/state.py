"""``obj.State``: one root object as an application's whole state, kanta-style.

``db.state(Data, name="app")`` binds a root document (a dataclass, attrs class,
``msgspec.Struct`` or pydantic model) stored under ``name``, created from ``Data()`` on first
use. Mutations happen in ``with state.transaction(action=..., user=...) as data:`` blocks;
each block is one commit of the database, and with a change log (``changes=True``) its
record carries a structural diff of the root::

    state = db.state(Data, name="app")
    with state.transaction(action="create_user", user="ana") as data:
        data.users["alice"] = User(name="Alice")
    for seq, time, action, user, diff in state.history():
        print(seq, action, user, diff)
    old = state.at(3)           # the root as it was after record 3

The root is a typed document of the class's collection (an undecorated class is declared
``@obj.document(collection="state:<name>")`` on first use), under the key ``name``: the
same codec, migrations (``history=[...]`` + ``migrate``) and crash safety as any document.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from .document import _field_names, _model_kind, doctype_of, document, is_document
from .errors import ChangesExpiredError, InvalidArgumentError, ObjError

if TYPE_CHECKING:
    import datetime

    from ._db import Db
    from ._obj import DocType, DocumentChange

__all__ = ["DiffEntry", "State", "StateRecord"]

T = TypeVar("T")

#: The metadata key a state commit's diff is recorded under.
META_KEY = "obj.state"

_MISSING: Any = object()


class DiffEntry(NamedTuple):
    """One changed place of the root: ``path`` (the keys and list indexes leading to it,
    from the root), the value before (``old``) and after (``new``), as dicts and lists the
    way a read by collection name returns them; a key that appeared has ``old`` None and
    ``added`` True, one that went away ``new`` None and ``removed`` True."""

    path: tuple[str | int, ...]
    old: Any
    new: Any
    added: bool = False
    removed: bool = False


class StateRecord(NamedTuple):
    """One commit that changed the root (from :meth:`State.history`)."""

    seq: int
    time: datetime.datetime
    action: str | None
    user: str | None
    diff: list[DiffEntry]


def diff(old: Any, new: Any, path: tuple[str | int, ...] = ()) -> list[DiffEntry]:
    """The structural difference of two dict-native values: dicts key by key, lists of
    equal length index by index, anything else as a whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[DiffEntry] = []
        for k in old:
            if k not in new:
                out.append(DiffEntry((*path, k), old[k], None, removed=True))
            else:
                out.extend(diff(old[k], new[k], (*path, k)))
        for k in new:
            if k not in old:
                out.append(DiffEntry((*path, k), None, new[k], added=True))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out.extend(diff(a, b, (*path, i)))
        return out
    if type(old) is type(new) and old == new:
        return []
    return [DiffEntry(path, old, new)]


def _diff_to_meta(entries: list[DiffEntry]) -> list[list[Any]]:
    return [[list(e.path), e.old, e.new, e.added, e.removed] for e in entries]


def _diff_from_meta(rows: Any) -> list[DiffEntry]:
    return [DiffEntry(tuple(p), o, n, bool(a), bool(r)) for p, o, n, a, r in rows]


class State(Generic[T]):
    """The root object ``name`` of a database (from :meth:`obj.Db.state`)."""

    __slots__ = (
        "_cls",
        "_collection",
        "_committed",
        "_data",
        "_db",
        "_doctype",
        "_lock",
        "_name",
        "_owner",
    )

    def __init__(self, db: Db, cls: type[T], name: str) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"name must be a non-empty str, got {name!r}")
        if not isinstance(cls, type) or _model_kind(cls) is None:
            raise InvalidArgumentError(
                "db.state() takes a dataclass, attrs class, msgspec.Struct or pydantic model "
                f"class, got {cls!r}"
            )
        if not is_document(cls):
            if "__obj_doctype__" in cls.__dict__:
                raise InvalidArgumentError(f"{cls.__name__} cannot be a state root")
            document(collection=f"state:{name}")(cls)
        self._db = db
        self._cls = cls
        self._name = name
        self._doctype: DocType = doctype_of(cls)
        self._collection: str = self._doctype.collection
        self._lock = threading.Lock()
        self._owner: int | None = None
        with db.read_transaction() as snap:
            data = snap.store(self._collection, values=cls).get(name)
        if data is None:
            # Created on first use, by the first handle that writes it (a read-only handle
            # sees the initial state without storing it).
            with contextlib.ExitStack() as stack:
                tx = None if db.read_only else stack.enter_context(db.transaction())
                store = None if tx is None else tx.store(self._collection, values=cls)
                data = None if store is None else store.get(name)
                if data is None:
                    try:
                        data = cls()
                    except TypeError as e:
                        raise InvalidArgumentError(
                            f"{cls.__name__}() must build the initial state with no "
                            f"arguments (give every field a default): {e}"
                        ) from None
                    if store is not None:
                        store[name] = data
        self._data: T = data
        self._committed: bytes = self._encode(data)

    def _encode(self, obj: Any) -> bytes:
        return bytes(self._doctype.encode(obj))

    def _restore(self, payload: bytes) -> None:
        """Puts the live root back to ``payload``, in place (references stay valid)."""
        fresh = self._doctype.decode(self._doctype.version, payload)
        live = self._data
        try:
            for f in _field_names(type(live)):
                object.__setattr__(live, f, getattr(fresh, f))
        except (AttributeError, TypeError):
            self._data = fresh

    @property
    def name(self) -> str:
        """The key the root is stored under."""
        return self._name

    @property
    def collection(self) -> str:
        """The collection the root is stored in."""
        return self._collection

    @property
    def data(self) -> T:
        """The live root as of the last state transaction of this handle (or the one it
        found when it began). Change it only inside :meth:`transaction`: a change made
        outside is refused (rolled back) when the next transaction starts."""
        return self._data

    @contextmanager
    def transaction(
        self,
        action: str | None = None,
        *,
        user: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Iterator[T]:
        """``with state.transaction(action="...", user="...") as data:`` — mutate ``data``
        (the live root) in the block; a clean exit commits it (one commit, recorded in
        the change log with a diff of the root), an exception rolls the object back to
        what it was before the block. Holds the database's writer for the block; nested
        state transactions are refused."""
        me = threading.get_ident()
        if self._owner == me:
            raise ObjError(
                "a state transaction of this root is already open in this thread; nested "
                "state transactions are refused (make the changes in the open block)"
            )
        if meta is not None and not isinstance(meta, dict):
            raise InvalidArgumentError(f"meta must be a dict or None, got {type(meta).__name__}")
        with self._lock:
            self._owner = me
            try:
                yield from self._run(action, user, meta)
            finally:
                self._owner = None

    def _run(
        self, action: str | None, user: str | None, meta: dict[str, Any] | None
    ) -> Iterator[T]:
        self._refuse_outside_changes()
        with self._db.transaction(action=action, user=user, meta=meta) as tx:
            store = tx.store(self._collection, values=self._cls)
            self._follow(store.get(self._name))
            before = self._committed
            try:
                yield self._data
                plan = self._plan(before, meta)
                if plan is None:
                    return
                after, record = plan
                tx._set_context(action, user, record)
                store[self._name] = self._data
            except BaseException:
                self._restore(before)
                raise
        self._committed = after

    # -- the steps of a state transaction (shared with obj.aio.AsyncState) ----------------

    def _refuse_outside_changes(self) -> None:
        """Rolls back and refuses changes made to the live root outside a transaction."""
        if self._encode(self._data) != self._committed:
            self._restore(self._committed)
            raise ObjError(
                f"the root {self._name!r} was changed outside a state transaction; those "
                "changes were discarded: make changes inside `with state.transaction(...)`"
            )

    def _follow(self, stored: Any) -> None:
        """Starts from ``stored`` (the root the transaction reads) when another handle
        changed it since this one last did."""
        if stored is None:
            return
        now = self._encode(stored)
        if now != self._committed:
            self._restore(now)
            self._committed = now

    def _plan(
        self, before: bytes, meta: dict[str, Any] | None
    ) -> tuple[bytes, dict[str, Any]] | None:
        """What the commit writes: the new payload and the record's metadata with the
        diff (None when the block changed nothing)."""
        after = self._encode(self._data)
        if after == before:
            return None
        changes = diff(
            self._doctype._payload_to_value(before), self._doctype._payload_to_value(after)
        )
        record = {**(meta or {}), META_KEY: {"name": self._name, "diff": _diff_to_meta(changes)}}
        return after, record

    def _committed_as(self, after: bytes) -> None:
        self._committed = after

    # -- the log --------------------------------------------------------------------------

    def _mine(self, change: DocumentChange) -> bool:
        return change.collection == self._collection and change.key == self._name.encode()

    def history(self, since: int = 0) -> list[StateRecord]:
        """The commits after ``since`` that changed the root, oldest first, with their
        diffs (from the change log; :class:`obj.ChangesExpiredError` if retention dropped
        records after ``since``)."""
        out: list[StateRecord] = []
        for change in self._db.changes(since, collections=[self._collection]):
            for dc in change.changes:
                if not self._mine(dc):
                    continue
                out.append(
                    StateRecord(
                        change.seq,
                        change.time,
                        change.action,
                        change.user,
                        self._diff_of(change, dc),
                    )
                )
        return out

    def _diff_of(self, change: Any, dc: DocumentChange) -> list[DiffEntry]:
        meta = change.meta
        if isinstance(meta, dict):
            mine = meta.get(META_KEY)
            if isinstance(mine, dict) and mine.get("name") == self._name:
                return _diff_from_meta(mine.get("diff", []))
        old, new = dc.old, dc.new
        return diff(old, new)

    def at(self, seq: int) -> T:
        """The root as it was right after change record ``seq`` (from the log, back to the
        retention horizon). Needs a log that keeps new images (and old ones, for a ``seq``
        before the first kept record that changed the root)."""
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise InvalidArgumentError(f"seq must be an int >= 0, got {seq!r}")
        info = self._db.change_log()
        if info is None:
            raise InvalidArgumentError(
                "state.at() reads the change log: open the database with changes=True"
            )
        if seq > info.last:
            raise InvalidArgumentError(f"seq {seq} is after the last change record ({info.last})")
        if seq < info.oldest - 1:
            raise ChangesExpiredError(
                f"seq {seq} is before what retention kept (records from {info.oldest} on)"
            )
        last: Any = _MISSING
        for change in self._db.changes(info.oldest - 1, until=seq, collections=[self._collection]):
            for dc in change.changes:
                if self._mine(dc):
                    last = dc
        if last is not _MISSING:
            if last.op == "delete":
                raise InvalidArgumentError(f"the root {self._name!r} did not exist at seq {seq}")
            return self._image(last, new=True, seq=seq)
        for change in self._db.changes(seq, collections=[self._collection]):
            for dc in change.changes:
                if self._mine(dc):
                    if dc.op == "insert":
                        raise InvalidArgumentError(
                            f"the root {self._name!r} did not exist at seq {seq}"
                        )
                    return self._image(dc, new=False, seq=seq)
        # No record touched the root since: it is as stored now.
        with self._db.read_transaction() as rx:
            now = rx.store(self._collection, values=self._cls).get(self._name)
        if now is None:
            raise InvalidArgumentError(f"the root {self._name!r} does not exist")
        return now

    def _image(self, dc: DocumentChange, *, new: bool, seq: int) -> T:
        image = dc._image(new)
        if image is None:
            kind = "new" if new else "old"
            raise InvalidArgumentError(
                f"the change log keeps no {kind} images, so the root at seq {seq} cannot be "
                "rebuilt: use changes='both'"
            )
        _kind, version, payload = image
        return self._doctype.decode(version, payload)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<obj.State {self._name!r} of {self._cls.__name__} in {self._collection!r}>"
