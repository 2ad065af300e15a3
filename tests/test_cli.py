"""The command line, ``python -m obj``, run in a subprocess: output and exit codes."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import math
import pathlib
import re
import subprocess
import sys
import uuid
from typing import Annotated, Any, Optional

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


def payloads(path: pathlib.Path, collection: str) -> list[tuple[int, str, int, bytes]]:
    """``(id, kind, type_version, payload)`` of every record, as stored."""
    with obj.Db(path, read_only=True) as db:
        return [
            (r.id, r.header.kind, r.header.type_version, r.payload)
            for r in db.dump_raw(collection, 100_000)
        ]


def test_export_import_round_trip(filled: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "all.jsonl"
    done = cli("export", str(filled), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 22 documents from 3 collections" in done.stdout
    one = cli("export", str(filled), "notes", "--jsonl", str(tmp_path / "one.jsonl"))
    assert "exported 1 document from 1 collection to" in one.stdout, one.stdout
    # No terminal: no progress bar.
    assert done.stderr == ""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 23  # 22 documents and the schema of the typed collection
    assert {line["collection"] for line in lines} == {"blobs", "cli_people", "notes"}
    assert [line for line in lines if "$schema" in line] == [
        {
            "collection": "cli_people",
            "$schema": {
                "version": 1,
                "fields": [
                    {"name": "name", "type": "str"},
                    {"name": "age", "type": "int"},
                    {"name": "photo", "type": "bytes"},
                ],
            },
        }
    ]
    assert lines[2] == {
        "collection": "cli_people",
        "id": 1,
        "$version": 1,
        "doc": {"name": "p0", "age": 20, "photo": {"$bytes": "AP8="}},
    }

    one = tmp_path / "people.jsonl"
    assert cli("export", str(filled), "cli_people", "--jsonl", str(one)).returncode == 0
    target = tmp_path / "copy.obj"
    done = cli("import", str(target), "people", "--jsonl", str(one), "--keep-ids")
    assert done.returncode == 0, done.stderr
    assert "imported 20 documents into 'people'" in done.stdout
    with obj.Db(target, read_only=True) as db:
        assert db.count("people") == 20
        assert db.get("people", 3) == {"name": "p2", "age": 22, "photo": bytes([2, 255])}
    # Typed records come back as the class wrote them: kind, version and payload bytes.
    assert payloads(target, "people") == payloads(filled, "cli_people")
    assert payloads(target, "people")[0][1:3] == ("typed", 1)

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


def test_whole_database_round_trip(filled: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Without COLLECTION, import puts every line back into the collection it names."""
    out = tmp_path / "all.jsonl"
    assert cli("export", str(filled), "--jsonl", str(out)).returncode == 0
    copy = tmp_path / "copy.obj"
    done = cli("import", str(copy), "--jsonl", str(out), "--keep-ids")
    assert done.returncode == 0, done.stderr
    assert "imported 22 documents into 3 collections" in done.stdout
    for name in ("blobs", "cli_people", "notes"):
        assert payloads(copy, name) == payloads(filled, name), name
    with obj.Db(copy) as db:
        assert db.get(Person, 5) == Person("p4", 24, bytes([4, 255]))
        # Indexes are not exported: the class builds its own on first use.
        assert db.find_unique(Person, "name", "p7") == Person("p7", 27, bytes([7, 255]))
    # Plain JSON objects name no collection.
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"a": 1}\n')
    done = cli("import", str(copy), "--jsonl", str(plain))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "obj import: error: line 1: a plain JSON object names no collection; name one on "
        "the command line (obj import FILE COLLECTION --jsonl IN)"
    ]


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = 2


@dataclasses.dataclass
class Place:
    city: str
    zip: Optional[str] = None


@obj.document(collection="cli_rich", version=1)
@dataclasses.dataclass
class RichV1:
    name: str


@obj.document(collection="cli_rich", version=2, history=[RichV1])
@dataclasses.dataclass
class Rich:
    """Every kind of field the typed codec has."""

    name: Annotated[str, obj.Unique]
    score: float
    blob: bytes
    flag: bool
    nothing: None
    maybe: Optional[int]
    items: list[int]
    pair: tuple[int, str]
    weights: dict[str, float]
    place: Place
    where: Optional[Place]
    when: datetime.datetime
    local: datetime.datetime
    day: datetime.date
    shade: Shade
    ident: uuid.UUID
    anything: Any
    nested: list[dict[str, list[Place]]]

    @classmethod
    def migrate(cls, doc: RichV1, from_version: int) -> Rich:
        return rich(doc.name)


