"""Secondary indexes: Index, Unique, Each and Composite, maintained in every write."""

from __future__ import annotations

import math
import pathlib
import random
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

import pytest

import obj


@obj.document(
    collection="shop_orders",
    version=1,
    indexes=[obj.Composite(("region", "status"), name="by_region_status")],
)
@dataclass
class ShopOrder:
    email: Annotated[str, obj.Unique]
    region: Annotated[str, obj.Index]
    tags: Annotated[list[str], obj.Each] = field(default_factory=list)
    status: str = "new"
    total: Annotated[float, obj.Index] = 0.0


def seed(db: obj.Db) -> list[int]:
    with db.transaction() as tx:
        return [
            tx.insert(ShopOrder("a@x", "us", ["vip", "new"], "new", 10.0)),
            tx.insert(ShopOrder("b@x", "eu", ["new"], "paid", -5.0)),
            tx.insert(ShopOrder("c@x", "us", [], "paid", 2.5)),
            tx.insert(ShopOrder("d@x", "ap", ["vip", "vip"], "new", 0.0)),
            tx.insert(ShopOrder("e@x", "us", ["bulk"], "new", 100.0)),
        ]


def ids(rows: Any) -> list[int]:
    return [i for i, _ in rows]


def test_seed_examples(db: obj.Db) -> None:
    a, b, c, d, e = seed(db)
    assert db.find_unique(ShopOrder, "email", "a@x") == db.get(ShopOrder, a)
    assert db.find_unique(ShopOrder, "email", "zz@x") is None
    # Pre-encoded bytes of a str key are accepted too.
    assert db.find_unique(ShopOrder, "email", b"c@x") == db.get(ShopOrder, c)
    # Inclusive bounds: every "us" order, ties in id order.
    assert ids(db.index_range(ShopOrder, "region", "us", "us")) == [a, c, e]
    assert ids(db.index_range(ShopOrder, "region", "eu", "us")) == [b, a, c, e]
    assert ids(db.index_range(ShopOrder, "region", None, "eu")) == [d, b]
    assert ids(db.index_range(ShopOrder, "region", "eu", None)) == [b, a, c, e]
    assert ids(db.index_range(ShopOrder, "region")) == [d, b, a, c, e]
    assert ids(db.index_range(ShopOrder, "region", "zz", "aa")) == []
    # Numbers in numeric order, negatives first.
    assert ids(db.index_range(ShopOrder, "total", -100, 5)) == [b, d, c]
    assert ids(db.index_range(ShopOrder, "total", 0, 0.0)) == [d]
    # Composite: a shorter tuple is a prefix.
    assert ids(db.index_range(ShopOrder, "by_region_status", ("us",), ("us",))) == [a, e, c]
    assert ids(db.index_range(ShopOrder, "by_region_status", ("us", "new"), ("us", "new"))) == [
        a,
        e,
    ]
    assert ids(db.index_range(ShopOrder, "by_region_status", ("eu", "paid"), ("us", "new"))) == [
        b,
        a,
        e,
    ]
    # Each: one entry per distinct element; a document matching several keys comes once.
    assert ids(db.index_range(ShopOrder, "tags", "vip", "vip")) == [a, d]
    assert ids(db.index_range(ShopOrder, "tags", "new", "vip")) == [a, b, d]
    assert ids(db.index_range(ShopOrder, "tags")) == [e, a, b, d]
    # Results are documents.
    assert list(db.index_range(ShopOrder, "region", "eu", "eu")) == [(b, db.get(ShopOrder, b))]
    # By collection name: the same slices, as dicts.
    assert [doc["email"] for _, doc in db.index_range("shop_orders", "region", "us", "us")] == [
        "a@x",
        "c@x",
        "e@x",
    ]
    assert db.find_unique("shop_orders", "email", "b@x")["region"] == "eu"


