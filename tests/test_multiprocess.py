"""Several processes on one file (issue #17): snapshots, the single writer, checkpoints,
read marks, the ``-shm`` file, pools of workers and the CLI, each across real processes.

Children are fresh interpreters (``sys.executable -c``, or ``multiprocessing`` pools).
The stress test runs for ``OBJ_STRESS_SECONDS`` (default 6); a longer run::

    OBJ_STRESS_SECONDS=120 .venv/bin/python -m pytest -q -p no:cacheprovider \\
        tests/test_multiprocess.py -k stress

(``OBJ_STRESS_SEED`` replays the parent's choices of whom to kill and when.)
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import pytest

import obj

STRESS_SECONDS = float(os.environ.get("OBJ_STRESS_SECONDS", "6"))
BUSY_TIMEOUT = 10.0


def shm_of(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + "-shm")


# -- a child driven line by line -----------------------------------------------------------

#: A child holding a handle on the database ``argv[1]``: one command per stdin line, one
#: JSON reply per stdout line. ``open`` starts a snapshot and keeps it; ``reread`` reads
#: every kept snapshot again; ``end`` ends them (the handle stays open); ``latest`` reads
#: outside any snapshot; ``insert N`` commits a document; ``close`` closes the handle.
COMMANDS = r"""
import json, sys
import obj

db = obj.Db(sys.argv[1], busy_timeout=10)
snapshots = []

def view(r):
    return [[i, doc["n"]] for i, doc in r.all("c")]

def reply(value):
    print(json.dumps(value), flush=True)

reply("ready")
for line in sys.stdin:
    cmd, *arg = line.split()
    if cmd == "open":
        snapshots.append(db.read_transaction())
        reply(view(snapshots[-1]))
    elif cmd == "reread":
        reply([view(r) for r in snapshots])
    elif cmd == "end":
        for r in snapshots:
            r.close()
        snapshots.clear()
        reply("ended")
    elif cmd == "latest":  # (replies once the snapshot has ended)
        with db.read_transaction() as r:
            seen = view(r)
        reply(seen)
    elif cmd == "insert":
        reply(db.insert("c", {"n": int(arg[0])}))
    elif cmd == "close":
        db.close()
        reply("closed")
    else:
        reply(f"unknown command {cmd!r}")
"""


class Child:
    """A child interpreter running ``code`` with ``args``, talked to over pipes."""

    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.replies: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.replies.put(line)
        self.replies.put(None)

    def recv(self, timeout: float = 30) -> Any:
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the child sent nothing for {timeout} s") from None
        if line is None:
            raise AssertionError(f"the child ended ({self.proc.wait(10)}): {self.stderr()}")
        return json.loads(line)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def ask(self, command: str, timeout: float = 30) -> Any:
        self.send(command)
        return self.recv(timeout)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else "(still running)"

    def exit(self) -> int:
        """Ends the child through end of input; its exit status."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


Spawn = Callable[..., Child]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """``spawn(code, *args)`` starts a :class:`Child`; every one is killed after the test."""
    started: list[Child] = []

    def start(code: str, *args: str) -> Child:
        child = Child(code, *args)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


def doc(r: obj.Reads, collection: str, id: int) -> Any:
    """The document ``id``, which must be there."""
    found = r.get(collection, id)
    assert found is not None, (collection, id)
    return found


def view(r: obj.Reads) -> list[list[int]]:
    """What :data:`COMMANDS` replies for a snapshot: ``[id, n]`` of every document."""
    return [[i, doc["n"]] for i, doc in r.all("c")]


def commander(spawn: Spawn, path: pathlib.Path) -> Child:
    child = spawn(COMMANDS, str(path))
    assert child.recv() == "ready"
    return child


# -- 1. stress: readers and writers SIGKILLed and restarted at random ----------------------

ACCOUNTS = 10
START = 1000
TOTAL = ACCOUNTS * START
#: Longest a writer may wait for the writer lock before the test calls it wedged (the
#: transactions are tiny: waits are normally milliseconds, even right after a kill).
SLOW_WAIT = 5.0

