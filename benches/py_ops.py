"""Per-operation cost of the Python API, next to sqlite3 in the same run.

    python benches/py_ops.py [--docs N] [--size BYTES] [--commits N] [--rounds R]

Measures, for obj and for sqlite3 (WAL mode, synchronous=FULL): inserting N documents in
one transaction, N point gets by random id in a read transaction, a full scan, and small
durable commits (one insert + commit each, so one fsync each). Reports the best of R rounds
in microseconds per operation, and the ratio sqlite3 / obj (above 1: obj is faster).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
from typing import Callable

import obj


def best(rounds: int, run: Callable[[], int]) -> float:
    """Best seconds per operation over ``rounds`` runs; ``run`` returns its op count."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        ops = run()
        results.append((time.perf_counter() - start) / ops)
    return min(results)


def bench_obj(tmp: str, docs: int, size: int, commits: int, rounds: int) -> dict[str, float]:
    payload = os.urandom(size)
    order = random.Random(7).sample(range(1, docs + 1), docs)
    out: dict[str, float] = {}
    counter = [0]

    def insert() -> int:
        counter[0] += 1
        with obj.Db(os.path.join(tmp, f"ins{counter[0]}.obj")) as db, db.transaction() as tx:
            ins = tx.insert
            for _ in range(docs):
                ins("bench", payload)
        return docs

    out["insert (one txn)"] = best(rounds, insert)

    db = obj.Db(os.path.join(tmp, "ins1.obj"))

    def get() -> int:
        with db.read_transaction() as tx:
            g = tx.get
            for i in order:
                g("bench", i)
        return docs

    def scan() -> int:
        n = 0
        with db.read_transaction() as tx:
            for _ in tx.iter_all("bench"):
                n += 1
        return n

    def commit() -> int:
        for _ in range(commits):
            with db.transaction() as tx:
                tx.insert("small", payload)
        return commits

    out["point get"] = best(rounds, get)
    out["scan (per doc)"] = best(rounds, scan)
    out["durable commit"] = best(rounds, commit)
    db.close()
    return out


def bench_sqlite(tmp: str, docs: int, size: int, commits: int, rounds: int) -> dict[str, float]:
    payload = os.urandom(size)
    order = random.Random(7).sample(range(1, docs + 1), docs)
    out: dict[str, float] = {}
    counter = [0]

    def connect(name: str) -> sqlite3.Connection:
        con = sqlite3.connect(os.path.join(tmp, name), isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, v BLOB)")
        con.execute("CREATE TABLE IF NOT EXISTS small (id INTEGER PRIMARY KEY, v BLOB)")
        return con

    def insert() -> int:
        counter[0] += 1
        con = connect(f"ins{counter[0]}.db")
        cur = con.cursor()
        cur.execute("BEGIN")
        ex = cur.execute
        for _ in range(docs):
            ex("INSERT INTO bench (v) VALUES (?)", (payload,))
        cur.execute("COMMIT")
        con.close()
        return docs

    out["insert (one txn)"] = best(rounds, insert)
    con = connect("ins1.db")

    def get() -> int:
        cur = con.cursor()
        cur.execute("BEGIN")
        ex = cur.execute
        for i in order:
            ex("SELECT v FROM bench WHERE id = ?", (i,)).fetchone()
        cur.execute("COMMIT")
        return docs

    def scan() -> int:
        n = 0
        for _ in con.execute("SELECT id, v FROM bench ORDER BY id"):
            n += 1
        return n

    def commit() -> int:
        for _ in range(commits):
            con.execute("BEGIN")
            con.execute("INSERT INTO small (v) VALUES (?)", (payload,))
            con.execute("COMMIT")
        return commits

    out["point get"] = best(rounds, get)
    out["scan (per doc)"] = best(rounds, scan)
    out["durable commit"] = best(rounds, commit)
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100, help="payload bytes")
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="obj-bench-") as tmp:
        o = bench_obj(tmp, args.docs, args.size, args.commits, args.rounds)
        s = bench_sqlite(tmp, args.docs, args.size, args.commits, args.rounds)
    print(
        f"{args.docs:,} docs of {args.size} bytes, best of {args.rounds} rounds, "
        f"obj {obj.__version__}, sqlite {sqlite3.sqlite_version}"
    )
    print(f"{'operation':<20}{'obj µs/op':>12}{'sqlite3 µs/op':>16}{'sqlite3/obj':>14}")
    for name in o:
        print(f"{name:<20}{o[name] * 1e6:>12.2f}{s[name] * 1e6:>16.2f}{s[name] / o[name]:>14.2f}")


if __name__ == "__main__":
    main()
