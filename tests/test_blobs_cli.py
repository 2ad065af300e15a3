"""``obj stat`` and ``obj dump`` show blob stores for what they are (#20)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import obj


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "obj", *args], capture_output=True, text=True, timeout=60
    )


def test_stat_names_blob_stores_and_dump_shows_their_headers(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "b.obj"
    with obj.Db(path) as db:
        media = db.blobs("media")
        media.put("cover", b"\x89PNG" + bytes(600_000), content_type="image/png", meta={"w": 3})
        db.store("plain")["k"] = 1
    done = run("stat", str(path))
    assert done.returncode == 0, done.stderr
    assert "media: 1 documents" in done.stdout and "(blobs)" in done.stdout
    assert "media#chunks: 3 documents" in done.stdout and "(blob chunks)" in done.stdout
    assert "plain: 1 documents, 4,096 bytes (keyed)" in done.stdout
    stat = json.loads(run("stat", str(path), "--json").stdout)
    kinds = {c["name"]: c["kind"] for c in stat["collections"]}
    assert kinds == {"media": "blobs", "media#chunks": "blob chunks", "plain": "keyed"}
    done = run("dump", str(path), "media", "--json")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    header = json.loads(line)
    assert header["$key"] == "cover"
    assert header["doc"]["size"] == 600_004
    assert header["doc"]["content_type"] == "image/png"
    assert header["doc"]["meta"] == {"w": 3}


def test_columns_export_as_jsonl_elements_and_import_back(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "c.obj"
    with obj.Db(path) as db:
        db.column("temps", "f64").extend([float(i) / 4 for i in range(25_000)])
        db.column("names", "str").extend(["ann", "bob", "ünï"])
        db.column("emb", "vec:f32:3").extend([[1.0, 2.0, 3.0], [0.5, 0.25, 0.0]])
        db.column("docs", "value").extend([{"a": [1, b"x"]}, None, 3])
    out = tmp_path / "c.jsonl"
    done = run("export", str(path), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {"collection": "temps", "$column": "f64"} in lines
    assert {"collection": "names", "$i": 2, "value": "ünï"} in lines
    copy = tmp_path / "copy.obj"
    done = run("import", str(copy), "--jsonl", str(out))
    assert done.returncode == 0, done.stderr
    with obj.Db(copy) as db:
        assert list(db.column("temps")) == [float(i) / 4 for i in range(25_000)]
        assert db.column("temps").dtype == "f64"
        assert list(db.column("names")) == ["ann", "bob", "ünï"]
        assert [list(v) for v in db.column("emb")] == [[1.0, 2.0, 3.0], [0.5, 0.25, 0.0]]
        assert list(db.column("docs")) == [{"a": [1, b"x"]}, None, 3]
    # Elements out of order, or before their column line, are refused with the line.
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"collection": "n", "$column": "i64"})
        + "\n"
        + json.dumps({"collection": "n", "$i": 1, "value": 5})
        + "\n"
    )
    done = run("import", str(tmp_path / "bad.obj"), "--jsonl", str(bad))
    assert done.returncode == 2 and "line 2" in done.stderr and "element 0" in done.stderr
    bad.write_text(
        json.dumps({"collection": "n", "$column": "i64"})
        + "\n"
        + json.dumps({"collection": "n", "$i": 0, "value": "x"})
        + "\n"
    )
    done = run("import", str(tmp_path / "bad2.obj"), "--jsonl", str(bad))
    assert done.returncode == 2 and "element 0" in done.stderr


def test_dump_shows_a_columns_elements(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.obj"
    with obj.Db(path) as db:
        db.column("n", "i64").extend(range(10))
    done = run("dump", str(path), "n", "--limit", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["0: 0", "1: 1", "2: 2"]
    done = run("dump", str(path), "n", "--json", "--limit", "2")
    assert [json.loads(x) for x in done.stdout.splitlines()] == [
        {"$i": 0, "doc": 0},
        {"$i": 1, "doc": 1},
    ]
    stat = run("stat", str(path)).stdout
    assert "(column i64)" in stat
