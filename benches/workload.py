"""The documents every system stores in ``benches/run.py`` and the interface each system
implements. One module so the harness and every adapter agree on shapes and meanings.

Documents are dicts ``{customer_id, total, status, region, tags, email}``; document ``i``
(0-based) gets id ``i + 1`` in every system, so a point get, a unique lookup and an index
range ask every system for the same documents:

- ``email`` is unique (``customer{i}@example.com``): the unique lookup.
- ``customer_id`` is ``i // 10``: an equality range on it returns 10 documents at any size.
- ``total`` is a pseudo-random float in [0, 1000): the unindexed selective filter asks for
  ``total >= FILTER_FROM`` (about 0.1% of the documents).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "FILTER_FROM",
    "RANGE_SIZE",
    "System",
    "Unsupported",
    "make_docs",
    "tree_bytes",
]

Doc = dict[str, Any]

RANGE_SIZE = 10
FILTER_FROM = 999.0
_STATUSES = ("new", "paid", "shipped", "returned")
_REGIONS = ("eu", "us", "apac", "latam", "mea")
_TAGS = ("web", "mobile", "gift", "promo", "repeat")


def make_doc(i: int, rng: random.Random) -> Doc:
    """Document ``i`` (id ``i + 1``); ``rng`` supplies its total and tags."""
    return {
        "customer_id": i // RANGE_SIZE,
        "total": round(rng.random() * 1000.0, 2),
        "status": _STATUSES[i % len(_STATUSES)],
        "region": _REGIONS[i % len(_REGIONS)],
        "tags": list(rng.sample(_TAGS, 1 + i % 3)),
        "email": f"customer{i}@example.com",
    }


def make_docs(start: int, stop: int, seed: int = 7) -> list[Doc]:
    """Documents ``start..stop`` (0-based), the same in every process for one seed."""
    rng = random.Random(seed * 1_000_003 + start)
    return [make_doc(i, rng) for i in range(start, stop)]


def chunks(n: int, size: int = 100_000) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``0..n`` in pieces of at most ``size``."""
    for start in range(0, n, size):
        yield start, min(n, start + size)


def tree_bytes(directory: str) -> int:
    """Bytes of every file under ``directory`` (a store and all its sidecar files)."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


class Unsupported(Exception):
    """Raised by a system for a workload it has no way to run (e.g. no secondary index)."""


class System:
    """One database, opened in a private directory of a worker process.

    Every timed method does the whole operation the way a user of that database would,
    including decoding each document to the user's form (a dict, or obj's dataclass), and
    returns a count the harness checks. ``durable`` commits wait for fsync; the harness
    only uses durable settings, but adapters take the flag so a relaxed run is one switch.
    """

    #: name in tables and JSON
    name = "?"
    #: modules that must import for the system to run (reported when missing)
    modules: tuple[str, ...] = ()
    #: the largest collection the system is run with (tinydb rewrites its file per write)
    max_n: int | None = None
    #: the most lookups per read workload and durable commits (for systems whose every
    #: operation reads or rewrites the whole file)
    max_ops: int | None = None
    #: how the system is configured, in one line, for the report
    config = ""

    def __init__(self, directory: str, durable: bool = True) -> None:
        self.directory = directory
        self.durable = durable

    # Lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Opens (creating if needed) the store in ``self.directory``."""
        raise NotImplementedError

    def close(self) -> None:
        """Closes the store; everything committed stays on disk."""
        raise NotImplementedError

    def prepare(self, docs: Sequence[Doc]) -> Sequence[Any]:
        """Turns the dicts into what a user would hand the system (untimed)."""
        return docs

    def disk_bytes(self) -> int:
        """Bytes the closed store takes on disk: every file in its private directory."""
        return tree_bytes(self.directory)

    # Writes ----------------------------------------------------------------------------
    def bulk_insert(self, docs: Sequence[Any]) -> None:
        """Stores ``docs`` (from ``prepare``) under the next ids in one transaction."""
        raise NotImplementedError

    def commit_each(self, docs: Sequence[Any]) -> None:
        """Stores each document in its own committed (durable) transaction."""
        raise NotImplementedError

    def update_totals(self, ids: Sequence[int]) -> int:
        """One transaction: read each id, add 1 to ``total``, write it back. Returns count."""
        raise NotImplementedError

    # Reads -----------------------------------------------------------------------------
    def get(self, ids: Sequence[int]) -> int:
        """Reads and decodes each id; returns how many were found."""
        raise NotImplementedError

    def scan(self) -> int:
        """Reads and decodes every document; returns how many."""
        raise NotImplementedError

    def unique(self, emails: Sequence[str]) -> int:
        """Finds the document of each email (unique index); returns how many were found."""
        raise Unsupported("no secondary index")

    def equal_range(self, customer_ids: Sequence[int]) -> int:
        """All documents of each customer id (index range); returns the total found."""
        raise Unsupported("no secondary index")

    def filter_total(self, low: float) -> int:
        """Documents with ``total >= low`` (no index on total); returns how many."""
        raise NotImplementedError
