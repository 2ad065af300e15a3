"""The query builder and declarative field filters.

``db.query(Order)`` (typed results) or ``db.query("events")`` (dict results) returns an
immutable :class:`Query`; each builder call returns a new one::

    from obj import field

    top = (db.query(Order)
             .filter(field("status") == "shipped")     # runs inside the engine
             .filter(lambda o: o.total > 100)           # a Python predicate
             .sort_by("total", reverse=True)
             .limit(10)
             .fetch())

Field filters (:func:`field`) are evaluated by the engine on the stored bytes, with no
Python object built for records that do not match, and an equality or range on an indexed
field uses the index. Python callables run on the decoded documents the field filters let
through. All filters are AND-combined.

Comparison rules for field filters: ints and floats compare numerically (a bool is not a
number); ``==``, ``<``, ``<=``, ``>`` and ``>=`` are false for any other type mismatch, for
NaN and for a missing field; ``!=`` is exactly ``~(==)``, so it is true for all of those; ``~``
negates any filter. :meth:`Field.exists` is false and :meth:`Field.is_none` true for a
missing field.

Sort order: :meth:`Query.sort_by` orders values the way index keys do, whether or not an
index is read: ``None`` < bools < numbers (ints and floats together, NaN last) < str <
bytes < dates < datetimes < UUIDs < lists < dicts; a missing field sorts as ``None``; ties
come in id order, and ``reverse=True`` is the exact reverse (ids descending among equals).
A key callable's results are ordered by the same rule.

Without :meth:`Query.sort_by`, results come in id order from a scan and in index key order
(ties by id) when the engine reads an index. :meth:`Query.explain` says which.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Callable, Generic, Protocol, TypeVar

from ._obj import sort_key as _sort_key
from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from ._obj import QueryCursor

__all__ = ["MAX_SORT_BUFFER", "Expr", "Field", "Query", "field"]

T = TypeVar("T")

#: How many records a sort may hold in memory unless a query overrides it with
#: :meth:`Query.sort_buffer_limit`. Reassign ``obj.MAX_SORT_BUFFER`` to change the default.
MAX_SORT_BUFFER = 100_000

_DEFAULT_SORT_BUFFER = MAX_SORT_BUFFER


def _default_sort_cap() -> int:
    """The sort cap in force: ``obj.MAX_SORT_BUFFER`` (or this module's, if only that one
    was changed)."""
    package = sys.modules.get(__package__ or "obj")
    value = getattr(package, "MAX_SORT_BUFFER", _DEFAULT_SORT_BUFFER)
    if value == _DEFAULT_SORT_BUFFER:
        value = MAX_SORT_BUFFER
    return _count_arg("obj.MAX_SORT_BUFFER", value)


#: Documents fetched from the engine per step.
_BATCH = 256

Node = tuple[Any, ...]


class Expr:
    """A filter built from :func:`field` comparisons, combined with ``&``, ``|`` and ``~``::

    cheap_or_vip = (field("total") < 10) | field("tags").contains("vip")
    """

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node

    def __and__(self, other: Expr) -> Expr:
        return Expr(("and", [self.node, _expr(other).node]))

    def __or__(self, other: Expr) -> Expr:
        return Expr(("or", [self.node, _expr(other).node]))

    def __rand__(self, other: object) -> Expr:
        return _expr(other) & self

    def __ror__(self, other: object) -> Expr:
        return _expr(other) | self

    def __invert__(self) -> Expr:
        return Expr(("not", self.node))

    def __bool__(self) -> bool:
        raise InvalidArgumentError(
            "combine field filters with &, | and ~ (not with and/or/not), "
            "and compare each field on its own: (field('a') > 1) & (field('a') < 5)"
        )

    def __repr__(self) -> str:
        return _show(self.node)


#: How each comparison is written in Python.
_SYMBOLS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _show(node: Node) -> str:
    op = node[0]
    if op in ("and", "or"):
        joiner = " & " if op == "and" else " | "
        return "(" + joiner.join(_show(n) for n in node[1]) + ")"
    if op == "not":
        return f"~{_show(node[1])}"
    if op == "cmp":
        return f"field({node[1]!r}) {_SYMBOLS[node[2]]} {node[3]!r}"
    args = ", ".join(repr(a) for a in node[2:])
    return f"field({node[1]!r}).{op}({args})"


def _expr(value: object) -> Expr:
    if not isinstance(value, Expr):
        raise InvalidArgumentError(
            f"field filters combine only with other field filters, got {type(value).__name__}"
        )
    return value


class Field:
    """A document field by dotted path (``"address.city"``); compare it to build a filter."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
            raise InvalidArgumentError(
                f"a field path is a dotted name such as 'address.city', got {path!r}"
            )
        self.path = path

    def _cmp(self, op: str, value: object) -> Expr:
        return Expr(("cmp", self.path, op, _operand(self, op, value)))

    def __eq__(self, value: object) -> Expr:  # type: ignore[override]
        return self._cmp("eq", value)

    def __ne__(self, value: object) -> Expr:  # type: ignore[override]
        return self._cmp("ne", value)

    def __lt__(self, value: object) -> Expr:
        return self._cmp("lt", value)

    def __le__(self, value: object) -> Expr:
        return self._cmp("le", value)

    def __gt__(self, value: object) -> Expr:
        return self._cmp("gt", value)

    def __ge__(self, value: object) -> Expr:
        return self._cmp("ge", value)

    __hash__ = None  # type: ignore[assignment]

    def is_in(self, values: Iterable[object]) -> Expr:
        """True when the field equals one of ``values`` (a list, tuple, set or other
        iterable)."""
        if isinstance(values, (str, bytes, bytearray, memoryview)) or not isinstance(
            values, Iterable
        ):
            raise InvalidArgumentError(
                f"is_in() takes a collection of values (a list, tuple or set), "
                f"got {type(values).__name__}"
            )
        return Expr(("in", self.path, [_operand(self, "is_in", v) for v in values]))

    def startswith(self, prefix: str) -> Expr:
        """True when the field is a str starting with ``prefix``."""
        if not isinstance(prefix, str):
            raise InvalidArgumentError(f"startswith() takes a str, got {type(prefix).__name__}")
        return Expr(("startswith", self.path, prefix))

    def contains(self, value: object) -> Expr:
        """True when the field is a list holding ``value``, or a str holding ``value`` (a
        str) as a substring: ``field("tags").contains("vip")``, ``field("s").contains("wor")``;
        false for any other field. An ``Each`` index answers it for list fields."""
        return Expr(("contains", self.path, _operand(self, "contains", value)))

    def exists(self) -> Expr:
        """True when the document has the field (even if its value is None)."""
        return Expr(("exists", self.path))

    def not_exists(self) -> Expr:
        """True when the document lacks the field (``~field(path).exists()``); on a table,
        ``obj.field("pk").not_exists()`` as a put's condition writes only a new item."""
        return ~self.exists()

    def is_none(self) -> Expr:
        """True when the field is None or missing."""
        return Expr(("is_none", self.path))

    def __repr__(self) -> str:
        return f"field({self.path!r})"


