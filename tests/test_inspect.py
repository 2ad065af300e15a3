"""Inspection and attached databases: ``Db.dump_raw``, ``Db.stat`` and
``Db.attach``/``Db.detach``."""

from __future__ import annotations

import dataclasses
import pathlib
import textwrap
from typing import Annotated

import pytest

import obj

from .conftest import RunPython


@obj.document(collection="inspect_items", version=1)
@dataclasses.dataclass
class Item:
    sku: Annotated[str, obj.Unique]
    price: float
    tags: Annotated[list[str], obj.Each] = dataclasses.field(default_factory=list)


@obj.document(collection="archive.inspect_items", version=1)
@dataclasses.dataclass
class ArchivedItem:
    sku: Annotated[str, obj.Unique]
    price: float
    tags: Annotated[list[str], obj.Each] = dataclasses.field(default_factory=list)


# -- dump_raw -------------------------------------------------------------------------------


def test_dump_raw_by_name_covers_every_kind(db: obj.Db) -> None:
    db.insert(Item("a-1", 2.5, ["x"]))
    db.insert("inspect_items", {"note": "dict"})
    db.insert("inspect_items", b"\x00raw")
    records = db.dump_raw("inspect_items")
    assert [r.id for r in records] == [1, 2, 3]
    typed, value, raw = records
    assert isinstance(typed, obj.RawRecord)
    assert isinstance(typed.header, obj.DocHeader)
    assert (typed.header.kind, typed.header.type_version) == ("typed", 1)
    assert (value.header.kind, value.header.type_version) == ("value", 0)
    assert (raw.header.kind, raw.payload) == ("raw", b"\x00raw")
    assert {r.header.collection_id for r in records} == {typed.header.collection_id}
    assert all(r.header.flags == 0 for r in records)
    # The payload is the stored encoding, the same bytes get_raw returns.
    for r in records:
        assert r.payload == db.get_raw("inspect_items", r.id)


def test_dump_raw_limits_and_classes(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in range(30):
            tx.insert(Item(f"s-{i}", float(i)))
    assert [r.id for r in db.dump_raw(Item, max_records=5)] == [1, 2, 3, 4, 5]
    assert len(db.dump_raw("inspect_items")) == 30
    assert db.dump_raw("inspect_items", max_records=0) == []
    assert db.dump_raw("no_such_collection") == []
    other = db.insert("other", b"x")
    ids = {r.header.collection_id for r in db.dump_raw("other")}
    assert other == 1
    assert ids != {r.header.collection_id for r in db.dump_raw(Item, 1)}


@obj.document(collection="inspect_keyed_items", version=1)
@dataclasses.dataclass
class KeyedItem:
    sku: Annotated[str, obj.Unique]
    price: float


def test_dump_raw_and_stat_of_a_keyed_collection(db: obj.Db) -> None:
    """A keyed collection dumps in key order with each record's key (id 0), and stat
    reports each collection's kind."""
    store = db.store("inspect_keyed", keys="bytes")
    store[b"b\xff"] = {"n": 1}
    store[b"a"] = b"native"
    raw = db.store("inspect_keyed_raw", values=bytes)
    raw["k"] = b"\x00raw"
    db.store("inspect_keyed_items", values=KeyedItem)["x"] = KeyedItem("x-1", 2.5)
    db.insert("inspect_ids", b"x")
    records = db.dump_raw("inspect_keyed")
    assert [(r.id, r.key, r.header.kind) for r in records] == [
        (0, b"a", "value"),
        (0, b"b\xff", "value"),
    ]
    assert db.dump_raw("inspect_keyed", max_records=1) == records[:1]
    assert [(r.key, r.header.kind, r.payload) for r in db.dump_raw("inspect_keyed_raw")] == [
        (b"k", "raw", b"\x00raw")
    ]
    (typed,) = db.dump_raw(KeyedItem)
    assert (typed.key, typed.header.kind, typed.header.type_version) == (b"x", "typed", 1)
    assert [r.key for r in db.dump_raw("inspect_ids")] == [None]
    kinds = {c.name: c.kind for c in db.stat().collections}
    assert kinds == {
        "inspect_ids": "id",
        "inspect_keyed": "keyed",
        "inspect_keyed_items": "keyed",
        "inspect_keyed_raw": "keyed",
    }
    described = db.stat().describe()
    assert "inspect_keyed: 2 documents, 4,096 bytes (keyed)" in described
    assert "inspect_ids: 1 documents, 4,096 bytes (id)" in described


def test_dump_raw_rejects_bad_arguments(db: obj.Db) -> None:
    with pytest.raises(obj.InvalidArgumentError, match="max_records"):
        db.dump_raw("x", max_records=-1)
    with pytest.raises(obj.InvalidArgumentError, match="max_records"):
        db.dump_raw("x", max_records="3")  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError):
        db.dump_raw(3)
    with pytest.raises(obj.NotFoundError, match="not attached"):
        db.dump_raw("nowhere.items")


