"""Several processes on one database file: obj next to sqlite3 and lmdb, in one run.

    python benches/multiprocess.py [--seconds 3] [--keys 10000] [--readers 1,2,4]
        [--durable-writers 1,2] [--systems obj,sqlite3,lmdb] [--obj-api collection]
        [--reps 1] [--dir DIR] [--json PATH]

Every process opens the file itself (obj: its own ``obj.Db``; sqlite3: its own connection;
lmdb: its own environment, ``writemap=False``), started with the multiprocessing "spawn"
context; all processes of a case wait on one barrier, then each measures ``--seconds`` from
the moment it passed it (the table notes the largest start skew). Keys: ``--keys`` of
them, values small bytes (``b"<key#>:<counter>:" + 16 dots``, 33 bytes). Workloads:

- reads beside a writer: 1, 2 and 4 (``--readers``) reader processes doing random point
  gets, one get per read transaction (obj: ``store[key]`` or ``db.get(collection, id)``,
  each its own snapshot; sqlite3: one autocommit ``SELECT``; lmdb: one ``env.begin()``
  per get), while one writer process commits continuously, each commit one update of a
  random key, durability relaxed (obj ``durability="eventual"``, sqlite3
  ``synchronous=NORMAL``, lmdb ``sync=False, metasync=False``). Reported: reads/s in total
  and per reader process, the scaling over the 1-reader case, and the writer's commits/s;
- baseline: the same get loop in one process, no writer (for reference);
- durable commits: 1 and 2 (``--durable-writers``) writer processes each inserting one new
  key per transaction as fast as they can (obj ``durability="immediate"``, sqlite3
  ``synchronous=FULL``, lmdb ``sync=True``), the writers contending for the one write
  lock. Reported: commits/s in total and per process (the split shows how fairly the
  lock is shared).

obj runs ``--obj-api collection`` by default (``db.get("kv", id)`` with int ids: about
1.2x faster per get than ``db.store("kv")[str key]`` in one process); sqlite3 and lmdb
then use int keys too (``INTEGER PRIMARY KEY``; big-endian u64), and str keys with
``--obj-api store``. lmdb is optional (skipped with a note when ``import lmdb`` fails).

Checks: readers verify that every sampled value is bytes of the key they asked for, and
that they saw the writer's updates (a value whose counter is above zero); after the
durable case the parent counts the keys: it must equal ``--keys`` plus every commit the
writers reported. Readers + writer above the CPU count oversubscribe the machine: those
rows are marked. obj's ratio to each peer is obj ÷ peer (>1: obj faster).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import multiprocessing as mp
import os
import platform
import queue as queue_mod
import random
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

SYSTEMS = ["obj", "sqlite3", "lmdb"]
MODULES = {"obj": "obj", "sqlite3": "sqlite3", "lmdb": "lmdb"}
CHUNK = 256  # gets between two clock checks (and one value check)
SEQUENCE = 1 << 16  # random keys drawn per reader, cycled
PAD = b"." * 16
BUSY_TIMEOUT = 60.0  # seconds a writer may wait for the write lock
LOG_BASE = 1 << 32  # durable-case int ids: LOG_BASE * (writer + 1) + n

Key = Any  # str (store api) or int (collection api)


def value(i: int, counter: int) -> bytes:
    return b"%05d:%010d:" % (i, counter) + PAD


def config(system: str, api: str) -> str:
    if system == "obj":
        how = (
            'db.store("kv"): str keys "k%05d", store[key], store[key] = v'
            if api == "store"
            else 'collection "kv": int ids 1..N, db.get("kv", id), db.upsert("kv", id, v)'
        )
        return (
            f"{how}; readers obj.Db(path, read_only=True), writer obj.Db(path, "
            f'durability="eventual" | "immediate", busy_timeout={BUSY_TIMEOUT:g})'
        )
    if system == "sqlite3":
        table = (
            "kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID"
            if api == "store"
            else "kv (k INTEGER PRIMARY KEY, v BLOB)"
        )
        return (
            f"{table}; journal_mode=WAL; one connection per process, autocommit "
            f"(isolation_level=None), synchronous=NORMAL (reads, relaxed writer) | FULL "
            f"(durable), timeout={BUSY_TIMEOUT:g}"
        )
    keys = "utf-8 str keys" if api == "store" else "big-endian u64 keys"
    return (
        f"{keys}, raw bytes values; one lmdb.open per process, writemap=False, "
        "map_size 1 GiB; sync=False, metasync=False (relaxed) | sync=True (durable); "
        "one env.begin() per get"
    )


# Systems: each opened inside its own process ---------------------------------------------


class Adapter:
    """One system behind a common face: ``get(key) -> bytes``, ``put(key, value)`` (one
    commit), and the keys of the shared table in the form this system reads them. The three
    operations are plain attributes, bound once to the fastest call a user would write."""

    #: The value of ``key`` in the shared table, read in a transaction of its own.
    get: Callable[[Key], Any]
    #: One commit updating ``key`` of the shared table.
    put: Callable[[Key, bytes], Any]
    #: One commit inserting the new ``key`` into the ``log`` table.
    insert_log: Callable[[Key, bytes], Any]

    def __init__(self, path: str, api: str, keys: int) -> None:
        self.path, self.api, self.n = path, api, keys

    def key(self, i: int) -> Key:
        return f"k{i:05d}" if self.api == "store" else i + 1

    def log_key(self, writer: int, n: int) -> Key:
        """A new key: ``writer`` is unique within the whole run (case and process)."""
        return f"w{writer}:{n:010d}" if self.api == "store" else LOG_BASE * (writer + 1) + n

    def populate(self) -> None:
        raise NotImplementedError

    def count_all(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Obj(Adapter):
    def __init__(self, path: str, api: str, keys: int, role: str) -> None:
        import obj

        super().__init__(path, api, keys)
        if role == "reader":
            self.db = obj.Db(path, read_only=True)
        else:
            self.db = obj.Db(
                path,
                durability="immediate" if role == "durable" else "eventual",
                busy_timeout=BUSY_TIMEOUT,
            )
        if api == "store":
            self.kv = self.db.store("kv")
            self.log = self.db.store("log")
            self.get = self.kv.__getitem__
            self.put = self.kv.__setitem__
            self.insert_log = self.log.__setitem__
        else:
            self.get = functools.partial(self.db.get, "kv")
            self.put = functools.partial(self.db.upsert, "kv")
            self.insert_log = functools.partial(self.db.upsert, "log")

    def populate(self) -> None:
        pairs = [(self.key(i), value(i, 0)) for i in range(self.n)]
        if self.api == "store":
            self.kv.put_many(pairs)
            self.log.put_many([])
        else:
            with self.db.transaction() as tx:
                for k, v in pairs:
                    tx.upsert("kv", k, v)

    def count_all(self) -> int:
        if self.api == "store":
            return len(self.kv) + len(self.log)
        return int(self.db.count("kv")) + int(self.db.count("log"))

    def close(self) -> None:
        self.db.close()


class Sqlite(Adapter):
    def __init__(self, path: str, api: str, keys: int, role: str) -> None:
        import sqlite3

        super().__init__(path, api, keys)
        self.con = con = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={'FULL' if role == 'durable' else 'NORMAL'}")
        shape = (
            "(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID"
            if api == "store"
            else "(k INTEGER PRIMARY KEY, v BLOB)"
        )
        con.execute(f"CREATE TABLE IF NOT EXISTS kv {shape}")
        con.execute(f"CREATE TABLE IF NOT EXISTS log {shape}")
        execute = con.execute

        def get(key: Key) -> Any:
            return execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()[0]

        def put(key: Key, data: bytes) -> None:
            execute("UPDATE kv SET v = ? WHERE k = ?", (data, key))

        def insert_log(key: Key, data: bytes) -> None:
            execute("INSERT INTO log (k, v) VALUES (?, ?)", (key, data))

        self.get, self.put, self.insert_log = get, put, insert_log

    def populate(self) -> None:
        self.con.execute("BEGIN")
        self.con.executemany(
            "INSERT INTO kv (k, v) VALUES (?, ?)",
            [(self.key(i), value(i, 0)) for i in range(self.n)],
        )
        self.con.execute("COMMIT")

    def count_all(self) -> int:
        (kv,) = self.con.execute("SELECT COUNT(*) FROM kv").fetchone()
        (log,) = self.con.execute("SELECT COUNT(*) FROM log").fetchone()
        return int(kv) + int(log)

    def close(self) -> None:
        self.con.close()


class Lmdb(Adapter):
    def __init__(self, path: str, api: str, keys: int, role: str) -> None:
        import lmdb

        super().__init__(path, api, keys)
        durable = role == "durable"
        self.env = env = lmdb.open(
            path,
            map_size=1 << 30,
            max_dbs=2,
            writemap=False,
            sync=durable,
            metasync=durable,
            max_readers=126,
        )
        self.kv = kv = env.open_db(b"kv")
        self.log = log = env.open_db(b"log")
        begin = env.begin

        def get(key: Key) -> Any:
            with begin(db=kv) as txn:
                return txn.get(key)

        def put(key: Key, data: bytes) -> None:
            with begin(write=True, db=kv) as txn:
                txn.put(key, data)

        def insert_log(key: Key, data: bytes) -> None:
            with begin(write=True, db=log) as txn:
                txn.put(key, data)

        self.get, self.put, self.insert_log = get, put, insert_log

    def key(self, i: int) -> Key:
        return f"k{i:05d}".encode() if self.api == "store" else struct.pack(">Q", i + 1)

    def log_key(self, writer: int, n: int) -> Key:
        if self.api == "store":
            return f"w{writer}:{n:010d}".encode()
        return struct.pack(">Q", LOG_BASE * (writer + 1) + n)

    def populate(self) -> None:
        with self.env.begin(write=True, db=self.kv) as txn:
            for i in range(self.n):
                txn.put(self.key(i), value(i, 0))
        self.env.sync(True)

    def count_all(self) -> int:
        with self.env.begin() as txn:
            return int(txn.stat(self.kv)["entries"]) + int(txn.stat(self.log)["entries"])

    def close(self) -> None:
        self.env.close()


ADAPTERS: dict[str, Callable[[str, str, int, str], Adapter]] = {
    "obj": Obj,
    "sqlite3": Sqlite,
    "lmdb": Lmdb,
}


FILE_NAMES = {"obj": "mp.obj", "sqlite3": "mp.sqlite", "lmdb": "mp.lmdb"}


def db_path(directory: str, system: str) -> str:
    return os.path.join(directory, FILE_NAMES[system])


# Worker processes ------------------------------------------------------------------------


def reader_main(
    system: str,
    path: str,
    api: str,
    keys: int,
    seconds: float,
    seed: int,
    barrier: Any,
    out: Any,
) -> None:
    """Random point gets for ``seconds`` after the barrier; each CHUNK-th value is checked."""
    try:
        db = ADAPTERS[system](path, api, keys, "reader")
        rng = random.Random(seed)
        picks = [rng.randrange(keys) for _ in range(SEQUENCE)]
        chunks = [
            ([db.key(i) for i in picks[s : s + CHUNK]], b"%05d:" % picks[s + CHUNK - 1])
            for s in range(0, SEQUENCE, CHUNK)
        ]
        get = db.get
        for batch, _ in chunks[:16]:  # warm: caches, prepared statements
            for k in batch:
                get(k)
        barrier.wait(timeout=120)
        reads = updated = 0
        clock = time.monotonic
        start = clock()
        end = start + seconds
        data = b""
        while True:
            for batch, expect in chunks:
                for k in batch:
                    data = get(k)
                reads += CHUNK
                if type(data) is not bytes or not data.startswith(expect):
                    raise AssertionError(f"read {data!r} for a key whose value starts {expect!r}")
                if data.split(b":", 2)[1].strip(b"0"):  # the counter: not 0, the writer's
                    updated += 1
                now = clock()
                if now >= end:
                    break
            else:
                continue
            break
        db.close()
        out.put({"role": "reader", "ops": reads, "start": start, "end": now, "updated": updated})
    except BaseException:
        barrier.abort()
        out.put({"error": traceback.format_exc()})


def writer_main(
    system: str,
    path: str,
    api: str,
    keys: int,
    seconds: float,
    seed: int,
    durable: bool,
    writer: int,
    barrier: Any,
    out: Any,
) -> None:
    """Commits for ``seconds`` after the barrier. Relaxed: each commit updates a random key
    of the shared table. Durable: each commit inserts a new key of its own."""
    try:
        db = ADAPTERS[system](path, api, keys, "durable" if durable else "relaxed")
        rng = random.Random(seed)
        picks = [rng.randrange(keys) for _ in range(SEQUENCE)]
        targets = [(db.key(i), i) for i in picks]
        if not durable:
            for k, i in targets[:64]:  # warm
                db.put(k, value(i, 0))
        barrier.wait(timeout=120)
        commits = 0
        clock = time.monotonic
        start = clock()
        end = start + seconds
        if durable:
            insert_log, log_key = db.insert_log, db.log_key
            while True:
                insert_log(log_key(writer, commits), value(commits % 100_000, commits + 1))
                commits += 1
                if clock() >= end:
                    break
        else:
            put = db.put
            while True:
                k, i = targets[commits & (SEQUENCE - 1)]
                commits += 1
                put(k, value(i, commits))
                if clock() >= end:
                    break
        now = clock()
        db.close()
        out.put({"role": "writer", "ops": commits, "start": start, "end": now})
    except BaseException:
        barrier.abort()
        out.put({"error": traceback.format_exc()})


# Parent side -----------------------------------------------------------------------------


def run_case(
    ctx: Any,
    system: str,
    path: str,
    args: argparse.Namespace,
    readers: int,
    writers: int,
    durable: bool,
    seed: int,
    run: int,
) -> dict[str, Any]:
    """One case in fresh processes: ``readers`` readers and ``writers`` writers; ``run``
    numbers the case within the whole run (it keeps the durable writers' keys new)."""
    barrier = ctx.Barrier(readers + writers + 1)
    out = ctx.Queue()
    procs = []
    for w in range(writers):
        procs.append(
            ctx.Process(
                target=writer_main,
                args=(
                    system,
                    path,
                    args.obj_api,
                    args.keys,
                    args.seconds,
                    seed + 1000 + w,
                    durable,
                    16 * run + w,
                    barrier,
                    out,
                ),
            )
        )
    for r in range(readers):
        procs.append(
            ctx.Process(
                target=reader_main,
                args=(system, path, args.obj_api, args.keys, args.seconds, seed + r, barrier, out),
            )
        )
    for p in procs:
        p.start()
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=180)
        deadline = time.monotonic() + args.seconds + 180
        while len(results) + len(errors) < len(procs) and time.monotonic() < deadline:
            try:
                got = out.get(timeout=0.5)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs) and out.empty():
                    break
                continue
            if "error" in got:
                errors.append(got["error"])
            else:
                results.append(got)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    crashed = [p.exitcode for p in procs if p.exitcode != 0]
    if errors or crashed or len(results) != len(procs):
        detail = "\n".join(errors) or f"exit codes {[p.exitcode for p in procs]}"
        raise RuntimeError(f"{system}: readers={readers} writers={writers} failed:\n{detail}")
    return summarise(results)


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    starts = [r["start"] for r in results]
    out: dict[str, Any] = {"skew_ms": (max(starts) - min(starts)) * 1e3}
    for role in ("reader", "writer"):
        mine = [r for r in results if r["role"] == role]
        if not mine:
            continue
        rates = [r["ops"] / (r["end"] - r["start"]) for r in mine]
        out[role] = {
            "processes": len(mine),
            "ops": [r["ops"] for r in mine],
            "rate_per_process": rates,
            "rate": sum(rates),
            "rate_mean": statistics.mean(rates),
        }
        if role == "reader":
            out[role]["sampled_updated_values"] = sum(r["updated"] for r in mine)
    return out


