"""SIGKILL while committing typed documents with indexes: every acknowledged commit is
present, none is partial, and every index equals a recomputation from the documents."""

from __future__ import annotations

import pathlib
import random
import sys
import time

import pytest

import obj

from .test_crash import run_and_kill as kill_writer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

# The class is defined in the child and here alike (same shape, same indexes).
CLASSES = r"""
from dataclasses import dataclass, field
from typing import Annotated
import obj

@obj.document(
    collection="crash_orders", version=1,
    indexes=[obj.Composite(("region", "status"), name="by_region_status")],
)
@dataclass
class Order:
    email: Annotated[str, obj.Unique]
    region: Annotated[str, obj.Index]
    tags: Annotated[list[str], obj.Each] = field(default_factory=list)
    status: str = "new"
    k: int = 0
"""

# Commit k inserts order k, marks order k-3 shipped (moving its index entries), deletes
# order k-10 every 5th commit, and records k in "meta"/1; "k" is printed after commit().
WRITER = (
    CLASSES
    + r"""
import sys

def order(k):
    return Order(email=f"u{k}@x", region=["us", "eu", "apac"][k % 3],
                 tags=[["vip"], ["new", "gift"], []][k % 3], status="new", k=k)

db = obj.Db(sys.argv[1], checkpoint_frames=50)
last = db.get("meta", 1)
k = int(last["k"]) + 1 if last else 1
while True:
    with db.transaction() as tx:
        tx.insert(order(k))
        if k > 3:
            tx.update(Order, k - 3, lambda o: setattr(o, "status", "shipped"))
        if k % 5 == 0 and k > 10:
            tx.delete(Order, k - 10)
        tx.upsert("meta", 1, {"k": k})
    print(k, flush=True)
    k += 1
"""
)

namespace: dict[str, object] = {}
exec(CLASSES, namespace)
Order = namespace["Order"]


def expected(last: int) -> dict[int, tuple[str, str, list[str], str]]:
    docs = {}
    for k in range(1, last + 1):
        docs[k] = (
            f"u{k}@x",
            ["us", "eu", "apac"][k % 3],
            [["vip"], ["new", "gift"], []][k % 3],
            "new",
        )
        if k - 3 in docs:
            e, r, t, _ = docs[k - 3]
            docs[k - 3] = (e, r, t, "shipped")
        if k % 5 == 0 and k > 10:
            docs.pop(k - 10, None)
    return docs


def run_and_kill(path: pathlib.Path, rng: random.Random) -> list[int]:
    return kill_writer(path, rng, WRITER, start_timeout=60, max_delay=0.3)


def check(path: pathlib.Path, acked: int) -> int:
    with obj.Db(path) as db:
        meta = db.get("meta", 1)
        last = int(meta["k"]) if meta else 0
        assert acked <= last <= acked + 1, (acked, last)
        want = expected(last)
        got = {o.k: (o.email, o.region, o.tags, o.status) for _, o in db.all(Order)}
        assert got == want
        # Every index equals what the documents say.
        for k, v in list(want.items())[:50]:
            found = db.find_unique(Order, "email", v[0])
            assert found is not None and found.k == k
        for region in ("us", "eu", "apac"):
            by_index = sorted(o.k for _, o in db.index_range(Order, "region", region, region))
            assert by_index == sorted(k for k, v in want.items() if v[1] == region)
            for status in ("new", "shipped"):
                ks = sorted(
                    o.k
                    for _, o in db.index_range(
                        Order, "by_region_status", (region, status), (region, status)
                    )
                )
                assert ks == sorted(k for k, v in want.items() if v[1] == region and v[3] == status)
        for tag in ("vip", "new", "gift"):
            ks = sorted(o.k for _, o in db.index_range(Order, "tags", tag, tag))
            assert ks == sorted(k for k, v in want.items() if tag in v[2])
        db.integrity_check()
        return last


def test_sigkill_with_typed_documents_and_indexes(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "typed-crash.obj"
    rng = random.Random(7)
    acked = 0
    rounds = 0
    deadline = time.monotonic() + 45
    while rounds < 12 and time.monotonic() < deadline:
        acks = run_and_kill(path, rng)
        if acks:
            # Each round resumes right after the last commit recovery found.
            assert acks[0] == acked + 1, (acked, acks[:3])
            acked = acks[-1]
        acked = check(path, acked)
        rounds += 1
    assert rounds >= 3 and acked > 20, (rounds, acked)
