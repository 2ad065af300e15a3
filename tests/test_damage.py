"""Damaged or truncated files: an ObjError subclass or correct data, never a crash.

Each damaged copy is opened in a separate interpreter that reports, per case, either the
complete database contents it read or the class of the error it got. The parent checks that
the interpreter survived, that every error is an `obj.ObjError` subclass, and that whatever
was read equals a state the database really had: after damage to the log, the state after
some commit (a torn tail is dropped whole, never half applied); after damage to the main
file, the final state.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import obj

PAGE = 4096
FRAME = 32 + PAGE  # WAL frame header + page image

# Opens each case read-write (recovery), then twice: commits, closes (without, then with a
# checkpoint) and reopens, which must show exactly what was there before the close. Prints
# one JSON line per case: the contents first read, or the error class. A line "start NAME" comes
# first so a crash can be attributed.
OPENER = r"""
import hashlib, json, sys
import obj

def contents(db):
    with db.read_transaction() as r:
        return sorted(
            [name, doc_id, hashlib.sha1(value).hexdigest()]
            for name in r.collections()
            for doc_id, value in r.iter_all(name)
        )

for case in json.load(open(sys.argv[1])):
    print("start", case["name"], flush=True)
    result = {"name": case["name"], "error": None, "stage": None, "state": None}
    stage = "open"
    try:
        db = obj.Db(case["path"], busy_timeout=0)
        stage = "read"
        result["state"] = contents(db)
        for clean in (False, True):
            stage = "write"
            with db.transaction() as tx:
                tx.insert("after", b"still writable")
            expected = contents(db)
            stage = "close"
            if clean:
                db.close()
            else:
                try:
                    with db:
                        raise KeyError  # closes without a checkpoint
                except KeyError:
                    pass
            stage = "reopen"
            db = obj.Db(case["path"], busy_timeout=0)
            if contents(db) != expected:
                raise AssertionError(f"reopen (clean={clean}) changed the contents")
        db.close()
    except obj.ObjError as e:
        result["error"] = type(e).__name__
        result["stage"] = stage
    except BaseException as e:
        result["error"] = "UNEXPECTED " + type(e).__name__ + ": " + str(e)
        result["stage"] = stage
    print(json.dumps(result), flush=True)
