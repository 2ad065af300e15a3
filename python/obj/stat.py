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
    #: ``"id"`` (documents under engine-assigned ids), ``"keyed"`` (under caller-given
    #: keys: an :class:`obj.Store` or :class:`obj.Table`), ``"blobs"`` (the headers of an
    #: :class:`obj.BlobStore`, one per blob), ``"blob chunks"`` (its content) or
    #: ``"column <dtype>"`` (an :class:`obj.Column`: its header and chunks).
    kind: str = "id"
    #: Items of a table that have expired (``ttl``) but still take space, until later
    #: writes to the table or :meth:`Db.compact` reclaim them. ``doc_count`` includes them;
    #: the table's reads (and :meth:`Table.count`) do not.
    expired: int = 0


@dataclass(frozen=True, repr=False)
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
    #: The latest commit's sequence number.
    commit_seq: int = 0
    #: Live snapshots on the file: read transactions, iterators and query results not yet
    #: exhausted or closed, of this handle and of every other process (and handle) that
    #: has the file open. Each keeps the log from being reset past its commit.
    readers: int = 0
    #: The commit the oldest live snapshot reads, in any process (None without readers,
    #: or when only another process's reader is older than this handle knows): a reader
    #: many commits behind ``commit_seq`` is what keeps ``wal_frames`` growing.
    oldest_snapshot_seq: int | None = None
    #: Seconds the oldest live snapshot has been open (None without readers).
    oldest_snapshot_age: float | None = None
    #: Of ``readers``, those of other handles on the file: other processes (and other
    #: ``Db`` handles in this one).
    other_readers: int = 0
    #: Read marks those snapshots hold (snapshots of one commit share a mark).
    other_read_marks: int = 0
    #: The oldest commit another handle's snapshot reads, numbered like ``commit_seq``
    #: (None when no other handle reads, or that commit is older than this handle knows).
    other_oldest_seq: int | None = None

    def collection(self, name: str) -> CollectionStat | None:
        """The collection called ``name``, or None."""
        return next((c for c in self.collections if c.name == name), None)

    def __repr__(self) -> str:
        names = ", ".join(f"{c.name!r}: {c.doc_count}" for c in self.collections)
        return (
            f"<obj.Stat page_size={self.page_size} page_count={self.page_count} "
            f"free_pages={self.free_pages} wal_frames={self.wal_frames} "
            f"collections={{{names}}}>"
        )

    def _describe_readers(self) -> str:
        if self.oldest_snapshot_seq is None:
            return f"{self.readers}"
        behind = self.commit_seq - self.oldest_snapshot_seq
        age = self.oldest_snapshot_age or 0.0
        return (
            f"{self.readers} (the oldest reads commit {self.oldest_snapshot_seq:,}, "
            f"{behind:,} behind, open for {age:.1f} s)"
        )

    def _describe_others(self) -> str:
        if not self.other_read_marks:
            return "no reader in another process or handle"
        text = f"{self.other_readers} readers on {self.other_read_marks} read marks"
        if self.other_oldest_seq is not None:
            text += f" (the oldest reads commit {self.other_oldest_seq:,})"
        return text

    def describe(self) -> str:
        """A multi-line, human-readable summary (what ``python -m obj stat`` prints)."""
        lines = [
            f"page size     {self.page_size:,} bytes",
            f"pages         {self.page_count:,} ({self.page_count * self.page_size:,} bytes)",
            f"free pages    {self.free_pages:,}",
            f"wal frames    {self.wal_frames:,}",
            f"commit        {self.commit_seq:,}",
            f"readers       {self._describe_readers()}",
            f"elsewhere     {self._describe_others()}",
            f"collections   {len(self.collections)}",
        ]
        for c in self.collections:
            lines.append(
                f"  {c.name}: {c.doc_count:,} documents, {c.file_size_bytes:,} bytes ({c.kind})"
            )
            for i in c.indexes:
                paths = ", ".join(i.key_paths)
                lines.append(
                    f"    index {i.name} ({i.kind} on {paths}): {i.status}, "
                    f"{i.file_size_bytes:,} bytes"
                )
        return "\n".join(lines)
