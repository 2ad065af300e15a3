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
