"""A writer killed with SIGKILL loses no acknowledged commit and shows no partial one."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

import obj

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

# Commit k upserts document k into "a" and "b" (payloads up to ~12 kB, so some use overflow
# pages), sets "meta"/1 to k, and every 7th commit deletes an older document from both.
# "k" is printed only after commit() returned: that is the acknowledgement. Every 40
# commits it also checkpoints, so kills land in checkpoints too.
WRITER = r"""
import sys
import obj

def payload(k, tag):
    return (b"%s%d:" % (tag, k)) * ((k * 7919) % 1200)

db = obj.Db(sys.argv[1])
with db.read_transaction() as r:
    last = r.get("meta", 1)
k = int(last) + 1 if last else 1
while True:
    with db.transaction() as tx:
        tx.upsert("a", k, payload(k, b"a"))
        tx.upsert("b", k, payload(k, b"b"))
        if k % 7 == 0 and k > 5:
            tx.delete("a", k - 5)
            tx.delete("b", k - 5)
        tx.upsert("meta", 1, b"%d" % k)
    print(k, flush=True)
    if k % 40 == 0:
        db.checkpoint()
    k += 1
"""


def payload(k: int, tag: bytes) -> bytes:
    return (b"%s%d:" % (tag, k)) * ((k * 7919) % 1200)


def expected_ids(last: int) -> list[int]:
    """Document ids present after commits 1..last."""
    return [j for j in range(1, last + 1) if not ((j + 5) % 7 == 0 and j + 5 <= last)]


def run_and_kill(
    path: pathlib.Path,
    rng: random.Random,
    script: str = WRITER,
    start_timeout: float = 30,
    max_delay: float = 0.25,
) -> list[int]:
    """Starts a writer script (it prints each commit number after commit() returned), kills
    it at a random moment, and returns the acknowledged commits."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
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
        assert first.wait(start_timeout), "the writer did not start committing"
        time.sleep(rng.uniform(0.0, max_delay))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        reader.join(30)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, stderr
    return acks


def check(path: pathlib.Path, acked: int) -> int:
    """Recovers (read-only, so the next round continues on the same log) and checks that
    the database is exactly the state after some commit K with acked <= K <= acked + 1."""
    with obj.Db(path, read_only=True) as db, db.read_transaction() as r:
        meta = r.get("meta", 1)
        last = int(meta) if meta else 0
        assert acked <= last <= acked + 1, (acked, last)
        ids = expected_ids(last)
        for name, tag in [("a", b"a"), ("b", b"b")]:
            assert r.count(name) == len(ids)
            seen = []
            for doc_id, value in r.iter_all(name):
                assert value == payload(doc_id, tag), (name, doc_id)
                seen.append(doc_id)
            assert seen == ids, name
        return last


def test_sigkill_while_committing_loses_nothing(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "crash.obj"
    rng = random.Random(20240601)
    acked = 0
    rounds = 0
    deadline = time.monotonic() + 60
    while rounds < 25 and time.monotonic() < deadline:
        acks = run_and_kill(path, rng)
        # Each round resumes after the last commit recovery found.
        assert acks == list(range(acked + 1, acked + 1 + len(acks))), acks[:3]
        if acks:
            acked = acks[-1]
        acked = check(path, acked)
        rounds += 1
    assert rounds >= 10
    assert acked > 100
    # The file is still fully usable for writing afterwards.
    with obj.Db(path) as db:
        with db.transaction() as tx:
            tx.upsert("meta", 1, b"%d" % (acked + 1))
        assert db.checkpoint().wal_reset


# Batch k of the table writer puts items (k, 0..k%50) with a size that makes some batches
# span many pages, deletes partition k-3, and sets ("meta", 0) to k: one atomic batch_write.
TABLE_WRITER = r"""
import sys
import obj

db = obj.Db(sys.argv[1])
t = db.table("t")
last = t.get(-1, sk=0)
k = last["k"] + 1 if last else 1
while True:
    puts = [(k, j, {"k": k, "j": j, "pad": "x" * (k * 31 % 900)}) for j in range(k % 50 + 1)]
    puts.append((-1, 0, {"k": k}))
    t.batch_write(puts=puts, deletes=[(k - 3, j) for j in range((k - 3) % 50 + 1)])
    print(k, flush=True)
    if k % 30 == 0:
        db.checkpoint()
    k += 1
"""


def check_table(path: pathlib.Path, acked: int) -> int:
    """The table holds exactly the state after batch K, acked <= K <= acked + 1."""
    with obj.Db(path, read_only=True) as db:
        t = db.table("t")
        meta = t.get(-1, sk=0)
        last = meta["k"] if meta else 0
        assert acked <= last <= acked + 1, (acked, last)
        live = [k for k in range(max(1, last - 2), last + 1)]
        seen = [(item["k"], item["j"]) for item in t.scan() if "j" in item]
        assert seen == [(k, j) for k in live for j in range(k % 50 + 1)], (last, seen[:5])
        for k in live:
            page = t.query(k)
            assert [i["pad"] for i in page] == ["x" * (k * 31 % 900)] * (k % 50 + 1)
        return last


def test_sigkill_during_table_batch_write_loses_nothing(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "table-crash.obj"
    rng = random.Random(20261202)
    acked = 0
    rounds = 0
    deadline = time.monotonic() + 40
    while rounds < 15 and time.monotonic() < deadline:
        acks = run_and_kill(path, rng, script=TABLE_WRITER)
        assert acks == list(range(acked + 1, acked + 1 + len(acks))), acks[:3]
        if acks:
            acked = acks[-1]
        acked = check_table(path, acked)
        rounds += 1
    assert rounds >= 5
    assert acked > 20