def field(path: str) -> Field:
    """The field at ``path``, for a declarative filter: ``obj.field("total") > 100``."""
    return Field(path)


def _operand(f: Field, op: str, value: object) -> object:
    """A value to compare a field with; fields and filters are refused here, at the call
    (other values are converted, and checked, when the query runs)."""
    if isinstance(value, (Field, Expr)):
        raise InvalidArgumentError(
            f"{f!r} {_SYMBOLS.get(op, op + '()')}: compare a field with a value, not with "
            f"{value!r} "
            "(filters compare each field with a constant)"
        )
    return value


def _node_paths(node: object) -> Iterator[str]:
    """The field paths of a filter node (a malformed node is reported when it runs)."""
    if not isinstance(node, tuple) or len(node) < 2:
        return
    op, arg = node[0], node[1]
    if op in ("and", "or") and isinstance(arg, (list, tuple)):
        for n in arg:
            yield from _node_paths(n)
    elif op == "not":
        yield from _node_paths(arg)
    elif isinstance(arg, str):
        yield arg


def _check_paths(target: Any, paths: Iterable[str], what: str) -> None:
    """For a document class, refuses a path that names no field of it (a collection name
    takes any path: a missing field is part of its filter semantics)."""
    doctype = getattr(target, "__obj_doctype__", None) if isinstance(target, type) else None
    if doctype is not None:
        for path in paths:
            doctype.check_path(path, what)


class _Source(Protocol):
    """What a query runs on: a ``Db`` or a transaction."""

    def _query_cursor(
        self,
        target: Any,
        node: Node | None,
        index_range: tuple[str, Any, Any] | None,
        sort_field: str | None,
        reverse: bool,
        decode: bool,
        /,
    ) -> QueryCursor[Any]: ...


#: The largest count a query takes (the 64-bit limit of the engine and of ``itertools``).
_MAX_COUNT = 2**63 - 1


def _count_arg(what: str, n: object) -> int:
    """``n`` as a count: an int (or ``__index__`` object, not a bool) from 0 to 2**63 - 1."""
    value: int | None = None
    if not isinstance(n, bool):
        try:
            value = operator.index(n)  # type: ignore[arg-type]
        except TypeError:
            value = None
    if value is None or not 0 <= value <= _MAX_COUNT:
        raise InvalidArgumentError(f"{what} takes an int from 0 to 2**63 - 1, got {n!r}")
    return value


