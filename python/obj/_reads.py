"""The reads :class:`obj.Db`, :class:`obj.ReadTransaction` and :class:`obj.WriteTransaction`
share: the native ones (``get``, ``count``, ``all``, ``find_unique``, ``index_range``, ...,
from ``obj._obj.Reads``) and the Python conveniences over them, written once here.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar, overload

from . import _obj
from .document import doctype_of
from .errors import InvalidArgumentError
from .query import Query

__all__ = ["IndexInfo", "Reads"]

D = TypeVar("D")


class IndexInfo(NamedTuple):
    """One secondary index of a collection."""

    #: The field name for a field index, the declared name for a composite.
    name: str
    #: ``"standard"``, ``"unique"``, ``"each"`` or ``"composite"``.
    kind: str
    #: The dotted field paths the index reads, in key order.
    key_paths: list[str]
    #: ``"ready"`` once built (indexes are built in the write transaction that adds them).
    status: str


def _check_target(target: object) -> None:
    if isinstance(target, str):
        return
    doctype_of(target)
    if not isinstance(target, type):
        raise InvalidArgumentError(
            f"pass the document class ({type(target).__name__}), not one of its instances"
        )


class Reads(_obj.Reads):
    """The read surface of a database and of its transactions.

    Reads take an ``@obj.document`` class (they return instances) or a collection name
    (they return what was written). A name in an attached namespace (``"archive.orders"``,
    or a class declared for it) reads the attached database: from a :class:`obj.Db` on a
    snapshot taken for the read, from a transaction on the snapshot of that file it took
    at its first read there.
    """

    __slots__ = ()

    @overload
    def query(self, target: type[D]) -> Query[D]: ...
    @overload
    def query(self, target: str) -> Query[dict[str, Any]]: ...
    def query(self, target: Any) -> Query[Any]:
        """A lazy, immutable query over a document class (instances) or a collection name
        (dicts). From a :class:`obj.Db` it runs on a snapshot taken when results are first
        requested; in a transaction it reads what the transaction sees (a write
        transaction's own writes included)::

            big = db.query(Order).filter(obj.field("total") > 100).limit(10).fetch()
        """
        _check_target(target)
        return Query(self, target)

    def index_info(self, target: type | str) -> list[IndexInfo]:
        """The secondary indexes of a class's (or named) collection: name, kind, key paths
        and status. For a class, indexes it declares are built first if they are missing
        (a read transaction reports what its snapshot holds)."""
        return [
            IndexInfo(name, kind, list(paths), "ready" if ready else "building")
            for name, kind, paths, ready in self.indexes(target)
        ]