def test_index_maintenance_on_update_upsert_delete(db: obj.Db) -> None:
    a, b, c, _d, e = seed(db)
    db.update(ShopOrder, a, lambda o: setattr(o, "region", "eu"))
    assert ids(db.index_range(ShopOrder, "region", "us", "us")) == [c, e]
    assert ids(db.index_range(ShopOrder, "region", "eu", "eu")) == [a, b]
    db.update(ShopOrder, a, lambda o: setattr(o, "email", "a2@x"))
    assert db.find_unique(ShopOrder, "email", "a@x") is None
    assert db.find_unique(ShopOrder, "email", "a2@x").region == "eu"  # type: ignore[union-attr]
    # The freed key can be taken again.
    f = db.insert(ShopOrder("a@x", "ap"))
    assert db.find_unique(ShopOrder, "email", "a@x") == db.get(ShopOrder, f)
    db.upsert(ShopOrder, c, ShopOrder("c@x", "ap", ["vip"], "new", 1.0))
    assert ids(db.index_range(ShopOrder, "tags", "vip", "vip")) == [a, c, 4]
    db.delete(ShopOrder, e)
    assert db.find_unique(ShopOrder, "email", "e@x") is None
    assert ids(db.index_range(ShopOrder, "tags", "bulk", "bulk")) == []
    assert ids(db.index_range(ShopOrder, "total", 99, None)) == []


def test_unique_violation_leaves_no_trace(db: obj.Db) -> None:
    a, *_ = seed(db)
    before = list(db.index_range(ShopOrder, "region"))
    with pytest.raises(obj.InvalidArgumentError, match=r"email.*'a@x'") as caught:
        db.insert(ShopOrder("a@x", "zz", ["ghost"]))
    assert "email" in str(caught.value)
    assert db.count(ShopOrder) == 5
    assert list(db.index_range(ShopOrder, "region")) == before
    assert ids(db.index_range(ShopOrder, "tags", "ghost", "ghost")) == []
    # An update that would collide changes nothing either.
    with pytest.raises(obj.InvalidArgumentError, match="email"):
        db.update(ShopOrder, 2, lambda o: setattr(o, "email", "a@x"))
    assert db.get(ShopOrder, 2).email == "b@x"  # type: ignore[union-attr]
    assert db.find_unique(ShopOrder, "email", "a@x") == db.get(ShopOrder, a)
    # The refused insert did not use up an id.
    assert db.insert(ShopOrder("new@x", "zz")) == 6


def test_unique_violation_inside_a_transaction_can_be_caught(db: obj.Db) -> None:
    seed(db)
    with db.transaction() as tx:
        first = tx.insert(ShopOrder("t1@x", "mx", ["t"]))
        with pytest.raises(obj.InvalidArgumentError, match="email"):
            tx.insert(ShopOrder("t1@x", "mx", ["ghost"]))
        with pytest.raises(obj.InvalidArgumentError, match="email"):
            tx.upsert(ShopOrder, first, ShopOrder("a@x", "mx"))
        with pytest.raises(obj.InvalidArgumentError):
            tx.collection(ShopOrder).insert(ShopOrder("b@x", "mx"))
        second = tx.insert(ShopOrder("t2@x", "mx", ["t"]))
        assert tx.count(ShopOrder) == 7
        assert ids(tx.index_range(ShopOrder, "region", "mx", "mx")) == [first, second]
        assert tx.find_unique(ShopOrder, "email", "t1@x") == ShopOrder("t1@x", "mx", ["t"])
    assert db.count(ShopOrder) == 7
    assert ids(db.index_range(ShopOrder, "tags", "ghost", "ghost")) == []
    assert ids(db.index_range(ShopOrder, "region", "mx", "mx")) == [first, second]
    assert db.get(ShopOrder, first) == ShopOrder("t1@x", "mx", ["t"])


def test_none_values_and_unique(db: obj.Db) -> None:
    @obj.document(collection="maybe_unique", version=1)
    @dataclass
    class MaybeUnique:
        code: Annotated[Optional[str], obj.Unique]
        rank: Annotated[Optional[int], obj.Index] = None

    with db.transaction() as tx:
        x = tx.insert(MaybeUnique(None))
        y = tx.insert(MaybeUnique(None, 5))  # None never collides
        z = tx.insert(MaybeUnique("z", -1))
    assert db.find_unique(MaybeUnique, "code", "z") == MaybeUnique("z", -1)
    with pytest.raises(obj.InvalidArgumentError, match="None"):
        db.find_unique(MaybeUnique, "code", None)
    # None as a bound means unbounded; None values sort first in a standard index.
    assert ids(db.index_range(MaybeUnique, "rank", None, None)) == [x, z, y]
    assert ids(db.index_range(MaybeUnique, "rank", -1, None)) == [z, y]
    assert ids(db.index_range(MaybeUnique, "code")) == [z]
    # Queries find the None values.
    assert ids(db.query(MaybeUnique).filter(obj.field("code").is_none())) == [x, y]