def rich(name: str, **changes: Any) -> Rich:
    fields: dict[str, Any] = {
        "name": name,
        "score": -0.0,
        "blob": b"\x00\xff",
        "flag": True,
        "nothing": None,
        "maybe": None,
        "items": [1, -2, 2**62],
        "pair": (7, "seven"),
        "weights": {"a": 0.5, "nan": math.nan, "-nan": -math.nan, "inf": -math.inf},
        "place": Place("Oslo"),
        "where": Place("Bergen", "5003"),
        "when": datetime.datetime(2024, 2, 29, 23, 59, 58, 123, tzinfo=datetime.timezone.utc),
        "local": datetime.datetime(1969, 7, 20, 20, 17, 40),
        "day": datetime.date(1, 1, 1),
        "shade": Shade.DARK,
        "ident": uuid.UUID(int=2**128 - 1),
        "anything": {"k": [1, b"x", None, {"$bytes": "not a tag"}], "f": math.inf},
        "nested": [{"x": [Place("a"), Place("b", None)]}, {}],
    }
    fields.update(changes)
    return Rich(**fields)


def test_typed_round_trip_byte_for_byte(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Every field type, two schema versions: export then import restores the records
    byte for byte, and the application's class reads them. (The version-2 class migrated
    the version-1 record on its first write, so what is exported is all version 2.)"""
    with obj.Db(path) as db:
        old = db.insert(RichV1("old"))
        db.insert(rich("new"))
        db.insert(rich("other", shade=Shade.LIGHT, where=None, maybe=-1, score=math.nan))
        db.delete(Rich, old + 1)
    out = tmp_path / "rich.jsonl"
    done = cli("export", str(path), "cli_rich", "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    for line in text.splitlines():
        json.loads(line, parse_constant=reject_constant)  # strict JSON
    schemas = [json.loads(line) for line in text.splitlines() if '"$schema"' in line]
    assert [s["$schema"]["version"] for s in schemas] == [2]
    copy = tmp_path / "copy.obj"
    for keep in ([], ["--keep-ids"]):
        copy.unlink(missing_ok=True)
        pathlib.Path(f"{copy}-wal").unlink(missing_ok=True)
        done = cli("import", str(copy), "cli_rich", "--jsonl", str(out), *keep)
        assert done.returncode == 0, done.stderr
        assert "imported 2 documents" in done.stdout
        original = payloads(path, "cli_rich")
        restored = payloads(copy, "cli_rich")
        assert [r[1:] for r in restored] == [r[1:] for r in original]
        assert [r[2] for r in restored] == [2, 2]
        if keep:
            assert restored == original
    with obj.Db(copy) as db:
        docs = [doc for _, doc in db.all(Rich)]
        assert [d.name for d in docs] == ["old", "other"]
        # NaN is not equal to itself: compare the weights apart.
        weights = docs[0].weights
        assert weights["a"] == 0.5 and weights["inf"] == -math.inf
        assert math.isnan(weights["nan"]) and math.copysign(1.0, weights["-nan"]) == -1.0
        assert dataclasses.replace(docs[0], weights={}) == rich("old", weights={})
        assert math.isnan(docs[1].score) and docs[1].shade is Shade.LIGHT
        # A class's index is built over the imported records the first time it is used.
        assert db.find_unique(Rich, "name", "other") is not None


def reject_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not JSON")


def test_json_output_is_strict(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    floats = [math.nan, -math.nan, math.inf, -math.inf, 1.5, -0.0]
    with obj.Db(path) as db:
        db.insert("floats", {"values": floats, "one": math.nan})
        db.insert(Person("x", 1))
    dumped = cli("dump", str(path), "floats", "--json")
    assert dumped.returncode == 0, dumped.stderr
    row = json.loads(dumped.stdout, parse_constant=reject_constant)
    assert row["doc"] == {
        "values": [
            {"$float": "nan"},
            {"$float": "-nan"},
            {"$float": "inf"},
            {"$float": "-inf"},
            1.5,
            -0.0,
        ],
        "one": {"$float": "nan"},
    }
    out = tmp_path / "floats.jsonl"
    assert cli("export", str(path), "--jsonl", str(out)).returncode == 0
    for line in out.read_text().splitlines():
        json.loads(line, parse_constant=reject_constant)
    assert cli("stat", str(path), "--json").returncode == 0
    copy = tmp_path / "copy.obj"
    done = cli("import", str(copy), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    # The same bits, down to the sign of each NaN.
    assert payloads(copy, "floats") == payloads(path, "floats")
    with obj.Db(copy, read_only=True) as db:
        values = db.get("floats", 1)["values"]
    assert [math.copysign(1.0, v) for v in values] == [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    assert math.isnan(values[0]) and values[2] == math.inf


@pytest.fixture
def typed_target(tmp_path: pathlib.Path) -> pathlib.Path:
    """A database with a typed collection (cli_people) and a dict-native one (notes)."""
    target = tmp_path / "target.obj"
    with obj.Db(target) as db:
        db.insert(Person("kept", 50))
        db.insert("notes", {"text": "kept"})
    return target


SCHEMA_LINE = json.dumps(
    {
        "collection": "cli_people",
        "$schema": {
            "version": 1,
            "fields": [
                {"name": "name", "type": "str"},
                {"name": "age", "type": "int"},
                {"name": "photo", "type": "bytes"},
            ],
        },
    }
)
GOOD_LINE = '{"id": 9, "$version": 1, "doc": {"name": "new", "age": 1, "photo": {"$bytes": ""}}}'


@pytest.mark.parametrize(
    ("collection", "lines", "message"),
    [
        (
            "cli_people",
            [
                GOOD_LINE,
                '{"$version": 1, "doc": {"name": "n", "age": "1", "photo": {"$bytes": ""}}}',
            ],
            "line 2: invalid argument: field age: expected int, got str",
        ),
        (
            "cli_people",
            [SCHEMA_LINE, '{"$version": 1, "doc": {"name": "n", "age": 1}}'],
            'line 2: invalid argument: field "photo" is missing',
        ),
        (
            "cli_people",
            ['{"$version": 1, "doc": {"name": "n", "age": 1, "photo": {"$bytes": ""}, "x": 1}}'],
            'line 1: invalid argument: "x" is not a field of the schema',
        ),
        (
            "cli_people",
            [GOOD_LINE, '{"name": "plain", "age": 3}'],
            "line 2: collection 'cli_people' holds typed documents (it stores a schema), so "
            "a dict-native document cannot be imported into it",
        ),
        (
            "cli_people",
            ['{"doc": {"$bytes": "AAE="}}'],
            "line 1: collection 'cli_people' holds typed documents (it stores a schema), so "
            "raw bytes cannot be imported into it",
        ),
        (
            "notes",
            [SCHEMA_LINE],
            "line 1: collection 'notes' holds dict-native or raw documents, so typed "
            "documents cannot be imported into it",
        ),
        (
            "cli_people",
            [SCHEMA_LINE.replace('"int"', '"float"')],
            'line 1: invalid argument: collection "cli_people" version 1 is stored '
            "with a different shape: field 1 is `age: float` here but `age: int` in the "
            "stored schema",
        ),
        (
            "cli_people",
            [GOOD_LINE.replace('"$version": 1', '"$version": 2')],
            "line 1: no schema for 'cli_people' version 2: the database stores none and no "
            '"$schema" line for it came before',
        ),
        (
            "fresh",
            [GOOD_LINE],
            "line 1: no schema for 'fresh' version 1",
        ),
        (
            "cli_people",
            [SCHEMA_LINE.replace('"bytes"', '"bytez"')],
            'line 1: invalid argument: schema fields.photo: unknown type "bytez"',
        ),
        (
            "cli_people",
            [GOOD_LINE, GOOD_LINE.replace('"new"', '"kept"')],
            'line 2: invalid argument: unique index "name" of "cli_people" already holds '
            "'kept' (document 1)",
        ),
    ],
)
def test_import_refuses_lines_that_do_not_fit(
    typed_target: pathlib.Path,
    tmp_path: pathlib.Path,
    collection: str,
    lines: list[str],
    message: str,
) -> None:
    before = {name: payloads(typed_target, name) for name in ("cli_people", "notes", "fresh")}
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    for keep in ([], ["--keep-ids"]):
        done = cli("import", str(typed_target), collection, "--jsonl", str(source), *keep)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith(f"obj import: error: {message}"), done.stderr
        # One transaction: nothing of the lines before the refused one was written.
        after = {name: payloads(typed_target, name) for name in before}
        assert after == before


def test_failed_import_into_a_new_file_leaves_no_file(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "in.jsonl"
    bad = GOOD_LINE.replace('"age": 1', '"age": true')
    source.write_text(f"{SCHEMA_LINE}\n{GOOD_LINE}\n{bad}\n")
    new = tmp_path / "new.obj"
    done = cli("import", str(new), "cli_people", "--jsonl", str(source))
    assert done.returncode == 2
    assert done.stderr == (
        "obj import: error: line 3: invalid argument: field age: expected int, got bool\n"
    )
    assert not new.exists() and not pathlib.Path(f"{new}-wal").exists()


def test_import_into_a_typed_collection(typed_target: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Typed lines that fit the stored schema join the collection; the class reads all."""
    source = tmp_path / "in.jsonl"
    edited = GOOD_LINE.replace('"age": 1', '"age": 2.0e0').replace('"age": 2.0e0', '"age": 7')
    source.write_text(f"{SCHEMA_LINE}\n{edited}\n")
    done = cli("import", str(typed_target), "cli_people", "--jsonl", str(source), "--keep-ids")
    assert done.returncode == 0, done.stderr
    with obj.Db(typed_target) as db:
        assert list(db.all(Person)) == [(1, Person("kept", 50)), (9, Person("new", 7))]
        assert db.find_unique(Person, "name", "new") == Person("new", 7)


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
        "f": [math.inf, -math.inf],
        # Dicts that look like tags stay dicts.
        "tag": {"$bytes": "AAE="},
        "bad": {"$uuid": 5},
        "wrap": {"$dict": {"$date": "x"}},
    }
    encoded = json.loads(json.dumps(to_json(value), allow_nan=False))
    assert encoded["tag"] == {"$dict": {"$bytes": "AAE="}}
    assert from_json(encoded) == value
    nan = from_json(json.loads(json.dumps(to_json(-math.nan))))
    assert math.isnan(nan) and math.copysign(1.0, nan) == -1.0
    for bad, message in [
        ({"$bytes": "!!"}, "$bytes value '!!' is malformed"),
        ({"a": [{"$uuid": "zz"}]}, "field a[0]: $uuid value 'zz' is malformed"),
        ({"a": {"b": {"$date": "2020-13-01"}}}, "field a.b: $date value"),
        ({"$datetime": "noon"}, "$datetime value 'noon' is malformed"),
        ({"$float": "1.5"}, "expected nan, -nan, inf or -inf"),
        ({"$bytes": 5}, "$bytes must hold a string, got 5"),
        ({"$dict": [1]}, "$dict must hold a JSON object"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            from_json(bad)


@pytest.fixture
def sample(tmp_path: pathlib.Path) -> pathlib.Path:
    where = tmp_path / "sample.obj"
    with obj.Db(where) as db:
        db.insert("notes", {"text": "hello"})
    return where


BAD_TAGS = [
    '{"photo": {"$bytes": "not base64!"}}',
    '{"when": {"$datetime": "yesterday"}}',
    '{"day": {"$date": "2020-02-30"}}',
    '{"id": {"$uuid": "123"}}',
    '{"x": {"$float": "NaN"}}',
    '{"x": {"$bytes": 12}}',
    '{"x": {"$dict": "y"}}',
    '{"doc": {"a": [{"$uuid": "g"}]}}',
    '{"$bytes": "AAE"}',
]


@pytest.mark.parametrize("line", BAD_TAGS)
def test_malformed_tag_is_one_line_with_its_line_number(
    sample: pathlib.Path, tmp_path: pathlib.Path, line: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"ok": 1}\n\n' + line + "\n")
    done = cli("import", str(sample), "notes", "--jsonl", str(source))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("obj import: error: line 3: "), done.stderr
    assert "malformed" in done.stderr or "must hold" in done.stderr
    assert "Traceback" not in done.stderr
    with obj.Db(sample, read_only=True) as db:
        assert db.count("notes") == 1


def bad_invocations(tmp: pathlib.Path, db: pathlib.Path) -> list[tuple[list[str], int, str]]:
    """``(argv, exit status, text the one line of stderr holds)``."""
    missing = tmp / "missing.obj"
    empty = tmp / "empty.obj"
    empty.write_bytes(b"")
    text = tmp / "text.obj"
    text.write_text("not a database\n" * 500)
    latin = tmp / "latin.jsonl"
    latin.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    deep = tmp / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    array = tmp / "array.jsonl"
    array.write_text("[1, 2]\n")
    bad_id = tmp / "bad_id.jsonl"
    bad_id.write_text('{"id": "7", "doc": {}}\n')
    bad_version = tmp / "bad_version.jsonl"
    bad_version.write_text('{"$version": -1, "doc": {}}\n')
    bad_schema = tmp / "bad_schema.jsonl"
    bad_schema.write_text('{"collection": "x", "$schema": 3}\n')
    huge = tmp / "huge.jsonl"
    huge.write_text('{"n": 100000000000000000000}\n')
    good = tmp / "good.jsonl"
    good.write_text('{"a": 1}\n')
    jsonl = str(good)
    return [
        (["stat", str(missing)], 2, "no such file"),
        (["stat", str(tmp)], 2, "not a file"),
        (["stat", str(empty)], 1, "not an obj database"),
        (["check", str(empty)], 1, "not an obj database"),
        (["dump", str(empty), "x"], 1, "not an obj database"),
        (["export", str(empty), "--jsonl", str(tmp / "o.jsonl")], 1, "not an obj database"),
        (["checkpoint", str(empty)], 1, "empty file, not an obj database"),
        (["checkpoint", str(text)], 1, "not an obj database"),
        (["import", str(text), "x", "--jsonl", jsonl], 1, "not an obj database"),
        (["dump", str(db), ""], 2, "no collection named ''"),
        (["dump", str(db), "a.b"], 2, "no collection named 'a.b'"),
        (["dump", str(db), "notes", "--limit", "-1"], 2, "--limit must be >= 0"),
        (["dump", str(db), "notes", "--limit", "ten"], 2, "invalid int value: 'ten'"),
        (["dump", str(db)], 2, "the following arguments are required: collection"),
        (["export", str(db), "nope", "--jsonl", "-"], 2, "no collection named 'nope'"),
        (["export", str(db)], 2, "the following arguments are required: --jsonl"),
        (["export", str(db), "--jsonl", str(db)], 2, "is the database itself"),
        (["export", str(db), "--jsonl", str(tmp / "no" / "o.jsonl")], 1, "No such file"),
        (["import", str(db), "", "--jsonl", jsonl], 2, "collection name must not be empty"),
        (["import", str(db), "a.b", "--jsonl", jsonl], 2, "namespace"),
        (["import", str(db), "x" * 300, "--jsonl", jsonl], 2, "exceeds the limit"),
        (["import", str(db), "x", "--jsonl", str(tmp / "none.jsonl")], 2, "no such file"),
        (["import", str(db), "x", "--jsonl", str(tmp)], 2, "not a file"),
        (["import", str(db), "x", "--jsonl", str(latin)], 2, "line 2: not UTF-8 text"),
        (["import", str(db), "x", "--jsonl", str(deep)], 2, "line 1: "),
        (["import", str(db), "x", "--jsonl", str(array)], 2, "line 1: expected a JSON object"),
        (["import", str(db), "x", "--jsonl", str(bad_id)], 2, "line 1: id must be an int >= 1"),
        (["import", str(db), "x", "--jsonl", str(bad_version)], 2, '"$version" must be an int'),
        (["import", str(db), "x", "--jsonl", str(bad_schema)], 2, '"$schema" must be a JSON'),
        (["import", str(db), "x", "--jsonl", str(huge)], 2, "outside the 64-bit range"),
        (["import", str(tmp / "no" / "new.obj"), "x", "--jsonl", jsonl], 2, "no such directory"),
        (["demo", str(text)], 1, "not an obj database"),
        (["demo", str(tmp / "no" / "demo.obj")], 2, "no such directory"),
        (["checkpoint"], 2, "the following arguments are required: file"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        (["stat", str(db), "--bogus"], 2, "unrecognized arguments: --bogus"),
        ([], 2, "obj: error: name a command"),
    ]


def test_every_error_is_one_line(sample: pathlib.Path, tmp_path: pathlib.Path) -> None:
    for argv, status, text in bad_invocations(tmp_path, sample):
        done = cli(*argv)
        assert done.returncode == status, (argv, done.stderr)
        assert len(done.stderr.splitlines()) == 1, (argv, done.stderr)
        assert done.stderr.startswith("obj"), (argv, done.stderr)
        assert text in done.stderr, (argv, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "missing.obj").exists()
    with obj.Db(sample, read_only=True) as db:
        assert db.collections() == ["notes"]  # no failed import wrote anything


# -- keyed collections (obj.Store) ------------------------------------------------------


@obj.document(collection="cli_kv_people", version=1)
@dataclasses.dataclass
class KvPerson:
    name: Annotated[str, obj.Unique]
    age: int
    photo: bytes = b""


#: Values of a dict-native store: every kind of value, not only objects.
KV_VALUES: dict[str, Any] = {
    "a": {"x": 1, "when": datetime.datetime(2024, 1, 2, 3, 4, 5)},
    "ab": 2,
    "abc": b"native bytes",  # a dict-native value that is bytes, not a raw document
    "b": None,
    "c": [1, "two", {"$bytes": "a dict, not a tag"}, -0.0],
    "d": {"$bytes": "AAE="},
    "e": [math.nan, -math.nan, math.inf],
    "caf\u00e9": "str value",
    "z" * 1024: True,
}
RAW_VALUES = {b"\xff\x00": b"\x01", b"\x00": b"", b"k": b"v", b"k\xff": b"\xfe"}


@pytest.fixture
def keyed(path: pathlib.Path) -> pathlib.Path:
    with obj.Db(path) as db:
        db.store("cli_kv").put_many(KV_VALUES)
        db.store("cli_kv_raw", keys="bytes", values=bytes).put_many(RAW_VALUES)
        people = db.store("cli_kv_people", values=KvPerson)
        people.put_many({f"p{i}": KvPerson(f"n{i}", i, bytes([i, 255])) for i in range(5)})
        db.insert("cli_ids", {"n": 1})
    return path


def records(path: pathlib.Path, collection: str) -> list[tuple[Any, ...]]:
    """``(id, key, kind, type_version, payload)`` of every record, as stored."""
    with obj.Db(path, read_only=True) as db:
        return [
            (r.id, r.key, r.header.kind, r.header.type_version, r.payload)
            for r in db.dump_raw(collection, 100_000)
        ]


KEYED_NAMES = ("cli_kv", "cli_kv_raw", "cli_kv_people")


def test_stat_shows_each_collections_kind(keyed: pathlib.Path) -> None:
    done = cli("stat", str(keyed))
    assert done.returncode == 0, done.stderr
    assert f"cli_kv: {len(KV_VALUES)} documents, " in done.stdout
    lines = {line.split(":")[0].strip(): line for line in done.stdout.splitlines()}
    for name in KEYED_NAMES:
        assert lines[name].endswith(" bytes (keyed)"), lines[name]
    assert lines["cli_ids"].endswith(" bytes (id)")
    data = json.loads(cli("stat", str(keyed), "--json").stdout)
    assert {c["name"]: c["kind"] for c in data["collections"]} == {
        "cli_ids": "id",
        "cli_kv": "keyed",
        "cli_kv_people": "keyed",
        "cli_kv_raw": "keyed",
    }


def test_dump_shows_keys_in_key_order(keyed: pathlib.Path) -> None:
    done = cli("dump", str(keyed), "cli_kv_raw")
    assert done.returncode == 0, done.stderr
    # Keys that are UTF-8 show as str, the others as bytes; in byte order of the keys.
    assert done.stdout.splitlines() == [
        "'\\x00': b''",
        "'k': b'v'",
        "b'k\\xff': b'\\xfe'",
        "b'\\xff\\x00': b'\\x01'",
    ]
    as_json = cli("dump", str(keyed), "cli_kv_raw", "--json", "--limit", "3")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {"$key": "\x00", "doc": {"$bytes": ""}},
        {"$key": "k", "doc": {"$bytes": "dg=="}},
        {"$key": {"$bytes": "a/8="}, "doc": {"$bytes": "/g=="}},
    ]
    text = cli("dump", str(keyed), "cli_kv", "--limit", "2").stdout.splitlines()
    assert text == [
        f"'a': {KV_VALUES['a']!r}",
        "'ab': 2",
    ]
    rows = [
        json.loads(line) for line in cli("dump", str(keyed), "cli_kv", "--json").stdout.splitlines()
    ]
    assert [from_json(row["$key"]) for row in rows] == sorted(KV_VALUES, key=str.encode)
    assert rows[1] == {"$key": "ab", "doc": 2}
    people = cli("dump", str(keyed), "cli_kv_people", "--json", "--limit", "1")
    assert json.loads(people.stdout) == {
        "$key": "p0",
        "doc": {"name": "n0", "age": 0, "photo": {"$bytes": "AP8="}},
    }


def test_keyed_export_import_round_trip_byte_for_byte(
    keyed: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """Raw, dict-native and typed values under str and non-UTF-8 keys come back as they
    were stored (kind, version, payload and key), into collections created keyed."""
    out = tmp_path / "all.jsonl"
    done = cli("export", str(keyed), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    count = len(KV_VALUES) + len(RAW_VALUES) + 5 + 1
    assert f"exported {count} documents from 4 collections" in done.stdout
    lines = [
        json.loads(line, parse_constant=reject_constant) for line in out.read_text().splitlines()
    ]
    kv = [line for line in lines if line["collection"] == "cli_kv"]
    assert kv[2] == {
        "collection": "cli_kv",
        "$key": "abc",
        "$kind": "value",
        "doc": {"$bytes": base64_of(b"native bytes")},
    }
    raw = [line for line in lines if line["collection"] == "cli_kv_raw"]
    assert raw[-1] == {
        "collection": "cli_kv_raw",
        "$key": {"$bytes": "/wA="},
        "doc": {"$bytes": "AQ=="},
    }
    people = [line for line in lines if line["collection"] == "cli_kv_people"]
    assert "$schema" in people[0]
    assert people[1] == {
        "collection": "cli_kv_people",
        "$key": "p0",
        "$version": 1,
        "doc": {"name": "n0", "age": 0, "photo": {"$bytes": "AP8="}},
    }

    copy = tmp_path / "copy.obj"
    done = cli("import", str(copy), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    assert f"imported {count} documents into 4 collections" in done.stdout
    for name in (*KEYED_NAMES, "cli_ids"):
        assert records(copy, name) == records(keyed, name), name
    with obj.Db(copy) as db:
        assert {c.name: c.kind for c in db.stat().collections}["cli_kv_people"] == "keyed"
        store = db.store("cli_kv")
        assert store["ab"] == 2 and store["abc"] == b"native bytes"
        assert store["d"] == {"$bytes": "AAE="}
        assert db.store("cli_kv_raw", keys="bytes", values=bytes)[b"\xff\x00"] == b"\x01"
        assert db.store("cli_kv_people", values=KvPerson)["p3"] == KvPerson("n3", 3, b"\x03\xff")

    # Into another (new) collection named on the command line, and again over it: the
    # keys are kept, so the second import replaces rather than adds.
    one = tmp_path / "people.jsonl"
    assert cli("export", str(keyed), "cli_kv_people", "--jsonl", str(one)).returncode == 0
    for _ in range(2):
        done = cli("import", str(copy), "renamed", "--jsonl", str(one))
        assert done.returncode == 0, done.stderr
        assert "imported 5 documents into 'renamed'" in done.stdout
    assert records(copy, "renamed") == records(keyed, "cli_kv_people")

    # What dump --json writes imports too.
    dumped = tmp_path / "dump.jsonl"
    dumped.write_text(cli("dump", str(keyed), "cli_kv_raw", "--json").stdout)
    done = cli("import", str(copy), "from_dump", "--jsonl", str(dumped))
    assert done.returncode == 0, done.stderr
    assert records(copy, "from_dump") == records(keyed, "cli_kv_raw")


def base64_of(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize(
    ("collection", "lines", "message"),
    [
        (
            "cli_ids",
            ['{"doc": {"n": 2}}', '{"$key": "k", "doc": {"n": 2}}'],
            "line 2: collection 'cli_ids' holds documents under ids, so a keyed line (with "
            'a "$key") cannot be imported into it',
        ),
        (
            "cli_kv",
            ['{"$key": "new", "doc": 1}', '{"id": 3, "doc": {"n": 2}}'],
            "line 2: collection 'cli_kv' is keyed (an obj.Store), so each document line "
            'needs a "$key"',
        ),
        (
            "cli_kv",
            ['{"n": 2}'],
            "line 1: collection 'cli_kv' is keyed (an obj.Store)",
        ),
        (
            "fresh",
            ['{"$key": "k", "doc": 1}', '{"n": 2}'],
            "line 2: collection 'fresh' is keyed (an obj.Store)",
        ),
        (
            "fresh",
            ['{"n": 2}', '{"$key": "k", "doc": 1}'],
            "line 2: collection 'fresh' holds documents under ids",
        ),
        ("fresh", ['{"$key": 5, "doc": 1}'], 'line 1: "$key" must be a string or {"$bytes"'),
        ("fresh", ['{"$key": {"a": 1}, "doc": 1}'], 'line 1: "$key" must be a string or'),
        ("fresh", ['{"$key": "\\ud800", "doc": 1}'], 'line 1: "$key" "\\ud800" is not valid'),
        ("fresh", ['{"$key": "k", "id": 1, "doc": 1}'], 'line 1: a line has an "id"'),
        ("fresh", ['{"$key": "", "doc": 1}'], "line 1: key must be 1 to 1024 bytes long"),
        (
            "fresh",
            ['{"$key": "' + "x" * 1025 + '", "doc": 1}'],
            "line 1: key must be 1 to 1024 bytes long",
        ),
        (
            "fresh",
            ['{"$key": "k", "$kind": "raw", "doc": {"a": 1}}'],
            'line 1: "$kind": "raw" needs a {"$bytes": ...} document',
        ),
        (
            "fresh",
            ['{"$key": "k", "$kind": "typed", "doc": {}}'],
            'line 1: "$kind" must be "raw" or "value", got "typed"',
        ),
        (
            "fresh",
            ['{"$key": "k", "$kind": "value", "$version": 1, "doc": {}}'],
            'line 1: a typed document ("$version") takes no "$kind"',
        ),
        (
            "fresh",
            ['{"id": 1, "$kind": "value", "doc": {}}'],
            'line 1: "$kind" is for lines of a keyed collection',
        ),
        (
            "fresh",
            ['{"$key": "k", "$version": 1, "doc": {"name": "n"}}'],
            "line 1: no schema for 'fresh' version 1",
        ),
        (
            "cli_kv_people",
            ['{"$key": "k", "doc": {"name": "n", "age": 1}}'],
            "line 1: collection 'cli_kv_people' holds typed documents",
        ),
        (
            "cli_kv_people",
            [
                '{"$key": "k", "$version": 1, "doc": {"name": "n", "age": "1", "photo": '
                '{"$bytes": ""}}}'
            ],
            "line 1: invalid argument: field age: expected int, got str",
        ),
        (
            "cli_kv",
            ['{"$key": "k", "doc": {"n": 100000000000000000000}}'],
            'line 1: value["n"]: int 100000000000000000000 is outside the 64-bit range',
        ),
    ],
)
def test_import_refuses_keyed_lines_that_do_not_fit(
    keyed: pathlib.Path,
    tmp_path: pathlib.Path,
    collection: str,
    lines: list[str],
    message: str,
) -> None:
    names = (*KEYED_NAMES, "cli_ids", "fresh")
    before = {name: records(keyed, name) for name in names}
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    done = cli("import", str(keyed), collection, "--jsonl", str(source))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"obj import: error: {message}"), done.stderr
    # One transaction: nothing of the lines before the refused one was written.
    assert {name: records(keyed, name) for name in names} == before
    with obj.Db(keyed, read_only=True) as db:
        assert "fresh" not in db.collections()


def test_a_table_with_sets_vectors_and_expiring_items_exports_and_imports(
    tmp_path: pathlib.Path,
) -> None:
    src = tmp_path / "table.obj"
    with obj.Db(src) as db:
        t = db.table("items")
        t.put("org", {"tags": {"b", "a"}, "ids": {3, 1.5}, "emb": obj.Vector([0.1, -2.0])}, sk=1)
        t.put("org", {"raw": {b"\x00", b"x"}, "none": set()}, sk=2)
    out = tmp_path / "items.jsonl"
    done = cli("export", str(src), "items", "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["doc"]["tags"] == {"$set": ["a", "b"]}
    assert lines[0]["doc"]["emb"] == {"$vector": base64_of(obj.Vector([0.1, -2.0]).tobytes())}
    copy = tmp_path / "copy.obj"
    done = cli("import", str(copy), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    with obj.Db(copy) as db:
        t = db.table("items")
        first = t.get("org", sk=1)
        assert first == {"tags": {"a", "b"}, "ids": {1.5, 3}, "emb": [0.1, -2.0]}
        assert first is not None and isinstance(first["emb"], obj.Vector)
        assert t.get("org", sk=2) == {"raw": {b"\x00", b"x"}, "none": set()}
    assert from_json({"$set": [1, 2]}) == {1, 2}
    with pytest.raises(ValueError, match="members"):
        from_json({"$set": [[1]]})
    assert to_json({"$set": 1}) == {"$dict": {"$set": 1}}
