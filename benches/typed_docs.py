"""Typed documents: bulk insert in one transaction and point gets, next to sqlite3 (a JSON
text column) and lmdb (msgpack values), in the same run.

    python benches/typed_docs.py [--docs N] [--rounds R]

Every system stores the same dataclass documents and hands back dataclass instances:
obj through its typed codec (``tx.insert(order)``, ``tx.get(Order, id)``), sqlite3 as
``json.dumps(order.__dict__)`` / ``Order(**json.loads(text))``, lmdb as
``msgpack.packb(order.__dict__)`` / ``Order(**msgpack.unpackb(value))``. Commits are
durable (obj ``durability="immediate"``, sqlite3 WAL with ``synchronous=FULL``, lmdb
``sync=True``). Gets read random ids inside one read transaction, and (``db.get``) one
call per document with no explicit transaction.

Targets (issue 4): typed insert >= 2x sqlite3, typed get >= 3x sqlite3.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
from dataclasses import dataclass
from typing import Any

from harness import Table, best, optional_peer, scratch_dir

import obj


@obj.document(collection="bench_orders", version=1)
@dataclass
class Order:
    customer_id: int
    total: float
    status: str
    email: str
    tags: list[str]


def make_orders(n: int) -> list[Order]:
    statuses = ["new", "paid", "shipped", "returned"]
    return [
        Order(i, i * 1.25, statuses[i % 4], f"customer{i}@example.com", ["web", "eu"][: i % 3])
        for i in range(n)
    ]


def bench_obj(tmp: str, docs: list[Order], order: list[int], rounds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    counter = [0]

    def insert() -> int:
        counter[0] += 1
        with obj.Db(os.path.join(tmp, f"obj{counter[0]}.obj")) as db, db.transaction() as tx:
            ins = tx.insert
            for d in docs:
                ins(d)
        return len(docs)

    out["typed insert (1 txn)"] = best(rounds, insert)
    with obj.Db(os.path.join(tmp, "obj1.obj")) as db:

        def get_txn() -> int:
            with db.read_transaction() as tx:
                get = tx.get
                for i in order:
                    get(Order, i)
            return len(order)

        def get_db() -> int:
            get = db.get
            for i in order:
                get(Order, i)
            return len(order)

        out["typed get (read txn)"] = best(rounds, get_txn)
        out["typed get (no explicit txn)"] = best(rounds, get_db)
        assert db.get(Order, order[0]) == docs[order[0] - 1]
    return out


def bench_sqlite(tmp: str, docs: list[Order], order: list[int], rounds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    counter = [0]

    def connect(name: str) -> sqlite3.Connection:
        con = sqlite3.connect(os.path.join(tmp, name), isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, doc TEXT)")
        return con

    def insert() -> int:
        counter[0] += 1
        con = connect(f"sqlite{counter[0]}.db")
        cur = con.cursor()
        cur.execute("BEGIN")
        ex, dumps = cur.execute, json.dumps
        for d in docs:
            ex("INSERT INTO orders (doc) VALUES (?)", (dumps(d.__dict__),))
        cur.execute("COMMIT")
        con.close()
        return len(docs)

    out["typed insert (1 txn)"] = best(rounds, insert)
    con = connect("sqlite1.db")
    loads = json.loads

    def get_txn() -> int:
        cur = con.cursor()
        cur.execute("BEGIN")
        ex = cur.execute
        for i in order:
            Order(**loads(ex("SELECT doc FROM orders WHERE id = ?", (i,)).fetchone()[0]))
        cur.execute("COMMIT")
        return len(order)

    def get_db() -> int:
        ex = con.execute
        for i in order:
            Order(**loads(ex("SELECT doc FROM orders WHERE id = ?", (i,)).fetchone()[0]))
        return len(order)

    out["typed get (read txn)"] = best(rounds, get_txn)
    out["typed get (no explicit txn)"] = best(rounds, get_db)
    con.close()
    return out


def bench_lmdb(
    lmdb: Any, msgpack: Any, tmp: str, docs: list[Order], order: list[int], rounds: int
) -> dict[str, float]:
    out: dict[str, float] = {}
    counter = [0]
    size = 1 << 30

    def insert() -> int:
        counter[0] += 1
        env = lmdb.open(os.path.join(tmp, f"lmdb{counter[0]}"), map_size=size, sync=True)
        with env.begin(write=True) as txn:
            put, pack = txn.put, msgpack.packb
            for i, d in enumerate(docs, 1):
                put(i.to_bytes(8, "big"), pack(d.__dict__))
        env.close()
        return len(docs)

    out["typed insert (1 txn)"] = best(rounds, insert)
    env = lmdb.open(os.path.join(tmp, "lmdb1"), map_size=size)
    keys = [i.to_bytes(8, "big") for i in order]
    unpack = msgpack.unpackb

    def get_txn() -> int:
        with env.begin() as txn:
            get = txn.get
            for k in keys:
                Order(**unpack(get(k)))
        return len(keys)

    def get_db() -> int:
        for k in keys:
            with env.begin() as txn:
                Order(**unpack(txn.get(k)))
        return len(keys)

    out["typed get (read txn)"] = best(rounds, get_txn)
    out["typed get (no explicit txn)"] = best(rounds, get_db)
    env.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    docs = make_orders(args.docs)
    order = random.Random(7).sample(range(1, args.docs + 1), args.docs)
    lmdb, msgpack = optional_peer("lmdb"), optional_peer("msgpack")
    results: dict[str, dict[str, float]] = {}
    with scratch_dir("obj-bench-typed-") as tmp:
        results["obj"] = bench_obj(tmp, docs, order, args.rounds)
        results["sqlite3"] = bench_sqlite(tmp, docs, order, args.rounds)
        if lmdb is not None and msgpack is not None:
            results["lmdb"] = bench_lmdb(lmdb, msgpack, tmp, docs, order, args.rounds)
    table = Table(
        f"typed documents: {args.docs:,} docs, best of {args.rounds} rounds "
        f"(obj {obj.__version__}, sqlite {sqlite3.sqlite_version})",
        list(results),
    )
    for op in results["obj"]:
        table.add(op, {system: res[op] for system, res in results.items()})
    print(table.render())
    o, s = results["obj"], results["sqlite3"]
    insert_ratio = s["typed insert (1 txn)"] / o["typed insert (1 txn)"]
    get_ratio = s["typed get (read txn)"] / o["typed get (read txn)"]
    print(f"target typed insert >= 2x sqlite3: {insert_ratio:.2f}x")
    print(f"target typed get    >= 3x sqlite3: {get_ratio:.2f}x")


if __name__ == "__main__":
    main()
