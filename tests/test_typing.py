"""The package is typed: user code passes `mypy --strict`, misuse is flagged, and the
stubs of the native module match what it really exposes."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mypy")

GOOD = """
from __future__ import annotations

import pathlib
from typing import Optional

import obj


def load(path: pathlib.Path) -> list[tuple[int, bytes]]:
    with obj.Db(path, busy_timeout=1.5, durability="eventual") as db:
        with db.transaction() as tx:
            first: int = tx.insert("orders", b"one")
            tx.insert("orders", bytearray(b"two"))
            tx.insert("orders", memoryview(b"three"))
            replaced: bool = tx.upsert("orders", first, b"uno")
            removed: bool = tx.delete("orders", 2)
            mine: Optional[bytes] = tx.get("orders", first)
            n: int = tx.count("orders")
            active: bool = tx.active
        with db.read_transaction() as r:
            names: list[str] = r.collections()
            docs = list(r.iter_all("orders"))
            one: Optional[bytes] = r.get("orders", first)
        info: obj.CheckpointInfo = db.checkpoint()
        copied: int = info.frames_copied
        explicit: obj.WriteTransaction = db.transaction()
        explicit.rollback()
        snap: obj.ReadTransaction = db.read_transaction()
        snap.close()
        where: pathlib.Path = db.wal_path
    try:
        obj.Db(str(path), read_only=True).close()
    except obj.BusyError as e:
        message: str = str(e)
    except obj.ObjError:
        raise
    return docs
"""

BAD = """
import obj

with obj.Db("x.obj") as db:
    with db.transaction() as tx:
        tx.insert("orders", "not bytes")
        tx.get("orders", "1")
        value: bytes = tx.get("orders", 1)
    obj.Db("x.obj", durability="sometimes")
"""


def run_mypy(tmp_path: pathlib.Path, source: str) -> subprocess.CompletedProcess[str]:
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(sample)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )


def test_user_code_passes_mypy_strict(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr


def test_misuse_is_flagged(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, BAD)
    assert result.returncode == 1, result.stdout + result.stderr
    for line in [6, 7, 8, 9]:
        assert f"sample.py:{line}: error" in result.stdout, result.stdout


def test_stubs_match_the_native_module(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "obj._obj"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_is_marked_typed() -> None:
    import obj

    assert (pathlib.Path(obj.__file__).parent / "py.typed").exists()
    assert (pathlib.Path(obj.__file__).parent / "_obj.pyi").exists()
