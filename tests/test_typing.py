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


GOOD_TYPED = """
from __future__ import annotations

import dataclasses
import pathlib
from typing import Annotated, Any, Optional

import obj


@obj.document(
    collection="orders",
    version=1,
    indexes=[obj.Composite(("region", "status"), name="by_region_status")],
)
@dataclasses.dataclass
class Order:
    email: Annotated[str, obj.Unique]
    region: Annotated[str, obj.Index]
    tags: Annotated[list[str], obj.Each] = dataclasses.field(default_factory=list)
    status: str = "new"
    total: float = 0.0


def typed(path: pathlib.Path) -> list[tuple[int, Order]]:
    with obj.Db(path) as db:
        oid: int = db.insert(Order(email="a", region="us"))
        got: Optional[Order] = db.get(Order, oid)
        if got is not None:
            total: float = got.total
        changed: Order = db.update(Order, oid, lambda o: setattr(o, "status", "x"))
        renewed: Order = db.update(Order, oid, lambda o: dataclasses.replace(o, total=2.0))
        replaced: bool = db.upsert(Order, oid, Order(email="b", region="eu"))
        gone: bool = db.delete(Order, 99)
        n: int = db.count(Order)
        for doc_id, order in db.all(Order):
            status: str = order.status
        unique: Optional[Order] = db.find_unique(Order, "email", "a")
        in_us: list[tuple[int, Order]] = list(db.index_range(Order, "region", "us", "us"))
        prefix = list(db.index_range(Order, "by_region_status", ("us",), ("us",)))
        query: obj.Query[Order] = (
            db.query(Order)
            .filter(obj.field("total") > 1)
            .filter((obj.field("region") == "us") | ~obj.field("tags").contains("vip"))
            .filter(lambda o: o.total < 5)
            .sort_by("total", reverse=True)
            .limit(3)
            .offset(1)
        )
        rows: list[tuple[int, Order]] = query.fetch()
        first: Optional[tuple[int, Order]] = query.first()
        ids: list[int] = query.ids()
        count: int = query.count()
        plan: str = query.explain()
        for doc_id, order in query:
            email: str = order.email
        top = db.query(Order).sort_by(lambda o: o.total).sort_buffer_limit(10).fetch()
        event: int = db.insert("events", {"event": "click", "user": 42})
        as_dict: Any = db.get("events", event)
        payload: Optional[bytes] = db.get_raw("events", event)
        dicts: obj.Query[dict[str, Any]] = db.query("events")
        cap: int = obj.MAX_SORT_BUFFER
        with db.transaction() as tx:
            tx.insert(Order(email="c", region="ap"))
            tx.insert("raw", b"bytes")
            orders: obj.Collection[Order] = tx.collection(Order)
            new_id: int = orders.insert(Order(email="d", region="ap"))
            mine: Optional[Order] = orders.get(new_id)
            all_mine: list[tuple[int, Order]] = list(orders.all())
            size: int = orders.count_all()
            tx.update(Order, new_id, lambda o: None)
            seen: Optional[Order] = tx.find_unique(Order, "email", "d")
            own: list[tuple[int, Order]] = tx.query(Order).fetch()
        with db.read_transaction() as snap:
            one: Optional[Order] = snap.get(Order, 1)
            how_many: int = snap.count(Order)
            listed: list[tuple[int, Order]] = list(snap.all(Order))
            queried: list[tuple[int, Order]] = snap.query(Order).fetch()
        stat: obj.Stat = db.stat()
        for cs in stat.collections:
            for idx in cs.indexes:
                paths: list[str] = idx.key_paths
        info: list[obj.IndexInfo] = db.index_info(Order)
        return rows
"""

BAD_TYPED = """
import dataclasses
import obj

@obj.document(collection="orders", version=1)
@dataclasses.dataclass
class Order:
    total: float

with obj.Db("x.obj") as db:
    db.get(Order, "1")
    wrong: str = db.get(Order, 1)
    db.query(Order).filter(42)
    db.insert("events", 5)
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


def test_typed_api_passes_mypy_strict(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, GOOD_TYPED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_typed_misuse_is_flagged(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, BAD_TYPED)
    assert result.returncode == 1, result.stdout + result.stderr
    for line in [11, 12, 13, 14]:
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