def test_dump_raw_compressed_payload_is_expanded(path: pathlib.Path) -> None:
    big = {"text": "abc" * 500}
    with obj.Db(path, compression="lz4") as db:
        db.insert("big", big)
        (record,) = db.dump_raw("big")
        assert record.header.flags & 1
        assert record.header.kind == "value"
        assert record.payload == db.get_raw("big", 1)


# -- stat -----------------------------------------------------------------------------------


def test_stat_fields_and_repr(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in range(10):
            tx.insert(Item(f"s-{i}", float(i), ["t"]))
        tx.insert("plain", b"x")
    stat = db.stat()
    assert stat.page_size == 4096
    assert stat.page_count >= 1
    assert stat.free_pages >= 0
    assert stat.wal_frames >= 1
    items = stat.collection("inspect_items")
    assert items is not None
    assert (items.name, items.doc_count) == ("inspect_items", 10)
    assert items.file_size_bytes >= 4096
    by_name = {i.name: i for i in items.indexes}
    assert set(by_name) == {"sku", "tags"}
    assert (by_name["sku"].kind, by_name["sku"].key_paths, by_name["sku"].status) == (
        "unique",
        ["sku"],
        "ready",
    )
    assert by_name["tags"].kind == "each"
    text = repr(stat)
    assert text.startswith("<obj.Stat page_size=4096")
    assert "'inspect_items': 10" in text and "'plain': 1" in text
    described = stat.describe()
    assert "inspect_items: 10 documents" in described
    assert "index sku (unique on sku): ready" in described
    db.checkpoint()
    assert db.stat().wal_frames == 0


# -- attach / detach ------------------------------------------------------------------------


@pytest.fixture
def archive(tmp_path: pathlib.Path) -> pathlib.Path:
    where = tmp_path / "archive.obj"
    with obj.Db(where) as db:
        db.insert(Item("old-1", 1.0, ["red"]))
        db.insert(Item("old-2", 2.0, ["blue", "red"]))
        db.insert("notes", {"text": "kept"})
        db.insert("blobs", b"\x01\x02")
    return where


def test_attach_reads_by_name(db: obj.Db, archive: pathlib.Path) -> None:
    db.insert("notes", {"text": "local"})
    db.attach(archive, "archive")
    assert db.attached == {"archive": archive}
    assert db.get("archive.notes", 1) == {"text": "kept"}
    assert db.get("notes", 1) == {"text": "local"}
    assert db.get("archive.inspect_items", 1) == {"sku": "old-1", "price": 1.0, "tags": ["red"]}
    assert db.count("archive.inspect_items") == 2
    assert db.count("archive.missing") == 0
    assert db.get_raw("archive.blobs", 1) == b"\x01\x02"
    assert [i for i, _ in db.all("archive.inspect_items")] == [1, 2]
    assert db.find_unique("archive.inspect_items", "sku", "old-2") == {
        "sku": "old-2",
        "price": 2.0,
        "tags": ["blue", "red"],
    }
    assert [i for i, _ in db.index_range("archive.inspect_items", "tags", "red", "red")] == [1, 2]
    found = db.query("archive.inspect_items").filter(obj.field("price") > 1.5).fetch()
    assert [i for i, _ in found] == [2]
    assert [r.header.kind for r in db.dump_raw("archive.inspect_items")] == ["typed", "typed"]
    assert [i.name for i in db.index_info("archive.inspect_items")] == ["sku", "tags"]
    # The attached collections stay out of this database.
    assert "archive.notes" not in db.collections()


def test_attach_typed_class(db: obj.Db, archive: pathlib.Path) -> None:
    db.attach(archive, "archive")
    item = db.get(ArchivedItem, 2)
    assert item == ArchivedItem("old-2", 2.0, ["blue", "red"])
    assert type(item) is ArchivedItem
    assert db.count(ArchivedItem) == 2
    assert db.find_unique(ArchivedItem, "sku", "old-1") == ArchivedItem("old-1", 1.0, ["red"])
    assert [d.sku for _, d in db.all(ArchivedItem)] == ["old-1", "old-2"]
    assert [d.sku for _, d in db.query(ArchivedItem).filter(obj.field("price") < 2).fetch()] == [
        "old-1"
    ]
    assert [d.sku for _, d in db.index_range(ArchivedItem, "tags", "blue", "blue")] == ["old-2"]


def test_attach_typed_class_checks_the_attached_schema(db: obj.Db, tmp_path: pathlib.Path) -> None:
    other = tmp_path / "other.obj"

    @obj.document(collection="inspect_shape", version=1)
    @dataclasses.dataclass
    class Shape:
        n: int

    @obj.document(collection="ns.inspect_shape", version=1)
    @dataclasses.dataclass
    class WrongShape:
        n: str

    with obj.Db(other) as o:
        o.insert(Shape(3))
    db.attach(other, "ns")
    with pytest.raises(obj.InvalidArgumentError):
        db.get(WrongShape, 1)


def test_attached_namespaces_are_read_only(db: obj.Db, archive: pathlib.Path) -> None:
    db.attach(archive, "archive")
    writes = [
        lambda: db.insert("archive.notes", {"x": 1}),
        lambda: db.insert(ArchivedItem("n", 1.0)),
        lambda: db.upsert("archive.notes", 1, {"x": 1}),
        lambda: db.upsert(ArchivedItem, 1, ArchivedItem("n", 1.0)),
        lambda: db.delete("archive.notes", 1),
        lambda: db.delete(ArchivedItem, 1),
        lambda: db.update("archive.notes", 1, lambda d: None),
        lambda: db.update(ArchivedItem, 1, lambda d: None),
    ]
    for write in writes:
        with pytest.raises(obj.InvalidArgumentError, match="read-only"):
            write()
    with db.transaction() as tx, pytest.raises(obj.InvalidArgumentError, match="read-only"):
        tx.insert("archive.notes", {"x": 1})
    with obj.Db(archive, read_only=True) as check:
        assert check.count("notes") == 1
        assert check.count("inspect_items") == 2


def test_attach_errors(db: obj.Db, archive: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with pytest.raises(obj.NotFoundError):
        db.attach(tmp_path / "missing.obj", "m")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a database at all" * 500)
    with pytest.raises(obj.CorruptionError):
        db.attach(junk, "junk")
    for bad in ["", "a.b"]:
        with pytest.raises(obj.InvalidArgumentError):
            db.attach(archive, bad)
    db.attach(archive, "archive")
    with pytest.raises(obj.InvalidArgumentError, match="already attached"):
        db.attach(archive, "archive")
    with pytest.raises(obj.NotFoundError):
        db.detach("nope")
    with pytest.raises(obj.NotFoundError, match="not attached"):
        db.get("nope.notes", 1)
    db.detach("archive")
    assert db.attached == {}
    with pytest.raises(obj.NotFoundError, match="not attached"):
        db.get("archive.notes", 1)
    with pytest.raises(obj.NotFoundError, match="not attached"):
        db.get(ArchivedItem, 1)
    with pytest.raises(obj.NotFoundError):
        db.detach("archive")


def test_several_attachments_and_close(
    db: obj.Db, archive: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    second = tmp_path / "second.obj"
    with obj.Db(second) as s:
        s.insert("notes", {"text": "second"})
    db.attach(archive, "archive")
    db.attach(second, "second")
    db.attach(archive, "again")
    assert db.get("archive.notes", 1) == {"text": "kept"}
    assert db.get("second.notes", 1) == {"text": "second"}
    assert db.get("again.notes", 1) == {"text": "kept"}
    db.detach("second")
    assert db.get("archive.notes", 1) == {"text": "kept"}
    assert isinstance(db, obj.Db)
    db.close()
    assert db.attached == {}


def test_attach_a_file_written_by_another_process(
    db: obj.Db, tmp_path: pathlib.Path, run_python: RunPython
) -> None:
    other = tmp_path / "written.obj"
    code = textwrap.dedent(
        """
        import dataclasses, sys
        from typing import List
        import obj

        @obj.document(collection="inspect_items", version=1)
        @dataclasses.dataclass
        class Item:
            sku: str
            price: float
            tags: List[str]

        with obj.Db(sys.argv[1]) as db:
            db.insert(Item("child-1", 9.5, ["green"]))
            with db.transaction() as tx:
                for i in range(50):
                    tx.insert("events", {"n": i})
            db.insert("blobs", b"from the child")
        print("ok")
        """
    )
    done = run_python(code, str(other))
    assert done.returncode == 0, done.stderr
    db.attach(other, "archive")
    assert db.count("archive.events") == 50
    assert db.get("archive.events", 50) == {"n": 49}
    assert db.get_raw("archive.blobs", 1) == b"from the child"
    assert sum(1 for _ in db.all("archive.events")) == 50
    assert db.get(ArchivedItem, 1) == ArchivedItem("child-1", 9.5, ["green"])


def test_integrity_check_reports_damage_written_by_the_test(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "damaged.obj"
    with obj.Db(path) as fresh:
        with fresh.transaction() as tx:
            for i in range(2000):
                tx.insert("events", {"n": i, "pad": "x" * 50})
        report = fresh.integrity_check()
        assert report.page_count > 10
    data = bytearray(path.read_bytes())
    page = len(data) // 4096 - 2  # a page near the end: a tree page in use
    data[page * 4096 + 200] ^= 0xFF
    path.write_bytes(bytes(data))
    with obj.Db(path) as db, pytest.raises(obj.IntegrityError) as err:
        db.integrity_check()
    assert f"page {page}" in str(err.value)


def _attached_handle(db: obj.Db, namespace: str) -> obj.Db:
    handle = dict(db._attachments())[namespace]
    assert isinstance(handle, obj.Db)
    return handle


@pytest.mark.parametrize("kind", ["read", "write"])
def test_transactions_read_attached_namespaces(
    db: obj.Db, archive: pathlib.Path, kind: str
) -> None:
    # Reads of an attached namespace resolve in the one read path, so a transaction reads
    # them exactly as the Db does (before, transactions refused every dotted name).
    db.insert("notes", {"text": "local"})
    db.attach(archive, "archive")
    begin = db.read_transaction if kind == "read" else db.transaction
    with begin() as tx:
        assert tx.get("archive.notes", 1) == {"text": "kept"}
        assert tx.get("notes", 1) == {"text": "local"}
        assert tx.get_raw("archive.blobs", 1) == b"\x01\x02"
        assert tx.count("archive.inspect_items") == 2
        assert tx.count("archive.missing") == 0
        assert [i for i, _ in tx.all("archive.inspect_items")] == [1, 2]
        assert [i for i, _ in tx.iter_all("archive.notes")] == [1]
        assert tx.find_unique("archive.inspect_items", "sku", "old-2")["price"] == 2.0
        ranged = tx.index_range("archive.inspect_items", "tags", "red", "red")
        assert [i for i, _ in ranged] == [1, 2]
        found = tx.query("archive.inspect_items").filter(obj.field("price") > 1.5).fetch()
        assert [i for i, _ in found] == [2]
        assert [i.name for i in tx.index_info("archive.inspect_items")] == ["sku", "tags"]
        # Typed, through a class declared for the namespace.
        item = tx.get(ArchivedItem, 2)
        assert item == ArchivedItem("old-2", 2.0, ["blue", "red"])
        assert type(item) is ArchivedItem
        assert tx.count(ArchivedItem) == 2
        assert tx.find_unique(ArchivedItem, "sku", "old-1") == ArchivedItem("old-1", 1.0, ["red"])
        assert [d.sku for _, d in tx.all(ArchivedItem)] == ["old-1", "old-2"]
        cheap = tx.query(ArchivedItem).filter(obj.field("price") < 2).fetch()
        assert [d.sku for _, d in cheap] == ["old-1"]
        assert [d.sku for _, d in tx.index_range(ArchivedItem, "tags", "blue", "blue")] == ["old-2"]
        # The attached collections stay out of this database.
        assert "archive.notes" not in tx.collections()
        with pytest.raises(obj.NotFoundError, match="not attached"):
            tx.get("elsewhere.notes", 1)


def test_a_write_transaction_still_refuses_writes_to_an_attached_namespace(
    db: obj.Db, archive: pathlib.Path
) -> None:
    db.attach(archive, "archive")
    with db.transaction() as tx:
        writes = [
            lambda: tx.insert("archive.notes", {"x": 1}),
            lambda: tx.insert(ArchivedItem("n", 1.0)),
            lambda: tx.upsert("archive.notes", 1, {"x": 1}),
            lambda: tx.delete(ArchivedItem, 1),
            lambda: tx.update("archive.notes", 1, lambda d: None),
        ]
        for write in writes:
            with pytest.raises(obj.InvalidArgumentError, match="read-only"):
                write()
        tx.insert("notes", {"text": "here"})
    assert db.count("notes") == 1
    assert db.count("archive.notes") == 1


@pytest.mark.parametrize("kind", ["read", "write"])
def test_a_transaction_pins_the_attached_file_until_it_ends(
    db: obj.Db, archive: pathlib.Path, kind: str
) -> None:
    # The files commit independently: a transaction reads an attached one on the snapshot
    # it took at its first read there, held until the transaction ends, and not after.
    db.attach(archive, "archive")
    handle = _attached_handle(db, "archive")
    assert handle.stat().readers == 0
    tx = db.read_transaction() if kind == "read" else db.transaction()
    with tx:
        assert handle.stat().readers == 0  # nothing pinned before the first read there
        assert tx.count("archive.notes") == 1
        assert handle.stat().readers == 1
        it = tx.all("archive.inspect_items")
        assert next(it)[0] == 1
        assert tx.get("archive.notes", 1) == {"text": "kept"}
        assert handle.stat().readers == 1  # one snapshot for all its reads of that file
    assert handle.stat().readers == 0
    with pytest.raises(obj.ObjError, match="has ended"):
        next(it)
    with pytest.raises(obj.ObjError, match="has ended"):
        tx.get("archive.notes", 1)
    assert db.get("archive.notes", 1) == {"text": "kept"}


def test_a_transaction_sees_a_namespace_detached_meanwhile_as_not_attached(
    db: obj.Db, archive: pathlib.Path
) -> None:
    db.attach(archive, "archive")
    with db.read_transaction() as r:
        assert r.count("archive.notes") == 1
        db.detach("archive")
        with pytest.raises(obj.NotFoundError, match="not attached"):
            r.count("archive.notes")
