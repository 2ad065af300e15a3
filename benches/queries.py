"""Queries: a selective filter on an unindexed field over a large collection, as a
declarative expression (run in the engine), as a Python lambda, and in sqlite3 with
``json_extract``; plus an indexed equality query as the collection grows.

    python benches/queries.py [--docs N] [--rounds R] [--sizes 10000,100000,1000000]

All three filters return the same documents as dataclass instances (sqlite3 decodes its
JSON rows into them). The expression is evaluated on the stored bytes, decoding only the
field it reads; the lambda needs every document built as a Python object first.

Targets (issue 6): expression >= 5x the lambda and >= 1x sqlite3; an indexed equality
query costs O(log n + k).
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
from obj import field


@obj.document(collection="bench_query_orders", version=1)
@dataclass
class Order:
    customer_id: int
    total: float
    status: str
    email: str
    tags: list[str]
    bucket: Annotated[int, obj.Index]


def make(i: int, n: int) -> Order:
    statuses = ["new", "paid", "shipped", "returned"]
    return Order(
        (i * 7919) % n,  # a permutation of 0..n-1 (n is not a multiple of 7919)
        i * 1.25,
        statuses[i % 4],
        f"customer{i}@example.com",
        ["web", "eu"][: i % 3],
        i // 10,
    )


def build(tmp: str, n: int) -> tuple[str, str]:
    """Both databases with ``n`` documents (built once per size and run)."""
    obj_path, sqlite_path = os.path.join(tmp, f"q{n}.obj"), os.path.join(tmp, f"q{n}.db")
    if os.path.exists(sqlite_path):
        return obj_path, sqlite_path
    with obj.Db(obj_path, durability="none") as db:
        for start in range(0, n, 100_000):
            with db.transaction() as tx:
                ins = tx.insert
                for i in range(start, min(n, start + 100_000)):
                    ins(make(i, n))
    con = sqlite3.connect(sqlite_path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, doc TEXT)")
    con.execute("CREATE INDEX orders_bucket ON orders (json_extract(doc, '$.bucket'))")
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO orders (doc) VALUES (?)",
        ((json.dumps(make(i, n).__dict__),) for i in range(n)),
    )
    con.execute("COMMIT")
    con.close()
    return obj_path, sqlite_path


def filters(tmp: str, n: int, rounds: int, cache: int) -> Table:
    obj_path, sqlite_path = build(tmp, n)
    table = Table(
        f"selective filter on an unindexed field over {n:,} documents, best of {rounds} "
        "(µs per query; ratios against the obj expression)",
        ["obj", "obj lambda", "sqlite3"],
    )
    loads = json.loads
    with obj.Db(obj_path, cache_size=cache) as db:
        con = sqlite3.connect(sqlite_path, isolation_level=None)
        for label, target, expr, pred, sql, args in [
            (
                "customer_id == 4242 (1 match)",
                4242,
                field("customer_id") == 4242,
                lambda o: o.customer_id == 4242,
                "json_extract(doc, '$.customer_id') = ?",
                (4242,),
            ),
            (
                "customer_id < 1000 (0.1%)",
                1000,
                field("customer_id") < 1000,
                lambda o: o.customer_id < 1000,
                "json_extract(doc, '$.customer_id') < ?",
                (1000,),
            ),
        ]:
            expected = 1 if target == 4242 else min(n, 1000)

            def run_expr(expr: obj.Expr = expr, expected: int = expected) -> int:
                assert len(db.query(Order).filter(expr).fetch()) == expected
                return 1

            def run_lambda(pred: object = pred, expected: int = expected) -> int:
                assert len(db.query(Order).filter(pred).fetch()) == expected  # type: ignore[arg-type]
                return 1

            def run_sqlite(
                sql: str = sql, args: tuple[int] = args, expected: int = expected
            ) -> int:
                rows = [
                    (i, Order(**loads(d)))
                    for i, d in con.execute(f"SELECT id, doc FROM orders WHERE {sql}", args)
                ]
                assert len(rows) == expected
                return 1

            assert db.query(Order).filter(expr).explain().startswith("scan")
            table.add(
                label,
                {
                    "obj": best(rounds, run_expr),
                    "obj lambda": best(rounds, run_lambda),
                    "sqlite3": best(rounds, run_sqlite),
                },
            )
        con.close()
    return table


def indexed_at(tmp: str, n: int, lookups: int, rounds: int, cache: int) -> dict[str, float]:
    """Seconds per indexed equality query (10 matches) at ``n`` documents, per system."""
    obj_path, sqlite_path = build(tmp, n)
    rng = random.Random(n)
    buckets = [rng.randrange(n // 10) for _ in range(lookups)]
    with obj.Db(obj_path, cache_size=cache) as db, db.read_transaction() as tx:

        def run_obj() -> int:
            q = tx.query(Order)
            for b in buckets:
                q.filter(field("bucket") == b).fetch()
            return len(buckets)

        assert tx.query(Order).filter(field("bucket") == 1).explain().startswith("index")
        obj_cost = best(rounds, run_obj)
    con = sqlite3.connect(sqlite_path, isolation_level=None)
    loads = json.loads

    def run_sqlite() -> int:
        con.execute("BEGIN")
        for b in buckets:
            [
                (i, Order(**loads(d)))
                for i, d in con.execute(
                    "SELECT id, doc FROM orders WHERE json_extract(doc, '$.bucket') = ?",
                    (b,),
                )
            ]
        con.execute("COMMIT")
        return len(buckets)

    sqlite_cost = best(rounds, run_sqlite)
    con.close()
    return {"obj": obj_cost, "sqlite3": sqlite_cost}


def indexed(tmp: str, sizes: list[int], lookups: int, rounds: int, cache: int) -> Table:
    table = Table(
        f"indexed equality query (k=10), {lookups:,} queries per size, best of {rounds}",
        ["obj", "sqlite3"],
    )
    for n in sizes:
        table.add(f"bucket == b, n={n:,}", indexed_at(tmp, n, lookups, rounds, cache))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache-mib", type=int, default=256, help="obj page cache (MiB)")
    args = parser.parse_args()
    cache = args.cache_mib << 20
    with scratch_dir("obj-bench-query-") as tmp:
        table = filters(tmp, args.docs, args.rounds, cache)
        print(table.render())
        for name, res in table.rows:
            print(
                f"{name}: expression vs lambda {res['obj lambda'] / res['obj']:.2f}x "
                f"(target >= 5x), vs sqlite3 {res['sqlite3'] / res['obj']:.2f}x (target >= 1x)"
            )
        sizes = [int(s) for s in args.sizes.split(",")]
        print(indexed(tmp, sizes, args.lookups, args.rounds, cache).render())


if __name__ == "__main__":
    main()
