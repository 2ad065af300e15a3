"""obj.Store next to the persistent dicts Python users would pick instead, in one run.

    pip install '.[bench]'
    python benches/store.py [--n 100000] [--ops 100000] [--big 1000000] [--reps 3]

Durable defaults everywhere (each commit reaches the disk before it returns). Values are
small dicts (``{"i": int, "name": str, "tags": [str, str]}``); keys ``"user:%08d"``.
Peers: py-lmdb with msgpack values (the raw floor an LMDB user writes by hand),
lmdb-object-store (pickled values over LMDB), a sqlitedict-style sqlite3 table
(``key TEXT PRIMARY KEY, value BLOB`` with pickled values, WAL mode, synchronous=FULL),
rocksdict (RocksDB, pickled values) and diskcache (``Index``). Workloads:

- set in one txn: ``--n`` ``store[k] = v`` inside one transaction (obj: ``tx.store``;
  lmdb: one write txn; sqlite3: one transaction; rocksdict: a WriteBatch; diskcache:
  ``transact()``; lmdb-object-store: its write buffer, flushed once);
- put_many: the same ``--n`` pairs in one ``put_many`` call (or the peer's batch API);
- random get: ``--ops`` random ``store[k]`` reads, each decoded;
- items(): every (key, value) pair in key order, decoded;
- len() at ``--big`` keys: microseconds per ``len()`` call (obj keeps a counter).

Each system runs in its own process per workload (fresh page cache state for the
process, peak RSS its own); the table shows medians and obj's ratio to each peer.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

SYSTEMS = ["obj", "lmdb+msgpack", "lmdb-object-store", "sqlite3", "rocksdict", "diskcache"]
WORKLOADS = [
    ("set_txn", "store[k] = v, one transaction", "sets/s"),
    ("put_many", "put_many (one call)", "items/s"),
    ("get", "random store[k]", "gets/s"),
    ("items", "items() iteration", "items/s"),
    ("len_big", "len() at --big keys", "calls/s"),
]


def key(i: int) -> str:
    return f"user:{i:08d}"


def value(i: int) -> dict[str, Any]:
    return {"i": i, "name": f"name-{i}", "tags": ["a", "b"]}


class Peer:
    """One system behind a common face: fill (one txn), put_many, get, items, len."""

    def __init__(self, path: str) -> None:
        self.path = path

    def set_txn(self, pairs: list[tuple[str, Any]]) -> None:
        raise NotImplementedError

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        self.set_txn(pairs)

    def get(self, k: str) -> Any:
        raise NotImplementedError

    def items(self) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError

    def length(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Obj(Peer):
    def __init__(self, path: str) -> None:
        import obj

        self.db = obj.Db(path)
        self.store = self.db.store("bench")

    def set_txn(self, pairs: list[tuple[str, Any]]) -> None:
        with self.db.transaction() as tx:
            s = tx.store("bench")
            for k, v in pairs:
                s[k] = v

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        self.store.put_many(pairs)

    def get(self, k: str) -> Any:
        return self.store[k]

    def items(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.store.items())

    def length(self) -> int:
        return len(self.store)

    def close(self) -> None:
        self.db.close()


class LmdbMsgpack(Peer):
    def __init__(self, path: str) -> None:
        import lmdb
        import msgpack

        self.env = lmdb.open(path, map_size=8 << 30, subdir=True)
        self.pack, self.unpack = msgpack.packb, msgpack.unpackb

    def set_txn(self, pairs: list[tuple[str, Any]]) -> None:
        pack = self.pack
        with self.env.begin(write=True) as txn:
            for k, v in pairs:
                txn.put(k.encode(), pack(v))

    def get(self, k: str) -> Any:
        with self.env.begin() as txn:
            return self.unpack(txn.get(k.encode()))

    def items(self) -> Iterator[tuple[Any, Any]]:
        unpack = self.unpack
        with self.env.begin() as txn:
            for k, v in txn.cursor():
                yield k.decode(), unpack(v)

    def length(self) -> int:
        return int(self.env.stat()["entries"])

    def close(self) -> None:
        self.env.close()


class LmdbObjectStore(Peer):
    def __init__(self, path: str) -> None:
        from lmdb_object_store import LmdbObjectStore as S

        self.s = S(path, batch_size=1 << 30, key_encoding="utf-8", map_size=8 << 30)

    def set_txn(self, pairs: list[tuple[str, Any]]) -> None:
        for k, v in pairs:
            self.s.put(k, v)
        self.s.flush()

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        self.s.put_many(pairs)

    def get(self, k: str) -> Any:
        return self.s.get(k)

    def items(self) -> Iterator[tuple[Any, Any]]:
        raise Unsupported("no iteration API")

    def length(self) -> int:
        raise Unsupported("no len()")

    def close(self) -> None:
        self.s.close()


class Sqlite(Peer):
    def __init__(self, path: str) -> None:
        import sqlite3

        self.c = sqlite3.connect(path, isolation_level=None)
        self.c.execute("PRAGMA journal_mode=WAL")
        self.c.execute("PRAGMA synchronous=FULL")
        self.c.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB)")

    def set_txn(self, pairs: list[tuple[str, Any]]) -> None:
        c = self.c
        c.execute("BEGIN")
        for k, v in pairs:
            c.execute("REPLACE INTO kv VALUES (?, ?)", (k, pickle.dumps(v)))
        c.execute("COMMIT")

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        c = self.c
        c.execute("BEGIN")
        c.executemany("REPLACE INTO kv VALUES (?, ?)", ((k, pickle.dumps(v)) for k, v in pairs))
        c.execute("COMMIT")

    def get(self, k: str) -> Any:
        row = self.c.execute("SELECT value FROM kv WHERE key = ?", (k,)).fetchone()
        return pickle.loads(row[0])

    def items(self) -> Iterator[tuple[Any, Any]]:
        for k, v in self.c.execute("SELECT key, value FROM kv ORDER BY key"):
            yield k, pickle.loads(v)

    def length(self) -> int:
        return int(self.c.execute("SELECT COUNT(*) FROM kv").fetchone()[0])

    def close(self) -> None:
        self.c.close()


class Rocks(Peer):
    def __init__(self, path: str) -> None:
        from rocksdict import Rdict, WriteBatch, WriteOptions

        self.db = Rdict(path)
        self.batch_type = WriteBatch
        self.sync = WriteOptions()
        self.sync.sync = True

    def set_txn(self, pairs: list[tuple[str, Any]]) -> None:
        wb = self.batch_type()
        for k, v in pairs:
            wb.put(k, v)
        self.db.write(wb, self.sync)

    def get(self, k: str) -> Any:
        return self.db[k]

    def items(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.db.items())

    def length(self) -> int:
        # RocksDB keeps no exact count: counting means a full scan.
        return sum(1 for _ in self.db.keys())  # noqa: SIM118 (Rdict iterates items)

    def close(self) -> None:
        self.db.close()


class DiskCache(Peer):
    def __init__(self, path: str) -> None:
        import diskcache

        self.ix = diskcache.Index(path)

    def set_txn(self, pairs: list[tuple[str, Any]]) -> None:
        ix = self.ix
        with ix.transact():
            for k, v in pairs:
                ix[k] = v

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        self.ix.update(pairs)

    def get(self, k: str) -> Any:
        return self.ix[k]

    def items(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.ix.items())

    def length(self) -> int:
        return len(self.ix)

    def close(self) -> None:
        self.ix.cache.close()


class Unsupported(Exception):
    pass


PEERS: dict[str, Callable[[str], Peer]] = {
    "obj": Obj,
    "lmdb+msgpack": LmdbMsgpack,
    "lmdb-object-store": LmdbObjectStore,
    "sqlite3": Sqlite,
    "rocksdict": Rocks,
    "diskcache": DiskCache,
}


def worker(system: str, workload: str, n: int, ops: int, big: int) -> float:
    """Rate of one workload on a fresh store (run in a child process)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.obj" if system == "obj" else "s")
        peer = PEERS[system](path)
        pairs = [(key(i), value(i)) for i in range(n if workload != "len_big" else big)]
        try:
            if workload == "set_txn":
                t = time.perf_counter()
                peer.set_txn(pairs)
                return n / (time.perf_counter() - t)
            if workload == "put_many":
                t = time.perf_counter()
                peer.put_many(pairs)
                return n / (time.perf_counter() - t)
            if workload == "len_big":
                for start in range(0, big, 100_000):
                    peer.put_many(pairs[start : start + 100_000])
                calls = 20
                t = time.perf_counter()
                for _ in range(calls):
                    assert peer.length() == big
                return calls / (time.perf_counter() - t)
            peer.put_many(pairs)
            if workload == "get":
                rng = random.Random(7)
                keys = [key(rng.randrange(n)) for _ in range(ops)]
                t = time.perf_counter()
                for k in keys:
                    peer.get(k)
                return ops / (time.perf_counter() - t)
            if workload == "items":
                t = time.perf_counter()
                count = sum(1 for _ in peer.items())
                assert count == n, count
                return n / (time.perf_counter() - t)
            raise ValueError(workload)
        finally:
            peer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--workloads", default=",".join(w for w, _, _ in WORKLOADS))
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        system, workload = args.worker
        try:
            print(worker(system, workload, args.n, args.ops, args.big))
        except Unsupported as e:
            print(f"unsupported: {e}")
        return
    systems = args.systems.split(",")
    unknown = [s for s in systems if s not in PEERS]
    if unknown:
        ap.error(f"--systems: unknown {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    wanted = args.workloads.split(",")
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.reps):
        for workload, _, _ in WORKLOADS:
            if workload not in wanted:
                continue
            for system in systems:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--n",
                        str(args.n),
                        "--ops",
                        str(args.ops),
                        "--big",
                        str(args.big),
                        "--worker",
                        system,
                        workload,
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                line = (out.stdout.strip().splitlines() or [""])[-1]
                if out.returncode != 0 or line.startswith("unsupported") or not line:
                    results.setdefault((workload, system), [])
                    if out.returncode != 0:
                        print(f"{system} {workload} failed: {out.stderr[-300:]}", file=sys.stderr)
                    continue
                results.setdefault((workload, system), []).append(float(line))
    print(
        f"obj.Store vs peers: --n {args.n} --ops {args.ops} --big {args.big}, "
        f"{args.reps} reps, median; obj's ratio to each peer in brackets (>1: obj faster)\n"
    )
    header = "| workload | " + " | ".join(systems) + " |"
    print(header)
    print("|" + "---|" * (len(systems) + 1))
    for workload, label, unit in WORKLOADS:
        if workload not in wanted:
            continue
        mine = results.get((workload, "obj")) or []
        base = statistics.median(mine) if mine else None
        cells = []
        for system in systems:
            vals = results.get((workload, system)) or []
            if not vals:
                cells.append("n/a")
                continue
            med = statistics.median(vals)
            ratio = f" ({base / med:.2f}x)" if base and system != "obj" else ""
            cells.append(f"{med:,.0f}{ratio}")
        print(f"| {label} ({unit}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
