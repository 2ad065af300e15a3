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


GOOD_ASYNC = """
from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Optional

import obj
from obj.aio import AsyncCollection, AsyncReadTransaction


@obj.document(collection="orders", version=1)
@dataclasses.dataclass
class Order:
    email: Annotated[str, obj.Unique]
    region: Annotated[str, obj.Index]
    total: float = 0.0


async def typed(path: pathlib.Path) -> list[tuple[int, Order]]:
    async with await obj.AsyncDb.open(path, workers=2, busy_timeout=1.5, sync="normal") as adb:
        oid: int = await adb.insert(Order(email="a", region="us"))
        got: Optional[Order] = await adb.get(Order, oid)
        if got is not None:
            total: float = got.total
        changed: Order = await adb.update(Order, oid, lambda o: setattr(o, "total", 2.0))
        replaced: bool = await adb.upsert(Order, oid, Order(email="b", region="eu"))
        gone: bool = await adb.delete(Order, 99)
        n: int = await adb.count(Order)
        async for doc_id, order in adb.all(Order):
            region: str = order.region
        unique: Optional[Order] = await adb.find_unique(Order, "email", "a")
        ranged: AsyncIterator[tuple[int, Order]] = adb.index_range(Order, "region", "us")
        query: obj.AsyncQuery[Order] = (
            adb.query(Order).filter(obj.field("total") > 1).filter(lambda o: o.total < 5)
            .sort_by("total", reverse=True).limit(3).offset(1).sort_buffer_limit(10)
        )
        rows: list[tuple[int, Order]] = await query.fetch()
        first: Optional[tuple[int, Order]] = await query.first()
        ids: list[int] = await query.ids()
        count: int = await query.count()
        plan: str = await query.explain()
        async for doc_id, order in query:
            email: str = order.email
        event: int = await adb.insert("events", {"kind": "click"})
        raw: int = await adb.insert("raw", b"bytes")
        as_dict: Any = await adb.get("events", event)
        payload: Optional[bytes] = await adb.get_raw("events", event)
        dicts: obj.AsyncQuery[dict[str, Any]] = adb.query("events")
        names: list[str] = await adb.collections()
        info: list[obj.IndexInfo] = await adb.index_info(Order)
        stat: obj.Stat = await adb.stat()
        point: obj.CheckpointInfo = await adb.checkpoint()
        packed: obj.CompactInfo = await adb.compact()
        report: obj.IntegrityReport = await adb.integrity_check()
        size: int = await adb.backup(path.with_suffix(".bak"))
        records: list[obj.RawRecord] = await adb.dump_raw("raw")
        where: pathlib.Path = adb.wal_path
        workers: int = adb.workers
        async with adb.transaction() as tx:
            tx_id: int = await tx.insert(Order(email="c", region="ap"))
            mine: Optional[Order] = await tx.get(Order, tx_id)
            seen: Optional[Order] = await tx.find_unique(Order, "email", "c")
            own: list[tuple[int, Order]] = await tx.query(Order).fetch()
            renewed: Order = await tx.update(Order, tx_id, lambda o: None)
            orders: AsyncCollection[Order] = tx.collection(Order)
            new_id: int = await orders.insert(Order(email="d", region="ap"))
            fetched: Optional[Order] = await orders.get(new_id)
            async for doc_id, order in orders.all():
                total = order.total
            async for doc_id, order in tx.iter_all(Order):
                total = order.total
            active: bool = tx.active
            await tx.commit()
        snap: AsyncReadTransaction
        async with adb.read_transaction() as snap:
            one: Optional[Order] = await snap.get(Order, 1)
            how_many: int = await snap.count(Order)
            listed: list[tuple[int, Order]] = [row async for row in snap.all(Order)]
            queried: list[tuple[int, Order]] = await snap.query(Order).fetch()
        return rows
"""

