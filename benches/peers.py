"""The smaller Python-embeddable peers of obj as ``workload.System`` adapters.

obj, sqlite3 and lmdb live in ``systems.py``. Each adapter here does what a user of that
store would write for the job, with the most durable setting the store offers (an fsync
at every commit wherever it can do one) and its defaults otherwise. Peer modules are
imported inside the methods, so this module imports even when a peer is missing; the
harness checks ``modules`` and reports the peers it skips.

Durability, as checked with ``strace -e fsync,fdatasync`` on the installed versions:

- polodb-python 0.2.1 (PoloDB Core 5.3 on RocksDB): every transaction, explicit or the
  implicit one of a single write, commits with ``sync=true``: one fdatasync of the RocksDB
  WAL per commit. ``PoloDBConfig`` (``sync_log_count``, ``journal_full_size``, ``lsm_*``)
  belongs to the 4.x storage engine; Core 5.3 accepts and ignores it (20 commits made 20
  fdatasyncs with ``sync_log_count`` 1 and 1,000,000). It cannot be made non-durable.
- tinydb 4.9: ``JSONStorage.write`` rewrites the whole JSON file in place, then fsyncs it
  (one fsync per write, so durable; always on), but the rewrite is not atomic: a crash in the middle
  of a write can leave a torn file, and no journal repairs it.
- diskcache 5.6: SQLite in WAL mode; default ``sqlite_synchronous=1`` (NORMAL) does not
  sync at commit; we set 2 (FULL): one fdatasync of the WAL per commit.
- unqlite 1.2: its pager journals and syncs at every commit (5 syncs per commit);
  without an explicit transaction a write stays uncommitted until close, so every write
  here is in an explicit transaction. There is no switch to turn the syncs off.
- kohakuvault 1.1: SQLite with ``synchronous=NORMAL`` hard-coded; in its default WAL mode
  that means no sync at commit at all. The only durable setting is ``enable_wal=False``
  (rollback journal, where NORMAL syncs the journal and the file at every commit: 3 fsyncs
  per commit).
- lmdb-object-store 0.1: ``sync=True`` (lmdb's default) fdatasyncs at every lmdb commit;
  ``put`` only buffers, so every write batch here ends in ``put_many`` or ``flush``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from workload import Doc, System, Unsupported, make_docs

__all__ = [
    "PEERS",
    "DiskCache",
    "KohakuVault",
    "LmdbObjectStore",
    "PoloDB",
    "TinyDB",
    "UnQLite",
]

_U64 = struct.Struct(">Q")


def _next_free_id(exists: Callable[[int], bool]) -> int:
    """The id after the last stored one, for ids ``1..n`` stored without gaps (the workload
    never deletes): galloping then binary search, O(log n) point lookups instead of a
    count that reads every record."""
    if not exists(1):
        return 1
    low, high = 1, 2  # exists(low); high unknown
    while exists(high):
        low, high = high, high * 2
    while high - low > 1:  # exists(low), not exists(high)
        mid = (low + high) // 2
        if exists(mid):
            low = mid
        else:
            high = mid
    return high


class _Peer(System):
    """Shared bits: the next id and ``doc``, an untimed read of one document used by the
    self-check."""

    next_id = 1

    def doc(self, i: int) -> Doc | None:
        """Document ``i`` as a dict, or None (self-check helper, not timed)."""
        raise NotImplementedError

    def _take_ids(self, count: int) -> range:
        ids = range(self.next_id, self.next_id + count)
        self.next_id += count
        return ids


class PoloDB(_Peer):
    """PoloDB (polodb-python 0.2, PoloDB Core 5.3 on RocksDB), MongoDB-like: collection
    ``orders``, ``_id`` = our integer id, a unique index on ``email`` and an index on
    ``customer_id`` maintained by the engine; bulk insert and the update in one explicit
    transaction, ``commit_each`` one auto-committed ``insert_one`` per document. Every commit
    fdatasyncs the RocksDB WAL (Core 5.3 hard-codes ``sync=true``; ``PoloDBConfig`` is left
    at its defaults because Core 5.3 ignores it): one sync per commit, like obj's
    ``durability="immediate"``. ``durable=False`` cannot be honoured."""

    name = "polodb"
    modules = ("polodb",)
    config = (
        "collection with _id=id; unique index email, index customer_id; RocksDB WAL "
        "fdatasync per commit (hard-coded sync=true; PoloDBConfig ignored by Core 5.3)"
    )

    def open(self) -> None:
        import polodb

        self.db = polodb.PoloDB(os.path.join(self.directory, "bench.polodb"))
        self.coll = self.db["orders"]
        self.coll.create_index({"email": 1}, unique=True)  # a no-op when it exists
        self.coll.create_index({"customer_id": 1})
        find_one = self.coll.find_one
        self.next_id = _next_free_id(lambda i: find_one({"_id": i}) is not None)

    def close(self) -> None:
        # The Rust database closes when the last handle to it goes, and it refuses to
        # close while a transaction object is alive: drop every handle first.
        del self.coll
        self.db.close()
        del self.db

    def doc(self, i: int) -> Doc | None:
        return self.coll.find_one({"_id": i})

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        ids = self._take_ids(len(docs))
        with self.db.transaction() as tx:
            tx["orders"].insert_many([{"_id": i, **d} for i, d in zip(ids, docs)])

    def commit_each(self, docs: Sequence[Any]) -> None:
        insert_one = self.coll.insert_one
        for i, d in zip(self._take_ids(len(docs)), docs):
            insert_one({"_id": i, **d})

    def update_totals(self, ids: Sequence[int]) -> int:
        with self.db.transaction() as tx:
            coll = tx["orders"]
            find_one, update_one = coll.find_one, coll.update_one
            for i in ids:
                doc = find_one({"_id": i})
                if doc is None:
                    raise KeyError(i)
                doc["total"] += 1
                update_one({"_id": i}, {"$set": {"total": doc["total"]}})
        return len(ids)

    def get(self, ids: Sequence[int]) -> int:
        find_one = self.coll.find_one
        return sum(1 for i in ids if find_one({"_id": i}) is not None)

    def scan(self) -> int:
        return sum(1 for _doc in self.coll.find())

    def unique(self, emails: Sequence[str]) -> int:
        find_one = self.coll.find_one
        return sum(1 for e in emails if find_one({"email": e}) is not None)

    def equal_range(self, customer_ids: Sequence[int]) -> int:
        find = self.coll.find
        return sum(len(find({"customer_id": c}).to_list()) for c in customer_ids)

    def filter_total(self, low: float) -> int:
        return len(self.coll.find({"total": {"$gte": low}}).to_list())


class TinyDB(_Peer):
    """TinyDB with its default ``JSONStorage``: every write rewrites the whole JSON file and
    fsyncs it, every read parses the whole file; there are no indexes, so ``unique`` and
    ``equal_range`` are the ``Query`` scans a TinyDB user writes. Ids are TinyDB's own
    ``doc_id`` (1, 2, ... in insertion order). The table's query-result cache is off
    (``cache_size=0``): otherwise repeating a search returns the cached list without reading
    the file, and rounds would time the cache, not the query."""

    name = "tinydb"
    modules = ("tinydb",)
    max_n = 2000
    #: every lookup parses the whole file (~2 ms at 2,000 documents): fewer lookups suffice
    max_ops = 200
    config = (
        "default JSONStorage (whole-file rewrite + fsync per write, not atomic); "
        "doc_id=id; Query scans, no indexes; table cache_size=0"
    )

    def open(self) -> None:
        import tinydb

        self.db = tinydb.TinyDB(os.path.join(self.directory, "bench.json"))
        self.table = self.db.table("orders", cache_size=0)
        self.query = tinydb.Query()
        self.next_id = len(self.table) + 1

    def close(self) -> None:
        self.db.close()

    def doc(self, i: int) -> Doc | None:
        return self.table.get(doc_id=i)

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        ids = self.table.insert_multiple(docs)
        assert not ids or ids[0] == self.next_id, (ids[0], self.next_id)
        self.next_id += len(ids)

    def commit_each(self, docs: Sequence[Any]) -> None:
        insert = self.table.insert
        for d in docs:
            insert(d)
        self.next_id += len(docs)

    def update_totals(self, ids: Sequence[int]) -> int:
        from tinydb.operations import add

        # One read of the file, ``doc["total"] += 1`` on each, one rewrite + fsync.
        return len(self.table.update(add("total", 1), doc_ids=list(ids)))

    def get(self, ids: Sequence[int]) -> int:
        get = self.table.get
        return sum(1 for i in ids if get(doc_id=i) is not None)

    def scan(self) -> int:
        return len(self.table.all())

    def unique(self, emails: Sequence[str]) -> int:
        get, email = self.table.get, self.query.email
        return sum(1 for e in emails if get(email == e) is not None)

    def equal_range(self, customer_ids: Sequence[int]) -> int:
        search, customer_id = self.table.search, self.query.customer_id
        return sum(len(search(customer_id == c)) for c in customer_ids)

    def filter_total(self, low: float) -> int:
        return len(self.table.search(self.query.total >= low))


class DiskCache(_Peer):
    """diskcache ``Cache`` as a key-value store: key = the integer id, value = the dict
    (pickled by diskcache, its default). SQLite WAL with ``sqlite_synchronous=2`` (FULL; the
    default NORMAL does not sync at commit), so one fdatasync of the WAL per commit.
    ``eviction_policy="none"``: a store must never drop documents (the default culls past
    1 GiB and keeps an extra store-time index). Bulk insert and the update run inside
    ``cache.transact()``. No secondary index."""

    name = "diskcache"
    modules = ("diskcache",)
    config = (
        "Cache(key=id, value=dict pickled by diskcache); WAL, sqlite_synchronous=2 (FULL, "
        "fdatasync per commit); eviction_policy='none'; transact() for batches"
    )

    def open(self) -> None:
        import diskcache

        self.cache = diskcache.Cache(
            os.path.join(self.directory, "bench.diskcache"),
            sqlite_synchronous=2 if self.durable else 0,
            eviction_policy="none",
        )
        self.next_id = len(self.cache) + 1

    def close(self) -> None:
        self.cache.close()

    def doc(self, i: int) -> Doc | None:
        doc: Doc | None = self.cache.get(i)
        return doc

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        ids = self._take_ids(len(docs))
        cache = self.cache
        with cache.transact():
            set_ = cache.set
            for i, d in zip(ids, docs):
                set_(i, d)

    def commit_each(self, docs: Sequence[Any]) -> None:
        set_ = self.cache.set
        for i, d in zip(self._take_ids(len(docs)), docs):
            set_(i, d)

    def update_totals(self, ids: Sequence[int]) -> int:
        cache = self.cache
        with cache.transact():
            get, set_ = cache.get, cache.set
            for i in ids:
                doc = get(i)
                doc["total"] += 1
                set_(i, doc)
        return len(ids)

    def get(self, ids: Sequence[int]) -> int:
        get = self.cache.get
        return sum(1 for i in ids if get(i) is not None)

    def scan(self) -> int:
        cache = self.cache
        get = cache.get
        return sum(1 for key in cache if get(key) is not None)

    def filter_total(self, low: float) -> int:
        cache = self.cache
        get = cache.get
        return len([d for key in cache if (d := get(key)) is not None and d["total"] >= low])


class UnQLite(_Peer):
    """UnQLite key-value store (unqlite-python 1.2): key = ``str(id)``, value = msgpack of
    the dict. Every write is in an explicit ``transaction()`` (without one, UnQLite keeps
    the write open until close); its commit journals and syncs (five syncs per commit).
    Scan walks a cursor (UnQLite's hash engine has no key order). No secondary index."""

    name = "unqlite"
    modules = ("unqlite", "msgpack")
    config = (
        "KV, key=str(id), value=msgpack(dict); explicit transaction per commit "
        "(journal + fsync/fdatasync at commit); cursor scan"
    )

    def open(self) -> None:
        import msgpack
        import unqlite

        self.packb, self.unpackb = msgpack.packb, msgpack.unpackb
        self.db = unqlite.UnQLite(os.path.join(self.directory, "bench.unqlite"))
        exists = self.db.exists
        self.next_id = _next_free_id(lambda i: bool(exists(str(i))))

    def close(self) -> None:
        self.db.close()

    def doc(self, i: int) -> Doc | None:
        raw = self.db.get(str(i))
        return None if raw is None else self.unpackb(raw)

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        ids = self._take_ids(len(docs))
        db, packb = self.db, self.packb
        with db.transaction():
            store = db.store
            for i, d in zip(ids, docs):
                store(str(i), packb(d))

    def commit_each(self, docs: Sequence[Any]) -> None:
        db, packb = self.db, self.packb
        transaction, store = db.transaction, db.store
        for i, d in zip(self._take_ids(len(docs)), docs):
            with transaction():
                store(str(i), packb(d))

    def update_totals(self, ids: Sequence[int]) -> int:
        db, packb, unpackb = self.db, self.packb, self.unpackb
        with db.transaction():
            fetch, store = db.fetch, db.store
            for i in ids:
                key = str(i)
                doc = unpackb(fetch(key))
                doc["total"] += 1
                store(key, packb(doc))
        return len(ids)

    def get(self, ids: Sequence[int]) -> int:
        get, unpackb = self.db.get, self.unpackb
        return sum(1 for i in ids if (raw := get(str(i))) is not None and unpackb(raw))

    def scan(self) -> int:
        unpackb = self.unpackb
        with self.db.cursor() as cursor:
            return sum(1 for _key, raw in cursor if unpackb(raw))

    def filter_total(self, low: float) -> int:
        unpackb = self.unpackb
        with self.db.cursor() as cursor:
            return len([d for _key, raw in cursor if (d := unpackb(raw))["total"] >= low])


class KohakuVault(_Peer):
    """KohakuVault ``KVault`` (SQLite-backed KV): big-endian 8-byte keys, the dict stored
    through its default auto-pack (dicts become MessagePack in Rust and come back as
    dicts). ``enable_wal=False``: KohakuVault hard-codes ``synchronous=NORMAL``, which in
    its default WAL mode never syncs at commit; in rollback-journal mode NORMAL syncs the
    journal and the file at every commit, so this is its only durable setting. Batches use
    ``put_many`` (one atomic SQLite transaction); the update reads with ``get_many`` and
    writes with ``put_many`` (no read-write transaction in the API). No secondary index."""

    name = "kohakuvault"
    modules = ("kohakuvault",)
    config = (
        "KVault, key=u64 big-endian, value=dict auto-packed as msgpack; enable_wal=False "
        "(rollback journal + synchronous=NORMAL: fsync per commit); put_many batches"
    )

    def open(self) -> None:
        import kohakuvault

        self.vault = kohakuvault.KVault(
            os.path.join(self.directory, "bench.kvault"), enable_wal=not self.durable
        )
        exists = self.vault.exists
        self.next_id = _next_free_id(lambda i: exists(_U64.pack(i)))

    def close(self) -> None:
        self.vault.close()

    def doc(self, i: int) -> Doc | None:
        doc: Doc | None = self.vault.get(_U64.pack(i))
        return doc

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        pack = _U64.pack
        self.vault.put_many([(pack(i), d) for i, d in zip(self._take_ids(len(docs)), docs)])

    def commit_each(self, docs: Sequence[Any]) -> None:
        pack, put = _U64.pack, self.vault.put
        for i, d in zip(self._take_ids(len(docs)), docs):
            put(pack(i), d)

    def update_totals(self, ids: Sequence[int]) -> int:
        pack = _U64.pack
        keys = [pack(i) for i in ids]
        docs = self.vault.get_many(keys)
        for doc in docs:
            doc["total"] += 1
        self.vault.put_many(list(zip(keys, docs)))
        return len(keys)

    def get(self, ids: Sequence[int]) -> int:
        pack, get = _U64.pack, self.vault.get
        return sum(1 for i in ids if get(pack(i)) is not None)

    def scan(self) -> int:
        return sum(1 for _key, doc in self.vault.items() if doc is not None)

    def filter_total(self, low: float) -> int:
        return len([d for _key, d in self.vault.items() if d["total"] >= low])


class LmdbObjectStore(_Peer):
    """lmdb-object-store: a buffered, pickling dict-like store over LMDB, big-endian 8-byte
    keys. ``sync=True`` (fdatasync at every LMDB commit), ``map_size=1<<36``. ``put`` only
    buffers, so bulk insert is one atomic ``put_many`` and ``commit_each`` is ``put`` +
    ``flush()`` per document; the update reads with ``get_many`` and writes with
    ``put_many``. It has no iteration API: scan and filter walk a cursor of its public
    ``env`` (the ``lmdb.Environment``) and unpickle each value. No secondary index."""

    name = "lmdb-object-store"
    modules = ("lmdb_object_store", "lmdb")
    config = (
        "key=u64 big-endian, value=pickle; lmdb sync=True (fdatasync per commit), "
        "map_size=2^36; put_many for batches, put+flush per commit; scan via store.env cursor"
    )

    def open(self) -> None:
        from lmdb_object_store import LmdbObjectStore as Store

        self.store: Any = Store(
            os.path.join(self.directory, "bench.lmdbos"),
            sync=self.durable,
            metasync=self.durable,
            map_size=1 << 36,
        )
        with self.store.env.begin() as txn:
            cursor = txn.cursor()
            self.next_id = _U64.unpack(cursor.key())[0] + 1 if cursor.last() else 1

    def close(self) -> None:
        self.store.close(strict=True)

    def doc(self, i: int) -> Doc | None:
        doc: Doc | None = self.store.get(_U64.pack(i))
        return doc

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        pack = _U64.pack
        self.store.put_many([(pack(i), d) for i, d in zip(self._take_ids(len(docs)), docs)])
        self.store.flush()  # put_many commits by itself; nothing is left in the buffer

    def commit_each(self, docs: Sequence[Any]) -> None:
        pack, put, flush = _U64.pack, self.store.put, self.store.flush
        for i, d in zip(self._take_ids(len(docs)), docs):
            put(pack(i), d)
            flush()

    def update_totals(self, ids: Sequence[int]) -> int:
        pack = _U64.pack
        found, _missing = self.store.get_many([pack(i) for i in ids])
        for doc in found.values():
            doc["total"] += 1
        self.store.put_many(found)
        return len(found)

    def get(self, ids: Sequence[int]) -> int:
        pack, get = _U64.pack, self.store.get
        return sum(1 for i in ids if get(pack(i)) is not None)

    def _values(self) -> Iterator[Doc]:
        import pickle

        loads = pickle.loads
        self.store.flush()
        with self.store.env.begin(buffers=True) as txn:
            for _key, raw in txn.cursor():
                yield loads(raw)

    def scan(self) -> int:
        return sum(1 for _doc in self._values())

    def filter_total(self, low: float) -> int:
        return len([d for d in self._values() if d["total"] >= low])


PEERS: list[type[System]] = [PoloDB, TinyDB, DiskCache, UnQLite, KohakuVault, LmdbObjectStore]


# Self-check --------------------------------------------------------------------------------


def _check(cls: type[_Peer], n: int) -> dict[str, float]:
    """Runs every operation once on ``n`` documents in a temporary directory, checks the
    counts and contents, and returns the seconds each step took."""
    import shutil
    import tempfile
    import time

    from workload import FILTER_FROM, RANGE_SIZE

    directory = tempfile.mkdtemp(prefix=f"peers-{cls.name}-")
    times: dict[str, float] = {}

    def must(i: int) -> Doc:
        doc = system.doc(i)
        assert doc is not None, f"{cls.name}: id {i} missing"
        return doc

    def timed(step: str, run: Any) -> Any:
        start = time.perf_counter()
        result = run()
        times[step] = times.get(step, 0.0) + time.perf_counter() - start
        return result

    try:
        docs = make_docs(0, n)
        half = n // 2
        system = cls(directory)
        # Two chunks with a close/reopen between them: ids continue across both.
        timed("open", system.open)
        timed("bulk_insert", lambda: system.bulk_insert(system.prepare(docs[:half])))
        system.close()
        system.open()
        timed("bulk_insert", lambda: system.bulk_insert(system.prepare(docs[half:])))
        system.close()
        timed("reopen", system.open)

        for i in (1, half, half + 1, n):
            assert must(i)["email"] == docs[i - 1]["email"], i
        all_ids = list(range(1, n + 1))
        assert timed("get", lambda: system.get(all_ids)) == n
        assert system.get([n + 1, n + 2]) == 0
        assert timed("scan", system.scan) == n

        sample = range(0, n, max(1, n // 1000))
        emails = [docs[i]["email"] for i in sample]
        try:
            assert timed("unique", lambda: system.unique(emails)) == len(emails)
            assert system.unique(["nobody@example.com"]) == 0
        except Unsupported:
            times["unique"] = float("nan")
        customers = list(range(min(100, n // RANGE_SIZE)))
        try:
            found = timed("equal_range", lambda: system.equal_range(customers))
            assert found == RANGE_SIZE * len(customers), found
        except Unsupported:
            times["equal_range"] = float("nan")

        for low in (FILTER_FROM, 900.0):
            expected = sum(1 for d in docs if d["total"] >= low)
            got_count = timed(f"filter {low:g}", lambda low=low: system.filter_total(low))
            assert got_count == expected, (low, got_count, expected)

        first = list(range(1, 101))
        before = {i: must(i)["total"] for i in [*first, 101]}
        assert timed("update_totals", lambda: system.update_totals(first)) == 100
        for i in first:
            assert must(i)["total"] == before[i] + 1, i
        assert must(101)["total"] == before[101]

        extra = make_docs(n, n + 20)
        timed("commit_each x20", lambda: system.commit_each(system.prepare(extra)))
        assert system.get(list(range(n + 1, n + 21))) == 20
        assert must(n + 20)["email"] == extra[-1]["email"]
        system.close()

        times["disk MB"] = system.disk_bytes() / 1e6
        assert times["disk MB"] > 0
        # Everything committed is there after a reopen.
        system.open()
        assert system.scan() == n + 20
        assert must(1)["total"] == before[1] + 1
        system.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return times


def _main() -> None:
    import importlib
    import math

    steps = [
        "open",
        "bulk_insert",
        "reopen",
        "get",
        "scan",
        "unique",
        "equal_range",
        "filter 999",
        "filter 900",
        "update_totals",
        "commit_each x20",
        "disk MB",
    ]
    for n in (1000, 20000):
        print(f"\nn = {n} (seconds per step; disk in MB; '-' = unsupported)")
        print(f"{'peer':<18}" + "".join(f"{s:>16}" for s in steps))
        for cls in PEERS:
            assert issubclass(cls, _Peer)
            try:
                for module in cls.modules:
                    importlib.import_module(module)
            except ImportError as e:
                print(f"{cls.name:<18}skipped: {e}")
                continue
            if cls.max_n is not None and n > cls.max_n:
                print(f"{cls.name:<18}skipped: max_n = {cls.max_n}")
                continue
            times = _check(cls, n)
            cells = [
                "-"
                if math.isnan(times[s])
                else f"{times[s]:.4f}"
                if s != "disk MB"
                else f"{times[s]:.2f}"
                for s in steps
            ]
            print(f"{cls.name:<18}" + "".join(f"{c:>16}" for c in cells))
    print("\nall peers passed")


if __name__ == "__main__":
    _main()
