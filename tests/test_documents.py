"""Typed documents (``@obj.document``), dict-native documents, the overloads that choose
between them and raw bytes, persisted schemas and lazy migration."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import pathlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest

import obj
from tests.conftest import RunPython, plain

# -- document classes ------------------------------------------------------------------------


@obj.document(collection="orders", version=1)
@dataclass
class Order:
    customer_id: int
    total: float
    status: str


class Color(enum.Enum):
    RED = "red"
    GREEN = 2
    BLUE = (1, 2)


@dataclass
class Address:  # a plain nested dataclass
    city: str
    zip: Optional[str] = None


@obj.document(collection="geo_points", version=1)
@dataclass
class Point:  # a nested dataclass that is a document of its own
    x: float
    y: float


@obj.document(collection="everything", version=1)
@dataclass
class Everything:
    i: int
    f: float
    s: str
    b: bytes
    flag: bool
    nothing: None
    maybe: Optional[int]
    items: list[int]
    pair: tuple[int, str]
    mapping: dict[str, float]
    address: Address
    point: Optional[Point]
    when: datetime.datetime
    day: datetime.date
    color: Color
    ident: uuid.UUID
    anything: Any
    nested: list[dict[str, list[Address]]]


def everything(**changes: Any) -> Everything:
    base = Everything(
        i=1,
        f=1.5,
        s="text",
        b=b"\x00\xff",
        flag=True,
        nothing=None,
        maybe=None,
        items=[1, 2, 3],
        pair=(7, "seven"),
        mapping={"a": 1.0},
        address=Address("Oslo", "0150"),
        point=Point(1.0, -2.0),
        when=datetime.datetime(2024, 5, 17, 12, 30, 45, 123456),
        day=datetime.date(2024, 5, 17),
        color=Color.GREEN,
        ident=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        anything={"k": [1, "two", None, 3.5, b"4"]},
        nested=[{"home": [Address("Bergen")]}, {}],
    )
    return dataclasses.replace(base, **changes)


@obj.document(collection="defaults", version=1)
@dataclass
class WithDefaults:
    name: str
    tags: list[str] = field(default_factory=list)
    count: int = 0


@obj.document(collection="frozen_docs", version=1)
@dataclass(frozen=True)
class Frozen:
    key: str
    value: int


@obj.document(collection="slotted_docs", version=1)
@dataclass
class Slotted:
    __slots__ = ("key", "value")
    key: str
    value: float


POST_INIT_CALLS: list[str] = []


@obj.document(collection="post_init_docs", version=1)
@dataclass
class WithPostInit:
    name: str
    upper: str = field(init=False, default="")

    def __post_init__(self) -> None:
        POST_INIT_CALLS.append(self.name)
        self.upper = self.name.upper()


# -- round trips -----------------------------------------------------------------------------


def test_insert_get_update_delete(db: obj.Db) -> None:
    oid = db.insert(Order(customer_id=1, total=99.5, status="pending"))
    assert oid == 1
    assert db.get(Order, oid) == Order(1, 99.5, "pending")
    assert db.get(Order, 999) is None
    changed = db.update(Order, oid, lambda o: setattr(o, "status", "shipped"))
    assert changed == Order(1, 99.5, "shipped")
    assert db.get(Order, oid) == changed
    assert db.upsert(Order, oid, Order(2, 1.0, "new")) is True
    assert db.upsert(Order, 10, Order(3, 3.0, "new")) is False
    assert db.count(Order) == 2
    assert [i for i, _ in db.all(Order)] == [1, 10]
    assert db.delete(Order, oid) is True
    assert db.delete(Order, oid) is False
    assert db.count(Order) == 1
    assert db.insert(Order(4, 4.0, "x")) == 11  # ids are never reused


def test_every_field_type_round_trips(db: obj.Db) -> None:
    doc = everything()
    oid = db.insert(doc)
    back = db.get(Everything, oid)
    assert back == doc
    assert type(back.pair) is tuple
    assert type(back.address) is Address
    assert type(back.point) is Point
    assert back.color is Color.GREEN


@pytest.mark.parametrize(
    "changes",
    [
        {"i": -(2**63)},
        {"i": 2**63 - 1},
        {"i": 0},
        {"f": -0.0},
        {"f": math.inf},
        {"f": -math.inf},
        {"f": 5e-324},
        {"f": 1.7976931348623157e308},
        {"s": ""},
        {"s": "日本語 ✓ 🎉 \x00 é"},
        {"b": b""},
        {"items": []},
        {"mapping": {}},
        {"mapping": {"": -1.0, "ключ": 2.5}},
        {"nested": []},
        {"nested": [{}]},
        {"nested": [{"x": []}]},
        {"maybe": 0},
        {"maybe": -(2**63)},
        {"point": None},
        {"address": Address("")},
        {"anything": None},
        {"anything": []},
        {"anything": {"": {}}},
        {"anything": [1, [2, [3, [4, []]]]]},
        {"anything": -(2**63)},
        {"when": datetime.datetime(1, 1, 1)},
        {"when": datetime.datetime(9999, 12, 31, 23, 59, 59, 999999)},
        {"when": datetime.datetime(1969, 12, 31, 23, 59, 59, 999999)},
        {"when": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},
        {
            "when": datetime.datetime(
                2024, 3, 1, 8, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))
            )
        },
        {
            "when": datetime.datetime(
                1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-12))
            )
        },
        {"day": datetime.date(1, 1, 1)},
        {"day": datetime.date(9999, 12, 31)},
        {"day": datetime.date(1969, 12, 31)},
        {"color": Color.BLUE},
        {"color": Color.RED},
        {"ident": uuid.UUID(int=0)},
        {"ident": uuid.UUID(int=2**128 - 1)},
        {"pair": (-1, "")},
    ],
    ids=lambda c: next(iter(c)),
)
def test_edge_values_round_trip(db: obj.Db, changes: dict[str, Any]) -> None:
    doc = everything(**changes)
    oid = db.insert(doc)
    back = db.get(Everything, oid)
    assert back == doc
    name, value = next(iter(changes.items()))
    got = getattr(back, name)
    if isinstance(value, float) and value == 0:
        assert math.copysign(1, got) == math.copysign(1, value)
    if isinstance(value, datetime.datetime):
        assert got.utcoffset() == value.utcoffset()
        assert (got.tzinfo is None) == (value.tzinfo is None)


def test_nan_round_trips(db: obj.Db) -> None:
    oid = db.insert(everything(f=math.nan, mapping={"n": math.nan}))
    back = db.get(Everything, oid)
    assert math.isnan(back.f) and math.isnan(back.mapping["n"])


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"i": 2**63}, "64-bit"),
        ({"i": -(2**63) - 1}, "64-bit"),
        ({"maybe": 2**64}, "64-bit"),
        ({"items": [1, 2**70]}, "64-bit"),
        ({"i": "1"}, "expected int"),
        ({"i": 1.0}, "expected int"),
        ({"i": True}, "expected int"),
        ({"flag": 1}, "expected bool"),
        ({"f": "1.5"}, "expected float"),
        ({"s": b"x"}, "expected str"),
        ({"s": "bad \udc80"}, "surrogates"),
        ({"b": "x"}, "expected bytes"),
        ({"nothing": 0}, "expected None"),
        ({"items": {1, 2}}, "expected list"),
        ({"pair": (1, "a", 2)}, "tuple of 2"),
        ({"mapping": {1: 2.0}}, "keys must be str"),
        ({"address": Point(1, 2)}, "Address"),
        ({"day": datetime.datetime(2024, 1, 1)}, "expected date"),
        ({"when": datetime.date(2024, 1, 1)}, "expected datetime"),
        ({"color": "red"}, "Enum"),
        ({"ident": "12345678-1234-5678-1234-567812345678"}, "UUID"),
        ({"anything": object()}, "cannot store"),
        ({"nested": [{"x": [Point(1, 2)]}]}, "Address"),
    ],
    ids=lambda c: repr(c) if isinstance(c, str) else next(iter(c)),
)
def test_bad_field_values_are_refused_and_nothing_is_written(
    db: obj.Db, changes: dict[str, Any], word: str
) -> None:
    doc = everything(**changes)
    with pytest.raises(obj.InvalidArgumentError, match=word) as caught:
        db.insert(doc)
    assert next(iter(changes)) in str(caught.value)  # the message names the field
    with db.transaction() as tx:
        tx.insert(everything())
        with pytest.raises(obj.InvalidArgumentError, match=word):
            tx.insert(doc)
        with pytest.raises(obj.InvalidArgumentError, match=word):
            tx.upsert(Everything, 1, doc)
        assert tx.count(Everything) == 1
    assert db.count(Everything) == 1
    assert db.get(Everything, 1) == everything()
    assert db.get(Everything, 2) is None


def test_defaults_and_default_factory(db: obj.Db) -> None:
    a, b = WithDefaults("a"), WithDefaults("b", ["x"], 2)
    a.tags.append("mine")
    ids = [db.insert(a), db.insert(b)]
    assert [db.get(WithDefaults, i) for i in ids] == [a, b]
    assert WithDefaults("c").tags == []  # the factory still gives each instance its own list


def test_frozen_and_slots_dataclasses(db: obj.Db) -> None:
    f = db.insert(Frozen("k", 1))
    s = db.insert(Slotted("k", 2.5))
    assert db.get(Frozen, f) == Frozen("k", 1)
    assert db.get(Slotted, s) == Slotted("k", 2.5)
    assert not hasattr(db.get(Slotted, s), "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        db.get(Frozen, f).value = 3  # type: ignore[union-attr,misc]
    # update() of a frozen document returns a new instance.
    new = db.update(Frozen, f, lambda d: dataclasses.replace(d, value=5))
    assert new == Frozen("k", 5) == db.get(Frozen, f)
    with pytest.raises(dataclasses.FrozenInstanceError):
        db.update(Frozen, f, lambda d: setattr(d, "value", 9))
    assert db.get(Frozen, f) == Frozen("k", 5)


def test_loading_does_not_run_init_or_post_init(db: obj.Db) -> None:
    POST_INIT_CALLS.clear()
    doc = WithPostInit("ada")
    assert POST_INIT_CALLS == ["ada"]
    oid = db.insert(doc)
    back = db.get(WithPostInit, oid)
    assert back == doc and back.upper == "ADA"
    assert list(db.all(WithPostInit)) == [(oid, doc)]
    assert POST_INIT_CALLS == ["ada"]


# -- declaration errors ------------------------------------------------------------------------


class NotADataclass:
    x: int


@dataclass
class Unsupported:
    x: complex


@dataclass
class BadUnion:
    x: int | str


@dataclass
class BadDict:
    x: dict[int, str]


@dataclass
class BadTuple:
    x: tuple[int, ...]


@dataclass
class BadSet:
    x: set[int]


@dataclass
class Recursive:
    child: Optional[Recursive]


@pytest.mark.parametrize(
    ("cls", "word"),
    [
        (Unsupported, "Unsupported.x"),
        (BadUnion, "BadUnion.x"),
        (BadDict, "dict"),
        (BadTuple, "fixed tuples"),
        (BadSet, "BadSet.x"),
        (Recursive, "recursive"),
        (NotADataclass, "dataclass"),
    ],
)
def test_unsupported_annotations_fail_at_decoration(cls: type, word: str) -> None:
    with pytest.raises(obj.InvalidArgumentError, match=word):
        obj.document(collection="never_used", version=1)(cls)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"collection": ""},
        {"collection": 5},
        {"collection": "ok", "version": 0},
        {"collection": "ok", "version": "1"},
        {"collection": "ok", "version": 2**32},
    ],
)
def test_bad_decorator_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(obj.InvalidArgumentError):
        obj.document(**kwargs)


def test_redeclaring_a_shape_in_process() -> None:
    @obj.document(collection="redeclared", version=1)
    @dataclass
    class A:
        x: int

    @obj.document(collection="redeclared", version=1)
    @dataclass
    class Same:  # the identical shape under another class name is fine
        x: int

    with pytest.raises(obj.InvalidArgumentError, match="different shape"):

        @obj.document(collection="redeclared", version=1)
        @dataclass
        class Other:
            x: str

    @obj.document(collection="redeclared", version=2)  # a new version may change it
    @dataclass
    class B:
        x: str


# -- the overloads -----------------------------------------------------------------------------


def test_dict_native_documents(db: obj.Db) -> None:
    event = {"event": "click", "user_id": 42, "meta": {"x": [1, 2.5, None, True, b"b"]}}
    oid = db.insert("events", event)
    assert db.get("events", oid) == event
    assert list(db.all("events")) == [(oid, event)]
    assert db.count("events") == 1
    db.upsert("events", oid, {"event": "scroll"})
    assert db.get("events", oid) == {"event": "scroll"}
    assert db.update("events", oid, lambda d: d.update(n=1)) == {"event": "scroll", "n": 1}
    assert db.update("events", oid, lambda d: {"replaced": True}) == {"replaced": True}
    assert db.get("events", oid) == {"replaced": True}
    with db.transaction() as tx:
        second = tx.insert("events", {})
        assert tx.get("events", second) == {}
    assert db.delete("events", second) is True
    for bad in ({1: "int key"}, {"x": object()}, {"x": {1, "mixed"}}):
        with pytest.raises(obj.InvalidArgumentError):
            db.insert("events", bad)
    assert db.count("events") == 1


def test_reads_by_name_return_what_was_written(db: obj.Db) -> None:
    with db.transaction() as tx:
        raw = tx.insert("mixed_name", b"\x01raw")
        as_dict = tx.insert("mixed_name", {"a": 1})
        typed = tx.insert(Order(5, 5.5, "typed"))
        expected_typed = {"customer_id": 5, "total": 5.5, "status": "typed"}
        for reader in (tx,):
            assert reader.get("mixed_name", raw) == b"\x01raw"
            assert reader.get("mixed_name", as_dict) == {"a": 1}
            assert reader.get("orders", typed) == expected_typed
    with db.read_transaction() as r:
        assert r.get("mixed_name", raw) == b"\x01raw"
        assert r.get("mixed_name", as_dict) == {"a": 1}
        assert r.get("orders", typed) == expected_typed
        assert list(r.all("mixed_name")) == [(raw, b"\x01raw"), (as_dict, {"a": 1})]
        assert list(r.iter_all("orders")) == [(typed, expected_typed)]
        assert r.get_raw("orders", typed) == Order.__obj_doctype__.encode(Order(5, 5.5, "typed"))  # type: ignore[attr-defined]
        assert r.get_raw("mixed_name", raw) == b"\x01raw"
    assert db.get("orders", typed) == expected_typed
    assert db.get("mixed_name", raw) == b"\x01raw"
    assert db.get_raw("mixed_name", 999) is None


def test_typed_reads_refuse_records_of_another_kind(db: obj.Db) -> None:
    with db.transaction() as tx:
        tx.insert("orders", b"raw bytes")
        tx.insert("orders", {"customer_id": 1})
        tx.insert(Order(1, 1.0, "ok"))
    for oid, word in [(1, "raw bytes"), (2, "dict-native")]:
        with pytest.raises(obj.InvalidArgumentError, match=word):
            db.get(Order, oid)
    assert db.get(Order, 3) == Order(1, 1.0, "ok")
    with pytest.raises(obj.InvalidArgumentError):
        list(db.all(Order))


@dataclass
class PlainDataclass:
    x: int


def test_values_that_are_not_documents_are_refused(db: obj.Db) -> None:
    with db.transaction() as tx:
        for call in [
            lambda: tx.insert(PlainDataclass(1)),  # type: ignore[call-overload]
            lambda: tx.insert(42),  # type: ignore[call-overload]
            lambda: tx.insert(Order),  # the class, not an instance
            lambda: tx.insert(Order(1, 1.0, "x"), b"extra"),  # type: ignore[call-overload]
            lambda: tx.get(PlainDataclass, 1),
            lambda: tx.get(Order(1, 1.0, "x"), 1),  # type: ignore[call-overload]
            lambda: tx.upsert(Order, 1, PlainDataclass(1)),
            lambda: tx.upsert(Order, 1, Frozen("a", 1)),
            lambda: tx.upsert(Order, 1, {"customer_id": 1}),
            lambda: tx.upsert("orders", 1, Order(1, 1.0, "x")),  # type: ignore[call-overload]
            lambda: tx.count(PlainDataclass),
            lambda: tx.delete(PlainDataclass, 1),
            lambda: tx.collection(PlainDataclass),
            lambda: db.query(PlainDataclass),
        ]:
            with pytest.raises(obj.InvalidArgumentError) as caught:
                call()
            message = str(caught.value)
            assert "obj.document" in message or "Order" in message or "dict" in message, message
        assert tx.count(Order) == 0


def test_transactions_see_their_own_typed_writes(db: obj.Db) -> None:
    with db.transaction() as tx:
        ids = [tx.insert(Order(i, float(i), "new")) for i in range(300)]
        assert tx.count(Order) == 300
        assert tx.get(Order, ids[10]) == Order(10, 10.0, "new")
        tx.update(Order, ids[1], lambda o: setattr(o, "status", "shipped"))
        tx.upsert(Order, ids[2], Order(2, 2.0, "done"))
        tx.delete(Order, ids[3])
        assert tx.get(Order, ids[1]).status == "shipped"  # type: ignore[union-attr]
        assert tx.get(Order, ids[3]) is None
        assert len(list(tx.all(Order))) == 299
        with db.read_transaction() as snap:  # others see nothing until commit
            assert snap.count(Order) == 0
        frames_before = db.wal_frames()
    # Hundreds of inserts were one commit: a few dozen pages, not one commit per document.
    assert db.wal_frames() - frames_before < 60
    with db.read_transaction() as snap:
        assert snap.count(Order) == 299
        assert snap.get(Order, ids[2]) == Order(2, 2.0, "done")
        assert [i for i, _ in snap.all(Order)][:3] == [ids[0], ids[1], ids[2]]


def test_typed_collection_handles(db: obj.Db) -> None:
    with db.transaction() as tx:
        orders = tx.collection(Order)
        oid = orders.insert(Order(1, 1.0, "new"))
        assert orders.get(oid) == Order(1, 1.0, "new")
        assert orders.count_all() == 1
        assert orders.update(oid, lambda o: setattr(o, "total", 2.0)).total == 2.0
        assert orders.upsert(oid, Order(1, 3.0, "new")) is True
        assert list(orders.all()) == [(oid, Order(1, 3.0, "new"))]
        with pytest.raises(obj.InvalidArgumentError, match="Order"):
            orders.insert(Frozen("x", 1))  # type: ignore[arg-type]
        other = orders.insert(Order(2, 2.0, "new"))
        assert orders.delete(other) is True
        events = tx.collection("handle_events")
        eid = events.insert({"e": 1})
        assert events.get(eid) == {"e": 1}
        assert events.count_all() == 1
    with db.read_transaction() as snap:
        assert snap.count(Order) == 1
        assert snap.get("handle_events", 1) == {"e": 1}


def test_update_rules(db: obj.Db) -> None:
    oid = db.insert(Order(1, 1.0, "new"))
    # A function that returns a new instance.
    assert db.update(Order, oid, lambda o: Order(o.customer_id, 9.0, "new")).total == 9.0
    # A raising function rolls back and propagates.
    with pytest.raises(ZeroDivisionError):
        db.update(Order, oid, lambda o: (setattr(o, "status", "lost"), 1 / 0))
    assert db.get(Order, oid) == Order(1, 9.0, "new")
    # A missing id.
    with pytest.raises(obj.NotFoundError):
        db.update(Order, 12345, lambda o: None)
    # A wrong return value.
    with pytest.raises(obj.InvalidArgumentError, match="Order"):
        db.update(Order, oid, lambda o: "not an order")
    with pytest.raises(obj.InvalidArgumentError):
        db.update(Order, oid, "not callable")  # type: ignore[arg-type]
    assert db.get(Order, oid) == Order(1, 9.0, "new")
    # Inside a transaction the caller may catch and go on.
    with db.transaction() as tx:
        with pytest.raises(KeyError):
            tx.update(Order, oid, lambda o: {}["x"])
        tx.update(Order, oid, lambda o: setattr(o, "status", "paid"))
    assert db.get(Order, oid) == Order(1, 9.0, "paid")


def test_transaction_rolls_back_typed_writes(db: obj.Db) -> None:
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.insert(Order(1, 1.0, "never"))
        raise RuntimeError
    assert db.count(Order) == 0
    assert db.get(Order, 1) is None


def test_all_is_lazy_and_sees_a_snapshot(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in range(2000):
            tx.insert(Order(i, float(i), "x"))
    it = db.all(Order)
    first = next(it)
    assert first == (1, Order(0, 0.0, "x"))
    db.insert(Order(-1, 0.0, "later"))  # not in the iterator's snapshot
    assert sum(1 for _ in it) == 1999


# -- schemas in the file ----------------------------------------------------------------------

WRITE_SHAPE = """
import sys
from dataclasses import dataclass
import obj

