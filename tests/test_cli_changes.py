"""``obj changes``, run in a subprocess like the other commands: the change log's records
as text and JSON lines, the filters, ``--follow`` beside a writer, and the exit codes."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Annotated, Any

import pytest

import obj
import obj.cli
from obj.cli import from_json


@obj.document(collection="cli_changes_people", version=1)
@dataclasses.dataclass
class Person:
    name: Annotated[str, obj.Unique]
    photo: bytes = b""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "obj", "changes", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def follow(*args: str) -> subprocess.Popen[str]:
    """``obj changes ... --follow`` in the background, its output a pipe read line by line
    (SIGINT at its default, so the child installs Python's handler even when the tests run
    in a shell that ignores it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "obj", "changes", *args, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        if sys.platform != "win32"
        else None,
    )


WHEN = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc)


@pytest.fixture
def logged(path: pathlib.Path) -> pathlib.Path:
    """A database with a change log and records of every kind of write (seq 1 to 8)."""
    with obj.Db(path, changes=True) as db:
        db.insert("notes", {"text": "hello", "when": datetime.date(2024, 5, 1), "b": b"\x00"})
        with db.transaction(
            action="import", user="cron", meta={"batch": b"\x01", "at": WHEN}
        ) as tx:
            tx.insert("notes", {"text": "second"})
            tx.upsert("notes", 1, {"text": "edited"})
        sessions = db.store("sessions")
        sessions["user:1"] = {"plan": "pro"}
        db.store("raw", keys="bytes", values=bytes)[b"\xff\x00"] = b"\x01\x02"
        with db.context(action="cleanup", user="ana marie"):
            db.delete("notes", 2)
        db.insert(Person("p", b"\xfe"))
        db.table("users").put("org#a", {"email": "u@a"}, sk="user#1")
        db.insert("blobs", b"raw\xff")
    return path


def expected(path: pathlib.Path, since: int = 0, **options: Any) -> list[obj.Change]:
    with obj.Db(path, read_only=True) as db:
        return list(db.changes(since, **options))


