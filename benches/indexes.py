"""Secondary indexes: unique lookups and equality ranges as the collection grows, next to
sqlite3 with expression indexes on a JSON text column, in the same run.

    python benches/indexes.py [--sizes 10000,100000,1000000] [--lookups N] [--rounds R]

Each document has a unique ``email`` and a ``bucket`` shared by exactly 10 documents, so an
equality range returns the same number of documents at every size: its cost, like a
unique lookup's, must stay flat (O(log n + k)). Both systems return dataclass instances:
obj through ``find_unique`` / ``index_range`` (inside one read transaction), sqlite3
through ``json_extract`` expression indexes and ``Item(**json.loads(text))``.

Target (issue 5): at least 2x sqlite3, flat from 10^4 to 10^6 documents.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
from dataclasses import dataclass
from typing import Annotated

from harness import Table, best, scratch_dir

import obj


@obj.document(collection="bench_items", version=1)
@dataclass
class Item:
    email: Annotated[str, obj.Unique]
    bucket: Annotated[int, obj.Index]
    name: str
    score: float


def make(i: int) -> Item:
    return Item(f"user{i}@example.com", i // 10, f"item number {i}", i * 0.5)


def build_obj(path: str, n: int) -> None:
    with obj.Db(path, durability="none") as db:
        for start in range(0, n, 100_000):
            with db.transaction() as tx:
                ins = tx.insert
                for i in range(start, min(n, start + 100_000)):
                    ins(make(i))


def build_sqlite(path: str, n: int) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, doc TEXT)")
    con.execute("CREATE UNIQUE INDEX items_email ON items (json_extract(doc, '$.email'))")
    con.execute("CREATE INDEX items_bucket ON items (json_extract(doc, '$.bucket'))")
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO items (doc) VALUES (?)", ((json.dumps(make(i).__dict__),) for i in range(n))
    )
    con.execute("COMMIT")
    con.close()


CACHE = 256 << 20


def run(tmp: str, n: int, lookups: int, rounds: int) -> dict[str, dict[str, float]]:
    rng = random.Random(n)
    emails = [f"user{rng.randrange(n)}@example.com" for _ in range(lookups)]
    buckets = [rng.randrange(n // 10) for _ in range(lookups)]
    obj_path, sqlite_path = os.path.join(tmp, f"i{n}.obj"), os.path.join(tmp, f"i{n}.db")
    build_obj(obj_path, n)
    build_sqlite(sqlite_path, n)
    out: dict[str, dict[str, float]] = {"obj": {}, "sqlite3": {}}

    with obj.Db(obj_path, cache_size=CACHE) as db, db.read_transaction() as tx:

        def obj_unique() -> int:
            find = tx.find_unique
            for e in emails:
                find(Item, "email", e)
            return len(emails)

        def obj_range() -> int:
            rng_ = tx.index_range
            for b in buckets:
                list(rng_(Item, "bucket", b, b))
            return len(buckets)

        assert len(list(tx.index_range(Item, "bucket", 3, 3))) == 10
        out["obj"]["find_unique"] = best(rounds, obj_unique)
        out["obj"]["index_range equality (k=10)"] = best(rounds, obj_range)

    con = sqlite3.connect(sqlite_path, isolation_level=None)
    loads = json.loads

    def sqlite_unique() -> int:
        con.execute("BEGIN")
        ex = con.execute
        for e in emails:
            row = ex(
                "SELECT doc FROM items WHERE json_extract(doc, '$.email') = ?", (e,)
            ).fetchone()
            Item(**loads(row[0]))
        con.execute("COMMIT")
        return len(emails)

    def sqlite_range() -> int:
        con.execute("BEGIN")
        ex = con.execute
        for b in buckets:
            [
                (i, Item(**loads(d)))
                for i, d in ex(
                    "SELECT id, doc FROM items WHERE json_extract(doc, '$.bucket') = ? ORDER BY id",
                    (b,),
                )
            ]
        con.execute("COMMIT")
        return len(buckets)

    plan = con.execute(
        "EXPLAIN QUERY PLAN SELECT doc FROM items WHERE json_extract(doc, '$.email') = ?", ("x",)
    ).fetchall()
    assert "items_email" in str(plan), plan
    out["sqlite3"]["find_unique"] = best(rounds, sqlite_unique)
    out["sqlite3"]["index_range equality (k=10)"] = best(rounds, sqlite_range)
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache-mib", type=int, default=256, help="obj page cache (MiB)")
    args = parser.parse_args()
    global CACHE
    CACHE = args.cache_mib << 20
    sizes = [int(s) for s in args.sizes.split(",")]
    table = Table(
        f"secondary indexes: {args.lookups:,} lookups per size, best of {args.rounds} rounds "
        f"(obj {obj.__version__}, sqlite {sqlite3.sqlite_version})",
        ["obj", "sqlite3"],
    )
    by_size: dict[int, dict[str, dict[str, float]]] = {}
    with scratch_dir("obj-bench-idx-") as tmp:
        for n in sizes:
            by_size[n] = run(tmp, n, args.lookups, args.rounds)
            for op in by_size[n]["obj"]:
                table.add(f"{op} n={n:,}", {s: r[op] for s, r in by_size[n].items()})
    print(table.render())
    first, last = by_size[sizes[0]]["obj"], by_size[sizes[-1]]["obj"]
    for op in first:
        worst = min(by_size[n]["sqlite3"][op] / by_size[n]["obj"][op] for n in sizes)
        print(
            f"{op}: obj cost at n={sizes[-1]:,} / n={sizes[0]:,} = {last[op] / first[op]:.2f} "
            f"(flat is ~1); slowest ratio vs sqlite3 {worst:.2f}x (target >= 2x)"
        )


if __name__ == "__main__":
    main()
