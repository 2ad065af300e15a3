"""``obj.Table``: items addressed by a partition key and an optional sort key.

A table keeps dict items in one keyed collection of a :class:`obj.Db`, in key order, with
the database's transactions, snapshots and crash safety. The items of one partition are
stored together, sorted by sort key, so a query of a partition is one range read::

    users = db.table("users")
    users.put("org#acme", {"name": "Ada", "role": "admin"}, sk="user#1")
    users.put("org#acme", {"name": "Bob", "role": "dev"}, sk="user#2")
    page = users.query("org#acme", sk=obj.sk.begins_with("user#"), limit=10)
    for item in page:
        ...
    more = users.query("org#acme", start_after=page.last_key)   # the next page

    users.put("org#acme", {"name": "Cy"}, sk="user#3",
              condition=obj.field("pk").not_exists())   # only if there is no such item
    users.update("org#acme", sk="user#1", add={"logins": 1})  # atomic read-modify-write

Keys are ``str`` (ordered by code point), ``bytes`` (by byte) or ``int`` (64-bit, ordered
numerically); a table's key types, and whether it has sort keys, are fixed by its first
item. The key rules, ranges, conditions and pages are the engine's (``obj_core::table``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Union, overload

from . import _obj
from .errors import InvalidArgumentError
from .query import Expr

if TYPE_CHECKING:
    from ._reads import Reads

__all__ = ["KeyPart", "Page", "SortKey", "SortKeyCondition", "Table", "sk"]

#: What a partition or sort key is.
KeyPart = Union[str, bytes, int]
#: A key as pages and batches give and take it: ``(pk, sk)``, ``sk`` None without sort keys.
Key = tuple[KeyPart, Union[KeyPart, None]]
Item = dict[str, Any]
#: One put of :meth:`Table.batch_write`: ``(pk, item)`` or ``(pk, sk, item)``.
Put = Union[tuple[KeyPart, Mapping[str, Any]], tuple[KeyPart, KeyPart, Mapping[str, Any]]]


class SortKeyCondition:
    """A condition on the sort keys of a partition, built from :data:`obj.sk`:
    ``obj.sk >= 10``, ``obj.sk.between("a", "m")``, ``obj.sk.begins_with("user#")``."""

    __slots__ = ("node",)

    def __init__(self, node: tuple[Any, ...]) -> None:
        self.node = node

    def __bool__(self) -> bool:
        raise InvalidArgumentError(
            "a sort key condition is a value to pass as sk=..., not a truth value; write "
            "obj.sk.between(a, b) for a range"
        )

    def __repr__(self) -> str:
        symbols = {"eq": "==", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
        op, *args = self.node
        if op in symbols:
            return f"obj.sk {symbols[op]} {args[0]!r}"
        return f"obj.sk.{op}({', '.join(repr(a) for a in args)})"


def _operand(value: object, what: str) -> Any:
    """A condition's operand: a value (the engine checks it against the keys or index
    values it is compared with; a tuple is a prefix of a composite index's values)."""
    if value is None or isinstance(value, (SortKeyCondition, Expr)):
        raise InvalidArgumentError(f"{what} compares with a value, got {value!r}")
    return value


class SortKey:
    """The sort key of a table's items, to build query conditions (``obj.sk``)."""

    __slots__ = ()

    def __eq__(self, value: object) -> SortKeyCondition:  # type: ignore[override]
        return SortKeyCondition(("eq", _operand(value, "obj.sk == value")))

    def __lt__(self, value: object) -> SortKeyCondition:
        return SortKeyCondition(("lt", _operand(value, "obj.sk < value")))

    def __le__(self, value: object) -> SortKeyCondition:
        return SortKeyCondition(("le", _operand(value, "obj.sk <= value")))

    def __gt__(self, value: object) -> SortKeyCondition:
        return SortKeyCondition(("gt", _operand(value, "obj.sk > value")))

    def __ge__(self, value: object) -> SortKeyCondition:
        return SortKeyCondition(("ge", _operand(value, "obj.sk >= value")))

    __hash__ = None  # type: ignore[assignment]

    def between(self, low: Any, high: Any) -> SortKeyCondition:
        """Sort keys from ``low`` to ``high``, both included."""
        return SortKeyCondition(
            ("between", _operand(low, "between(low, ...)"), _operand(high, "between(..., high)"))
        )

    def begins_with(self, prefix: str | bytes) -> SortKeyCondition:
        """``str`` (or ``bytes``) sort keys that start with ``prefix``."""
        if not isinstance(prefix, (str, bytes)):
            raise InvalidArgumentError(
                f"begins_with() takes a str or bytes prefix, got {type(prefix).__name__}"
            )
        return SortKeyCondition(("begins_with", prefix))

    def __repr__(self) -> str:
        return "obj.sk"


