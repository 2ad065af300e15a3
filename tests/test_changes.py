"""The change log (#19): one record per commit in the same atomic commit, its metadata and
images, retention, reading and following it (threads, processes, asyncio), replaying it on
another file (``apply_changes``) and undoing a record (``revert``)."""

from __future__ import annotations

import asyncio
import datetime
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import pytest

import obj
import obj._obj

# -- document classes and helpers ------------------------------------------------------------


@obj.document(collection="chg_orders", version=1)
@dataclass
class Order:
    customer: str
    total: float


@obj.document(collection="chg_items", version=1)
@dataclass
class Item:
    name: str
    qty: int


@obj.document(collection="chg_people", version=1)
@dataclass
class PersonV1:
    name: str
    age: int


@obj.document(collection="chg_people", version=2, history=[PersonV1])
@dataclass
class Person:
    name: str
    birth_year: int

    @classmethod
    def migrate(cls, doc: Any, from_version: int) -> Person:
        return cls(doc.name, 2024 - doc.age)


def records(db: obj.Db, since: int = 0) -> list[obj.Change]:
    return list(db.changes(since=since))


def entries(change: obj.Change) -> list[tuple[Any, ...]]:
    """A record's document changes as plain tuples (collection, key, op, old, new)."""
    return [tuple(dc) for dc in change]


def contents(db: obj.Db) -> dict[str, list[Any]]:
    """Every collection of ``db`` read by name: (id, doc) pairs of id collections and
    (key, value) pairs of keyed ones (stores and tables)."""
    out: dict[str, list[Any]] = {}
    for c in db.stat().collections:
        if c.kind == "keyed":
            out[c.name] = list(db.store(c.name, keys="bytes").items())
        else:
            out[c.name] = list(db.all(c.name))
    return out


@pytest.fixture
def clock() -> Iterator[Callable[[float], None]]:
    """Sets the engine's clock (seconds since the epoch) for the test; restored after."""
    obj._obj._set_clock(1_000_000.0)
    try:
        yield obj._obj._set_clock
    finally:
        obj._obj._set_clock(None)


T0 = 1_000_000.0


def utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


# -- 1. one record per commit, metadata ------------------------------------------------------


def test_one_record_per_commit_gap_free_from_one_and_kept_across_reopen(
    path: pathlib.Path,
) -> None:
    with obj.Db(path, changes=True) as db:
        info = db.change_log()
        # Turning the log on is a commit of its own that appends no record.
        assert info is not None and (info.images, info.oldest, info.last) == ("both", 1, 0)
        assert records(db) == []
        a = db.insert("c", {"n": 1})
        db.upsert("c", a, {"n": 2})
        with db.transaction() as tx:
            tx.insert("c", {"n": 3})
            tx.insert("d", b"raw")
            tx.delete("c", a)
        # Commits that change nothing are not commits: no record.
        with db.transaction():
            pass
        assert db.delete("c", 12345) is False
        tx = db.transaction()
        tx.insert("c", {"n": 99})
        tx.rollback()
        # Another handle on the same file appends to the same log.
        with obj.Db(path) as other:
            other.insert("c", {"n": 4})
        got = records(db)
        assert [r.seq for r in got] == [1, 2, 3, 4]
        assert [len(r) for r in got] == [1, 1, 3, 1]
        assert [dc.op for dc in got[2]] == ["insert", "insert", "delete"]
        assert got[3].changes[0].new == {"n": 4}
        for r in got:
            assert r.time.tzinfo is not None and r.time.utcoffset() == datetime.timedelta(0)
        assert [r.time for r in got] == sorted(r.time for r in got)
        before = [r.to_bytes() for r in got]
        assert db.change_log() == obj.ChangeLogInfo("both", obj.Retention(), 1, 4)

    # changes=None (the default) keeps what the file says.
    with obj.Db(path) as db:
        assert db.change_log() == obj.ChangeLogInfo("both", obj.Retention(), 1, 4)
        assert [r.to_bytes() for r in records(db)] == before
        db.insert("c", {"n": 5})
        assert [r.seq for r in records(db)] == [1, 2, 3, 4, 5]
    # changes=False turns the log off and drops it.
    with obj.Db(path, changes=False) as db:
        assert db.change_log() is None
        db.insert("c", {"n": 6})
        with pytest.raises(obj.InvalidArgumentError):
            db.changes()
    with obj.Db(path) as db:
        assert db.change_log() is None


