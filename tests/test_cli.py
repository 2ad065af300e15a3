"""The command line, ``python -m obj``, run in a subprocess: output and exit codes."""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import subprocess
import sys
import uuid
from typing import Annotated

import pytest

import obj
from obj.cli import from_json, to_json


@obj.document(collection="cli_people", version=1)
@dataclasses.dataclass
class Person:
    name: Annotated[str, obj.Unique]
    age: int
    photo: bytes = b""


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "obj", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


@pytest.fixture
def filled(path: pathlib.Path) -> pathlib.Path:
    with obj.Db(path) as db:
        with db.transaction() as tx:
            for i in range(20):
                tx.insert(Person(f"p{i}", 20 + i, bytes([i, 255])))
        db.insert("notes", {"text": "hello", "when": datetime.date(2024, 5, 1)})
        db.insert("blobs", b"\x00\x01raw")
    return path


def test_stat(filled: pathlib.Path) -> None:
    done = cli("stat", str(filled))
    assert done.returncode == 0, done.stderr
    assert "cli_people: 20 documents" in done.stdout
    assert "index name (unique on name): ready" in done.stdout
    assert "page size" in done.stdout
    assert done.stderr == ""
    as_json = cli("stat", str(filled), "--json")
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert {c["name"]: c["doc_count"] for c in data["collections"]} == {
        "blobs": 1,
        "cli_people": 20,
        "notes": 1,
    }
    assert {"page_size", "page_count", "free_pages", "wal_frames"} <= set(data)


def test_check_healthy(filled: pathlib.Path) -> None:
    done = cli("check", str(filled))
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_dump_text_and_json(filled: pathlib.Path) -> None:
    done = cli("dump", str(filled), "cli_people", "--limit", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("1: {'name': 'p0', 'age': 20")
    as_json = cli("dump", str(filled), "cli_people", "--json")
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(rows) == 20
    assert rows[1] == {"id": 2, "doc": {"name": "p1", "age": 21, "photo": {"$bytes": "Af8="}}}
    notes = cli("dump", str(filled), "notes", "--json")
    assert json.loads(notes.stdout) == {
        "id": 1,
        "doc": {"text": "hello", "when": {"$date": "2024-05-01"}},
    }
    blobs = cli("dump", str(filled), "blobs", "--json")
    assert json.loads(blobs.stdout)["doc"] == {"$bytes": "AAFyYXc="}
    missing = cli("dump", str(filled), "nothing")
    assert missing.returncode == 2
    assert "no collection named 'nothing'" in missing.stderr


def test_export_import_round_trip(filled: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "all.jsonl"
    done = cli("export", str(filled), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 22 documents from 3 collections" in done.stdout
    # No terminal: no progress bar.
    assert done.stderr == ""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 22
    assert {line["collection"] for line in lines} == {"blobs", "cli_people", "notes"}

    one = tmp_path / "people.jsonl"
    assert cli("export", str(filled), "cli_people", "--jsonl", str(one)).returncode == 0
    target = tmp_path / "copy.obj"
    done = cli("import", str(target), "people", "--jsonl", str(one), "--keep-ids")
    assert done.returncode == 0, done.stderr
    assert "imported 20 documents into 'people'" in done.stdout
    with obj.Db(target, read_only=True) as db:
        assert db.count("people") == 20
        assert db.get("people", 3) == {"name": "p2", "age": 22, "photo": bytes([2, 255])}
        assert db.dump_raw("people", 1)[0].header.kind == "value"

    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"a": 1}\n\n{"b": {"$bytes": "AQI="}}\n')
    done = cli("import", str(target), "plain", "--jsonl", str(plain))
    assert done.returncode == 0, done.stderr
    with obj.Db(target, read_only=True) as db:
        assert list(db.all("plain")) == [(1, {"a": 1}), (2, {"b": b"\x01\x02"})]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    done = cli("import", str(target), "bad", "--jsonl", str(bad))
    assert done.returncode == 2
    assert "line 2" in done.stderr
    with obj.Db(target, read_only=True) as db:
        assert db.count("bad") == 0  # one transaction: nothing of a failed import


def test_checkpoint(filled: pathlib.Path) -> None:
    with obj.Db(filled) as db:
        db.insert("more", b"x")
        db.close_without_checkpoint()
    done = cli("checkpoint", str(filled))
    assert done.returncode == 0, done.stderr
    assert "checkpoint copied" in done.stdout
    with obj.Db(filled, read_only=True) as db:
        assert db.stat().wal_frames == 0
        assert db.count("more") == 1


def test_missing_file_and_usage(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "missing.obj"
    for args in (
        ["stat", str(missing)],
        ["check", str(missing)],
        ["dump", str(missing), "x"],
        ["export", str(missing), "--jsonl", str(tmp_path / "o.jsonl")],
        ["checkpoint", str(missing)],
    ):
        done = cli(*args)
        assert done.returncode == 2, args
        assert "no such file" in done.stderr
        assert done.stdout == ""
    assert not missing.exists()  # never created by a command that reads
    assert cli().returncode == 2
    assert cli("dump", str(missing)).returncode == 2  # argparse: COLLECTION missing
    assert cli("--version").stdout.startswith("obj ")


def test_damaged_file(filled: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with obj.Db(filled, read_only=True) as db:
        page_size = db.page_size
    data = bytearray(filled.read_bytes())
    # Overwrite the middle of every page after the header pages.
    for page in range(2, len(data) // page_size):
        start = page * page_size + 100
        data[start : start + 64] = b"\xa5" * 64
    damaged = tmp_path / "damaged.obj"
    damaged.write_bytes(bytes(data))
    done = cli("check", str(damaged))
    assert done.returncode == 1
    assert "damaged" in done.stderr
    assert "Traceback" not in done.stderr

    not_obj = tmp_path / "text.obj"
    not_obj.write_text("this is not a database\n" * 400)
    for args in (["check", str(not_obj)], ["stat", str(not_obj)], ["dump", str(not_obj), "x"]):
        done = cli(*args)
        assert done.returncode == 1, args
        assert "not an obj database" in done.stderr
        assert "Traceback" not in done.stderr


def test_json_tags_round_trip() -> None:
    value = {
        "b": b"\x00\xff",
        "d": datetime.date(2020, 2, 29),
        "t": datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "u": uuid.UUID(int=7),
        "l": [1, 2.5, None, True, "s"],
    }
    encoded = json.loads(json.dumps(to_json(value)))
    assert from_json(encoded) == value