#: The sort key, for query conditions: ``table.query(pk, sk=obj.sk > 10)``.
sk = SortKey()


class Page(Sequence[Item]):
    """One page of a :meth:`Table.query` or :meth:`Table.scan`: a sequence of items, and
    :attr:`last_key`, the key of the last item when more items match after it (pass it as
    ``start_after`` for the next page), None when this page ends the results."""

    __slots__ = ("items", "last_key")

    def __init__(self, items: list[Item], last_key: Key | bytes | None) -> None:
        self.items = items
        self.last_key = last_key

    @overload
    def __getitem__(self, i: int) -> Item: ...
    @overload
    def __getitem__(self, i: slice) -> list[Item]: ...
    def __getitem__(self, i: int | slice) -> Item | list[Item]:
        return self.items[i]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"Page({len(self.items)} items, last_key={self.last_key!r})"


def _iterable(value: object, what: str) -> Iterable[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidArgumentError(
            f"{what} must be a list of field names or tuples of them, got {value!r}"
        )
    return value


def _index_fields(index: object) -> list[str]:
    """The fields of an index given as ``"email"``, ``("org", "joined")`` or
    ``"org,joined"`` (its name)."""
    fields = index.split(",") if isinstance(index, str) else list(_iterable(index, "index"))
    if not fields or not all(isinstance(f, str) and f for f in fields):
        raise InvalidArgumentError(
            f"an index is a field name or a tuple of field names, got {index!r}"
        )
    return fields


def _limit(limit: object) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(f"limit must be a positive int or None, got {limit!r}")
    return limit


def _sort_condition(value: object) -> tuple[Any, ...] | None:
    """The condition node of a query's ``sk`` or ``query_index``'s value: None, a
    condition on :data:`obj.sk`, or a value to equal."""
    if value is None:
        return None
    if isinstance(value, SortKeyCondition):
        return value.node
    return ("eq", _operand(value, "sk"))


class Table(_obj.TableHandle):
    """Items addressed by a partition key and an optional sort key, in a keyed collection
    of a :class:`obj.Db` (from :meth:`Db.table`, or :meth:`WriteTransaction.table` to read
    and write inside a transaction, seeing its own writes).

    On a ``Db`` each write is a durable transaction of its own; :meth:`batch_write` is one
    atomic transaction for many. A condition (``condition=obj.field("version") == 3``) is
    evaluated by the engine inside the write against the stored item, which it sees with
    its key values as attributes ``pk`` and ``sk`` (unless the item has its own attributes
    of those names); a missing item is seen as empty. A failed condition raises
    :class:`obj.ConditionFailedError` and writes nothing.

    ``put(pk, item, *, sk=None, condition=None, ttl=None)``, ``get(pk, *, sk=None)`` and
    ``delete(pk, *, sk=None, condition=None) -> bool`` are the native methods themselves
    (no Python layer on the hottest calls).

    ``ttl`` makes an item expire: seconds to live (an int, float or ``timedelta``), or the
    ``datetime`` to expire at. From that moment no read returns it (exactly: every read
    checks the time); the space is reclaimed by later writes to the table and by
    :meth:`Db.compact`, and until then :meth:`Db.stat` counts it as ``expired``. An
    :meth:`update` keeps the item's expiry time.
    """

    __slots__ = ()

    def __new__(
        cls, owner: Reads, name: str, indexes: Iterable[str | Sequence[str]] | None = None
    ) -> Table:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"table name must be a non-empty str, got {name!r}")
        self = super().__new__(cls, owner, name)
        if indexes is not None:
            fields = [_index_fields(i) for i in _iterable(indexes, "indexes")]
            if fields and not isinstance(owner, _obj.ReadTransaction):
                self._ensure_indexes(fields)
        return self

    def query_index(
        self,
        index: str | Sequence[str],
        value: Any = None,
        *,
        filter: Expr | None = None,
        reverse: bool = False,
        limit: int | None = None,
        start_after: bytes | None = None,
    ) -> Page:
        """The items whose attribute(s) in ``index`` (a field name, or the tuple of fields
        of a composite index) match ``value``, in index order (ties in key order), that
        ``filter`` holds for. ``value`` is a value (equality; a tuple is a prefix of a
        composite index's values), a range written on :data:`obj.sk` (``obj.sk >= 18``,
        ``obj.sk.between("a", "m")``, ``obj.sk.begins_with("ad")``), or None for every
        item that has the (first) attribute, and not None there::

            users = db.table("users", indexes=["email", ("org", "joined")])
            users.query_index("email", "ada@example.com")
            users.query_index(("org", "joined"), ("acme",), reverse=True, limit=10)

        A page's :attr:`Page.last_key` is an opaque ``bytes`` position in the index; pass
        it back as ``start_after``.
        """
        if not isinstance(reverse, bool):
            raise InvalidArgumentError(f"reverse must be a bool, got {type(reverse).__name__}")
        if start_after is not None and not isinstance(start_after, bytes):
            raise InvalidArgumentError(
                "start_after of query_index() is the bytes last_key of an index page, got "
                f"{type(start_after).__name__}"
            )
        name = ",".join(_index_fields(index))
        cond = _sort_condition(value)
        items, last = self._query_index(name, cond, filter, reverse, _limit(limit), start_after)
        return Page(items, last)

    def update(
        self,
        pk: KeyPart,
        *,
        sk: KeyPart | None = None,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] | None = None,
        add: Mapping[str, int | float | set[Any] | frozenset[Any]] | None = None,
        condition: Expr | None = None,
    ) -> Item:
        """Changes the item under ``pk`` (and ``sk``) in one atomic read-modify-write and
        returns the new item (an update of a missing item creates it). ``set`` maps
        attribute paths (``"address.city"``) to new values, ``remove`` lists paths to
        delete, ``add`` maps paths to numbers added to the number there (a missing one
        counts as 0) or to sets whose members join the set there (DynamoDB's ADD)::

            table.update("user#1", set={"plan": "pro"}, add={"logins": 1})
        """
        # (What add may hold is the engine's rule, checked inside the write.)
        return self._update(
            pk,
            sk,
            None if set is None else dict(set),
            None if remove is None else list(remove),
            None if add is None else dict(add),
            condition,
        )

    # The seed's spellings (KeyStoneDB), so its examples run unchanged.

    def put_with_sk(self, pk: KeyPart, sk: KeyPart, item: Mapping[str, Any]) -> None:
        """``put(pk, item, sk=sk)``."""
        self.put(pk, item, sk=sk)

    def get_with_sk(self, pk: KeyPart, sk: KeyPart) -> Item | None:
        """``get(pk, sk=sk)``."""
        return self.get(pk, sk=sk)

    def delete_with_sk(self, pk: KeyPart, sk: KeyPart) -> bool:
        """``delete(pk, sk=sk)``."""
        return self.delete(pk, sk=sk)

    # -- many items -----------------------------------------------------------------------

    def query(
        self,
        pk: KeyPart,
        *,
        sk: KeyPart | SortKeyCondition | None = None,
        filter: Expr | None = None,
        reverse: bool = False,
        limit: int | None = None,
        start_after: Key | KeyPart | None = None,
    ) -> Page:
        """The items of partition ``pk`` in sort-key order (``reverse`` for descending),
        those whose sort key meets ``sk`` (a value, or a condition on :data:`obj.sk`) and
        that ``filter`` holds for. ``limit`` counts returned items (after the filter);
        ``start_after`` is a page's :attr:`Page.last_key` (or a sort key)."""
        if not isinstance(reverse, bool):
            raise InvalidArgumentError(f"reverse must be a bool, got {type(reverse).__name__}")
        items, last = self._query(
            pk, _sort_condition(sk), filter, reverse, _limit(limit), start_after
        )
        return Page(items, last)

    def scan(
        self,
        *,
        filter: Expr | None = None,
        limit: int | None = None,
        start_after: Key | None = None,
    ) -> Page:
        """Every item of every partition, in key order, that ``filter`` holds for; pages as
        :meth:`query` has them."""
        items, last = self._scan(filter, _limit(limit), start_after)
        return Page(items, last)

    def count(self, pk: KeyPart | None = None) -> int:
        """Items in partition ``pk``, or in the table (that count is kept, O(1))."""
        return self._count(pk)

    def __len__(self) -> int:
        return self.count()

    def batch_get(self, keys: Iterable[KeyPart | Key]) -> list[Item | None]:
        """The items at ``keys`` (each a ``pk`` or a ``(pk, sk)`` tuple), None where there
        is none, all read on one snapshot."""
        return self._batch_get(keys)

    def batch_write(
        self,
        puts: Iterable[Put] = (),
        deletes: Iterable[KeyPart | Key] = (),
        *,
        ttl: float | timedelta | datetime | None = None,
    ) -> None:
        """Stores ``puts`` (``(pk, item)`` or ``(pk, sk, item)``, each expiring after
        ``ttl`` when given) and removes ``deletes`` (``pk`` or ``(pk, sk)``) atomically:
        all of them or, on any error, none."""
        self._batch_write(puts, deletes, ttl)

    def __repr__(self) -> str:
        return f"<obj.Table {self.name!r}>"