BAD_ASYNC = """
import dataclasses
import obj

@obj.document(collection="orders", version=1)
@dataclasses.dataclass
class Order:
    total: float

async def misuse() -> None:
    adb = await obj.AsyncDb.open("x.obj")
    await adb.get(Order, "1")
    wrong: str = await adb.get(Order, 1)
    adb.query(Order).filter(42)
    await adb.insert("events", 5)
    await obj.AsyncDb.open("x.obj", durability="sometimes")
    await obj.AsyncDb.open("x.obj", workers="2")
    await obj.AsyncDb.open("x.obj", no_such_option=1)
    print((await adb.get(Order, 1)).total)
    adb.count(Order)
    for row in adb.all(Order): ...
    async with adb.transaction() as tx:
        await tx.delete(Order, "1")
        await tx.update(Order, 1, lambda o: o.nope)
    rows: list[tuple[int, str]] = await adb.query(Order).fetch()
"""

REVEAL_ASYNC = """
import dataclasses
import obj

@obj.document(collection="orders", version=1)
@dataclasses.dataclass
class Order:
    total: float

async def shown(adb: obj.AsyncDb) -> None:
    reveal_type(await adb.get(Order, 1))
    reveal_type(await adb.query(Order).first())
    reveal_type(adb.all(Order))
    reveal_type(adb.query("events"))
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


def test_async_api_passes_mypy_strict(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, GOOD_ASYNC)
    assert result.returncode == 0, result.stdout + result.stderr


def test_async_misuse_is_flagged(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, BAD_ASYNC)
    assert result.returncode == 1, result.stdout + result.stderr
    for line in [*range(12, 22), *range(23, 26)]:
        assert f"sample.py:{line}: error" in result.stdout, (line, result.stdout)


def test_async_results_have_the_document_type(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, REVEAL_ASYNC)
    revealed = [
        line.split("Revealed type is ", 1)[1].strip('"').replace("sample.", "")
        for line in result.stdout.splitlines()
        if "Revealed type is" in line
    ]
    assert revealed == [
        "Order | None",
        "tuple[int, Order] | None",
        "typing.AsyncIterator[tuple[int, Order]]",
        "obj.aio.AsyncQuery[dict[str, Any]]",
    ] or revealed == [  # older mypy spells unions and builtins this way
        "Union[Order, None]",
        "Union[tuple[builtins.int, Order], None]",
        "typing.AsyncIterator[tuple[builtins.int, Order]]",
        "obj.aio.AsyncQuery[builtins.dict[builtins.str, Any]]",
    ], result.stdout


GOOD_STORE = """
from dataclasses import dataclass
import obj

@obj.document(collection="people", version=1)
@dataclass
class Person:
    name: str

def use(db: obj.Db) -> None:
    s: obj.Store[str, object] = db.store("sessions")
    s["a"] = {"n": 1}
    n: int = len(s)
    for k in s:
        k.upper()
    people = db.store("people", values=Person)
    p = people.get("ada")
    if p is not None:
        p.name.upper()
    raw = db.store("raw", keys="bytes", values=bytes)
    for key, value in raw.items():
        key.hex() + value.hex()
    found, missing = people.get_many(["ada"])
    with obj.Store.open("x.obj") as own:
        own.put_many({"k": 1})
"""

BAD_STORE = """
import obj

def use(db: obj.Db) -> None:
    raw = db.store("raw", keys="bytes", values=bytes)
    raw[b"k"].upper_case()
    for k in db.store("s"):
        k.hex()
    db.store("s", keys="ints")
"""


def test_store_code_passes_mypy_strict(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, GOOD_STORE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_store_misuse_is_flagged(tmp_path: pathlib.Path) -> None:
    result = run_mypy(tmp_path, BAD_STORE)
    assert result.returncode == 1, result.stdout + result.stderr
    for line in [6, 8, 9]:
        assert f"sample.py:{line}: error" in result.stdout, (line, result.stdout)
