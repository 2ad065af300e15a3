"""What :meth:`obj.Db.stat` reports about a database."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CollectionStat", "IndexStat", "Stat"]


@dataclass(frozen=True)
class IndexStat:
    """One secondary index of a collection."""

    #: The field name for a field index, the declared name for a composite.
    name: str
    #: ``"standard"``, ``"unique"``, ``"each"`` or ``"composite"``.
    kind: str
    #: The dotted field paths the index reads, in key order.
    key_paths: list[str]
    #: ``"ready"`` once built, ``"building"`` before.
    status: str
    #: Bytes of the pages the index occupies.
    file_size_bytes: int


@dataclass(frozen=True)
class CollectionStat:
    """One collection: its documents, the space they take, its indexes."""

    name: str
    doc_count: int
    #: Bytes of the pages the collection owns (documents, overflow pages and indexes).
    file_size_bytes: int
    indexes: tuple[IndexStat, ...]


@dataclass(frozen=True)
class Stat:
    """Sizes and counts of the latest commit::

    for cs in db.stat().collections:
        print(cs.name, cs.doc_count, [(i.name, i.status) for i in cs.indexes])
    """

    page_size: int
    page_count: int
    free_pages: int
    wal_frames: int
    collections: tuple[CollectionStat, ...]

    def collection(self, name: str) -> CollectionStat | None:
        """The collection called ``name``, or None."""
        return next((c for c in self.collections if c.name == name), None)