def test_unknown_index_is_not_found(db: obj.Db) -> None:
    seed(db)
    with pytest.raises(obj.NotFoundError, match="nope"):
        db.find_unique(ShopOrder, "nope", "x")
    with pytest.raises(obj.NotFoundError, match="nope"):
        db.index_range(ShopOrder, "nope", 1, 2)
    with pytest.raises(obj.NotFoundError):
        db.query(ShopOrder).index_range("nope").fetch()
    with db.transaction() as tx, pytest.raises(obj.NotFoundError):
        tx.index_range(ShopOrder, "nope")
    with db.read_transaction() as r, pytest.raises(obj.NotFoundError):
        r.find_unique(ShopOrder, "nope", 1)
    with pytest.raises(obj.NotFoundError):
        db.find_unique("no_such_collection", "email", "x")
    # A lookup on an index that is not unique is a mistake of its own.
    with pytest.raises(obj.InvalidArgumentError, match="unique"):
        db.find_unique(ShopOrder, "region", "us")


def test_bad_bounds(db: obj.Db) -> None:
    seed(db)
    with pytest.raises(obj.InvalidArgumentError):
        db.index_range(ShopOrder, "region", ["us"], None)
    with pytest.raises(obj.InvalidArgumentError):
        db.index_range(ShopOrder, "region", ("us", "new"), None)  # more values than fields
    with pytest.raises(obj.InvalidArgumentError):
        db.find_unique(ShopOrder, "email", object())


def test_reads_in_transactions_see_own_writes(db: obj.Db) -> None:
    seed(db)
    with db.transaction() as tx:
        new = tx.insert(ShopOrder("own@x", "zz", ["own"]))
        assert tx.find_unique(ShopOrder, "email", "own@x") == ShopOrder("own@x", "zz", ["own"])
        assert ids(tx.index_range(ShopOrder, "region", "zz", "zz")) == [new]
        assert ids(tx.index_range(ShopOrder, "tags", "own", "own")) == [new]
        tx.delete(ShopOrder, 1)
        assert tx.find_unique(ShopOrder, "email", "a@x") is None
        with db.read_transaction() as snap:
            assert snap.find_unique(ShopOrder, "email", "own@x") is None
            assert snap.find_unique(ShopOrder, "email", "a@x") is not None
        tx.rollback()
    assert db.find_unique(ShopOrder, "email", "own@x") is None