#: argv: db, ack file, seed, stop file. Moves money between two accounts and bumps the
#: commit counter, one write transaction per move; after each commit returns, appends the
#: counter it committed to the ack file (its acknowledgement). Exit 0 once the stop file
#: exists, with a JSON summary; exit 3..5 on a violation.
WRITER = f"""
import json, os, random, sys, time
import obj

path, ack, seed, stop = sys.argv[1:5]
rng = random.Random(int(seed))
db = obj.Db(path, busy_timeout={BUSY_TIMEOUT})
longest = 0.0
commits = 0
with open(ack, "a") as out:
    while not os.path.exists(stop):
        began = time.monotonic()
        try:
            tx = db.transaction()
        except obj.BusyError as e:
            print(f"BusyError after {{time.monotonic() - began:.2f}} s: {{e}}", flush=True)
            sys.exit(3)
        waited = time.monotonic() - began
        longest = max(longest, waited)
        if waited > {SLOW_WAIT}:
            print(f"waited {{waited:.2f}} s for the writer lock", flush=True)
            sys.exit(4)
        with tx:
            a, b = rng.sample(range(1, {ACCOUNTS} + 1), 2)
            amount = rng.randrange(1, 100)
            va = tx.get("accounts", a)["balance"]
            vb = tx.get("accounts", b)["balance"]
            counter = tx.get("meta", 1)["commits"] + 1
            tx.upsert("accounts", a, {{"balance": va - amount}})
            tx.upsert("accounts", b, {{"balance": vb + amount}})
            tx.upsert("meta", 1, {{"commits": counter}})
        out.write(f"{{counter}}\\n")
        out.flush()
        commits += 1
print(json.dumps({{"commits": commits, "longest_wait": longest}}), flush=True)
"""

#: argv: db, stop file, read_only (0/1), ack files... In a loop: notes the highest counter
#: acknowledged so far, then reads every account and the counter in one snapshot. The sum
#: is constant, the counter never goes back, and it is at least what was acknowledged
#: before the snapshot began. Exit 0 once the stop file exists, 5..8 on a violation.
READER = f"""
import json, os, sys
import obj

path, stop, read_only, *acks = sys.argv[1:]
db = obj.Db(path, read_only=read_only == "1", busy_timeout={BUSY_TIMEOUT})
offsets = {{a: 0 for a in acks}}
acked = 0

def follow_acks():
    global acked
    for a in acks:
        try:
            with open(a, "rb") as f:
                f.seek(offsets[a])
                data = f.read()
        except FileNotFoundError:
            continue
        done = data.rfind(b"\\n") + 1
        offsets[a] += done
        for line in data[:done].split():
            acked = max(acked, int(line))

def fail(code, message):
    print(message, flush=True)
    sys.exit(code)

last = -1
snapshots = 0
while not os.path.exists(stop):
    follow_acks()
    floor = acked
    with db.read_transaction() as r:
        counter = r.get("meta", 1)["commits"]
        balances = [r.get("accounts", i)["balance"] for i in range(1, {ACCOUNTS} + 1)]
        again = r.get("meta", 1)["commits"]
    if sum(balances) != {TOTAL}:
        fail(5, f"sum {{sum(balances)}} != {TOTAL} at counter {{counter}}: {{balances}}")
    if again != counter:
        fail(6, f"the counter moved inside one snapshot: {{counter}} then {{again}}")
    if counter < last:
        fail(7, f"the counter went back: {{last}} then {{counter}}")
    if counter < floor:
        fail(8, f"a snapshot begun after commit {{floor}} was acknowledged reads {{counter}}")
    last = counter
    snapshots += 1
print(json.dumps({{"snapshots": snapshots, "last": last}}), flush=True)
"""


class Worker:
    """One stress child: its program, arguments and log; restarted after each kill."""

    def __init__(self, name: str, code: str, args: list[str], log: pathlib.Path) -> None:
        self.name, self.code, self.args, self.log = name, code, args, log
        self.proc: subprocess.Popen[str] | None = None
        self.out: IO[str] | None = None
        self.runs = 0

    def start(self) -> None:
        self.out = open(self.log, "a")  # noqa: SIM115 (closed in wait)
        self.out.write(f"--- run {self.runs}\n")
        self.out.flush()
        self.runs += 1
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.code, *self.args],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait(self, timeout: float) -> int:
        assert self.proc is not None and self.out is not None
        code = self.proc.wait(timeout)
        self.out.close()
        return code

    def last_line(self) -> str:
        lines = self.log.read_text().splitlines()
        return lines[-1] if lines else ""

    def tail(self) -> str:
        return f"{self.name}: " + " | ".join(self.log.read_text().splitlines()[-4:])


