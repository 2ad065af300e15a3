"""Engine options and maintenance: sync modes, cache size, in-memory databases, hot backup,
compaction, compression and encryption."""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest

import obj

FEATURE_BITS_OFFSET = 16  # required feature bits in the header (docs/format.md)


@obj.document(collection="opt_orders", version=1)
@dataclass
class Order:
    email: Annotated[str, obj.Unique]
    region: Annotated[str, obj.Index]
    total: float = 0.0


@pytest.fixture(params=["file", "memory"])
def any_db(request: Any, tmp_path: Path) -> Iterator[obj.Db]:
    """The same tests on a file and in memory."""
    db = obj.Db(tmp_path / "p.obj") if request.param == "file" else obj.Db(":memory:")
    with db:
        yield db


def test_memory_and_file_databases_behave_alike(any_db: obj.Db) -> None:
    db = any_db
    ids = [db.insert(Order(email=f"{i}@x", region=["us", "eu"][i % 2], total=i)) for i in range(50)]
    assert db.get(Order, ids[4]) == Order(email="4@x", region="us", total=4.0)
    assert db.count(Order) == 50
    assert db.find_unique(Order, "email", "7@x") == Order(email="7@x", region="eu", total=7.0)
    assert len(list(db.index_range(Order, "region", "eu", "eu"))) == 25
    with pytest.raises(obj.InvalidArgumentError):
        db.insert(Order(email="3@x", region="us"))
    with db.transaction() as tx:
        tx.insert("events", {"kind": "click"})
        tx.insert("blobs", b"raw")
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.insert("events", {"kind": "lost"})
        raise RuntimeError("rolled back")
    assert db.count("events") == 1
    assert db.get("blobs", 1) == b"raw"
    rows = db.query(Order).filter(obj.field("total") >= 45).fetch()
    assert [o.total for _, o in rows] == [45.0, 46.0, 47.0, 48.0, 49.0]
    with db.read_transaction() as snap:
        db.delete(Order, ids[0])
        assert snap.count(Order) == 50
    assert db.count(Order) == 49
    db.checkpoint()
    db.integrity_check()


def test_memory_database_touches_no_disk(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    with obj.Db.memory() as db:
        db.insert("c", {"a": 1})
        assert db.get("c", 1) == {"a": 1}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("sync", "durability"), [("full", "immediate"), ("normal", "eventual"), ("off", "none")]
)
def test_sync_modes(tmp_path: Path, sync: Any, durability: Any) -> None:
    with obj.Db(tmp_path / f"{sync}.obj", sync=sync) as db:
        for i in range(20):
            db.insert("c", {"i": i})
    with obj.Db(tmp_path / f"{sync}.obj", durability=durability, sync=sync) as db:
        assert db.count("c") == 20
    with pytest.raises(obj.InvalidArgumentError, match="sync"):
        obj.Db(tmp_path / "x.obj", sync="sometimes")  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError, match="disagree"):
        obj.Db(tmp_path / "x.obj", sync="full", durability="none")


def test_cache_size_is_an_option(tmp_path: Path) -> None:
    with obj.Db(tmp_path / "c.obj", cache_size=1 << 20) as db:
        for i in range(3000):
            db.insert("c", {"i": i, "pad": "x" * 200})
        db.checkpoint()
        assert [db.get("c", i)["i"] for i in (1, 1500, 3000)] == [0, 1499, 2999]
    with pytest.raises(obj.InvalidArgumentError):
        obj.Db(tmp_path / "d.obj", cache_size=-1)


def test_backup_is_consistent_while_a_writer_runs(tmp_path: Path) -> None:
    with obj.Db(tmp_path / "live.obj", sync="off") as db:
        with db.transaction() as tx:
            for _ in range(40):
                tx.insert("acct", {"v": 100})
        stop = threading.Event()

        def writer() -> None:
            n = 0
            while not stop.is_set():
                with db.transaction() as tx:
                    a, b = 1 + n % 40, 1 + (n * 7 + 3) % 40
                    da, dbb = tx.get("acct", a), tx.get("acct", b)
                    if a != b and da["v"] > 0:
                        tx.upsert("acct", a, {"v": da["v"] - 1})
                        tx.upsert("acct", b, {"v": dbb["v"] + 1})
                n += 1

        t = threading.Thread(target=writer)
        t.start()
        try:
            for i in range(5):
                dest = tmp_path / f"copy{i}.obj"
                size = db.backup(dest)
                assert size == dest.stat().st_size
                with obj.Db(dest, read_only=True) as copy:
                    copy.integrity_check()
                    assert sum(d["v"] for _, d in copy.all("acct")) == 4000
            with pytest.raises(obj.InvalidArgumentError, match="overwrite"):
                db.backup(tmp_path / "copy0.obj")
            db.backup(tmp_path / "copy0.obj", overwrite=True)
        finally:
            stop.set()
            t.join()


def test_compaction_returns_space(tmp_path: Path) -> None:
    path = tmp_path / "big.obj"
    with obj.Db(path, sync="off") as db:
        with db.transaction() as tx:
            for i in range(20000):
                tx.insert(Order(email=f"{i}@x", region="us", total=float(i)))
        db.checkpoint()
        full = path.stat().st_size
        with db.transaction() as tx:
            for oid in range(1, 20001):
                if oid % 20:
                    tx.delete(Order, oid)
        db.checkpoint()
        assert path.stat().st_size == full
        info = db.compact()
        assert info.truncated and info.pages_after < info.pages_before // 5
        small = path.stat().st_size
        assert small < full // 5, (full, small)
        assert db.count(Order) == 1000
        assert db.find_unique(Order, "email", "39@x") is not None
        db.integrity_check()
    with obj.Db(path) as db:
        assert db.count(Order) == 1000