print("done", flush=True)
"""

STATES_KEY = "states"


def snapshot(db: obj.Db) -> list[list[Any]]:
    with db.read_transaction() as r:
        return sorted(
            [name, doc_id, hashlib.sha1(value).hexdigest()]
            for name in r.collections()
            for doc_id, value in r.iter_all(name)
        )


def commit_round(db: obj.Db, k: int, salt: int = 0) -> None:
    with db.transaction() as tx:
        for i in range(k * 3):
            tx.insert("small", b"round %d doc %d salt %d" % (k, i, salt))
        tx.upsert("big", k, bytes([k]) * (k * 3000))  # overflow chains
        if k > 1:
            tx.delete("small", k)
            tx.upsert("small", 1, b"changed in round %d" % k)


def build_checkpointed(path: pathlib.Path) -> list[list[Any]]:
    """A database whose log is empty: everything is in the main file."""
    with obj.Db(path) as db:
        for k in range(1, 7):
            commit_round(db, k)
        return snapshot(db)


def build_with_wal(path: pathlib.Path, salt: int = 0) -> list[list[list[Any]]]:
    """A database with one checkpointed commit and five more only in the log. Returns the
    state after each of the six commits (``salt`` varies the contents)."""

    class Stop(Exception):
        pass

    states = []
    with pytest.raises(Stop), obj.Db(path) as db:
        commit_round(db, 1, salt)
        db.checkpoint()
        states.append(snapshot(db))
        for k in range(2, 7):
            commit_round(db, k, salt)
            states.append(snapshot(db))
        raise Stop  # closes without the checkpoint: the log keeps commits 2..6
    return states


def flip(data: bytearray, offset: int) -> bytearray:
    data = bytearray(data)
    data[offset] ^= 0x5A
    return data


def run_cases(tmp: pathlib.Path, cases: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    listing = tmp / "cases.json"
    listing.write_text(json.dumps(cases))
    proc = subprocess.run(
        [sys.executable, "-c", OPENER, str(listing)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    started = [line.split(" ", 1)[1] for line in lines if line.startswith("start ")]
    assert proc.returncode == 0 and lines[-1:] == ["done"], (
        f"interpreter died (exit {proc.returncode}) in case "
        f"{started[-1] if started else None}: {proc.stderr[-2000:]}"
    )
    results = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(results) == len(cases)
    for r in results:
        assert r["error"] is None or not r["error"].startswith("UNEXPECTED"), r
    return {r["name"]: r for r in results}


def make_cases(
    tmp: pathlib.Path, variants: Iterator[tuple[str, bytes, bytes]]
) -> list[dict[str, str]]:
    cases = []
    for n, (name, main_bytes, wal_bytes) in enumerate(variants):
        case_dir = tmp / f"case{n}"
        case_dir.mkdir()
        (case_dir / "db.obj").write_bytes(main_bytes)
        (case_dir / "db.obj-wal").write_bytes(wal_bytes)
        cases.append({"name": name, "path": str(case_dir / "db.obj")})
    return cases


def test_damaged_main_file(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "source.obj"
    final = build_checkpointed(source)
    main = bytearray(source.read_bytes())
    wal = pathlib.Path(str(source) + "-wal").read_bytes()
    assert len(wal) == obj.WAL_HEADER_SIZE
    pages = len(main) // PAGE
    rng = random.Random(5)

    def variants() -> Iterator[tuple[str, bytes, bytes]]:
        for p in range(pages):
            for offset in sorted({0, 9, rng.randrange(PAGE), PAGE // 2, PAGE - 1}):
                yield f"flip page {p} +{offset}", bytes(flip(main, p * PAGE + offset)), wal
            zeroed = bytearray(main)
            zeroed[p * PAGE : (p + 1) * PAGE] = bytes(PAGE)
            yield f"zero page {p}", bytes(zeroed), wal
        for length in [
            1,
            8,
            63,
            100,
            PAGE - 1,
            PAGE,
            PAGE + 1,
            2 * PAGE,
            len(main) // 2,
            len(main) - PAGE,
            len(main) - 1,
        ]:
            yield f"truncate to {length}", bytes(main[:length]), wal
        yield "random bytes", rng.randbytes(len(main)), wal
        yield "text file", b"hello, this is not a database\n" * 400, wal
        yield "main file of another page size", bytes(main[: PAGE // 2]) * 2, wal

    results = run_cases(tmp_path, make_cases(tmp_path, variants()))
    corruption = 0
    for name, r in results.items():
        if r["error"] is None or r["stage"] != "open":
            # Whatever was read is the real data, never damaged bytes served as documents.
            assert r["state"] is None or r["state"] == final, name
        if r["error"] == "CorruptionError":
            corruption += 1
    for name in ["random bytes", "text file", "truncate to 1", "truncate to 100"]:
        assert results[name]["error"] == "CorruptionError", results[name]
    # Damage to live pages is detected, not ignored.
    assert corruption > len(results) // 2, corruption


def test_damaged_or_truncated_wal(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "source.obj"
    states = build_with_wal(source)
    main = source.read_bytes()
    wal = bytearray(pathlib.Path(str(source) + "-wal").read_bytes())
    frames = (len(wal) - obj.WAL_HEADER_SIZE) // FRAME
    assert frames > 10
    rng = random.Random(11)

    def variants() -> Iterator[tuple[str, bytes, bytes]]:
        boundaries = [obj.WAL_HEADER_SIZE + f * FRAME for f in range(frames + 1)]
        lengths = {0, 1, 32, 63, 64, 65, len(wal) - 1}
        for b in boundaries:
            lengths.update({b - 1, b, b + 17, b + 32 + PAGE // 2})
        for length in sorted(x for x in lengths if 0 <= x <= len(wal)):
            yield f"truncate wal to {length}", main, bytes(wal[:length])
        offsets = set(range(0, obj.WAL_HEADER_SIZE, 7))
        for b in boundaries[:-1]:
            offsets.update({b, b + 8, b + 16, b + 28, b + 32, b + 32 + rng.randrange(PAGE)})
        for offset in sorted(offsets):
            yield f"flip wal +{offset}", main, bytes(flip(wal, offset))
        yield "garbage wal", main, rng.randbytes(len(wal))
        yield "wal with garbage appended", main, bytes(wal) + rng.randbytes(FRAME + 100)

    results = run_cases(tmp_path, make_cases(tmp_path, variants()))
    full = 0
    for name, r in results.items():
        # Damage is found while recovering or reading; once the log was recovered, writing,
        # closing and reopening work.
        assert r["stage"] in (None, "open", "read"), (name, r)
        if r["state"] is not None:
            # Exactly the state after one of the commits: never a partial commit, never
            # less than what the main file already held.
            assert r["state"] in states, name
            full += r["state"] == states[-1]
    assert results["truncate wal to 0"]["state"] == states[0]
    assert results[f"truncate wal to {len(wal)}"]["state"] == states[-1]
    assert results["wal with garbage appended"]["state"] == states[-1]
    # Truncating inside the last frame drops only the last commit.
    cut = results[f"truncate wal to {len(wal) - 1}"]
    assert cut["state"] == states[-2], cut
    assert full >= 1


def test_wal_of_another_database_is_not_replayed(tmp_path: pathlib.Path) -> None:
    """A stale log left beside a replaced main file (say, a restored backup) must not be
    applied to it."""
    source = tmp_path / "source.obj"
    states = build_with_wal(source)
    other = tmp_path / "other.obj"
    build_with_wal(other, salt=1)
    foreign_wal = pathlib.Path(str(other) + "-wal").read_bytes()
    cases = make_cases(
        tmp_path, iter([("wal of another database", source.read_bytes(), foreign_wal)])
    )
    result = run_cases(tmp_path, cases)["wal of another database"]
    assert result["state"] is None or result["state"] in states, result["error"]


def test_damage_fixture_sanity(tmp_path: pathlib.Path) -> None:
    """The opener reports intact copies as intact (guards the harness itself)."""
    source = tmp_path / "source.obj"
    states = build_with_wal(source)
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    shutil.copy(source, copy_dir / "db.obj")
    shutil.copy(str(source) + "-wal", copy_dir / "db.obj-wal")
    results = run_cases(tmp_path, [{"name": "intact", "path": str(copy_dir / "db.obj")}])
    assert results["intact"] == {
        "name": "intact",
        "error": None,
        "stage": None,
        "state": states[-1],
    }


def test_mid_wal_damage_is_corruption_and_keeps_the_log(tmp_path: pathlib.Path) -> None:
    """A flipped bit in the middle of the log, with commits behind it that were written after
    it was synced, is damage, not a torn tail: opening fails with CorruptionError counting
    what lies behind it, the files stay as they were, and read_only=True reads the commits
    before the damage. Damage in the last commit is a torn tail: dropped silently."""
    path = tmp_path / "db.obj"
    wal_path = pathlib.Path(str(path) + "-wal")
    states = build_with_wal(path)  # states[0]: the main file; commits 2..6 in the log
    main = path.read_bytes()
    wal = wal_path.read_bytes()
    frames = (len(wal) - obj.WAL_HEADER_SIZE) // FRAME
    header = obj.WAL_HEADER_SIZE
    # The last frame of each commit carries the database size (bytes 8..16 of its header).
    ends = [f for f in range(frames) if int.from_bytes(wal[header + f * FRAME + 8 :][:8], "little")]
    assert len(ends) == 5 and ends[-1] == frames - 1
    middle = ends[-2] // 2  # the middle frame of the commits before the last one
    commit = sum(1 for e in ends if e < middle)  # commits wholly before it
    damaged = bytes(flip(bytearray(wal), header + middle * FRAME + 32 + PAGE // 3))
    wal_path.write_bytes(damaged)
    later = f"{frames - middle - 1} later frames holding {sum(1 for e in ends if e > middle)}"
    for _ in range(2):
        with pytest.raises(obj.CorruptionError) as caught:
            obj.Db(path)
        message = str(caught.value)
        assert later + " commits" in message, message
        assert "read_only=True" in message and "backup" in message, message
        assert wal_path.read_bytes() == damaged, "a refused open changed the log"
        assert path.read_bytes() == main, "a refused open changed the main file"
    with obj.Db(path, read_only=True) as db:
        assert snapshot(db) == states[commit]
    assert wal_path.read_bytes() == damaged

    # The same flip inside the last commit: nothing of this log lies behind it.
    last = ends[-2] + 1 + (ends[-1] - ends[-2]) // 2
    wal_path.write_bytes(bytes(flip(bytearray(wal), header + last * FRAME + 32 + 7)))
    with obj.Db(path) as db:
        assert snapshot(db) == states[-2]