def test_stress_readers_and_writers_killed_at_random(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "stress.obj"
    with obj.Db(path) as db, db.transaction() as tx:
        for _ in range(ACCOUNTS):
            tx.insert("accounts", {"balance": START})
        tx.insert("meta", {"commits": 0})
    stop = tmp_path / "stop"
    acks = [tmp_path / f"ack-{i}" for i in range(2)]
    seed = int(os.environ.get("OBJ_STRESS_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    where = f"(OBJ_STRESS_SEED={seed}, logs in {tmp_path})"
    writers = [
        Worker(
            f"writer{i}", WRITER, [str(path), str(ack), str(i), str(stop)], ack.with_suffix(".log")
        )
        for i, ack in enumerate(acks)
    ]
    readers = [
        Worker(
            f"reader{i}",
            READER,
            [str(path), str(stop), str(i % 2), *map(str, acks)],
            tmp_path / f"reader-{i}.log",
        )
        for i in range(3)
    ]
    everyone = writers + readers
    kills = {"reader": 0, "writer": 0}

    def logs() -> str:  # (pytest removes old temporary directories: the message keeps them)
        return f"{where}\n" + "\n".join(w.tail() for w in everyone)

    try:
        for w in everyone:
            w.start()
        deadline = time.monotonic() + STRESS_SECONDS
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.05, 0.6))
            for w in everyone:
                assert w.proc is not None
                code = w.proc.poll()
                assert code is None, f"{w.name} exited {code}: {w.last_line()} {logs()}"
            # Writers and readers in turn, which one of them at random.
            victim = rng.choice(writers if sum(kills.values()) % 2 == 0 else readers)
            assert victim.proc is not None
            victim.proc.send_signal(signal.SIGKILL)
            code = victim.wait(30)
            assert code == -signal.SIGKILL, f"{victim.name}: {victim.last_line()} {logs()}"
            kills["writer" if victim in writers else "reader"] += 1
            victim.start()
        stop.touch()
        summaries = {}
        for w in everyone:
            code = w.wait(60)
            assert code == 0, f"{w.name} exited {code}: {w.last_line()} {logs()}"
            summaries[w.name] = json.loads(w.last_line())
    finally:
        for w in everyone:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.kill()
                w.wait(30)

    acked: list[int] = []
    for ack in acks:
        mine = [int(line) for line in ack.read_text().split()]
        assert mine == sorted(set(mine)), f"{ack.name}: a writer's acks go up {where}"
        acked += mine
    assert len(set(acked)) == len(acked), f"two commits acknowledged one counter {where}"
    with obj.Db(path) as db:
        db.integrity_check()
        with db.read_transaction() as r:
            balances = [doc(r, "accounts", i)["balance"] for i in range(1, ACCOUNTS + 1)]
            counter = doc(r, "meta", 1)["commits"]
    assert sum(balances) == TOTAL, where
    assert counter >= max(acked), f"acknowledged commit {max(acked)} lost {where}"
    # Every commit is acknowledged but (at most) the one of a writer killed just after it.
    assert counter - len(acked) <= kills["writer"], where
    # The run did something: commits and snapshots, kills of both kinds of process.
    assert counter >= 20, where
    assert sum(s["snapshots"] for n, s in summaries.items() if n.startswith("reader")) >= 20
    assert kills["writer"] >= 1 and kills["reader"] >= 1, kills
    longest = max(s["longest_wait"] for n, s in summaries.items() if n.startswith("writer"))
    assert longest < SLOW_WAIT, summaries


# -- 2. a long reader in another process, checkpoints in this one --------------------------


@pytest.mark.parametrize("release", ["end", "close", "exit", "kill"])
def test_a_long_reader_elsewhere_keeps_its_view_and_the_log(
    path: pathlib.Path, spawn: Spawn, release: str
) -> None:
    with obj.Db(path) as db:
        for n in range(5):
            db.insert("c", {"n": n})
        reader = commander(spawn, path)
        at_start = reader.ask("open")
        assert at_start == view(db)
        for round in range(1, 6):
            with db.transaction() as tx:
                tx.upsert("c", 1, {"n": 100 * round})
                tx.insert("c", {"n": -round})
            info = db.checkpoint()
            assert not info.wal_reset and info.deferred, info
            assert db.stat().wal_frames > 0
            assert reader.ask("reread") == [at_start]
            assert db.get("c", 1) == {"n": 100 * round}
            assert db.count("c") == 5 + round
        latest = view(db)

        if release == "end":  # the reader process stays, its handle open
            assert reader.ask("end") == "ended"
        elif release == "close":  # the process stays, its handle closed
            assert reader.ask("close") == "closed"
        elif release == "exit":
            assert reader.exit() == 0
        else:
            reader.kill()
        info = db.checkpoint()
        assert info.wal_reset and not info.deferred, info
        assert db.stat().wal_frames == 0
        assert view(db) == latest

        if release == "end":
            # It reads the latest commit now, and once idle lets the log restart again.
            assert reader.ask("latest") == latest
            db.insert("c", {"n": 99})
            info = db.checkpoint()
            assert info.wal_reset, info
            assert db.stat().wal_frames == 0
            assert reader.ask("latest") == [*latest, [11, 99]]
        db.integrity_check()


# -- 3. more snapshots at distinct commits than there are read marks -----------------------


def test_more_snapshots_elsewhere_than_read_marks(path: pathlib.Path, spawn: Spawn) -> None:
    children, per_child = 4, 6  # 24 snapshots at 24 commits; the file has 16 read marks
    with obj.Db(path, busy_timeout=BUSY_TIMEOUT) as db:
        readers = [commander(spawn, path) for _ in range(children)]
        expected: list[list[list[list[int]]]] = [[] for _ in readers]
        n = 0
        for _ in range(per_child):
            for child, seen in zip(readers, expected):
                n += 1
                db.insert("c", {"n": n})
                seen.append(child.ask("open"))
                assert seen[-1] == [[i, i] for i in range(1, n + 1)]
        stat = db.stat()
        assert stat.other_readers == children * per_child, stat
        assert 1 <= stat.other_read_marks <= 16, stat
        # This process too takes one more snapshot at one more commit, with every mark taken.
        db.insert("c", {"n": n + 1})
        with db.read_transaction() as mine:
            assert mine.count("c") == n + 1
            for child, seen in zip(readers, expected):
                assert child.ask("reread") == seen
            db.insert("c", {"n": n + 2})
            assert db.checkpoint().wal_reset is False
            assert mine.count("c") == n + 1
        for child, seen in zip(readers, expected):
            assert child.ask("reread") == seen
            assert child.ask("end") == "ended"
        info = db.checkpoint()
        assert info.wal_reset, info
        assert db.stat().wal_frames == 0
        for child in readers:
            assert child.ask("open") == [[i, i] for i in range(1, n + 3)]
        db.integrity_check()


# -- 4. the -shm file deleted, zeroed, truncated --------------------------------------------


def test_shm_deleted_between_runs(path: pathlib.Path, spawn: Spawn) -> None:
    with obj.Db(path) as db:
        for n in range(1, 51):
            db.insert("c", {"n": n})
    assert shm_of(path).exists()
    shm_of(path).unlink()
    child = commander(spawn, path)
    assert child.ask("latest") == [[i, i] for i in range(1, 51)]
    assert shm_of(path).stat().st_size == 4096
    with obj.Db(path) as db:
        assert child.ask("insert 51") == 51
        assert db.count("c") == 51
        db.insert("c", {"n": 52})
        assert child.ask("latest") == [[i, i] for i in range(1, 53)]
        db.integrity_check()


def test_shm_zeroed_while_two_processes_have_it_open(path: pathlib.Path, spawn: Spawn) -> None:
    with obj.Db(path) as db:
        child = commander(spawn, path)
        expected: list[list[int]] = []
        n = 0

        def round_trip() -> None:
            nonlocal n
            n += 1
            assert child.ask(f"insert {n}") == n
            expected.append([n, n])
            assert view(db) == expected  # this process sees the child's commit
            n += 1
            assert db.insert("c", {"n": n}) == n
            expected.append([n, n])
            assert child.ask("latest") == expected  # and the child sees this one's

        for _ in range(3):
            round_trip()
        # A third process holds a snapshot through it all: it must not change either.
        holder = commander(spawn, path)
        held = holder.ask("open")
        assert held == expected
        for zeroing in range(3):
            with open(shm_of(path), "r+b") as f:
                f.write(bytes(4096))
            for _ in range(3):
                round_trip()
            if zeroing == 1:
                db.checkpoint()
                round_trip()
        db.checkpoint()
        assert holder.ask("reread") == [held]
        assert holder.ask("end") == "ended"
        assert holder.ask("latest") == expected
        assert child.ask("close") == "closed"
        assert view(db) == expected
        db.integrity_check()
    with obj.Db(path, read_only=True) as db:
        assert view(db) == expected


def test_shm_truncated_between_runs(path: pathlib.Path, run_python: Any) -> None:
    with obj.Db(path) as db:
        for n in range(1, 21):
            db.insert("c", {"n": n})
    os.truncate(shm_of(path), 0)
    done = run_python(
        "import sys, obj\n"
        "with obj.Db(sys.argv[1]) as db:\n"
        "    assert [d['n'] for _, d in db.all('c')] == list(range(1, 21))\n"
        "    db.insert('c', {'n': 21})\n"
        "    db.integrity_check()\n"
        "print('ok')\n",
        str(path),
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    assert shm_of(path).stat().st_size == 4096
    os.truncate(shm_of(path), 0)
    with obj.Db(path) as db:
        assert view(db) == [[i, i] for i in range(1, 22)]
        db.integrity_check()


# -- 5. pools of workers reading while the parent writes -----------------------------------

_pool_db: obj.Db | None = None


def _pool_open(path: str) -> None:
    """A pool worker's initializer: its own read-only handle, kept for all its tasks."""
    global _pool_db
    _pool_db = obj.Db(path, read_only=True)


def _pool_read(committed: int) -> tuple[int, int, int, int]:
    """``(committed, counter, documents, pid)``: the counter this worker reads, after the
    parent had committed ``committed``, and the documents in the same snapshot."""
    assert _pool_db is not None
    with _pool_db.read_transaction() as r:
        counter = doc(r, "meta", 1)["n"]
        documents = r.count("c")
    return committed, counter, documents, os.getpid()


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_pool_workers_read_while_the_parent_writes(path: pathlib.Path, method: str) -> None:
    with obj.Db(path) as db:
        db.insert("meta", {"n": 0})
        context = multiprocessing.get_context(method)
        with context.Pool(2, initializer=_pool_open, initargs=(str(path),)) as pool:
            results = []
            for committed in range(1, 121):
                with db.transaction() as tx:
                    tx.insert("c", {"n": committed})
                    tx.upsert("meta", 1, {"n": committed})
                if committed % 3 == 0:
                    results.append(pool.apply_async(_pool_read, (committed,)))
                    time.sleep(0.005)
            answers = [r.get(timeout=60) for r in results]
        for committed, counter, documents, _pid in answers:
            assert counter >= committed, (committed, counter)
            assert documents == counter  # one snapshot: the counter and its documents
        assert len(answers) == 40
        assert max(counter for _, counter, _, _ in answers) <= 120
        assert db.count("c") == 120


# -- 6. the command line against a live writer ---------------------------------------------

#: argv: db, stop file. Commits in a loop (a document and a store key each time) until the
#: stop file exists; prints "ready" after its first commit.
LIVE_WRITER = """
import os, sys
import obj

path, stop = sys.argv[1:3]
with obj.Db(path, busy_timeout=10) as db:
    n = 0
    while not os.path.exists(stop):
        n += 1
        with db.transaction() as tx:
            tx.insert("live", {"n": n})
            tx.store("state")["last"] = n
        if n == 1:
            print("ready", flush=True)
print(n, flush=True)
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "obj", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_against_a_live_writer(tmp_path: pathlib.Path) -> None:
    path, stop = tmp_path / "live.obj", tmp_path / "stop"
    with obj.Db(path) as db:
        db.insert("live", {"n": 0})
    writer = subprocess.Popen(
        [sys.executable, "-c", LIVE_WRITER, str(path), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        with obj.Db(path, read_only=True) as db:

            def committed() -> int:
                n = db.count("live")
                assert n >= 2
                return n

            before = committed()
            done = cli("stat", str(path))
            assert done.returncode == 0, done.stderr
            counted = re.search(r"live: ([\d,]+) documents", done.stdout)
            assert counted, done.stdout
            assert int(counted[1].replace(",", "")) >= before
            assert "page size" in done.stdout and "state:" in done.stdout

            done = cli("stat", str(path), "--json")
            assert done.returncode == 0, done.stderr
            as_json = json.loads(done.stdout)
            live = [c for c in as_json["collections"] if c["name"] == "live"]
            assert live and live[0]["doc_count"] >= before

            done = cli("check", str(path))
            assert done.returncode == 0, done.stderr + done.stdout
            assert done.stdout.startswith(f"{path}: ok (")

            done = cli("dump", str(path), "live", "--limit", "5")
            assert done.returncode == 0, done.stderr
            assert done.stdout.splitlines() == [f"{i}: {{'n': {i - 1}}}" for i in range(1, 6)]

            before = committed()
            done = cli("dump", str(path), "live", "--json")
            assert done.returncode == 0, done.stderr
            docs = [json.loads(line) for line in done.stdout.splitlines()]
            assert len(docs) >= before
            assert docs == [{"id": i, "doc": {"n": i - 1}} for i in range(1, len(docs) + 1)]

            before = committed()
            out = tmp_path / "export.jsonl"
            done = cli("export", str(path), "--jsonl", str(out))
            assert done.returncode == 0, done.stderr
            lines = [json.loads(line) for line in out.read_text().splitlines()]
            live_lines = [x for x in lines if x["collection"] == "live"]
            assert len(live_lines) >= before
            assert [x["doc"]["n"] for x in live_lines] == list(range(len(live_lines)))
            state = [x for x in lines if x["collection"] == "state"]
            assert len(state) == 1 and state[0]["$key"] == "last"
            assert state[0]["doc"] >= before - 1

            done = cli("export", str(path), "live", "--jsonl", "-")
            assert done.returncode == 0, done.stderr
            assert len(done.stdout.splitlines()) >= len(live_lines)

            done = cli("checkpoint", str(path))
            assert done.returncode == 0, done.stderr
            assert "checkpoint copied" in done.stdout

            assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
            assert committed() > len(live_lines)  # it went on committing meanwhile
        stop.touch()
        assert writer.wait(30) == 0, writer.stderr.read() if writer.stderr else ""
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(30)
    with obj.Db(path) as db:
        total = db.count("live")
        assert [d["n"] for _, d in db.all("live")] == list(range(total))
        assert db.store("state")["last"] == total - 1
        db.integrity_check()


# -- 7. stat counts other processes' snapshots ---------------------------------------------


def wait_for(predicate: Callable[[], bool], seconds: float = 1.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def others(db: obj.Db) -> tuple[int, int]:
    stat = db.stat()
    return stat.other_readers, stat.other_read_marks


def test_stat_counts_snapshots_of_other_processes(path: pathlib.Path, spawn: Spawn) -> None:
    with obj.Db(path) as db:
        db.insert("c", {"n": 1})
        child = commander(spawn, path)
        assert child.ask("latest") == [[1, 1]]
        # Its ended snapshot counts no more; the mark it kept idle goes soon too.
        assert db.stat().other_readers == 0
        assert wait_for(lambda: db.stat().other_read_marks == 0), others(db)
        assert "elsewhere     no reader in another process or handle" in db.stat().describe()

        assert child.ask("open") == [[1, 1]]
        stat = db.stat()
        assert (stat.other_readers, stat.other_read_marks) == (1, 1), stat
        assert "elsewhere     1 readers on 1 read marks" in stat.describe()
        # ... also after this handle read that same commit itself (so shares the mark), and
        # from a handle opened afresh, and from the command line.
        assert db.get("c", 1) == {"n": 1}
        assert db.stat().other_readers == 1
        with obj.Db(path, read_only=True) as fresh:
            assert fresh.stat().other_readers == 1
        done = cli("stat", str(path))
        assert "elsewhere     1 readers on 1 read marks" in done.stdout, done.stdout

        # A second snapshot at a later commit: a second mark.
        db.insert("c", {"n": 2})
        assert child.ask("open") == [[1, 1], [2, 2]]
        stat = db.stat()
        assert (stat.other_readers, stat.other_read_marks) == (2, 2), stat

        assert child.ask("end") == "ended"
        assert wait_for(lambda: db.stat().other_readers == 0), others(db)
        assert child.ask("open") == [[1, 1], [2, 2]]
        assert db.stat().other_readers == 1
        assert child.exit() == 0  # its process ends, the snapshot still open
        assert wait_for(lambda: db.stat().other_readers == 0), others(db)


# Fails with the engine of 51bb8df: a process SIGKILLed during a snapshot leaves its count
# in the shm's per-mark count of live snapshots ("active") for as long as any live handle
# shares that mark (the count is reset only when a free mark is set), so it reads as a live
# snapshot elsewhere. (It also makes an explicit checkpoint skip its wait for an idle mark
# shared with it.) Remove the marker once fixed: strict, it then fails as XPASS.


def test_stat_forgets_the_snapshot_of_a_killed_process(path: pathlib.Path, spawn: Spawn) -> None:
    with obj.Db(path) as db:
        db.insert("c", {"n": 1})
        child = commander(spawn, path)
        assert child.ask("open") == [[1, 1]]
        with db.read_transaction() as mine:  # the same commit: this handle shares the mark
            assert mine.count("c") == 1
            assert others(db) == (1, 1)
            child.kill()
            assert wait_for(lambda: db.stat().other_readers == 0), others(db)
