"""Transactions, :class:`WriteTransaction` and :class:`ReadTransaction`, and the typed
collection handle :class:`Collection`.

The single-document methods (``insert``, ``get``, ``upsert``, ``delete``, ``count``,
``all``, ``find_unique``, ``index_range``, ...) are the native ones, inherited as they are;
the reads every reader has come from :class:`obj._reads.Reads`; this module adds the
conveniences of the transactions written in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable, Generic, TypeVar, overload

from . import _obj
from ._reads import IndexInfo, Reads
from .document import doctype_of, is_document
from .errors import InvalidArgumentError, NotFoundError

__all__ = ["Collection", "IndexInfo", "ReadTransaction", "WriteTransaction"]

D = TypeVar("D")


def _name_of(target: object) -> str:
    if isinstance(target, str):
        return repr(target)
    return getattr(target, "__name__", repr(target))


def _update(tx: WriteTransaction, target: Any, id: int, fn: Callable[[Any], Any]) -> Any:
    if not callable(fn):
        raise InvalidArgumentError(
            f"update() takes a function of the document, got {type(fn).__name__}"
        )
    _check_writable(target)
    doc = tx.get(target, id)
    if doc is None:
        raise NotFoundError(f"{_name_of(target)} has no document with id {id}")
    result = fn(doc)
    new = doc if result is None else result
    if isinstance(target, type) and type(new) is not target:
        raise InvalidArgumentError(
            f"update() function must change the {target.__name__} in place and return None, "
            f"or return a new {target.__name__}; it returned {type(new).__name__}"
        )
    tx.upsert(target, id, new)
    return new


class WriteTransaction(Reads, _obj.WriteTransaction):
    """The single write transaction of a database (from :meth:`obj.Db.transaction`).

    Inside ``with``, a clean exit commits and an exception rolls back. Reads see the
    transaction's own uncommitted writes; any use after it ended raises
    :class:`obj.ObjError`. Methods take an ``@obj.document`` class or instance for typed
    documents, or a collection name with bytes or a dict::

        with db.transaction() as tx:
            oid = tx.insert(Order(customer_id=1, total=9.5, status="new"))
            tx.update(Order, oid, lambda o: setattr(o, "status", "paid"))
            tx.insert("audit", {"event": "paid", "order": oid})
    """

    __slots__ = ()

    @overload
    def update(self, target: type[D], id: int, fn: Callable[[D], D | None]) -> D: ...
    @overload
    def update(self, target: str, id: int, fn: Callable[[Any], Any]) -> Any: ...
    def update(self, target: Any, id: int, fn: Callable[[Any], Any]) -> Any:
        """Reads document ``id``, passes it to ``fn`` and writes the result back.

        ``fn`` may change the document in place and return None, or return a new one.
        A missing ``id`` raises :class:`obj.NotFoundError`; an exception from ``fn``
        propagates and nothing is written. Returns the stored document.
        """
        return _update(self, target, id, fn)

    @overload
    def collection(self, target: type[D]) -> Collection[D]: ...
    @overload
    def collection(self, target: str) -> Collection[Any]: ...
    def collection(self, target: Any) -> Collection[Any]:
        """A handle bound to one document class (or collection name) in this transaction::

        orders = tx.collection(Order)
        oid = orders.insert(Order(...))
        orders.count_all()
        """
        return Collection(self, target)


class ReadTransaction(Reads, _obj.ReadTransaction):
    """A read-only snapshot of the latest commit (from :meth:`obj.Db.read_transaction`),
    released when its ``with`` block ends; any use after that raises
    :class:`obj.ObjError`::

        with db.read_transaction() as snap:
            order = snap.get(Order, 1)
            n = snap.count(Order)
    """

    __slots__ = ()


def _check_writable(target: object) -> None:
    """Refuses a write to a collection of an attached (read-only) namespace."""
    doctype = getattr(target, "__obj_doctype__", None) if isinstance(target, type) else None
    name = target if isinstance(target, str) else getattr(doctype, "collection", None)
    if isinstance(name, str) and "." in name:
        namespace = name.partition(".")[0]
        raise InvalidArgumentError(
            f"collection {name!r} is in namespace {namespace!r}: attached databases are "
            "read-only, so it cannot be written"
        )


class Collection(Generic[D]):
    """Typed access to one collection inside a write transaction (from
    :meth:`WriteTransaction.collection`). Every method acts in that transaction."""

    __slots__ = ("_target", "_tx")

    def __init__(self, tx: WriteTransaction, target: type[D] | str) -> None:
        if not isinstance(target, str) and not (isinstance(target, type) and is_document(target)):
            doctype_of(target)  # raises with the reason
            raise InvalidArgumentError(
                "collection() takes an @obj.document class or a collection name"
            )
        self._tx = tx
        self._target = target

    @property
    def target(self) -> type[D] | str:
        """The document class or collection name this handle is bound to."""
        return self._target

    def insert(self, doc: D) -> int:
        """Stores ``doc`` under a new id and returns the id."""
        target = self._target
        if isinstance(target, str):
            value: Any = doc
            return self._tx.insert(target, value)
        if not isinstance(doc, target):
            raise InvalidArgumentError(
                f"this handle stores {target.__name__} documents, got {type(doc).__name__}"
            )
        return self._tx.insert(doc)

    def get(self, id: int) -> D | None:
        """The document ``id``, or None."""
        doc: D | None = self._tx.get(self._target, id)
        return doc

    def update(self, id: int, fn: Callable[[D], D | None]) -> D:
        """Read-modify-write of document ``id`` (see :meth:`WriteTransaction.update`)."""
        doc: D = _update(self._tx, self._target, id, fn)
        return doc

    def upsert(self, id: int, doc: D) -> bool:
        """Stores ``doc`` under ``id``; True if it replaced a document."""
        target: Any = self._target
        return self._tx.upsert(target, id, doc)

    def delete(self, id: int) -> bool:
        """Removes document ``id``; True if it existed."""
        return self._tx.delete(self._target, id)

    def all(self) -> Iterator[tuple[int, D]]:
        """Lazy ``(id, document)`` pairs in id order."""
        return self._tx.all(self._target)

    def count_all(self) -> int:
        """Number of documents in the collection, this transaction's writes included."""
        return self._tx.count(self._target)

    def __repr__(self) -> str:
        return f"<obj.Collection {_name_of(self._target)}>"
