"""obj.Table (partition key + sort key items) next to the same model hand-built on its
peers, in one run.

    pip install '.[bench]'
    python benches/table.py [--n 100000] [--ops 20000] [--reps 3]
        [--systems obj,sqlite3,rocksdict] [--workloads put,get,query,begins_with]
        [--out results.json]

Items are small dicts (``{"name": "user-<i>", "age": i % 90, "active": bool,
"tags": ["a", "b"]}``); partition keys ``"org#%05d" % (i // 100)`` (100 items per
partition), sort keys ``"user#%08d" % i``. Durable settings everywhere (a commit reaches
the disk before it returns). Systems:

- obj: ``obj.Db(path)`` (default durability, an fsync per commit), ``db.table("items")``;
  the puts go through ``tx.table("items")`` inside one ``db.transaction()``;
- sqlite3: ``(pk TEXT, sk TEXT, item TEXT, PRIMARY KEY (pk, sk)) WITHOUT ROWID``, items as
  JSON text (``json.dumps`` / ``json.loads``), WAL mode, synchronous=FULL, the puts in one
  transaction; query by pk ``SELECT sk, item ... WHERE pk=? ORDER BY sk``, begins_with as
  ``sk >= prefix AND sk < successor(prefix)``;
- rocksdict: raw mode, composite keys ``pk + b"\\x00" + sk`` (UTF-8; no key holds a NUL,
  so byte order is (pk, sk) order), items pickled, the puts in one WriteBatch written with
  ``sync=True``; queries seek an iterator to ``pk + b"\\x00"`` (+ prefix) and read while
  the key starts with it (an iterate_upper_bound at the prefix's successor).

Workloads:

- put: ``--n`` items in one transaction (items/s);
- get: ``--ops`` random ``(pk, sk)`` reads, each decoded to a dict (gets/s);
- query: ``--ops`` queries of every item (100) of a random partition, decoded, in sort key
  order (queries/s; the table also shows it in items/s);
- begins_with: ``--ops`` queries ``sk begins_with "user#%07d"`` inside a random partition,
  10 consecutive items each, decoded (queries/s).

Each system runs in its own process per workload, the systems alternating within each
repetition; the table shows medians over ``--reps`` and obj's ratio to each peer
(obj / peer, >1: obj faster). KeystoneDB's published numbers are printed as a reference
line: they were measured elsewhere, not here. Before timing, each read workload checks a
sample of its answers against the items written. ``--out`` writes every run and the
medians as JSON; a system that fails a workload shows "n/a" and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

SYSTEMS = ["obj", "sqlite3", "rocksdict"]
TABLE = "items"
PARTITION = 100  # items per partition
PREFIX_SPAN = 10  # items per begins_with query
# (key, label, unit): table order.
WORKLOADS = [
    ("put", "put, one transaction", "items/s"),
    ("get", "random get (pk, sk)", "gets/s"),
    ("query", f"query by pk ({PARTITION} items)", "queries/s"),
    ("begins_with", f"query sk begins_with ({PREFIX_SPAN} items)", "queries/s"),
]
# KeystoneDB's published numbers (4-core laptop): a reference, not measured by this script.
REFERENCE = {"put": 20_000, "get": 100_000, "query": 25_000}
REFERENCE_NOTE = "KeystoneDB's published numbers (4-core laptop; a reference, not measured here)"
CONFIG = {
    "obj": 'obj.Db(path) default durability ("immediate"); db.table / tx.table',
    "sqlite3": "WITHOUT ROWID (pk, sk) table, JSON items, WAL, synchronous=FULL",
    "rocksdict": 'raw mode, key pk + b"\\x00" + sk, pickled items, WriteBatch sync=True',
}

Item = dict[str, Any]


def pk_of(i: int) -> str:
    return f"org#{i // PARTITION:05d}"


def sk_of(i: int) -> str:
    return f"user#{i:08d}"


def item_of(i: int) -> Item:
    return {"name": f"user-{i}", "age": i % 90, "active": i % 2 == 0, "tags": ["a", "b"]}


def prefix_of(x: int) -> str:
    """The sort key prefix of items ``10x .. 10x + 9`` (all in partition ``pk_of(10x)``)."""
    return f"user#{x:07d}"


class Peer:
    """One system behind a common face: put (one transaction), get, query, begins_with.

    The reads return decoded item dicts (queries: a list of them in sort key order)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def put(self, rows: list[tuple[str, str, Item]]) -> None:
        raise NotImplementedError

    def get(self, pk: str, sk: str) -> Item | None:
        raise NotImplementedError

    def query(self, pk: str) -> list[Item]:
        raise NotImplementedError

    def begins_with(self, pk: str, prefix: str) -> list[Item]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Obj(Peer):
    def __init__(self, path: str) -> None:
        import obj

        self.obj = obj
        self.db = obj.Db(path)
        self.table = self.db.table(TABLE)

    def put(self, rows: list[tuple[str, str, Item]]) -> None:
        with self.db.transaction() as tx:
            t = tx.table(TABLE)
            put = t.put
            for pk, sk, item in rows:
                put(pk, item, sk=sk)

    def get(self, pk: str, sk: str) -> Item | None:
        return self.table.get(pk, sk=sk)

    def _all(self, pk: str, sk: Any = None) -> list[Item]:
        page = self.table.query(pk, sk=sk)
        items: list[Item] = page.items
        while page.last_key is not None:  # more matches than one page
            page = self.table.query(pk, sk=sk, start_after=page.last_key)
            items = items + page.items
        return items

    def query(self, pk: str) -> list[Item]:
        return self._all(pk)

    def begins_with(self, pk: str, prefix: str) -> list[Item]:
        return self._all(pk, self.obj.sk.begins_with(prefix))

    def close(self) -> None:
        self.db.close()