def test_compression_shrinks_the_file_and_is_recorded(tmp_path: Path) -> None:
    sizes = {}
    for compression in (None, "lz4"):
        path = tmp_path / f"{compression}.obj"
        with obj.Db(path, compression=compression) as db, db.transaction() as tx:
            for i in range(300):
                tx.insert("logs", {"line": "GET /index.html 200 " * 40, "i": i})
        sizes[compression] = path.stat().st_size
        with obj.Db(path) as db:  # reopened without the option: read back transparently
            assert db.get("logs", 7) == {"line": "GET /index.html 200 " * 40, "i": 6}
            db.integrity_check()
    assert sizes["lz4"] * 3 < sizes[None]
    header = (tmp_path / "lz4.obj").read_bytes()[:64]
    bits = int.from_bytes(header[FEATURE_BITS_OFFSET : FEATURE_BITS_OFFSET + 8], "little")
    assert bits & 1, "the header marks the file as needing lz4"
    with pytest.raises(obj.InvalidArgumentError):
        obj.Db(tmp_path / "z.obj", compression="zstd")  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [b"k" * 32, "correct horse battery"])
def test_encryption_needs_the_right_key(tmp_path: Path, key: bytes | str) -> None:
    path = tmp_path / "secret.obj"
    with obj.Db(path, encryption_key=key) as db:
        db.insert(Order(email="spy@x", region="top-secret-region"))
        db.checkpoint()
        db.insert(Order(email="spy2@x", region="top-secret-region"))  # stays in the WAL
        assert "horse" not in repr(db) and "kkkk" not in repr(db)
        db.close_without_checkpoint()
    for f in (path, Path(str(path) + "-wal")):
        assert b"top-secret-region" not in f.read_bytes()
    with pytest.raises(obj.EncryptionError):
        obj.Db(path)
    wrong: bytes | str = b"x" * 32 if isinstance(key, bytes) else "wrong horse"
    with pytest.raises(obj.EncryptionError):
        obj.Db(path, encryption_key=wrong)
    with obj.Db(path, encryption_key=key) as db:
        assert db.count(Order) == 2
        db.integrity_check()
    # Tampering is an error, never garbage.
    data = bytearray(path.read_bytes())
    data[4096 * 2 + 50] ^= 0x08
    path.write_bytes(bytes(data))
    with (
        pytest.raises((obj.CorruptionError, obj.IntegrityError)),
        obj.Db(path, encryption_key=key) as db,
    ):
        list(db.all(Order))
        db.integrity_check()


def test_a_key_for_a_plain_file_and_bad_keys_are_refused(tmp_path: Path) -> None:
    with obj.Db(tmp_path / "plain.obj") as db:
        db.insert("c", b"x")
    with pytest.raises(obj.EncryptionError):
        obj.Db(tmp_path / "plain.obj", encryption_key=b"k" * 32)
    with pytest.raises(obj.InvalidArgumentError, match="32 bytes"):
        obj.Db(tmp_path / "new.obj", encryption_key=b"short")
    with pytest.raises(obj.InvalidArgumentError):
        obj.Db(tmp_path / "new.obj", encryption_key=123)  # type: ignore[arg-type]


# -- defaults and checks: the engine's, in one place -------------------------------------------

ENGINE_DEFAULTS = {
    "read_only": False,
    "busy_timeout": 5.0,
    "durability": "immediate",
    "page_size": 4096,
    "cache_size": 256 << 20,
    "checkpoint_frames": 1000,
    "locking": "shared",
}


def test_option_defaults_are_the_engine_s() -> None:
    # The signature shows the engine's Options::default(), handed over by the binding;
    # nothing restates them.
    assert obj._obj._defaults() == ENGINE_DEFAULTS
    for method in (obj.Db.__new__, obj.Db.__init__):
        params = inspect.signature(method).parameters
        for name, value in ENGINE_DEFAULTS.items():
            assert params[name].default == value, name


def test_options_are_checked_by_the_binding_itself(tmp_path: Path) -> None:
    # One check, in the binding: the native class refuses a bad option with the same
    # InvalidArgumentError as obj.Db (before, it raised TypeError or took the value).
    given: dict[str, Any] = {
        **ENGINE_DEFAULTS,
        "sync": None,
        "compression": None,
        "encryption_key": None,
    }
    bad = {
        "read_only": 1,
        "busy_timeout": float("nan"),
        "durability": "sometimes",
        "page_size": "4096",
        "checkpoint_frames": 0,
        "sync": "always",
        "compression": "zstd",
        "locking": "exclusively",
    }
    for option, value in bad.items():
        with pytest.raises(obj.InvalidArgumentError, match=option):
            obj._obj.Db(str(tmp_path / "n.obj"), **{**given, option: value})
        with pytest.raises(obj.InvalidArgumentError, match=option):
            obj.Db(tmp_path / "p.obj", **{option: value})
    assert not (tmp_path / "n.obj").exists()