@obj.document(collection="shared_shape", version=1)
@dataclass
class Thing:
    name: str
    size: int

with obj.Db(sys.argv[1]) as db:
    db.insert(Thing("a", 1))
print("ok")
"""


@obj.document(collection="shared_shape", version=1)
@dataclass
class ThingOtherShape:  # this process never declares the shape the child wrote
    name: str
    size: str


def test_cross_process_schema_mismatch(path: pathlib.Path, run_python: RunPython) -> None:
    result = run_python(WRITE_SHAPE, str(path))
    assert result.stdout.strip() == "ok", result.stderr
    # Same shape again in another process: fine.
    result = run_python(WRITE_SHAPE, str(path))
    assert result.stdout.strip() == "ok", result.stderr
    with obj.Db(path) as db:
        with pytest.raises(obj.InvalidArgumentError, match="size"):
            db.get(ThingOtherShape, 1)
        with pytest.raises(obj.InvalidArgumentError, match="size"):
            db.insert(ThingOtherShape("b", "2"))
        with pytest.raises(obj.InvalidArgumentError):
            list(db.all(ThingOtherShape))
        with db.transaction() as tx, pytest.raises(obj.InvalidArgumentError, match="size"):
            tx.insert(ThingOtherShape("b", "2"))
        # By collection name the file's own schema decodes the record.
        assert db.get("shared_shape", 1) == {"name": "a", "size": 1}
        assert db.count("shared_shape") == 2


@obj.document(collection="notes", version=1)
@dataclass
class NoteV1:
    text: str


@obj.document(collection="notes", version=2, history=[NoteV1])
@dataclass
class NoteV2:
    text: str
    words: int

    @classmethod
    def migrate(cls, doc: NoteV1, from_version: int) -> NoteV2:
        assert from_version == 1
        return cls(text=doc.text, words=len(doc.text.split()))


@obj.document(collection="notes", version=3, history=[NoteV2])
@dataclass
class NoteV3:
    title: str
    words: int

    @classmethod
    def migrate(cls, doc: NoteV2, from_version: int) -> NoteV3:
        assert from_version == 2
        return cls(title=doc.text.upper(), words=doc.words)


def test_migration(db: obj.Db) -> None:
    old = db.insert(NoteV1("hello big world"))
    # Reads through the new class migrate on the fly...
    assert db.get(NoteV2, old) == NoteV2("hello big world", 3)
    assert db.get("notes", old) == {"text": "hello big world"}
    # ...and the first write of the new class rewrites the stored older records, so every
    # read path (filters, sorts, indexes, reads by name) agrees with decoding (#14).
    new = db.insert(NoteV2("two words", 2))
    assert db.get("notes", old) == {"text": "hello big world", "words": 3}
    assert db.get(NoteV2, new) == NoteV2("two words", 2)
    assert list(db.all(NoteV2)) == [
        (old, NoteV2("hello big world", 3)),
        (new, NoteV2("two words", 2)),
    ]
    # Through two steps of history.
    assert db.get(NoteV3, old) == NoteV3("HELLO BIG WORLD", 3)
    # A class without the version in its history cannot read it.
    with pytest.raises(obj.InvalidArgumentError, match="history"):
        db.get(NoteV1, new)
    # Versions only move forward: the old class can no longer write.
    with pytest.raises(obj.InvalidArgumentError, match="version 2"):
        db.insert(NoteV1("late"))
    assert db.migrate(NoteV2) == 0


def test_history_must_be_older_versions_with_migrate() -> None:
    with pytest.raises(obj.InvalidArgumentError, match="migrate"):

        @obj.document(collection="notes", version=4, history=[NoteV1])
        @dataclass
        class NoMigrate:
            text: str

    with pytest.raises(obj.InvalidArgumentError, match="older version"):

        @obj.document(collection="other_notes", version=2, history=[NoteV1])
        @dataclass
        class WrongCollection:
            text: str

            @classmethod
            def migrate(cls, doc: Any, from_version: int) -> Any:
                return doc


def test_typed_documents_survive_reopen(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        oid = db.insert(everything())
    with obj.Db(path, read_only=True) as db:
        assert db.get(Everything, oid) == everything()
        as_dict = db.get("everything", oid)
        assert as_dict["address"] == {"city": "Oslo", "zip": "0150"}
        assert as_dict["pair"] == [7, "seven"]
        assert as_dict["color"] == 2  # the member's value
        json.dumps({k: v for k, v in as_dict.items() if isinstance(v, (int, str, list))})


def test_db_level_writes_inside_this_threads_transaction_fail_fast(path: pathlib.Path) -> None:
    with obj.Db(path, busy_timeout=30) as db, db.transaction() as tx:
        tx.insert(Order(1, 1.0, "mine"))
        with pytest.raises(obj.BusyError, match=r"tx\.insert"):
            db.insert(Order(2, 2.0, "nested"))  # would wait 30 s for itself otherwise
        with pytest.raises(obj.BusyError):
            db.update(Order, 1, lambda o: None)
        # Reads on the Db still work: they see the last commit.
        assert db.get(Order, 1) is None
        assert tx.get(Order, 1) == Order(1, 1.0, "mine")


def test_read_only_handles_read_typed_documents(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        oid = db.insert(Order(1, 1.0, "x"))
    with obj.Db(path, read_only=True) as db:
        assert db.get(Order, oid) == Order(1, 1.0, "x")
        assert db.query(Order).filter(obj.field("status") == "x").ids() == [oid]
        with pytest.raises(obj.ObjError, match="read-only"):
            db.insert(Order(2, 2.0, "y"))


def test_classes_defined_in_a_function_may_refer_to_each_other(db: obj.Db) -> None:
    # This module uses `from __future__ import annotations`: the annotations below are
    # strings naming classes that exist only in this function.
    @dataclass
    class Part:
        name: str

    @obj.document(collection="assemblies", version=1)
    @dataclass
    class Assembly:
        parts: list[Part]
        spare: Optional[Part] = None

    oid = db.insert(Assembly([Part("bolt")], Part("nut")))
    assert db.get(Assembly, oid) == Assembly([Part("bolt")], Part("nut"))


def test_lists_of_zero_sized_values_round_trip(tmp_path: pathlib.Path) -> None:
    @obj.document(collection="zero_sized", version=1)
    @dataclass
    class Zero:
        nones: list[None]

    with obj.Db(tmp_path / "z.obj") as db:
        oid = db.insert(Zero(nones=[None] * 500))
        got = db.get(Zero, oid)
        assert got is not None and got.nones == [None] * 500


# -- #14: only a decorated class itself is a document class --------------------------------


@obj.document(collection="bases")
@dataclass
class BaseDoc:
    n: int


@dataclass
class SubDoc(BaseDoc):
    extra: str = ""


def test_an_undecorated_subclass_of_a_document_class_is_refused(db: obj.Db) -> None:
    with pytest.raises(obj.InvalidArgumentError, match=r"SubDoc is not an @obj\.document class"):
        db.insert(SubDoc(1, "important"))
    oid = db.insert(BaseDoc(1))
    for call in (
        lambda: db.get(SubDoc, oid),
        lambda: list(db.all(SubDoc)),
        lambda: db.count(SubDoc),
        lambda: db.query(SubDoc),
        lambda: db.upsert(SubDoc, oid, SubDoc(2, "x")),
    ):
        with pytest.raises(obj.InvalidArgumentError, match="SubDoc"):
            call()
    # A subclass instance under the base class is refused too: it would lose `extra`.
    with pytest.raises(obj.InvalidArgumentError, match="subclass"):
        db.upsert(BaseDoc, oid, SubDoc(2, "x"))
    with db.transaction() as tx:
        with pytest.raises(obj.InvalidArgumentError, match="SubDoc"):
            tx.insert(SubDoc(3, "y"))
        with pytest.raises(obj.InvalidArgumentError, match="SubDoc"):
            tx.collection(SubDoc)
        with pytest.raises(obj.InvalidArgumentError):
            tx.update(BaseDoc, oid, lambda d: SubDoc(d.n, "z"))
    assert db.get(BaseDoc, oid) == BaseDoc(1)
    assert not obj.is_document(SubDoc) and not obj.is_document(SubDoc(1))


@dataclass
class Inner:
    city: str


@dataclass
class InnerSub(Inner):
    zip: str = ""


@obj.document(collection="outers")
@dataclass
class Outer:
    inner: Inner


def test_a_nested_subclass_instance_is_refused(db: obj.Db) -> None:
    with pytest.raises(obj.InvalidArgumentError, match="subclass"):
        db.insert(Outer(InnerSub("Oslo", "0150")))
    assert db.count(Outer) == 0


def test_a_decorated_subclass_is_a_document_of_its_own(db: obj.Db) -> None:
    @obj.document(collection="subs")
    @dataclass
    class OwnSub(BaseDoc):
        extra: str = ""

    oid = db.insert(OwnSub(1, "kept"))
    assert db.get(OwnSub, oid) == OwnSub(1, "kept")


def test_decorating_a_class_twice_is_refused() -> None:
    @dataclass
    class Twice:
        n: int

    obj.document(collection="twice_a")(Twice)
    with pytest.raises(obj.InvalidArgumentError, match=r"already an @obj\.document"):
        obj.document(collection="twice_b")(Twice)
    assert Twice.__obj_doctype__.collection == "twice_a"  # type: ignore[attr-defined]


def test_migrate_must_be_a_classmethod() -> None:
    with pytest.raises(obj.InvalidArgumentError, match="classmethod"):

        @obj.document(collection="notes", version=5, history=[NoteV1])
        @dataclass
        class PlainMigrate:
            text: str

            def migrate(self, doc: Any, from_version: int) -> Any:
                return doc


# -- #15: one reader of typed payloads, for reads by class and by collection name ----------


def test_reads_by_class_and_by_name_agree(db: obj.Db) -> None:
    docs = [everything(), everything(color=Color.BLUE, point=None, anything=[{"a": b""}])]
    ids = [db.insert(d) for d in docs]
    for oid, doc in zip(ids, docs):
        assert db.get(Everything, oid) == doc
        assert db.get("everything", oid) == plain(doc)


def test_every_cut_of_a_typed_payload_is_corruption() -> None:
    dt = Everything.__obj_doctype__  # type: ignore[attr-defined]
    payload = dt.encode(everything())
    assert dt.decode(1, payload) == everything()
    for cut in range(len(payload)):
        with pytest.raises(obj.CorruptionError, match="stored document does not decode"):
            dt.decode(1, payload[:cut])
    with pytest.raises(obj.CorruptionError, match="trailing bytes"):
        dt.decode(1, payload + b"\x00")


@obj.document(collection="deep_any", version=1)
@dataclass
class DeepAny:
    value: Any
    values: list[Any]


def nested_lists(levels: int) -> Any:
    value: Any = None
    for _ in range(levels):
        value = [value]
    return value


def test_any_fields_nest_as_deep_as_dict_documents(db: obj.Db) -> None:
    # `value` sits at depth 1, as a dict-native document's fields do; the items of `values`
    # at depth 2. Deeper than 64 levels in all is refused when written.
    deepest = DeepAny(nested_lists(63), [nested_lists(62)])
    oid = db.insert(deepest)
    assert db.get(DeepAny, oid) == deepest
    assert db.get("deep_any", oid) == plain(deepest)
    as_dict = {"value": nested_lists(63)}
    assert db.get("deep_dicts", db.insert("deep_dicts", as_dict)) == as_dict
    for too_deep in (DeepAny(nested_lists(64), []), DeepAny(None, [nested_lists(63)])):
        with pytest.raises(obj.InvalidArgumentError, match="nested deeper than 64 levels"):
            db.insert(too_deep)
    with pytest.raises(obj.InvalidArgumentError, match="nested deeper than 64 levels"):
        db.insert("deep_dicts", {"value": nested_lists(64)})
    assert db.count(DeepAny) == 1


def test_a_payload_nested_too_deeply_is_corruption() -> None:
    dt = DeepAny.__obj_doctype__  # type: ignore[attr-defined]

    def payload(levels: int) -> bytes:
        # `value`: `levels` one-item lists around None (Value codec tags 6 and 0); `values`: [].
        return b"\x06\x01" * levels + b"\x00" + b"\x00"

    assert dt.decode(1, payload(63)) == DeepAny(nested_lists(63), [])
    with pytest.raises(obj.CorruptionError, match="nested deeper than 64 levels"):
        dt.decode(1, payload(64))