class Sqlite(Peer):
    def __init__(self, path: str) -> None:
        import sqlite3

        self.c = sqlite3.connect(path, isolation_level=None)
        self.c.execute("PRAGMA journal_mode=WAL")
        self.c.execute("PRAGMA synchronous=FULL")
        self.c.execute(
            "CREATE TABLE IF NOT EXISTS t "
            "(pk TEXT, sk TEXT, item TEXT, PRIMARY KEY (pk, sk)) WITHOUT ROWID"
        )
        self.dumps, self.loads = json.dumps, json.loads

    def put(self, rows: list[tuple[str, str, Item]]) -> None:
        c, dumps = self.c, self.dumps
        c.execute("BEGIN")
        for pk, sk, item in rows:
            c.execute("REPLACE INTO t VALUES (?, ?, ?)", (pk, sk, dumps(item)))
        c.execute("COMMIT")

    def get(self, pk: str, sk: str) -> Item | None:
        row = self.c.execute("SELECT item FROM t WHERE pk=? AND sk=?", (pk, sk)).fetchone()
        return None if row is None else self.loads(row[0])

    def query(self, pk: str) -> list[Item]:
        loads = self.loads
        rows = self.c.execute("SELECT sk, item FROM t WHERE pk=? ORDER BY sk", (pk,))
        return [loads(item) for _, item in rows]

    def begins_with(self, pk: str, prefix: str) -> list[Item]:
        loads = self.loads
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the prefix's successor
        rows = self.c.execute(
            "SELECT sk, item FROM t WHERE pk=? AND sk >= ? AND sk < ? ORDER BY sk",
            (pk, prefix, upper),
        )
        return [loads(item) for _, item in rows]

    def close(self) -> None:
        self.c.close()