def populate(system: str, path: str, api: str, keys: int) -> None:
    db = ADAPTERS[system](path, api, keys, "relaxed")
    db.populate()
    db.close()


def count_keys(system: str, path: str, api: str, keys: int) -> int:
    db = ADAPTERS[system](path, api, keys, "relaxed")
    try:
        return db.count_all()
    finally:
        db.close()


def fs_type(path: str) -> str:
    """The file system type that holds ``path`` (from /proc/mounts), or "?"."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3 or len(parts[1]) <= len(best):
                continue
            if real == parts[1] or real.startswith(parts[1].rstrip("/") + "/"):
                best, kind = parts[1], parts[2]
    return kind


def environment(directory: str) -> dict[str, Any]:
    import sqlite3

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "filesystem": fs_type(directory),
        "sqlite": sqlite3.sqlite_version,
    }
    from importlib.metadata import PackageNotFoundError, version

    for module, dist in (("obj", "obj-db"), ("lmdb", "lmdb")):
        with contextlib.suppress(PackageNotFoundError):
            info[module] = version(dist)
    return info


def median_case(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """The repetition with the median total rate (readers' if any, else writers')."""
    role = "reader" if "reader" in reps[0] else "writer"
    ordered = sorted(reps, key=lambda r: r[role]["rate"])
    return ordered[(len(ordered) - 1) // 2]


def human(x: float) -> str:
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def render(results: dict[str, Any]) -> str:
    systems, med, cpus = results["systems"], results["median"], results["environment"]["cpus"]
    peers = [s for s in systems if s != "obj"]

    def rate_header(first: str) -> list[str]:
        """The header of a table of one rate per system, then obj ÷ each peer."""
        ratios = " | ".join(f"obj/{p}" for p in peers)
        return [
            f"| {first} | " + " | ".join(systems) + f" | {ratios} |",
            "|---|" + "---:|" * (len(systems) + len(peers)),
        ]

    env = results["environment"]
    lines = [
        f"## Several processes on one file — {results['keys']:,} keys, {results['seconds']:g} s "
        f"per case, {results['reps']} repetition(s) (median shown), {cpus} CPUs",
        "",
        "### Random point gets beside one writer (relaxed durability)",
        "",
        "reads/s, all readers together (per reader process in brackets; scaling = total ÷ the "
        "1-reader total of the same system):",
        "",
        "| readers | processes | "
        + " | ".join(f"{s} reads/s | {s} scaling" for s in systems)
        + " | "
        + " | ".join(f"obj/{p}" for p in peers)
        + " |",
        "|---|---|" + "---:|---:|" * len(systems) + "---:|" * len(peers),
    ]

    def reads(s: str, case: str) -> float | None:
        c = med.get(s, {}).get(case)
        return c["reader"]["rate"] if c else None

    for case, label, procs in [("baseline", "1, no writer (baseline)", 1)] + [
        (f"r{n}", str(n), n + 1) for n in results["readers"]
    ]:
        over = f"{procs} (oversubscribed)" if cpus and procs > cpus else str(procs)
        cells = []
        for s in systems:
            c = med.get(s, {}).get(case)
            if not c:
                cells.append("n/a | n/a")
                continue
            total, per = c["reader"]["rate"], c["reader"]["rate_mean"]
            base = reads(s, f"r{results['readers'][0]}")
            scale = "—" if case == "baseline" else ratio(total, base)
            cells.append(f"{human(total)} ({human(per)}) | {scale}")
        ratios = [ratio(reads("obj", case), reads(p, case)) for p in peers]
        lines.append(f"| {label} | {over} | " + " | ".join(cells + ratios) + " |")
    first = f"r{results['readers'][0]}"
    lines += [
        "",
        "The writer's cost to one reader (1 reader beside the writer ÷ baseline): "
        + ", ".join(f"{s} {ratio(reads(s, first), reads(s, 'baseline'))}" for s in systems)
        + ".",
        "",
        "Commits/s of the writer during those reads (one random-key update per commit):",
        "",
        *rate_header("readers"),
    ]

    def writer_rate(case: str) -> Callable[[str], float | None]:
        def rate(s: str) -> float | None:
            c = med.get(s, {}).get(case)
            return c["writer"]["rate"] if c else None

        return rate

    for n in results["readers"]:
        wrate = writer_rate(f"r{n}")

        cells = [human(w) if (w := wrate(s)) else "n/a" for s in systems]
        ratios = [ratio(wrate("obj"), wrate(p)) for p in peers]
        lines.append(f"| {n} | " + " | ".join(cells + ratios) + " |")

    lines += [
        "",
        "### Durable commits (each commit one new key, fsynced before it returns)",
        "",
        "commits/s, all writers together (per writer process in brackets):",
        "",
        *rate_header("writers"),
    ]
    for n in results["durable_writers"]:
        crate = writer_rate(f"w{n}")

        cells = []
        for s in systems:
            c = med.get(s, {}).get(f"w{n}")
            if not c:
                cells.append("n/a")
                continue
            per = " / ".join(human(x) for x in c["writer"]["rate_per_process"])
            cells.append(f"{human(c['writer']['rate'])} ({per})")
        ratios = [ratio(crate("obj"), crate(p)) for p in peers]
        lines.append(f"| {n} | " + " | ".join(cells + ratios) + " |")

    skew = max(c["skew_ms"] for runs in results["runs"].values() for r in runs.values() for c in r)
    load = results["load_average"]
    lines += [
        "",
        "Checks passed: every sampled value was bytes of the key asked for; readers saw the "
        "writer's updates; after each durable case the key count equalled "
        f"{results['keys']:,} plus the commits reported. Largest start skew between the "
        f"processes of a case: {skew:.1f} ms. Rows with more processes than CPUs "
        "(oversubscribed) measure sharing of the CPUs as much as the database. 1-minute "
        f"load average before / after the run: {load[0]:.2f} / {load[1]:.2f} (other work on "
        "the machine shows there; only differences of 1.5x or more are real unless repeated).",
        "",
        "Configuration:",
        "",
    ]
    for s in systems:
        lines.append(f"- **{s}**: {results['config'][s]}")
    for name, why in results["skipped"].items():
        lines.append(f"- **{name}**: skipped — {why}")
    lines += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()) + "."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="measured window per case")
    ap.add_argument("--keys", type=int, default=10_000, help="keys in the shared table")
    ap.add_argument("--readers", default="1,2,4", help="reader counts beside the writer")
    ap.add_argument("--durable-writers", default="1,2", help="writer counts, durable case")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument(
        "--obj-api",
        choices=["store", "collection"],
        default="collection",
        help="obj: db.get('kv', int id) (default: the faster, by about 1.2x single-process) "
        "or db.store('kv')[str key]; the peers use the same key kind",
    )
    ap.add_argument("--reps", type=int, default=1, help="repetitions (median shown)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", help="where the database files go (default: a temp dir)")
    ap.add_argument("--json", help="write the configuration, every run and medians here")
    args = ap.parse_args()
    reader_counts = [int(x) for x in args.readers.split(",") if x.strip()]
    writer_counts = [int(x) for x in args.durable_writers.split(",") if x.strip()]
    if not reader_counts:
        ap.error("--readers: give at least one count")

    systems, skipped = [], {}
    for s in (x.strip() for x in args.systems.split(",") if x.strip()):
        if s not in ADAPTERS:
            ap.error(f"--systems: unknown {s}; choose from {', '.join(ADAPTERS)}")
        try:
            importlib.import_module(MODULES[s])
        except ImportError as e:
            skipped[s] = f"cannot import {MODULES[s]} ({e})"
            print(f"note: {s} skipped: {skipped[s]}", file=sys.stderr)
            continue
        systems.append(s)
    if "obj" not in systems:
        ap.error("obj must be among --systems (ratios are against it)")

    ctx = mp.get_context("spawn")
    base_dir = tempfile.mkdtemp(prefix="obj-mp-bench-", dir=args.dir)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in systems}
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        for s in systems:
            os.makedirs(os.path.join(base_dir, s))
            populate(s, db_path(os.path.join(base_dir, s), s), args.obj_api, args.keys)
        cases: list[tuple[str, int, int, bool]] = [("baseline", 1, 0, False)]
        cases += [(f"r{n}", n, 1, False) for n in reader_counts]
        cases += [(f"w{n}", 0, n, True) for n in writer_counts]
        run = 0
        for rep in range(args.reps):
            for case, readers, writers, durable in cases:
                order = systems if rep % 2 == 0 else list(reversed(systems))
                for s in order:
                    print(f"rep {rep + 1}/{args.reps} {case}: {s} ...", file=sys.stderr, flush=True)
                    path = db_path(os.path.join(base_dir, s), s)
                    before = count_keys(s, path, args.obj_api, args.keys) if durable else 0
                    run += 1
                    got = run_case(
                        ctx, s, path, args, readers, writers, durable, args.seed + rep, run
                    )
                    if readers and writers and not got["reader"]["sampled_updated_values"]:
                        raise AssertionError(f"{s} {case}: readers never saw the writer's updates")
                    if durable:
                        after = count_keys(s, path, args.obj_api, args.keys)
                        if after - before != sum(got["writer"]["ops"]):
                            raise AssertionError(
                                f"{s} {case}: {after - before} keys added, "
                                f"{sum(got['writer']['ops'])} commits reported"
                            )
                    runs[s].setdefault(case, []).append(got)
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)

    results: dict[str, Any] = {
        "keys": args.keys,
        "seconds": args.seconds,
        "reps": args.reps,
        "obj_api": args.obj_api,
        "readers": reader_counts,
        "durable_writers": writer_counts,
        "systems": systems,
        "skipped": skipped,
        "config": {s: config(s, args.obj_api) for s in systems},
        "environment": environment(args.dir or tempfile.gettempdir()),
        "median": {s: {c: median_case(r) for c, r in runs[s].items()} for s in systems},
        "runs": runs,
        "wall_seconds": time.monotonic() - began,
        "load_average": [load_before, os.getloadavg()[0]],
    }
    text = render(results)
    print(text)
    print(f"\nwall time {results['wall_seconds']:.0f} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"data: {args.json}")


if __name__ == "__main__":
    main()