def parsed(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    return [json.loads(line) for line in lines]


def assert_same(lines: list[dict[str, Any]], changes: list[obj.Change]) -> None:
    """Each JSON line says what its ``obj.Change`` says."""
    assert [line["seq"] for line in lines] == [c.seq for c in changes]
    for line, change in zip(lines, changes):
        assert set(line) == {"seq", "time", "action", "user", "meta", "changes"}
        assert isinstance(line["time"], str)
        assert datetime.datetime.fromisoformat(line["time"]) == change.time
        assert line["time"].endswith("+00:00")
        assert (line["action"], line["user"]) == (change.action, change.user)
        assert from_json(line["meta"]) == change.meta
        assert len(line["changes"]) == len(change.changes)
        for entry, dc in zip(line["changes"], change.changes):
            assert set(entry) == {"collection", "key", "op", "old", "new"}
            assert entry["collection"] == dc.collection
            assert entry["op"] == dc.op
            assert from_json(entry["key"]) == dc.key
            assert from_json(entry["old"]) == dc.old
            assert from_json(entry["new"]) == dc.new


def b64(data: bytes) -> dict[str, str]:
    return {"$bytes": base64.b64encode(data).decode("ascii")}


def test_jsonl_is_what_db_changes_reads(logged: pathlib.Path) -> None:
    done = cli(str(logged), "--jsonl")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = parsed(done.stdout)
    changes = expected(logged)
    assert [c.seq for c in changes] == list(range(1, 9))
    assert_same(lines, changes)


def test_jsonl_tags_bytes_dates_and_keys(logged: pathlib.Path) -> None:
    lines = {line["seq"]: line for line in parsed(cli(str(logged), "--jsonl").stdout)}
    assert lines[1]["changes"] == [
        {
            "collection": "notes",
            "key": 1,
            "op": "insert",
            "old": None,
            "new": {"text": "hello", "when": {"$date": "2024-05-01"}, "b": b64(b"\x00")},
        }
    ]
    assert lines[2]["action"] == "import"
    assert lines[2]["user"] == "cron"
    assert lines[2]["meta"] == {"batch": b64(b"\x01"), "at": {"$datetime": WHEN.isoformat()}}
    # Every write of a transaction is an entry of its own, in order.
    assert [(e["op"], e["key"]) for e in lines[2]["changes"]] == [("insert", 2), ("update", 1)]
    assert lines[2]["changes"][1]["old"]["when"] == {"$date": "2024-05-01"}
    assert lines[2]["changes"][1]["new"] == {"text": "edited"}
    # Keys of keyed collections are bytes, tagged like bytes values (UTF-8 or not).
    assert lines[3]["changes"][0]["key"] == b64(b"user:1")
    assert lines[4]["changes"][0]["key"] == b64(b"\xff\x00")
    assert lines[4]["changes"][0]["new"] == b64(b"\x01\x02")
    assert lines[5]["changes"] == [
        {"collection": "notes", "key": 2, "op": "delete", "old": {"text": "second"}, "new": None}
    ]
    assert (lines[5]["action"], lines[5]["user"], lines[5]["meta"]) == (
        "cleanup",
        "ana marie",
        None,
    )
    # A typed document as a read by collection name gives it.
    assert lines[6]["changes"][0]["new"] == {"name": "p", "photo": b64(b"\xfe")}
    assert isinstance(lines[7]["changes"][0]["key"], dict)  # a table's encoded key
    assert lines[8]["changes"][0]["new"] == b64(b"raw\xff")
    for line in lines.values():
        assert line["meta"] is None or isinstance(line["meta"], dict)
        for entry in line["changes"]:
            assert isinstance(entry["key"], (int, dict))
            assert not isinstance(entry["key"], bool)


def test_text_output(logged: pathlib.Path) -> None:
    done = cli(str(logged))
    assert done.returncode == 0, done.stderr
    times = {c.seq: c.time.isoformat() for c in expected(logged)}
    lines = done.stdout.splitlines()
    assert lines[:6] == [
        f"1 {times[1]} action=- user=-",
        "  insert notes 1",
        f"2 {times[2]} action=import user=cron meta="
        + json.dumps({"batch": b64(b"\x01"), "at": {"$datetime": WHEN.isoformat()}}),
        "  insert notes 2",
        "  update notes 1",
        f"3 {times[3]} action=- user=-",
    ]
    assert lines[6] == "  insert sessions 'user:1'"
    assert lines[8] == "  insert raw b'\\xff\\x00'"
    assert lines[9] == f"5 {times[5]} action=cleanup user='ana marie'"
    assert lines[10] == "  delete notes 2"
    assert lines[-2:] == [f"8 {times[8]} action=- user=-", "  insert blobs 1"]
    heads = [line for line in lines if not line.startswith("  ")]
    assert [int(h.split()[0]) for h in heads] == list(range(1, 9))


def test_since_until_and_collections(logged: pathlib.Path) -> None:
    for args, since, options in (
        (["--since", "3"], 3, {}),
        (["--until", "4"], 0, {"until": 4}),
        (["--since", "2", "--until", "5"], 2, {"until": 5}),
        (["--since", "8"], 8, {}),
        (["--since", "5", "--until", "3"], 5, {"until": 3}),
        (["--collection", "notes"], 0, {"collections": ["notes"]}),
        (
            ["--collection", "sessions", "--collection", "raw", "--since", "3"],
            3,
            {"collections": ["sessions", "raw"]},
        ),
        (["--collection", "nothing"], 0, {"collections": ["nothing"]}),
    ):
        done = cli(str(logged), "--jsonl", *args)
        assert done.returncode == 0, (args, done.stderr)
        lines = parsed(done.stdout)
        changes = expected(logged, since, **options)
        assert_same(lines, changes)
    notes = parsed(cli(str(logged), "--jsonl", "--collection", "notes").stdout)
    assert [line["seq"] for line in notes] == [1, 2, 5]
    both = parsed(
        cli(str(logged), "--jsonl", "--collection", "sessions", "--collection", "raw").stdout
    )
    assert [line["seq"] for line in both] == [3, 4]
    assert {e["collection"] for line in both for e in line["changes"]} == {"sessions", "raw"}
    assert cli(str(logged), "--since", "8").stdout == ""


def test_keys_only_log_has_null_images(path: pathlib.Path) -> None:
    with obj.Db(path, changes="keys") as db:
        db.insert("notes", {"a": 1})
        db.store("kv")["k"] = 1
    lines = parsed(cli(str(path), "--jsonl").stdout)
    assert [line["changes"] for line in lines] == [
        [{"collection": "notes", "key": 1, "op": "insert", "old": None, "new": None}],
        [{"collection": "kv", "key": b64(b"k"), "op": "insert", "old": None, "new": None}],
    ]


def read_line(stream: IO[str], child: subprocess.Popen[str]) -> str:
    line = stream.readline()
    assert line, f"the follower ended early: {child.wait()} {child.stderr and child.stderr.read()}"
    return line


def test_follow_prints_each_commit_of_a_writer_as_it_comes(logged: pathlib.Path) -> None:
    with obj.Db(logged) as writer:  # a writer holds the file open all along
        info = writer.change_log()
        assert info is not None
        last = info.last
        child = follow(str(logged), "--jsonl", "--since", str(last - 1), "--timeout", "1.5")
        assert child.stdout is not None
        try:
            # The record already there comes first.
            assert json.loads(read_line(child.stdout, child))["seq"] == last
            started = threading.Event()

            def write() -> None:
                started.set()
                for i in range(3):
                    time.sleep(0.2)
                    with writer.transaction(action="live", meta={"i": i}) as tx:
                        tx.insert("notes", {"n": i, "raw": bytes([i])})

            thread = threading.Thread(target=write)
            thread.start()
            started.wait()
            seen = []
            for _ in range(3):
                # Each record is flushed as it comes: read while the follower still runs.
                seen.append(json.loads(read_line(child.stdout, child)))
                assert child.poll() is None
            thread.join()
            # 1.5 s without a new record: the follower ends, with status 0.
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 0, err
        assert out == ""
        assert [line["seq"] for line in seen] == [last + 1, last + 2, last + 3]
        assert [line["meta"] for line in seen] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert [line["changes"][0]["new"] for line in seen] == [
            {"n": i, "raw": b64(bytes([i]))} for i in range(3)
        ]
        assert_same(seen, expected(logged, last))


def test_follow_with_collection_and_until(logged: pathlib.Path) -> None:
    with obj.Db(logged) as writer:
        child = follow(str(logged), "--jsonl", "--since", "8", "--until", "10", "--collection", "b")
        try:
            writer.insert("a", {"x": 1})  # seq 9: not printed
            writer.insert("b", {"x": 2})  # seq 10: printed, and the follower ends there
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 0, err
        assert [line["seq"] for line in parsed(out)] == [10]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_follow_interrupted_exits_130(logged: pathlib.Path) -> None:
    child = follow(str(logged), "--since", "7")
    assert child.stdout is not None
    try:
        assert read_line(child.stdout, child).startswith("8 ")
        assert read_line(child.stdout, child) == "  insert blobs 1\n"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130
    assert err == "obj changes: interrupted\n"
    assert out == ""


def test_follow_timeout_without_records(logged: pathlib.Path) -> None:
    started = time.monotonic()
    done = cli(str(logged), "--since", "8", "--follow", "--timeout", "0.3")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert time.monotonic() - started >= 0.3


def one_line_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, (done.returncode, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("obj changes: error: ")
    return done.stderr


def test_a_file_without_a_change_log(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        db.insert("notes", {"a": 1})
    err = one_line_error(cli(str(path)), 2)
    assert "keeps no change log" in err
    with obj.Db(path) as db:
        db.enable_changes()
        db.disable_changes()
    assert "keeps no change log" in one_line_error(cli(str(path), "--jsonl"), 2)


def test_expired_since_names_the_oldest_seq_kept(path: pathlib.Path) -> None:
    with obj.Db(path, changes=True, retention=obj.Retention(max_records=2)) as db:
        for i in range(6):
            db.insert("notes", {"i": i})
        info = db.change_log()
    assert info is not None
    assert (info.oldest, info.last) == (5, 6)
    for since in ("0", "3"):
        err = one_line_error(cli(str(path), "--since", since), 1)
        assert "ChangesExpiredError" in err
        assert "seq 5 onwards" in err
        assert f"after seq {since} " in err
    # Without --since: what the log keeps.
    done = cli(str(path), "--jsonl")
    assert done.returncode == 0, done.stderr
    assert [line["seq"] for line in parsed(done.stdout)] == [5, 6]
    assert [line["seq"] for line in parsed(cli(str(path), "--jsonl", "--since", "4").stdout)] == [
        5,
        6,
    ]


def test_missing_file_and_bad_arguments(logged: pathlib.Path, tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "missing.obj"
    assert "no such file" in one_line_error(cli(str(missing)), 2)
    assert not missing.exists()
    for args, says in (
        (["--since", "-1"], "--since must be a seq >= 0"),
        (["--until", "-2"], "--until must be a seq >= 0"),
        (["--timeout", "1"], "--timeout is for --follow"),
        (["--follow", "--timeout", "-1"], "--timeout must be a number of seconds >= 0"),
        (["--follow", "--timeout", "nan"], "--timeout must be a number of seconds >= 0"),
        (["--since", "x"], "invalid int value"),
        (["--bogus"], "unrecognized arguments"),
    ):
        done = cli(str(logged), *args)
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert cli().returncode == 2  # FILE missing
    empty = tmp_path / "empty.obj"
    empty.write_bytes(b"")
    done = cli(str(empty))
    assert done.returncode == 1
    assert "not an obj database" in done.stderr


def test_help_lists_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "obj", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "changes" in done.stdout
    assert "obj changes FILE" in (obj.cli.__doc__ or "")
