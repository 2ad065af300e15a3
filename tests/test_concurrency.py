"""Threads sharing one handle, the single writer, and other processes."""

from __future__ import annotations

import pathlib
import random
import threading
import time
from collections.abc import Callable

import pytest

import obj

from .conftest import RunPython

ACCOUNTS = 20
START = 1000


def run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as e:  # reported by the test
                errors.append(e)

        return run

    threads = [threading.Thread(target=guard(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    return errors


def test_readers_see_constant_sum_while_writer_commits(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        with db.transaction() as tx:
            for _ in range(ACCOUNTS):
                tx.insert("accounts", b"%d" % START)
        done = threading.Event()
        reads = [0]
        commits = [0]

        def writer() -> None:
            rng = random.Random(1)
            try:
                for _ in range(150):
                    with db.transaction() as tx:
                        a, b = rng.sample(range(1, ACCOUNTS + 1), 2)
                        amount = rng.randrange(1, 50)
                        va = int(tx.get("accounts", a) or b"0")
                        vb = int(tx.get("accounts", b) or b"0")
                        tx.upsert("accounts", a, b"%d" % (va - amount))
                        tx.upsert("accounts", b, b"%d" % (vb + amount))
                    commits[0] += 1
            finally:
                done.set()

        def reader(use_iter: bool) -> Callable[[], None]:
            def run() -> None:
                while not done.is_set():
                    with db.read_transaction() as r:
                        if use_iter:
                            values = [int(v) for _, v in r.iter_all("accounts")]
                        else:
                            values = [
                                int(r.get("accounts", i) or b"0") for i in range(1, ACCOUNTS + 1)
                            ]
                        assert len(values) == ACCOUNTS
                        assert sum(values) == ACCOUNTS * START
                    reads[0] += 1

            return run

        errors = run_threads([writer] + [reader(i % 2 == 0) for i in range(4)])
        assert not errors, errors
        assert commits[0] == 150
        assert reads[0] > 10
        with db.read_transaction() as r:
            assert sum(int(v) for _, v in r.iter_all("accounts")) == ACCOUNTS * START


def test_writers_are_serialised(path: pathlib.Path) -> None:
    with obj.Db(path, durability="none") as db:
        with db.transaction() as tx:
            tx.insert("counter", b"0")

        def increment() -> None:
            for _ in range(200):
                with db.transaction() as tx:
                    value = int(tx.get("counter", 1) or b"0")
                    tx.upsert("counter", 1, b"%d" % (value + 1))

        assert not run_threads([increment] * 4)
        with db.read_transaction() as r:
            assert r.get("counter", 1) == b"800"


def test_second_writer_waits_then_gets_busy(path: pathlib.Path) -> None:
    with obj.Db(path, busy_timeout=0.3) as db:
        holding = db.transaction()
        start = time.monotonic()
        errors = run_threads([lambda: db.transaction().rollback()])
        waited = time.monotonic() - start
        assert len(errors) == 1 and isinstance(errors[0], obj.BusyError), errors
        assert 0.25 <= waited < 5
        holding.rollback()
        with db.transaction() as tx:  # free again
            tx.insert("c", b"x")


def test_waiting_writer_releases_the_gil(path: pathlib.Path) -> None:
    with obj.Db(path, busy_timeout=2.0) as db:
        holding = db.transaction()
        got_it = threading.Event()

        def wait_for_writer() -> None:
            with db.transaction() as tx:
                tx.insert("c", b"second")
            got_it.set()

        waiter = threading.Thread(target=wait_for_writer)
        waiter.start()
        # While the other thread waits for the writer lock, this one keeps running Python.
        spins = 0
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            spins += 1
        assert spins > 10_000
        assert not got_it.is_set()
        holding.insert("c", b"first")
        holding.commit()
        waiter.join(10)
        assert got_it.is_set()
        with db.read_transaction() as r:
            assert list(r.iter_all("c")) == [(1, b"first"), (2, b"second")]


def test_readers_are_not_blocked_by_an_open_writer(db: obj.Db) -> None:
    with db.transaction() as tx:
        tx.insert("c", b"committed")
    writer = db.transaction()
    writer.insert("c", b"pending")
    seen: list[int] = []

    def read() -> None:
        with db.read_transaction() as r:
            seen.append(r.count("c"))

    start = time.monotonic()
    assert not run_threads([read] * 4)
    assert time.monotonic() - start < 2
    assert seen == [1, 1, 1, 1]
    writer.commit()


def test_shared_transaction_objects_across_threads(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in range(2000):
            tx.insert("c", b"%d" % i)
    with db.read_transaction() as r:

        def scan() -> None:
            for _ in range(5):
                assert sum(1 for _ in r.iter_all("c")) == 2000
                assert r.get("c", 1000) == b"999"

        assert not run_threads([scan] * 4)


def test_two_handles_in_one_process_share_the_file(path: pathlib.Path) -> None:
    with obj.Db(path) as a, obj.Db(path, busy_timeout=0.2) as b:
        a.insert("c", b"from a")
        assert b.get("c", 1) == b"from a"
        holding = a.transaction()
        with pytest.raises(obj.BusyError, match="busy_timeout"):
            b.transaction()
        holding.rollback()
        b.insert("c", b"from b")
        assert a.get("c", 2) == b"from b"


def test_an_exclusive_handle_keeps_a_second_one_out(path: pathlib.Path) -> None:
    with obj.Db(path, locking="exclusive"), pytest.raises(obj.BusyError):
        obj.Db(path, busy_timeout=0.1)
    assert not path.with_name(path.name + "-shm").exists()
    with obj.Db(path), pytest.raises(obj.BusyError):
        obj.Db(path, busy_timeout=0.1, locking="exclusive")


def test_locking_is_checked(path: pathlib.Path) -> None:
    with pytest.raises(obj.InvalidArgumentError, match="locking must be 'shared' or 'exclusive'"):
        obj.Db(path, locking="none")  # type: ignore[arg-type]


OPEN_IN_CHILD = """
import sys, obj
try:
    obj.Db(sys.argv[1], busy_timeout=float(sys.argv[2]), read_only=sys.argv[3] == "ro").close()
    print("opened")
except obj.BusyError as e:
    print("BusyError", e)
"""


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_a_second_process_opens_beside_a_writer_but_not_an_exclusive_handle(
    path: pathlib.Path, run_python: RunPython, mode: str
) -> None:
    with obj.Db(path) as db:
        with db.transaction() as tx:
            tx.insert("c", b"x")
        result = run_python(OPEN_IN_CHILD, str(path), "0.3", mode)
        assert result.stdout.strip() == "opened", result.stdout + result.stderr
    with obj.Db(path, locking="exclusive"):
        result = run_python(OPEN_IN_CHILD, str(path), "0.3", mode)
        assert result.stdout.startswith("BusyError"), result.stdout + result.stderr
        assert "busy" in result.stdout
    result = run_python(OPEN_IN_CHILD, str(path), "0", mode)
    assert result.stdout.strip() == "opened", result.stderr


def test_second_process_waits_for_busy_timeout(path: pathlib.Path, run_python: RunPython) -> None:
    db = obj.Db(path, locking="exclusive")
    timer = threading.Timer(0.5, db.close)
    timer.start()
    try:
        result = run_python(OPEN_IN_CHILD, str(path), "10", "rw")
    finally:
        timer.join()
    assert result.stdout.strip() == "opened", result.stdout + result.stderr


def test_readers_and_writers_share_the_file(path: pathlib.Path, run_python: RunPython) -> None:
    obj.Db(path).close()
    with obj.Db(path, read_only=True):
        result = run_python(OPEN_IN_CHILD, str(path), "0", "ro")
        assert result.stdout.strip() == "opened", result.stderr
        result = run_python(OPEN_IN_CHILD, str(path), "0", "rw")
        assert result.stdout.strip() == "opened", result.stdout + result.stderr


def test_stat_counts_the_readers_of_every_handle_on_the_file(path: pathlib.Path) -> None:
    with obj.Db(path) as a, obj.Db(path) as b:
        a.insert("c", b"x")
        with a.read_transaction() as snap:
            assert snap.count("c") == 1
            b.insert("c", b"y")  # b's latest commit is now past a's snapshot
            st = b.stat()
            assert (st.readers, st.other_readers) == (1, 1), st
            assert st.oldest_snapshot_seq is not None
            assert st.oldest_snapshot_seq < st.commit_seq
            assert st.oldest_snapshot_age is not None and st.oldest_snapshot_age >= 0
            assert "1 readers on 1 read marks" in st.describe()
        st = b.stat()
        assert (st.readers, st.other_readers, st.oldest_snapshot_seq) == (0, 0, None), st