def successor(prefix: bytes) -> bytes:
    """The least byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    assert stripped, prefix
    return stripped[:-1] + bytes([stripped[-1] + 1])


class Rocks(Peer):
    def __init__(self, path: str) -> None:
        from rocksdict import Options, Rdict, ReadOptions, WriteBatch, WriteOptions

        self.db = Rdict(path, Options(raw_mode=True))
        self.batch_type, self.read_options = WriteBatch, ReadOptions
        self.sync = WriteOptions()
        self.sync.sync = True
        self.dumps, self.loads = pickle.dumps, pickle.loads

    @staticmethod
    def key(pk: str, sk: str = "") -> bytes:
        return pk.encode() + b"\x00" + sk.encode()

    def put(self, rows: list[tuple[str, str, Item]]) -> None:
        wb, key, dumps = self.batch_type(raw_mode=True), self.key, self.dumps
        for pk, sk, item in rows:
            assert "\x00" not in pk
            wb.put(key(pk, sk), dumps(item))
        self.db.write(wb, self.sync)

    def get(self, pk: str, sk: str) -> Item | None:
        raw = self.db.get(self.key(pk, sk))
        return None if raw is None else self.loads(raw)

    def _prefix(self, start: bytes) -> list[Item]:
        # Every key starting with `start`: seek to it, stop at its successor (an upper
        # bound RocksDB enforces; a little faster than testing each key in Python).
        bound = self.read_options()
        bound.set_iterate_upper_bound(successor(start))
        loads = self.loads
        return [loads(v) for v in self.db.values(from_key=start, read_opt=bound)]

    def query(self, pk: str) -> list[Item]:
        return self._prefix(self.key(pk))

    def begins_with(self, pk: str, prefix: str) -> list[Item]:
        return self._prefix(self.key(pk, prefix))

    def close(self) -> None:
        self.db.close()


PEERS: dict[str, Callable[[str], Peer]] = {"obj": Obj, "sqlite3": Sqlite, "rocksdict": Rocks}


def check(got: list[Item], first: int, count: int) -> None:
    """A query returned items ``first .. first + count - 1``, in sort key order."""
    want = [item_of(i) for i in range(first, first + count)]
    assert got == want, (len(got), got[:1], want[:1])


def worker(system: str, workload: str, n: int, ops: int) -> dict[str, float]:
    """Rate of one workload on a fresh database (run in a child process), and for the
    queries the mean number of items each returned."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.obj" if system == "obj" else "t")
        peer = PEERS[system](path)
        rows = [(pk_of(i), sk_of(i), item_of(i)) for i in range(n)]
        rng = random.Random(7)  # the same keys for every system
        try:
            if workload == "put":
                t = time.perf_counter()
                peer.put(rows)
                rate = n / (time.perf_counter() - t)
                assert peer.get(pk_of(n - 1), sk_of(n - 1)) == item_of(n - 1)
                return {"rate": rate}
            peer.put(rows)
            if workload == "get":
                picks = [rng.randrange(n) for _ in range(ops)]
                for i in picks[:100]:
                    assert peer.get(pk_of(i), sk_of(i)) == item_of(i)
                keys = [(pk_of(i), sk_of(i)) for i in picks]
                get = peer.get
                t = time.perf_counter()
                for pk, sk in keys:
                    get(pk, sk)
                return {"rate": ops / (time.perf_counter() - t)}
            if workload == "query":
                parts = [rng.randrange((n + PARTITION - 1) // PARTITION) for _ in range(ops)]
                for p in parts[:20]:
                    first = p * PARTITION
                    check(peer.query(pk_of(first)), first, min(PARTITION, n - first))
                pks = [pk_of(p * PARTITION) for p in parts]
                query = peer.query
                returned = 0
                t = time.perf_counter()
                for pk in pks:
                    returned += len(query(pk))
                rate = ops / (time.perf_counter() - t)
                return {"rate": rate, "items_per_query": returned / ops}
            if workload == "begins_with":
                spans = [rng.randrange((n + PREFIX_SPAN - 1) // PREFIX_SPAN) for _ in range(ops)]
                for x in spans[:20]:
                    first = x * PREFIX_SPAN
                    got = peer.begins_with(pk_of(first), prefix_of(x))
                    check(got, first, min(PREFIX_SPAN, n - first))
                args = [(pk_of(x * PREFIX_SPAN), prefix_of(x)) for x in spans]
                begins_with = peer.begins_with
                returned = 0
                t = time.perf_counter()
                for pk, prefix in args:
                    returned += len(begins_with(pk, prefix))
                rate = ops / (time.perf_counter() - t)
                return {"rate": rate, "items_per_query": returned / ops}
            raise ValueError(workload)
        finally:
            peer.close()


def run_worker(system: str, workload: str, n: int, ops: int) -> dict[str, float] | str:
    """One measurement in a fresh process: its numbers, or the reason it failed."""
    proc = subprocess.run(
        [sys.executable, __file__, "--n", str(n), "--ops", str(ops), "--worker", system, workload],
        capture_output=True,
        text=True,
        check=False,
    )
    line = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0 or not line.startswith("{"):
        return (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}")[-400:]
    return json.loads(line)  # type: ignore[no-any-return]


def fmt(rate: float) -> str:
    return f"{rate:,.0f}"


def markdown(results: dict[str, Any]) -> str:
    systems: list[str] = results["systems"]
    median: dict[str, dict[str, float]] = results["median"]
    rows = []
    for workload, label, unit in WORKLOADS:
        if workload in results["workloads"]:
            rows.append((workload, label, unit))
            if workload == "query":  # the same runs, counted in items
                rows.append(("query_items", label, "items/s"))
    lines = [
        f"obj.Table vs peers: --n {results['n']} --ops {results['ops']}, "
        f"{results['reps']} reps, median; obj / peer in brackets (>1: obj faster); "
        f"{results['machine']}",
        "",
        "| workload | unit | " + " | ".join(systems) + " |",
        "|---|---|" + "---:|" * len(systems),
    ]
    for key, label, unit in rows:
        base = median.get("obj", {}).get(key)
        cells = []
        for system in systems:
            rate = median[system].get(key)
            if rate is None:
                cells.append("n/a")
                continue
            ratio = f" ({base / rate:.2f}x)" if base and system != "obj" else ""
            cells.append(fmt(rate) + ratio)
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"{REFERENCE_NOTE}: put {REFERENCE['put'] // 1000}k/s, get {REFERENCE['get'] // 1000}k/s,"
        f" query by pk {REFERENCE['query'] // 1000}k/s.",
        "",
        "Configurations:",
    ]
    lines += [f"- {s}: {CONFIG[s]}" for s in systems]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="items stored")
    ap.add_argument("--ops", type=int, default=20_000, help="gets / queries timed")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--workloads", default=",".join(w for w, _, _ in WORKLOADS))
    ap.add_argument("--out", help="write the runs and medians to this JSON file")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        system, workload = args.worker
        print(json.dumps(worker(system, workload, args.n, args.ops)))
        return
    systems = args.systems.split(",")
    unknown = [s for s in systems if s not in PEERS]
    if unknown:
        ap.error(f"--systems: unknown {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    workloads = args.workloads.split(",")
    known = [w for w, _, _ in WORKLOADS]
    bad = [w for w in workloads if w not in known]
    if bad:
        ap.error(f"--workloads: unknown {', '.join(bad)}; choose from {', '.join(known)}")
    if args.n < PARTITION or args.ops < 1 or args.reps < 1:
        ap.error(f"--n must be at least {PARTITION}, --ops and --reps at least 1")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {s: {} for s in systems}
    failures: dict[str, dict[str, str]] = {}
    for _ in range(args.reps):
        for workload in known:
            if workload not in workloads:
                continue
            for system in systems:  # alternate within a repetition
                got = run_worker(system, workload, args.n, args.ops)
                if isinstance(got, str):
                    failures.setdefault(system, {})[workload] = got
                    print(f"{system} {workload} failed: {got}", file=sys.stderr)
                    continue
                runs[system].setdefault(workload, []).append(got)
    median: dict[str, dict[str, float]] = {}
    for system in systems:
        m = median[system] = {}
        for workload, samples in runs[system].items():
            m[workload] = statistics.median(s["rate"] for s in samples)
            if "items_per_query" in samples[0]:
                per = statistics.median(s["items_per_query"] for s in samples)
                m[f"{workload}_items_per_query"] = per
                m[f"{workload}_items"] = m[workload] * per
    ratio = {
        peer: {w: median["obj"][w] / r for w, r in median[peer].items() if w in median["obj"]}
        for peer in systems
        if peer != "obj" and "obj" in median
    }
    results = {
        "n": args.n,
        "ops": args.ops,
        "reps": args.reps,
        "systems": systems,
        "workloads": [w for w in known if w in workloads],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "config": {s: CONFIG[s] for s in systems},
        "runs": runs,
        "median": median,
        "ratio_obj_over_peer": ratio,
        "failures": failures,
        "reference": {"system": "KeystoneDB", "note": REFERENCE_NOTE, "rate": REFERENCE},
    }
    print(markdown(results))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