Row = tuple[int, T]


class Query(Generic[T]):
    """A lazy, immutable query.

    Build it with :meth:`filter`, :meth:`sort_by`, :meth:`limit`, :meth:`offset`,
    :meth:`index_range` and :meth:`sort_buffer_limit` (each returns a new query); run it
    with :meth:`fetch`, :meth:`first`, :meth:`ids`, :meth:`count` or by iterating, which
    streams results in batches.
    """

    __slots__ = (
        "_exprs",
        "_limit",
        "_offset",
        "_predicates",
        "_range",
        "_reverse",
        "_sort",
        "_sort_cap",
        "_source",
        "_target",
    )

    def __init__(self, source: _Source, target: Any) -> None:
        self._source = source
        self._target = target
        self._exprs: tuple[Expr, ...] = ()
        self._predicates: tuple[Callable[[T], object], ...] = ()
        self._sort: str | Callable[[T], Any] | None = None
        self._reverse = False
        self._limit: int | None = None
        self._offset = 0
        self._range: tuple[str, Any, Any] | None = None
        self._sort_cap: int | None = None

    def _copy(self, **changes: Any) -> Query[T]:
        q: Query[T] = Query.__new__(Query)
        for name in Query.__slots__:
            setattr(q, name, changes.get(name[1:], getattr(self, name)))
        return q

    # -- building -------------------------------------------------------------------

    def filter(self, condition: Expr | Callable[[T], object]) -> Query[T]:
        """Keeps documents matching a field filter, or for which a callable returns true.
        For a document class, a field path must name one of its fields."""
        if isinstance(condition, Expr):
            _check_paths(self._target, _node_paths(condition.node), "filter()")
            return self._copy(exprs=(*self._exprs, condition))
        if isinstance(condition, Field):
            raise InvalidArgumentError(
                f"filter() needs a comparison, e.g. {condition!r} == value, "
                f"or {condition!r}.exists()"
            )
        if callable(condition):
            return self._copy(predicates=(*self._predicates, condition))
        raise InvalidArgumentError(
            "filter() takes an obj.field(...) expression or a callable, "
            f"got {type(condition).__name__}"
        )

    def sort_by(self, key: str | Callable[[T], Any], reverse: bool = False) -> Query[T]:
        """Orders results by a field path (streamed from an index of that field, either
        way round, when there is one) or by what a key callable returns, in the order index
        keys have (see the module docs), ties by id; ``reverse=True`` for the exact reverse.
        For a document class, a field path must name one of its fields."""
        if isinstance(key, str):
            Field(key)
            _check_paths(self._target, [key], "sort_by()")
        elif not callable(key):
            raise InvalidArgumentError(
                f"sort_by() takes a field path or a key callable, got {type(key).__name__}"
            )
        if not isinstance(reverse, bool):
            raise InvalidArgumentError(
                f"sort_by() takes reverse=True or reverse=False, got {reverse!r}"
            )
        return self._copy(sort=key, reverse=reverse)

    def limit(self, n: int) -> Query[T]:
        """Returns at most ``n`` results."""
        return self._copy(limit=_count_arg("limit()", n))

    def offset(self, n: int) -> Query[T]:
        """Skips the first ``n`` results."""
        return self._copy(offset=_count_arg("offset()", n))

    def index_range(self, index: str, lo: Any = None, hi: Any = None) -> Query[T]:
        """Reads only the documents whose ``index`` value lies in ``lo..hi`` (inclusive;
        None leaves a side open; a shorter tuple is a prefix of a composite key)."""
        if not isinstance(index, str) or not index:
            raise InvalidArgumentError("index_range() needs an index name (a str)")
        return self._copy(range=(index, lo, hi))

    def sort_buffer_limit(self, n: int) -> Query[T]:
        """Overrides :data:`obj.MAX_SORT_BUFFER` for this query."""
        return self._copy(sort_cap=_count_arg("sort_buffer_limit()", n))

    # -- running --------------------------------------------------------------------

    def _node(self) -> Node | None:
        if not self._exprs:
            return None
        if len(self._exprs) == 1:
            return self._exprs[0].node
        return ("and", [e.node for e in self._exprs])

    def _open(self, decode: bool) -> QueryCursor[Any]:
        sort_field = self._sort if isinstance(self._sort, str) else None
        return self._source._query_cursor(
            self._target, self._node(), self._range, sort_field, self._reverse, decode
        )

    def explain(self) -> str:
        """How the query runs: ``"index <name> [lo .. hi]"`` or ``"scan"``, then
        ``" + filter"`` for a field filter the engine applies, ``" (sorted by index)"`` or
        ``" (sorted by index, descending)"`` when the index yields the order, ``" + python
        filter"`` for callables, and ``" + sort"`` when results are sorted in memory."""
        cursor = self._open(decode=False)
        plan = str(cursor.explain())
        if self._predicates:
            plan += " + python filter"
        if self._sort is not None and not cursor.sorted_by_index:
            plan += " + sort"
        return plan

    def _matching(self, cursor: QueryCursor[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows that pass the callables: ``(id, doc)``, or ``(id, doc, sort_key)`` when the
        engine hands out sort keys for an in-memory sort by field."""
        preds = self._predicates
        while True:
            batch = cursor.next_batch(_BATCH)
            if not batch:
                return
            if preds:
                for row in batch:
                    if all(p(row[1]) for p in preds):
                        yield row
            else:
                yield from batch

    def _run(self, cursor: QueryCursor[Any]) -> Iterator[Row[T]]:
        rows: Iterator[Any] = self._matching(cursor)
        if self._sort is not None and not cursor.sorted_by_index:
            rows = iter(self._sorted(rows))
        start = min(self._offset, sys.maxsize)
        stop = None if self._limit is None else min(self._offset + self._limit, sys.maxsize)
        return itertools.islice(rows, start, stop)

    def _sorted(self, rows: Iterator[tuple[Any, ...]]) -> list[Row[T]]:
        """The rows in sort order: by (sort key, id), keys from the engine for a field and
        from :func:`obj._obj.sort_key` for a callable's results, so both order alike."""
        cap = _default_sort_cap() if self._sort_cap is None else self._sort_cap
        key: Callable[[tuple[Any, ...]], tuple[bytes, int]]
        if isinstance(self._sort, str):

            def key(row: tuple[Any, ...]) -> tuple[bytes, int]:
                return (row[2], row[0])

        else:
            key_of: Callable[[Any], Any] = self._sort  # type: ignore[assignment]

            def key(row: tuple[Any, ...]) -> tuple[bytes, int]:
                return (_sort_key(key_of(row[1])), row[0])

        keep = None if self._limit is None else self._offset + self._limit
        if keep is not None and keep <= cap:
            # Top-k: a heap of the best `keep` rows, whatever the number of matches. Keys
            # end with the id, so no two are equal and reverse is the exact reverse.
            pick = heapq.nlargest if self._reverse else heapq.nsmallest
            return [(row[0], row[1]) for row in pick(keep, rows, key=key)]
        held: list[tuple[Any, ...]] = []
        for row in rows:
            held.append(row)
            if len(held) > cap:
                raise InvalidArgumentError(
                    f"this sort would hold more than {cap} records (obj.MAX_SORT_BUFFER); "
                    "add .limit(n) to keep only the best n, narrow the query, sort by an "
                    "indexed field, or raise the cap with .sort_buffer_limit(n)"
                )
        held.sort(key=key, reverse=self._reverse)
        return [(row[0], row[1]) for row in held]

    def __iter__(self) -> Iterator[Row[T]]:
        """Streams ``(id, document)`` pairs (a sort first collects what it needs)."""
        return self._run(self._open(decode=True))

    def fetch(self) -> list[Row[T]]:
        """All results as a list of ``(id, document)``."""
        return list(self)

    def first(self) -> Row[T] | None:
        """The first result, or None."""
        q = self if self._limit is not None and self._limit <= 1 else self.limit(1)
        return next(iter(q), None)

    def ids(self) -> list[int]:
        """The ids of the results; no document is built unless a callable needs it (a sort
        by field reads its keys in the engine)."""
        decode = bool(self._predicates) or callable(self._sort)
        return [oid for oid, _ in self._run(self._open(decode))]

    def count(self) -> int:
        """How many documents match (after offset and limit). Without callables the engine
        counts on the stored bytes (or reads the collection's count when nothing filters),
        building no documents."""
        if self._predicates:
            n = sum(1 for _ in self._matching(self._open(decode=True)))
        else:
            n = int(self._open(decode=False).count())
        n = max(0, n - self._offset)
        return n if self._limit is None else min(n, self._limit)

    def __repr__(self) -> str:
        parts = [f"query({getattr(self._target, '__name__', self._target)!r})"]
        parts += [f".filter({e!r})" for e in self._exprs]
        parts += [".filter(<callable>)" for _ in self._predicates]
        if self._range:
            parts.append(f".index_range{self._range!r}")
        if self._sort is not None:
            parts.append(f".sort_by({self._sort!r}, reverse={self._reverse})")
        if self._offset:
            parts.append(f".offset({self._offset})")
        if self._limit is not None:
            parts.append(f".limit({self._limit})")
        if self._sort_cap is not None:
            parts.append(f".sort_buffer_limit({self._sort_cap})")
        return "".join(parts)