def test_index_range_is_lazy(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in range(3000):
            tx.insert(ShopOrder(f"{i}@x", "us" if i % 2 else "eu", total=float(i)))
    it = db.index_range(ShopOrder, "region", "us", "us")
    assert next(it)[1].email == "1@x"
    assert sum(1 for _ in it) == 1499
    # Flat cost: ranges are resolved through the index (O(log n + k)).
    assert ids(db.index_range(ShopOrder, "total", 10, 12)) == [11, 12, 13]


def test_index_definitions(db: obj.Db) -> None:
    seed(db)
    info = {i.name: i for i in db.index_info(ShopOrder)}
    assert set(info) == {"email", "region", "tags", "total", "by_region_status"}
    assert info["email"] == obj.IndexInfo("email", "unique", ["email"], "ready")
    assert info["tags"].kind == "each"
    assert info["region"].kind == "standard"
    assert info["by_region_status"] == obj.IndexInfo(
        "by_region_status", "composite", ["region", "status"], "ready"
    )
    assert {i.name for i in db.index_info("shop_orders")} == set(info)
    with db.read_transaction() as r:
        assert {i.name for i in r.index_info(ShopOrder)} == set(info)
    (shop,) = [c for c in db.stat().collections if c.name == "shop_orders"]
    assert shop.doc_count == 5
    assert {(i.name, i.kind, tuple(i.key_paths), i.status) for i in shop.indexes} == {
        (i.name, i.kind, tuple(i.key_paths), i.status) for i in info.values()
    }


def test_index_declaration_errors() -> None:
    with pytest.raises(obj.InvalidArgumentError, match="Each"):

        @obj.document(collection="bad_idx", version=1)
        @dataclass
        class EachOnScalar:
            x: Annotated[str, obj.Each]

    with pytest.raises(obj.InvalidArgumentError, match="indexable"):

        @obj.document(collection="bad_idx", version=1)
        @dataclass
        class IndexOnList:
            x: Annotated[list[int], obj.Index]

    with pytest.raises(obj.InvalidArgumentError, match="names no field"):

        @obj.document(
            collection="bad_idx", version=1, indexes=[obj.Composite(("x", "y"), name="c")]
        )
        @dataclass
        class CompositeOnMissing:
            x: int

    with pytest.raises(obj.InvalidArgumentError, match="name"):
        obj.Composite(("x", "y"), name="")
    with pytest.raises(obj.InvalidArgumentError):
        obj.Composite("xy", name="c")
    with pytest.raises(obj.InvalidArgumentError, match="more than one index"):

        @obj.document(
            collection="bad_idx", version=1, indexes=[obj.Composite(("x", "y"), name="x")]
        )
        @dataclass
        class Clash:
            x: Annotated[int, obj.Index]
            y: int


# -- backfill -------------------------------------------------------------------------------


@obj.document(collection="backfilled", version=1)
@dataclass
class Plain:
    name: str
    size: int


@obj.document(collection="backfilled", version=1)
@dataclass
class Indexed:  # the same shape, now with indexes
    name: Annotated[str, obj.Unique]
    size: Annotated[int, obj.Index]


def test_backfill_on_first_use(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        with db.transaction() as tx:
            for i in range(500):
                tx.insert(Plain(f"n{i}", i % 7))
        assert db.index_info(Plain) == []
    with obj.Db(path) as db:
        # The first index read builds the indexes from the stored documents.
        assert db.find_unique(Indexed, "name", "n42") == Indexed("n42", 0)
        assert [i.status for i in db.index_info(Indexed)] == ["ready", "ready"]
        stat = db.stat().collection("backfilled")
        assert stat is not None and stat.doc_count == 500
        assert [(i.name, i.kind, i.key_paths, i.status) for i in stat.indexes] == [
            ("name", "unique", ["name"], "ready"),
            ("size", "standard", ["size"], "ready"),
        ]
        assert len(list(db.index_range(Indexed, "size", 3, 3))) == len(range(3, 500, 7))
        # Plain writes keep them up to date from now on.
        db.insert(Plain("late", 3))
        assert db.find_unique(Indexed, "name", "late") == Indexed("late", 3)
        with pytest.raises(obj.InvalidArgumentError, match="name"):
            db.insert(Plain("late", 4))
    with obj.Db(path, read_only=True) as db:
        assert db.find_unique(Indexed, "name", "n499") == Indexed("n499", 499 % 7)


def test_backfill_refuses_duplicates(db: obj.Db) -> None:
    @obj.document(collection="dupes", version=1)
    @dataclass
    class Loose:
        key: str

    @obj.document(collection="dupes", version=1)
    @dataclass
    class Strict:
        key: Annotated[str, obj.Unique]

    db.insert(Loose("same"))
    db.insert(Loose("same"))
    with pytest.raises(obj.InvalidArgumentError, match="same"):
        db.find_unique(Strict, "key", "same")
    assert db.count(Loose) == 2
    assert db.index_info(Loose) == []


# -- numbers of both kinds in one index ---------------------------------------------------------


@obj.document(collection="numbers", version=1)
@dataclass
class Number:
    value: Annotated[float, obj.Index]


def test_ints_and_floats_share_one_order(db: obj.Db) -> None:
    values: list[Any] = [3, -2.5, 0, 2**62, -(2**62), 1.5, -0.0, math.inf, -math.inf, 7, 2.0]
    with db.transaction() as tx:
        tx.insert(Number(0.25))  # creates the index
        for v in values:
            # Dicts written into the typed collection keep ints as ints; the engine
            # indexes them next to the floats.
            tx.insert("numbers", {"value": v})
    got = [doc["value"] for _, doc in db.index_range("numbers", "value", None, None)]
    assert got == sorted([0.25, *values])
    got = [doc["value"] for _, doc in db.index_range("numbers", "value", -2.5, 2)]
    assert got == [-2.5, 0, -0.0, 0.25, 1.5, 2.0]


# -- a randomized model test ----------------------------------------------------------------------


@obj.document(
    collection="model_items",
    version=1,
    indexes=[obj.Composite(("region", "rank"), name="by_region_rank")],
)
@dataclass
class Item:
    sku: Annotated[Optional[str], obj.Unique]
    region: Annotated[str, obj.Index]
    rank: Annotated[float, obj.Index]
    tags: Annotated[list[str], obj.Each]


REGIONS = ["", "eu", "us", "ap", "日本", "eu-west"]
TAGS = ["a", "b", "c", "d", "é", ""]
RANKS = [-math.inf, -3.5, -1.0, 0.0, 0.5, 1.0, 2.0, 1e9, math.inf]


def random_item(rng: random.Random) -> Item:
    sku = None if rng.random() < 0.15 else f"sku{rng.randrange(300)}"
    return Item(
        sku,
        rng.choice(REGIONS),
        rng.choice(RANKS),
        [rng.choice(TAGS) for _ in range(rng.randrange(4))],
    )


def check_indexes(reader: Any, model: dict[int, Item], rng: random.Random) -> None:
    def num(x: float) -> float:
        return x + 0.0  # -0.0 and 0.0 are one key

    all_ids = sorted(model)
    assert reader.count(Item) == len(model)
    assert ids(reader.all(Item)) == all_ids
    # Unique.
    skus = {it.sku: i for i, it in model.items() if it.sku is not None}
    assert ids(reader.index_range(Item, "sku")) == [skus[s] for s in sorted(skus)]
    for s in [*rng.sample(sorted(skus), min(20, len(skus))), "sku-missing"]:
        found = reader.find_unique(Item, "sku", s)
        assert found == (model[skus[s]] if s in skus else None)
    # Standard.
    assert ids(reader.index_range(Item, "region")) == sorted(
        all_ids, key=lambda i: (model[i].region, i)
    )
    assert ids(reader.index_range(Item, "rank")) == sorted(
        all_ids, key=lambda i: (num(model[i].rank), i)
    )
    for _ in range(10):
        lo, hi = sorted(rng.sample(RANKS, 2))
        want = sorted(
            (i for i in all_ids if lo <= model[i].rank <= hi), key=lambda i: (num(model[i].rank), i)
        )
        assert ids(reader.index_range(Item, "rank", lo, hi)) == want
        region = rng.choice(REGIONS)
        want = [i for i in all_ids if model[i].region == region]
        assert ids(reader.index_range(Item, "region", region, region)) == want
    # Composite, full and prefix.
    assert ids(reader.index_range(Item, "by_region_rank")) == sorted(
        all_ids, key=lambda i: (model[i].region, num(model[i].rank), i)
    )
    for region in REGIONS:
        want = sorted(
            (i for i in all_ids if model[i].region == region),
            key=lambda i: (num(model[i].rank), i),
        )
        assert ids(reader.index_range(Item, "by_region_rank", (region,), (region,))) == want
        lo = rng.choice(RANKS)
        want = [i for i in want if model[i].rank >= lo]
        assert ids(reader.index_range(Item, "by_region_rank", (region, lo), (region,))) == want
    # Each: key order, each document once (at its first key in range).
    lo, hi = sorted(rng.sample(TAGS, 2))
    entries = sorted((t, i) for i in all_ids for t in set(model[i].tags) if lo <= t <= hi)
    want_each: list[int] = []
    for _, i in entries:
        if i not in want_each:
            want_each.append(i)
    assert ids(reader.index_range(Item, "tags", lo, hi)) == want_each
    for tag in TAGS:
        want = [i for i in all_ids if tag in model[i].tags]
        assert ids(reader.index_range(Item, "tags", tag, tag)) == want


def test_randomized_index_model(path: pathlib.Path) -> None:
    rng = random.Random(20240517)
    model: dict[int, Item] = {}
    refused = 0
    with obj.Db(path, durability="none", checkpoint_frames=200) as db:
        for round_no in range(30):
            # Copies, so that in-place changes in a rolled-back round cannot leak.
            pending = {
                i: Item(it.sku, it.region, it.rank, list(it.tags)) for i, it in model.items()
            }
            rollback = rng.random() < 0.15
            with db.transaction() as tx:
                for _ in range(120):
                    op = rng.random()
                    try:
                        if op < 0.45 or not pending:
                            item = random_item(rng)
                            oid = tx.insert(item)
                            pending[oid] = item
                        elif op < 0.75:
                            oid = rng.choice(sorted(pending))
                            item = random_item(rng)
                            tx.upsert(Item, oid, item)
                            pending[oid] = item
                        elif op < 0.85:
                            oid = rng.choice(sorted(pending))
                            tag = rng.choice(TAGS)
                            tx.update(Item, oid, lambda it, t=tag: it.tags.append(t))
                            pending[oid].tags.append(tag)
                        else:
                            oid = rng.choice(sorted(pending))
                            assert tx.delete(Item, oid)
                            del pending[oid]
                    except obj.InvalidArgumentError as e:
                        assert "sku" in str(e)
                        refused += 1
                if round_no % 10 == 0:
                    check_indexes(tx, pending, rng)
                if rollback:
                    tx.rollback()
            if not rollback:
                model = pending
            if round_no % 7 == 0:
                check_indexes(db, model, rng)
        check_indexes(db, model, rng)
    assert refused > 10  # the generator does collide on unique skus
    with obj.Db(path) as db:
        check_indexes(db, model, rng)
        with db.read_transaction() as r:
            check_indexes(r, model, rng)


def test_keyword_bounds_and_snapshot_hint(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        seed(db)
        assert ids(db.index_range(ShopOrder, "total", lo=5)) == [1, 5]
        assert ids(db.index_range(ShopOrder, "total", hi=0)) == [2, 4]
        with db.read_transaction() as r:
            assert ids(r.index_range(ShopOrder, "region", lo="us")) == [1, 3, 5]

    @obj.document(collection="shop_orders", version=1)
    @dataclass
    class ShopOrderByStatus:  # the same shape with one more index
        email: str
        region: str
        tags: list[str]
        status: Annotated[str, obj.Index]
        total: float

    with obj.Db(path) as db:
        snap = db.read_transaction()  # taken before the index exists
        with snap, pytest.raises(obj.NotFoundError, match="not built in this snapshot"):
            snap.index_range(ShopOrderByStatus, "status", "new", "new")
        assert ids(db.index_range(ShopOrderByStatus, "status", "new", "new")) == [1, 4, 5]
    with obj.Db(path, read_only=True) as db:
        assert ids(db.index_range(ShopOrderByStatus, "status", "paid", "paid")) == [2, 3]


def test_declaring_unique_over_duplicates_says_the_index_cannot_be_built(db: obj.Db) -> None:
    # #14 item 11: the message used to read as if the caller's value were the duplicate.
    @obj.document(collection="dupe_emails")
    @dataclass
    class Plain:
        email: str

    @obj.document(collection="dupe_emails", version=1)
    @dataclass
    class WithUnique:
        email: Annotated[str, obj.Unique]

    db.insert("dupe_emails", {"x": 1})  # a dict-native record is not indexed
    for email in ("a", "b", "a"):
        db.insert(Plain(email))
    with pytest.raises(obj.InvalidArgumentError) as caught:
        db.insert(WithUnique("c"))
    message = str(caught.value)
    assert (
        "cannot build unique index 'email'" in message
        or 'cannot build unique index "email"' in message
    )
    assert "documents 2 and 4" in message
    assert "obj.Index" in message
    assert db.count("dupe_emails") == 4