def test_transaction_and_context_metadata(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as db:
        with db.transaction(action="create_user", user="ana", meta={"ticket": 7}) as tx:
            tx.insert("users", {"name": "Alice"})
        db.insert("users", {"name": "nobody"})  # no metadata
        with db.context(action="import", user="cron", meta={"batch": [1, 2]}):
            db.insert("users", {"name": "Bob"})  # a Db-level write
            db.upsert("users", 1, {"name": "Alice2"})
            with db.transaction() as tx:  # started inside, no metadata of its own
                tx.insert("users", {"name": "Cy"})
            with db.transaction(action="own", user="me", meta={"x": 1}) as tx:
                tx.insert("users", {"name": "Di"})
            db.store("kv")["k"] = b"v"  # a Store write too
        db.insert("users", {"name": "after"})  # the context ended
        got = [(r.action, r.user, r.meta) for r in records(db)]
        ctx = ("import", "cron", {"batch": [1, 2]})
        assert got == [
            ("create_user", "ana", {"ticket": 7}),
            (None, None, None),
            ctx,
            ctx,
            ctx,
            ("own", "me", {"x": 1}),
            ctx,
            (None, None, None),
        ]


def test_context_is_per_thread_and_per_handle(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as db, obj.Db(path) as other:
        entered = threading.Event()
        written = threading.Event()
        errors: list[BaseException] = []

        def elsewhere() -> None:
            try:
                assert entered.wait(10)
                db.insert("c", {"who": "thread"})  # not in the main thread's context
                with db.context(action="thread-ctx"):
                    db.insert("c", {"who": "thread in its context"})
                written.set()
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)
                written.set()

        worker = threading.Thread(target=elsewhere)
        worker.start()
        with db.context(action="main-ctx", user="main"):
            entered.set()
            assert written.wait(10)
            db.insert("c", {"who": "main"})
            other.insert("c", {"who": "other handle"})  # another handle: not its context
            with other.transaction() as tx:
                tx.insert("c", {"who": "other handle tx"})
        worker.join(10)
        assert not errors, errors
        got = [(r.changes[0].new["who"], r.action, r.user) for r in records(db)]
        assert got == [
            ("thread", None, None),
            ("thread in its context", "thread-ctx", None),
            ("main", "main-ctx", "main"),
            ("other handle", None, None),
            ("other handle tx", None, None),
        ]


# -- 2. images --------------------------------------------------------------------------------

EXPECTED_IMAGES = {
    # images -> (old present, new present) for insert / update / delete
    "keys": {"insert": (False, False), "update": (False, False), "delete": (False, False)},
    "new": {"insert": (False, True), "update": (False, True), "delete": (False, False)},
    "old": {"insert": (False, False), "update": (True, False), "delete": (True, False)},
    "both": {"insert": (False, True), "update": (True, True), "delete": (True, False)},
}


@pytest.mark.parametrize("images", ["keys", "new", "old", "both"])
def test_images_of_insert_update_delete(path: pathlib.Path, images: str) -> None:
    with obj.Db(path, changes=images) as db:
        assert db.change_log().images == images  # type: ignore[union-attr]
        raw = db.insert("raw", b"v1")
        db.upsert("raw", raw, b"v2")
        db.delete("raw", raw)
        d = db.insert("dicts", {"a": 1, "nested": {"l": [1, 2]}})
        db.upsert("dicts", d, {"a": 2})
        db.delete("dicts", d)
        o = db.insert(Order("ann", 9.5))
        db.upsert(Order, o, Order("ann", 10.0))
        db.delete(Order, o)
        values = {
            "raw": (b"v1", b"v2"),
            "dicts": ({"a": 1, "nested": {"l": [1, 2]}}, {"a": 2}),
            "chg_orders": ({"customer": "ann", "total": 9.5}, {"customer": "ann", "total": 10.0}),
        }
        got = records(db)
        assert [r.seq for r in got] == list(range(1, 10))
        for r, (name, op) in zip(
            got, [(n, op) for n in values for op in ("insert", "update", "delete")]
        ):
            (dc,) = r.changes
            assert (dc.collection, dc.op, dc.id, dc.key) == (name, op, 1, 1)
            first, second = values[name]
            full_old = {"insert": None, "update": first, "delete": second}[op]
            full_new = {"insert": first, "update": second, "delete": None}[op]
            has_old, has_new = EXPECTED_IMAGES[images][op]
            assert dc.old == (full_old if has_old else None), (name, op)
            assert dc.new == (full_new if has_new else None), (name, op)
            collection, key, op2, old, new = dc
            assert (collection, key, op2, old, new) == (name, 1, op, dc.old, dc.new)


def test_images_of_store_table_and_insert_many(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as db:
        store = db.store("kv")
        store["user:1"] = {"plan": "free"}
        store["user:1"] = {"plan": "pro"}
        del store["user:1"]
        store.put_many({"a": 1, "b": 2})
        table = db.table("tbl")
        table.put("org#1", {"name": "Ada"}, sk=5)
        table.put("org#1", {"name": "Ada L."}, sk=5)
        table.delete("org#1", sk=5)
        ids = db.insert_many("many", [{"i": i} for i in range(5)])
        got = records(db)
        assert [r.seq for r in got] == list(range(1, 9))
        kv = [entries(r) for r in got[:4]]
        assert kv == [
            [("kv", b"user:1", "insert", None, {"plan": "free"})],
            [("kv", b"user:1", "update", {"plan": "free"}, {"plan": "pro"})],
            [("kv", b"user:1", "delete", {"plan": "pro"}, None)],
            [("kv", b"a", "insert", None, 1), ("kv", b"b", "insert", None, 2)],
        ]
        assert all(dc.id is None for r in got[:4] for dc in r)
        tbl = [r.changes[0] for r in got[4:7]]
        assert [(dc.collection, dc.op, dc.old, dc.new) for dc in tbl] == [
            ("tbl", "insert", None, {"name": "Ada"}),
            ("tbl", "update", {"name": "Ada"}, {"name": "Ada L."}),
            ("tbl", "delete", {"name": "Ada L."}, None),
        ]
        for dc in tbl:
            assert isinstance(dc.key, bytes) and dc.id is None
            assert tuple(dc.table_key) == ("org#1", 5)
        # insert_many: one commit, one record, an entry per document in order.
        many = got[7]
        assert entries(many) == [("many", i, "insert", None, {"i": n}) for n, i in enumerate(ids)]
        assert [dc.id for dc in many] == ids


def test_a_migration_is_one_record_with_typed_images_as_dicts(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        db.insert(PersonV1("ann", 20))
        db.insert(PersonV1("bob", 30))
    with obj.Db(path, changes=True) as db:
        assert db.migrate(Person) == 2
        (rec,) = records(db)
        assert entries(rec) == [
            (
                "chg_people",
                1,
                "update",
                {"name": "ann", "age": 20},
                {"name": "ann", "birth_year": 2004},
            ),
            (
                "chg_people",
                2,
                "update",
                {"name": "bob", "age": 30},
                {"name": "bob", "birth_year": 1994},
            ),
        ]
        assert db.migrate(Person) == 0
        assert db.change_log().last == 1  # type: ignore[union-attr]


# -- 3. retention -----------------------------------------------------------------------------


def test_retention_by_max_records(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True, retention=obj.Retention(max_records=5)) as db:
        for k in range(1, 21):
            db.insert("c", {"k": k})
        info = db.change_log()
        assert info is not None
        assert (info.oldest, info.last, info.records) == (16, 20, 5)
        assert info.retention == obj.Retention(max_records=5)
        # Refused when called, before any iteration.
        with pytest.raises(obj.ChangesExpiredError) as e:
            db.changes(since=0)
        assert e.value.oldest == 16
        assert isinstance(e.value, obj.ObjError)
        with pytest.raises(obj.ChangesExpiredError) as e:
            db.changes(since=14)
        assert e.value.oldest == 16
        kept = records(db, since=15)  # exactly oldest - 1
        assert [r.seq for r in kept] == [16, 17, 18, 19, 20]
        assert [r.changes[0].new["k"] for r in kept] == [16, 17, 18, 19, 20]
        assert [r.seq for r in records(db, since=18)] == [19, 20]
    # Retention is stored in the file.
    with obj.Db(path) as db:
        assert db.change_log().retention == obj.Retention(max_records=5)  # type: ignore[union-attr]
        db.enable_changes("both", retention=obj.Retention(max_records=1))
        db.insert("c", {"k": 21})
        info = db.change_log()
        assert info is not None and (info.oldest, info.last) == (21, 21)  # the newest stays
        assert [r.seq for r in records(db, since=20)] == [21]


def test_retention_by_max_age(path: pathlib.Path, clock: Callable[[float], None]) -> None:
    retention = obj.Retention(max_age=datetime.timedelta(seconds=5))
    with obj.Db(path, changes=True, retention=retention) as db:
        for s in range(10):  # seq s+1 at T0 + s
            clock(T0 + s)
            db.insert("c", {"s": s})
        info = db.change_log()
        assert info is not None
        # At T0+9 the horizon is T0+4: seq 5 (T0+4) is the oldest kept.
        assert (info.oldest, info.last) == (5, 10)
        assert info.retention.max_age == datetime.timedelta(seconds=5)
        with pytest.raises(obj.ChangesExpiredError) as e:
            db.changes(since=3)
        assert e.value.oldest == 5
        kept = records(db, since=4)
        assert [(r.seq, r.time) for r in kept] == [(s + 1, utc(T0 + s)) for s in range(4, 10)]
        # Enforced by later commits only: time passing alone drops nothing.
        clock(T0 + 100)
        assert db.change_log().oldest == 5  # type: ignore[union-attr]
        assert [r.seq for r in records(db, since=4)] == list(range(5, 11))
        db.insert("c", {"s": 100})
        info = db.change_log()
        assert info is not None and (info.oldest, info.last) == (11, 11)  # newest kept
        with pytest.raises(obj.ChangesExpiredError) as e:
            db.changes(since=9)
        assert e.value.oldest == 11
        (last,) = records(db, since=10)
        assert (last.seq, last.time, last.changes[0].new) == (11, utc(T0 + 100), {"s": 100})


# -- 4. reading: until, collections, position --------------------------------------------------


def test_changes_until_and_collections(db: obj.Db) -> None:
    db.enable_changes()
    db.insert("a", {"n": 1})  # 1
    db.insert("b", {"n": 2})  # 2
    with db.transaction() as tx:  # 3
        tx.insert("a", {"n": 3})
        tx.insert("b", {"n": 4})
        tx.insert("c", {"n": 5})
    db.insert("c", {"n": 6})  # 4
    db.insert("b", {"n": 7})  # 5
    assert [r.seq for r in db.changes(until=3)] == [1, 2, 3]
    assert [r.seq for r in db.changes(since=1, until=4)] == [2, 3, 4]
    assert [r.seq for r in db.changes(since=2, until=2)] == []
    assert [r.seq for r in db.changes(since=4, until=99)] == [5]
    assert [r.seq for r in db.changes(since=5)] == []
    only_a = list(db.changes(collections="a"))
    assert [r.seq for r in only_a] == [1, 3]
    assert [[dc.new["n"] for dc in r] for r in only_a] == [[1], [3]]
    ab = list(db.changes(collections=("a", "b")))
    assert [(r.seq, [dc.new["n"] for dc in r]) for r in ab] == [
        (1, [1]),
        (2, [2]),
        (3, [3, 4]),
        (5, [7]),
    ]
    assert [r.seq for r in db.changes(collections=["c"], until=3)] == [3]
    assert list(db.changes(collections=["nope"])) == []
    # The position covers the records skipped by the filter too.
    feed = db.changes(collections="a")
    assert [r.seq for r in feed] == [1, 3]
    assert feed.position == 5


def test_position_resumes_after_a_restart_without_loss_or_repeat(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as db:
        for k in range(1, 11):
            db.insert("c", {"k": k})
        feed = db.changes()
        assert feed.position == 0
        first = [next(feed) for _ in range(4)]
        position = feed.position
        assert position == 4
    with obj.Db(path) as db:
        for k in range(11, 16):
            db.insert("c", {"k": k})
        rest = list(db.changes(since=position))
    seen = [r.changes[0].new["k"] for r in first + rest]
    assert seen == list(range(1, 16))
    assert [r.seq for r in first + rest] == list(range(1, 16))


# -- 5. follow ---------------------------------------------------------------------------------


def test_follow_sees_a_writer_threads_commits_in_order_then_times_out(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as db:
        db.insert("c", {"k": 0})
        committed: dict[int, float] = {}

        def writer() -> None:
            time.sleep(0.3)  # the follower has to wait for the first one
            for k in range(1, 11):
                db.insert("c", {"k": k})
                committed[k] = time.monotonic()
                time.sleep(0.02)

        thread = threading.Thread(target=writer)
        thread.start()
        seen: list[tuple[int, int, float]] = []
        timeout = 0.6
        feed = db.changes(follow=True, timeout=timeout)
        for change in feed:
            seen.append((change.seq, change.changes[0].new["k"], time.monotonic()))
        ended = time.monotonic()
        thread.join(10)
        assert [(s, k) for s, k, _ in seen] == [(k + 1, k) for k in range(11)]
        assert feed.position == 11
        # Each commit was seen as it came, not all at the end.
        for _, k, at in seen[1:]:
            assert at - committed[k] < 0.5, k
        # It ended only after `timeout` seconds without a new commit.
        assert ended - committed[10] >= timeout * 0.9
        assert ended - committed[10] < timeout + 3


FOLLOWED_WRITER = r"""
import sys, time
import obj

db = obj.Db(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for k in range(1, 21):
    with db.transaction(action="child", meta={"k": k}) as tx:
        tx.insert("c", {"k": k})
    time.sleep(0.01)
db.close()
print("done", flush=True)
"""


def test_follow_sees_a_writer_in_another_process(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as db:
        proc = subprocess.Popen(
            [sys.executable, "-c", FOLLOWED_WRITER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
            feed = db.changes(follow=True, timeout=1.5)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            seen = [(r.seq, r.action, r.meta, r.changes[0].new) for r in feed]
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == 0, err
        assert out.strip() == "done"
        assert seen == [(k, "child", {"k": k}, {"k": k}) for k in range(1, 21)]
        assert feed.position == 20


# -- 6. atomicity under SIGKILL ----------------------------------------------------------------

KILLED_WRITER = r"""
import sys
import obj

db = obj.Db(sys.argv[1])
k = db.count("c")
while True:
    k += 1
    with db.transaction() as tx:
        tx.insert("c", {"k": k, "pad": "x" * (k * 7919 % 12000)})
        if k % 3 == 0:
            tx.upsert("last", 1, {"k": k})
    print(k, flush=True)
"""


def run_and_kill(path: pathlib.Path, rng: random.Random) -> list[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acks: list[int] = []
    first = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            acks.append(int(line))
            first.set()
        first.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert first.wait(30), "the writer did not start committing"
        time.sleep(rng.uniform(0.0, 0.3))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        reader.join(30)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, stderr
    return acks


def check_log_matches_data(path: pathlib.Path, acked: int) -> int:
    with obj.Db(path) as db:
        info = db.change_log()
        assert info is not None and info.oldest == 1
        n = info.last
        assert acked <= n <= acked + 1, (acked, n)
        got = records(db)
        assert [r.seq for r in got] == list(range(1, n + 1))
        logged = []
        for r in got:
            inserts = [dc for dc in r if dc.collection == "c"]
            assert len(inserts) == 1 and inserts[0].op == "insert", r.seq
            k = inserts[0].new["k"]
            assert inserts[0].new["pad"] == "x" * (k * 7919 % 12000)
            logged.append(k)
            assert len(r) == (2 if k % 3 == 0 else 1), r.seq
        stored = sorted(doc["k"] for _, doc in db.all("c"))
        assert stored == logged == list(range(1, n + 1))
        last = db.get("last", 1)
        assert (last["k"] if last else 0) == n - n % 3
        return n


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_sigkill_never_separates_a_commit_from_its_record(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "killed.obj"
    with obj.Db(path, changes=True):
        pass
    rng = random.Random(190019)
    acked = 0
    started = time.monotonic()
    rounds = 0
    while rounds < 4 and time.monotonic() - started < 6:
        acks = run_and_kill(path, rng)
        assert acks == list(range(acked + 1, acked + 1 + len(acks))), acks[:3]
        if acks:
            acked = acks[-1]
        acked = check_log_matches_data(path, acked)
        rounds += 1
    assert rounds >= 2
    assert acked > 5


# -- 7. apply_changes --------------------------------------------------------------------------


def workload(db: obj.Db, rng: random.Random, txns: int, live: dict[str, set[Any]]) -> None:
    """Random commits over an id collection, a Store, a typed class and a Table."""
    for _ in range(txns):
        if rng.random() < 0.2:  # a Db-level single write
            if rng.random() < 0.5:
                live["ids"].add(db.insert("chg_ids", {"v": rng.randrange(1000)}))
            else:
                key = f"k{rng.randrange(30)}"
                db.store("chg_kv")[key] = rng.randrange(1000)
                live["kv"].add(key)
            continue
        with db.transaction(action="work", meta={"r": rng.randrange(9)}) as tx:
            kv = tx.store("chg_kv")
            table = tx.table("chg_tbl")
            for _ in range(rng.randint(1, 8)):
                what = rng.randrange(10)
                if what == 0:
                    live["ids"].add(tx.insert("chg_ids", os.urandom(rng.randrange(1, 40))))
                elif what == 1:
                    live["ids"].add(tx.insert("chg_ids", {"v": rng.randrange(1000), "s": "x" * 50}))
                elif what == 2 and live["ids"]:
                    i = rng.choice(sorted(live["ids"]))
                    tx.upsert("chg_ids", i, {"v": -rng.randrange(1000)})
                elif what == 3 and live["ids"]:
                    i = rng.choice(sorted(live["ids"]))
                    assert tx.delete("chg_ids", i)
                    live["ids"].discard(i)
                elif what == 4:
                    key = f"k{rng.randrange(30)}"
                    kv[key] = {"v": rng.randrange(1000), "l": [1, 2, rng.random()]}
                    live["kv"].add(key)
                elif what == 5 and live["kv"]:
                    key = rng.choice(sorted(live["kv"]))
                    del kv[key]
                    live["kv"].discard(key)
                elif what == 6:
                    live["items"].add(tx.insert(Item(f"n{rng.randrange(99)}", rng.randrange(9))))
                elif what == 7 and live["items"]:
                    i = rng.choice(sorted(live["items"]))
                    tx.upsert(Item, i, Item("updated", rng.randrange(99)))
                elif what == 8 and live["items"]:
                    i = rng.choice(sorted(live["items"]))
                    assert tx.delete(Item, i)
                    live["items"].discard(i)
                else:
                    table.put(
                        f"pk{rng.randrange(5)}", {"q": rng.randrange(99)}, sk=rng.randrange(5)
                    )


def fresh_live() -> dict[str, set[Any]]:
    return {"ids": set(), "kv": set(), "items": set()}


def assert_same(primary: obj.Db, replica: obj.Db) -> None:
    expected = contents(primary)
    assert set(expected) == {"chg_ids", "chg_kv", "chg_items", "chg_tbl"}
    assert contents(replica) == expected
    assert list(replica.all(Item)) == list(primary.all(Item))


def test_apply_changes_makes_a_replica_equal_and_skips_what_it_has(tmp_path: pathlib.Path) -> None:
    rng = random.Random(1919)
    live = fresh_live()
    with obj.Db(tmp_path / "p.obj", changes=True) as primary, obj.Db(tmp_path / "r.obj") as replica:
        workload(primary, rng, 60, live)
        last = primary.change_log().last  # type: ignore[union-attr]
        assert last == 60
        half = 25
        assert replica.apply_changes(primary.changes(until=half)) == half
        # Already-applied records are skipped: only the rest is applied.
        assert replica.apply_changes(primary.changes()) == last - half
        assert_same(primary, replica)
        assert replica.apply_changes(primary.changes()) == 0
        assert replica.apply_changes(list(primary.changes(since=10))) == 0
        assert_same(primary, replica)
        # More commits on the primary; the replica follows from where it is.
        workload(primary, rng, 20, live)
        assert replica.apply_changes(primary.changes()) == 20
        assert_same(primary, replica)
        assert replica.change_log() is None  # it keeps no log of its own
    # The replica's position survives a reopen.
    with obj.Db(tmp_path / "p.obj") as primary, obj.Db(tmp_path / "r.obj") as replica:
        assert replica.apply_changes(primary.changes()) == 0
        assert_same(primary, replica)


def test_apply_refuses_a_gap(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as primary, obj.Db.memory() as replica:
        workload(primary, random.Random(7), 8, fresh_live())
        recs = records(primary)
        assert replica.apply_changes(recs[:2]) == 2
        before = contents(replica)
        with pytest.raises(obj.InvalidArgumentError):
            replica.apply_changes(recs[3:])
        assert contents(replica) == before
        with pytest.raises(obj.InvalidArgumentError):
            obj.Db.memory().apply_changes(recs[1:])
        assert replica.apply_changes(recs) == len(recs) - 2
        assert_same(primary, replica)


def test_backup_then_apply_the_rest(tmp_path: pathlib.Path) -> None:
    rng = random.Random(4242)
    live = fresh_live()
    with obj.Db(tmp_path / "p.obj", changes=True) as primary:
        workload(primary, rng, 30, live)
        primary.backup(tmp_path / "b.obj")
        workload(primary, rng, 30, live)
        with obj.Db(tmp_path / "b.obj") as backup:
            info = backup.change_log()
            assert info is not None and info.last == 30
            assert backup.apply_changes(primary.changes()) == 30
            assert_same(primary, backup)
            assert backup.change_log().last == 60  # type: ignore[union-attr]
            assert backup.apply_changes(primary.changes()) == 0


def test_apply_from_bytes(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as primary, obj.Db.memory() as replica:
        workload(primary, random.Random(99), 25, fresh_live())
        blobs = [r.to_bytes() for r in primary.changes()]
        assert all(isinstance(b, bytes) for b in blobs)
        for original, blob in zip(primary.changes(), blobs):
            copy = obj.Change.from_bytes(blob)
            assert (copy.seq, copy.time, copy.action, copy.user, copy.meta) == (
                original.seq,
                original.time,
                original.action,
                original.user,
                original.meta,
            )
            # A typed image needs its schema, which only the record that registered it
            # carries; the rest decode the same on their own.
            assert [(d.collection, d.key, d.id, d.op) for d in copy] == [
                (d.collection, d.key, d.id, d.op) for d in original
            ]
            assert [(d.old, d.new) for d in copy if d.collection != "chg_items"] == [
                (d.old, d.new) for d in original if d.collection != "chg_items"
            ]
            assert copy.to_bytes() == blob
        assert replica.apply_changes(iter(blobs)) == 25
        assert_same(primary, replica)
        assert replica.apply_changes(blobs) == 0


@pytest.mark.parametrize("images", ["keys", "old"])
def test_a_log_without_new_images_cannot_be_applied(path: pathlib.Path, images: str) -> None:
    with obj.Db(path, changes=images) as primary, obj.Db.memory() as replica:
        primary.insert("c", {"n": 1})
        with pytest.raises(obj.InvalidArgumentError):
            replica.apply_changes(primary.changes())
        with pytest.raises(obj.InvalidArgumentError):
            replica.apply_changes([r.to_bytes() for r in primary.changes()])
        assert replica.stat().collections == ()


# -- 8. revert ---------------------------------------------------------------------------------


def test_revert_undoes_an_update_an_insert_and_a_delete(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as db:
        a = db.insert("c", {"v": 1})  # 1
        db.upsert("c", a, {"v": 2})  # 2
        assert db.revert(2) == 3
        assert db.get("c", a) == {"v": 1}
        rec = records(db, since=2)[0]
        assert (rec.seq, rec.action, rec.meta) == (3, "revert", {"reverts": 2})
        assert entries(rec) == [("c", a, "update", {"v": 2}, {"v": 1})]

        b = db.insert("c", {"v": 10})  # 4
        assert db.revert(4) == 5
        assert db.get("c", b) is None
        assert entries(records(db, since=4)[0]) == [("c", b, "delete", {"v": 10}, None)]

        db.delete("c", a)  # 6
        assert db.revert(6) == 7
        assert db.get("c", a) == {"v": 1}
        assert entries(records(db, since=6)[0]) == [("c", a, "insert", None, {"v": 1})]

        # A transaction of several writes (typed and a store too) is undone as a whole.
        o = db.insert(Order("ann", 1.0))  # 8
        db.store("kv")["k"] = b"old"  # 9
        with db.transaction(action="batch") as tx:  # 10
            tx.upsert(Order, o, Order("ann", 2.0))
            tx.store("kv")["k"] = b"new"
            tx.store("kv")["k2"] = b"added"
            c = tx.insert("c", {"v": 3})
        before_batch = {"o": Order("ann", 1.0), "kv": {b"k": b"old"}}
        with db.context(action="undo", user="ops"):
            seq = db.revert(10)
        assert seq == 11
        assert db.get(Order, o) == before_batch["o"]
        assert dict(db.store("kv", keys="bytes").items()) == before_batch["kv"]
        assert db.get("c", c) is None
        rec = records(db, since=10)[0]
        assert (rec.action, rec.user) == ("undo", "ops")
        assert len(rec) == 4


def test_revert_is_refused_when_a_later_commit_touched_the_document(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True) as db:
        a = db.insert("c", {"v": 1})  # 1
        b = db.insert("c", {"v": 1})  # 2
        with db.transaction() as tx:  # 3
            tx.upsert("c", a, {"v": 2})
            tx.upsert("c", b, {"v": 2})
        db.upsert("c", b, {"v": 3})  # 4 touches b
        before = contents(db)
        with pytest.raises(obj.ConditionFailedError):
            db.revert(3)
        assert contents(db) == before
        assert db.change_log().last == 4  # type: ignore[union-attr]
        # Reverting newest first works.
        assert db.revert(4) == 5
        assert db.revert(3) == 6
        assert (db.get("c", a), db.get("c", b)) == ({"v": 1}, {"v": 1})
        # A deleted document counts as touched too.
        d = db.insert("c", {"v": 5})  # 7
        db.upsert("c", d, {"v": 6})  # 8
        db.delete("c", d)  # 9
        with pytest.raises(obj.ConditionFailedError):
            db.revert(8)
        assert db.get("c", d) is None and db.change_log().last == 9  # type: ignore[union-attr]


def test_revert_needs_both_images_and_a_kept_record(path: pathlib.Path) -> None:
    with obj.Db(path, changes="new") as db:
        db.insert("c", {"v": 1})
        with pytest.raises(obj.InvalidArgumentError):
            db.revert(1)
        assert db.change_log().last == 1  # type: ignore[union-attr]
    with obj.Db(path, changes=True, retention=obj.Retention(max_records=2)) as db:
        for v in range(5):
            db.insert("c", {"v": v})
        with pytest.raises(obj.ObjError):
            db.revert(1)  # trimmed
        with pytest.raises(obj.ObjError):
            db.revert(99)  # not yet written
        assert db.count("c") == 6


# -- 9. AsyncDb --------------------------------------------------------------------------------


def test_async_db_metadata_follow_apply_and_revert(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        async with await obj.AsyncDb.open(tmp_path / "a.obj", changes=True) as adb:
            async with adb.transaction(action="signup", user="ana", meta={"m": 1}) as tx:
                await tx.insert("c", {"k": 0})
            with adb.context(action="ctx", user="task"):
                await adb.insert("c", {"k": 1})
            await adb.insert("c", {"k": 2})
            info = await adb.change_log()
            assert info is not None and info.last == 3

            async def writer() -> None:
                await asyncio.sleep(0.2)
                for k in range(3, 8):
                    await adb.insert("c", {"k": k})
                    await asyncio.sleep(0.02)

            task = asyncio.create_task(writer())
            feed = adb.changes(follow=True, timeout=0.8)
            seen = [(r.seq, r.action, r.user, r.meta, r.changes[0].new["k"]) async for r in feed]
            await task
            assert seen[:3] == [
                (1, "signup", "ana", {"m": 1}, 0),
                (2, "ctx", "task", None, 1),
                (3, None, None, None, 2),
            ]
            assert [(s, k) for s, *_, k in seen] == [(k + 1, k) for k in range(8)]
            assert feed.position == 8
            tail = [r.seq async for r in adb.changes(since=6)]
            assert tail == [7, 8]

            replica = await obj.AsyncDb.memory()
            try:
                recs = [r async for r in adb.changes()]
                assert await replica.apply_changes(recs) == 8
                assert await replica.apply_changes(recs) == 0
                assert [doc async for doc in replica.all("c")] == [
                    doc async for doc in adb.all("c")
                ]
            finally:
                await replica.close()

            assert await adb.revert(8) == 9
            assert await adb.get("c", 8) is None
            last = [r async for r in adb.changes(since=8)]
            assert [(r.action, r.meta) for r in last] == [("revert", {"reverts": 8})]

    asyncio.run(asyncio.wait_for(main(), 60))


# -- 10. argument errors ------------------------------------------------------------------------


def test_bad_arguments_are_invalid_argument_errors(tmp_path: pathlib.Path) -> None:
    with obj.Db(tmp_path / "e.obj", changes=True) as db:
        db.insert("c", {})
        for kwargs in (
            {"since": -1},
            {"since": "x"},
            {"since": 1.5},
            {"until": -1},
            {"collections": 5},
            {"collections": ["a", 1]},
            {"timeout": -1},
            {"follow": "yes"},
        ):
            with pytest.raises(obj.InvalidArgumentError):
                db.changes(**kwargs)  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError):
            db.transaction(meta=["not", "a", "dict"])  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError):
            db.transaction(action=1)  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError), db.context(meta="x"):  # type: ignore[arg-type]
            pass
        with pytest.raises(obj.InvalidArgumentError):
            db.enable_changes("bogus")  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError):
            db.enable_changes(retention=5)  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError):
            db.revert(-1)
        # None of these committed anything (the failed transaction() calls included).
        assert db.change_log().last == 1  # type: ignore[union-attr]
        db.insert("c", {})
        assert db.change_log().last == 2  # type: ignore[union-attr]
    for kwargs in (
        {"max_records": 0},
        {"max_records": -3},
        {"max_records": 1.5},
        {"max_age": 0},
        {"max_age": -1},
        {"max_age": "1d"},
    ):
        with pytest.raises(obj.InvalidArgumentError):
            obj.Retention(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError):
        obj.Db(tmp_path / "bogus.obj", changes="bogus")  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError):
        obj.Db(tmp_path / "r.obj", retention=obj.Retention(max_records=3))
    with obj.Db(tmp_path / "nolog.obj") as db:
        db.insert("c", {})
        assert db.change_log() is None
        with pytest.raises(obj.InvalidArgumentError):
            db.changes()
        with pytest.raises(obj.InvalidArgumentError):
            db.changes(since=0, follow=True, timeout=0)
        with pytest.raises(obj.InvalidArgumentError):
            db.revert(1)
        assert db.disable_changes() is False
        assert db.enable_changes("new") is True
        assert db.enable_changes("new") is False
        assert db.change_log().images == "new"  # type: ignore[union-attr]
        assert db.disable_changes() is True
        assert db.change_log() is None


# -- 11. compaction and integrity after retention ------------------------------------------------


def test_compact_and_integrity_after_retention_trimmed_the_log(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True, retention=obj.Retention(max_records=10)) as db:
        for k in range(300):
            with db.transaction() as tx:
                tx.insert("c", {"k": k, "pad": "p" * 3000})
                if k >= 1:
                    tx.delete("c", k)  # keep the live data small: the log is what grew
        info = db.change_log()
        assert info is not None and (info.oldest, info.last) == (291, 300)
        kept = [r.to_bytes() for r in records(db, since=290)]
        assert len(kept) == 10
        db.integrity_check()
        compacted = db.compact()
        assert compacted.pages_after < compacted.pages_before
        db.integrity_check()
        assert [r.to_bytes() for r in records(db, since=290)] == kept
        assert db.change_log() == info
        with pytest.raises(obj.ChangesExpiredError) as e:
            db.changes(since=289)
        assert e.value.oldest == 291
        db.insert("c", {"k": 300})
        assert [r.seq for r in records(db, since=291)] == list(range(292, 302))
    with obj.Db(path) as db:
        db.integrity_check()
        assert [r.to_bytes() for r in records(db, since=291)][:9] == kept[1:]
        assert db.change_log().last == 301  # type: ignore[union-attr]


def test_compaction_that_moves_pages_appends_no_record(path: pathlib.Path) -> None:
    with obj.Db(path, changes="keys") as db:
        ids = db.insert_many("a", [{"pad": "p" * 3000} for _ in range(50)])
        db.insert_many("b", [{"pad": "q" * 3000} for _ in range(50)])
        with db.transaction() as tx:
            for i in ids:
                tx.delete("a", i)
        before = [r.to_bytes() for r in records(db)]
        assert len(before) == 3
        compacted = db.compact()
        assert compacted.pages_moved > 0  # it really rewrote pages
        db.integrity_check()
        # Compaction changes no document: it is no change record.
        assert [r.to_bytes() for r in records(db)] == before
        assert db.change_log().last == 3  # type: ignore[union-attr]
