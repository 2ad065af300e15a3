"""The query builder: Python predicates and sorts, declarative field filters evaluated in
the engine, automatic index use, bounded sorts and streaming."""

from __future__ import annotations

import math
import os
import pathlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import obj
from obj import field as f

# -- typed fixtures -----------------------------------------------------------------------------


@dataclass
class Address:
    city: str
    street: Optional[str] = None


@obj.document(
    collection="q_orders",
    version=1,
    indexes=[obj.Composite(("region", "status"), name="by_region_status")],
)
@dataclass
class QOrder:
    email: Annotated[str, obj.Unique]
    region: Annotated[str, obj.Index]
    total: Annotated[float, obj.Index]
    status: str = "new"
    tags: Annotated[list[str], obj.Each] = field(default_factory=list)
    address: Optional[Address] = None
    note: Optional[str] = None
    count: int = 0


ORDERS = [
    QOrder("a@x", "us", 150.0, "shipped", ["vip"], Address("Oslo"), count=3),
    QOrder("b@x", "eu", 20.0, "new", [], Address("Paris", "Rue 1")),
    QOrder("c@x", "us", 99.5, "shipped", ["vip", "bulk"], None, "fragile", 1),
    QOrder("d@x", "ap", 300.0, "paid", ["bulk"], Address("Tokyo"), count=7),
    QOrder("e@x", "eu", 5.0, "shipped", ["new"], Address("Oslo"), count=2),
    QOrder("f@x", "us", 100.0, "new", [], None, count=0),
]


@pytest.fixture
def orders(db: obj.Db) -> list[int]:
    with db.transaction() as tx:
        return [tx.insert(o) for o in ORDERS]


def ids(rows: Any) -> list[int]:
    return [i for i, _ in rows]


# -- the seed's examples ----------------------------------------------------------------------


def test_seed_examples(db: obj.Db, orders: list[int]) -> None:
    top = (
        db.query(QOrder)
        .filter(lambda o: o.status == "shipped")
        .sort_by(lambda o: o.total)
        .limit(10)
        .fetch()
    )
    assert [o.email for _, o in top] == ["e@x", "c@x", "a@x"]
    assert all(isinstance(o, QOrder) for _, o in top)
    assert db.query(QOrder).filter(lambda o: o.total > 100).count() == 2
    us = db.query(QOrder).index_range("region", "us", "us").fetch()
    assert [o.email for _, o in us] == ["a@x", "c@x", "f@x"]
    for oid, o in db.query(QOrder):
        assert db.get(QOrder, oid) == o


def test_dict_results_for_a_collection_name(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in range(10):
            tx.insert("q_events", {"n": i, "kind": "even" if i % 2 == 0 else "odd"})
    rows = db.query("q_events").filter(f("kind") == "odd").filter(lambda d: d["n"] > 3).fetch()
    assert rows == [
        (6, {"n": 5, "kind": "odd"}),
        (8, {"n": 7, "kind": "odd"}),
        (10, {"n": 9, "kind": "odd"}),
    ]
    assert db.query("q_events").sort_by("n", reverse=True).first() == (10, {"n": 9, "kind": "odd"})
    assert db.query("q_events").count() == 10


def test_declarative_filters(db: obj.Db, orders: list[int]) -> None:
    a, b, c, d, e, f_ = orders
    q = db.query(QOrder)
    assert ids(q.filter(f("total") > 100)) == [a, d]
    assert ids(q.filter(f("total") >= 100).sort_by("total")) == [f_, a, d]
    assert ids(q.filter(f("total") < 20)) == [e]
    assert ids(q.filter(f("total") <= 20)) == [e, b]  # index order on total
    assert ids(q.filter(f("status") == "shipped")) == [a, c, e]
    assert ids(q.filter(f("status") != "shipped")) == [b, d, f_]
    assert ids(q.filter(f("status").is_in(["paid", "new"]))) == [b, d, f_]
    assert ids(q.filter(f("email").startswith("c"))) == [c]
    assert ids(q.filter(f("tags").contains("vip"))) == [a, c]
    assert ids(q.filter(f("note").is_none())) == [a, b, d, e, f_]
    assert ids(q.filter(~f("note").is_none())) == [c]
    assert ids(q.filter(f("note").exists())) == orders  # present, even when None
    assert ids(q.filter(f("missing").exists())) == []
    assert ids(q.filter(f("address.city") == "Oslo")) == [a, e]
    assert ids(q.filter(f("address.street").is_none())) == [a, c, d, e, f_]
    assert ids(q.filter((f("region") == "us") & (f("count") > 0))) == [a, c]
    assert ids(q.filter((f("region") == "ap") | (f("count") >= 3))) == [a, d]
    assert ids(q.filter(~(f("region") == "us"))) == [b, d, e]
    # Several .filter() calls are AND-combined, expressions and callables alike.
    assert ids(q.filter(f("region") == "us").filter(f("count") < 3).filter(lambda o: o.tags)) == [c]


def test_comparison_rules(db: obj.Db) -> None:
    docs = [
        {"v": 1},
        {"v": 1.0},
        {"v": 2.5},
        {"v": "1"},
        {"v": True},
        {"v": None},
        {},
        {"v": [1, 2]},
        {"v": math.nan},
        {"v": -(2**63)},
    ]
    with db.transaction() as tx:
        for d in docs:
            tx.insert("rules", d)
    q = db.query("rules")
    assert ids(q.filter(f("v") == 1)) == [1, 2]  # ints and floats compare numerically
    assert ids(q.filter(f("v") < 2)) == [1, 2, 10]
    assert ids(q.filter(f("v") > 0.5)) == [1, 2, 3]
    # A mismatched type is false for every operator, != included; ~ negates the result.
    assert ids(q.filter(f("v") != 1)) == [3, 10]
    assert ids(q.filter(~(f("v") == 1))) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert ids(q.filter(f("v") == "1")) == [4]
    assert ids(q.filter(f("v") == True)) == [5]  # noqa: E712 (bool is not a number)
    assert ids(q.filter(f("v") == None)) == [6]  # noqa: E711
    assert ids(q.filter(f("v").is_none())) == [6, 7]
    assert ids(q.filter(f("v").exists())) == [1, 2, 3, 4, 5, 6, 8, 9, 10]
    assert ids(q.filter(f("v") == [1, 2])) == [8]
    assert ids(q.filter(f("v").contains(2))) == [8]
    assert ids(q.filter(f("v").contains("1"))) == []  # contains() is for lists only
    assert ids(q.filter(f("v") != math.nan)) == []  # NaN compares with nothing
    assert ids(q.filter(f("v.deeper") == 1)) == []
    assert ids(q.filter(f("v").startswith(""))) == [4]


def test_filter_argument_errors(db: obj.Db) -> None:
    q = db.query("anything")
    for bad in [42, "status == 1", f("x")]:
        with pytest.raises(obj.InvalidArgumentError):
            q.filter(bad)  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError):
        bool(f("a") == 1)
    with pytest.raises(obj.InvalidArgumentError):
        _ = (f("a") == 1) and (f("b") == 2)
    with pytest.raises(obj.InvalidArgumentError):
        f("")
    with pytest.raises(obj.InvalidArgumentError):
        f("a..b")
    with pytest.raises(obj.InvalidArgumentError):
        f("a").startswith(1)  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError):
        q.filter(f("a") == object()).fetch()
    for bad_n in [-1, 1.5, "3", True]:
        with pytest.raises(obj.InvalidArgumentError):
            q.limit(bad_n)  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError):
            q.offset(bad_n)  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError):
        q.sort_by(42)  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError):
        db.query(42)  # type: ignore[call-overload]


# -- plans ---------------------------------------------------------------------------------------


def test_plan_choice(db: obj.Db, orders: list[int]) -> None:
    q = db.query(QOrder)
    assert q.explain() == "scan"
    assert q.filter(f("count") > 1).explain() == "scan + filter"
    assert q.filter(f("email") == "a@x").explain().startswith("index email")
    assert q.filter(f("total") > 100).explain().startswith("index total")
    assert q.filter(f("total") < 100).filter(f("total") > 10).explain().startswith("index total")
    assert q.filter(f("tags").contains("vip")).explain().startswith("index tags")
    both = q.filter((f("region") == "us") & (f("status") == "new")).explain()
    assert both.startswith("index by_region_status")
    assert "scan" in q.filter(f("region") != "us").explain()
    assert "scan" in q.filter((f("region") == "us") | (f("count") > 1)).explain()
    # Sorting by an indexed field streams from the index; other sorts happen in memory.
    assert "sorted by index" in q.sort_by("total").explain()
    assert q.sort_by("count").explain().endswith("+ sort")
    assert q.filter(lambda o: True).explain().endswith("python filter")
    assert q.index_range("region", "eu", "us").explain().startswith("index region")
    # Results follow the plan's order: key order (ties by id) from an index.
    assert [o.total for _, o in q.filter(f("total") >= 0)] == sorted(o.total for o in ORDERS)
    assert [o.email for _, o in q.filter(f("region") >= "eu")] == [
        "b@x",
        "e@x",
        "a@x",
        "c@x",
        "f@x",
    ]
    assert ids(q.filter(f("count") >= 0)) == orders


def test_sort_by_index_streams_in_order(db: obj.Db, orders: list[int]) -> None:
    q = db.query(QOrder).sort_by("total")
    assert [o.total for _, o in q] == sorted(o.total for o in ORDERS)
    assert [o.total for _, o in q.sort_by("total", reverse=True)] == sorted(
        (o.total for o in ORDERS), reverse=True
    )
    # Even with a sort cap far below the collection size: nothing is buffered.
    assert [o.total for _, o in q.sort_buffer_limit(1).limit(3)] == [5.0, 20.0, 99.5]


# -- the builder ---------------------------------------------------------------------------------


def test_builder_is_immutable(db: obj.Db, orders: list[int]) -> None:
    base = db.query(QOrder)
    before = repr(base)
    derived = [
        base.filter(f("total") > 10),
        base.filter(lambda o: True),
        base.sort_by("total"),
        base.sort_by(lambda o: o.count, reverse=True),
        base.limit(2),
        base.offset(1),
        base.index_range("region", "us", "us"),
        base.sort_buffer_limit(5),
    ]
    assert all(d is not base for d in derived)
    assert repr(base) == before
    assert ids(base) == orders
    narrowed = base.filter(f("region") == "us")
    assert ids(narrowed.limit(1)) == [orders[0]]
    assert ids(narrowed) == [orders[0], orders[2], orders[5]]


def test_limit_offset_first_ids_count(db: obj.Db, orders: list[int]) -> None:
    q = db.query(QOrder)
    assert ids(q.limit(2)) == orders[:2]
    assert ids(q.offset(4)) == orders[4:]
    assert ids(q.offset(1).limit(2)) == orders[1:3]
    assert ids(q.offset(10)) == []
    assert q.limit(0).fetch() == []
    assert q.first() == (orders[0], ORDERS[0])
    assert q.limit(0).first() is None
    assert q.filter(f("total") > 1e9).first() is None
    assert q.ids() == orders
    assert q.filter(f("region") == "us").ids() == [orders[0], orders[2], orders[5]]
    assert q.sort_by("count").ids() == [orders[i] for i in (1, 5, 2, 4, 0, 3)]
    assert q.sort_by(lambda o: -o.count).limit(2).ids() == [orders[3], orders[0]]
    assert q.count() == 6
    assert q.limit(4).count() == 4
    assert q.offset(5).count() == 1
    assert q.offset(9).count() == 0
    assert q.filter(f("status") == "shipped").count() == 3
    assert q.filter(f("status") == "shipped").filter(lambda o: o.count > 1).count() == 2
    assert q.index_range("region", "us", "us").count() == 3
    assert q.index_range("tags", "bulk", "vip").count() == 4  # "new" lies in between
    assert q.index_range("tags", "vip", "vip").count() == 2


def test_sort_by_callable_and_field(db: obj.Db, orders: list[int]) -> None:
    q = db.query(QOrder)
    by_count = sorted(range(6), key=lambda i: ORDERS[i].count)
    assert ids(q.sort_by(lambda o: o.count)) == [orders[i] for i in by_count]
    assert ids(q.sort_by("count")) == [orders[i] for i in by_count]
    assert ids(q.sort_by("count", reverse=True)) == [
        orders[i] for i in sorted(range(6), key=lambda i: ORDERS[i].count, reverse=True)
    ]
    # None values sort first; nested paths work.
    assert [o.address.city if o.address else None for _, o in q.sort_by("address.city")] == [
        None,
        None,
        "Oslo",
        "Oslo",
        "Paris",
        "Tokyo",
    ]


def test_sort_buffer_cap_and_top_k(db: obj.Db, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(obj.MAX_SORT_BUFFER, int) and obj.MAX_SORT_BUFFER == 100_000
    with db.transaction() as tx:
        for i in range(500):
            tx.insert("cap", {"n": (i * 7919) % 500, "i": i})
    q = db.query("cap")
    with pytest.raises(obj.InvalidArgumentError, match="sort_buffer_limit"):
        q.sort_by("n").sort_buffer_limit(100).fetch()
    with pytest.raises(obj.InvalidArgumentError):
        q.sort_by(lambda d: d["n"]).sort_buffer_limit(499).fetch()
    assert len(q.sort_by("n").sort_buffer_limit(500).fetch()) == 500
    # Top-k keeps only the best k, whatever the number of records.
    top = q.sort_by("n").sort_buffer_limit(10).limit(5).fetch()
    assert [d["n"] for _, d in top] == [0, 1, 2, 3, 4]
    top = q.sort_by(lambda d: d["n"], reverse=True).sort_buffer_limit(10).offset(2).limit(3).fetch()
    assert [d["n"] for _, d in top] == [497, 496, 495]
    # The module-wide default.
    monkeypatch.setattr(obj, "MAX_SORT_BUFFER", 50)
    with pytest.raises(obj.InvalidArgumentError):
        q.sort_by("n").fetch()
    assert len(q.sort_by("n").limit(50).fetch()) == 50
    assert len(q.sort_by("n").sort_buffer_limit(1000).fetch()) == 500


def test_top_k_is_stable_like_sorted(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in range(200):
            tx.insert("stable", {"k": i % 5})
    rows = db.query("stable").fetch()
    for reverse in (False, True):
        for k in (1, 7, 60):
            want = sorted(rows, key=lambda r: r[1]["k"], reverse=reverse)[:k]
            got = db.query("stable").sort_by("k", reverse=reverse).limit(k).fetch()
            assert got == want


def test_queries_in_transactions(db: obj.Db, orders: list[int]) -> None:
    with db.transaction() as tx:
        new = tx.insert(QOrder("g@x", "us", 1000.0, "new"))
        tx.delete(QOrder, orders[0])
        assert ids(tx.query(QOrder).filter(f("region") == "us")) == [orders[2], orders[5], new]
        assert tx.query(QOrder).filter(f("total") > 100).count() == 2
        assert tx.query(QOrder).sort_by("total", reverse=True).first() == (new, tx.get(QOrder, new))
        with db.read_transaction() as snap:
            assert ids(snap.query(QOrder).filter(f("region") == "us")) == [
                orders[0],
                orders[2],
                orders[5],
            ]
        tx.rollback()
    assert db.query(QOrder).count() == 6


def test_query_over_a_missing_collection(db: obj.Db) -> None:
    assert db.query("nothing_here").fetch() == []
    assert db.query("nothing_here").filter(f("a") == 1).count() == 0
    assert db.query("nothing_here").count() == 0


# -- the oracle: every operator and combination on generated data --------------------------------

MISSING = object()


def lookup(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return MISSING
        doc = doc[part]
    return doc


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare(a: Any, b: Any) -> int | None:
    if is_number(a) and is_number(b):
        if math.isnan(a) or math.isnan(b):
            return None
        return (a > b) - (a < b)
    if isinstance(a, list) and isinstance(b, list):
        for x, y in zip(a, b):
            c = compare(x, y)
            if c is None or c != 0:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    for kind in (bool, str, bytes, type(None)):
        if isinstance(a, kind) and isinstance(b, kind):
            return (a > b) - (a < b) if a is not None else 0
    return None


def oracle(node: tuple[Any, ...], doc: dict[str, Any]) -> bool:
    op = node[0]
    if op == "and":
        return all(oracle(n, doc) for n in node[1])
    if op == "or":
        return any(oracle(n, doc) for n in node[1])
    if op == "not":
        return not oracle(node[1], doc)
    v = lookup(doc, node[1])
    if op == "exists":
        return v is not MISSING
    if op == "is_none":
        return v is MISSING or v is None
    if v is MISSING:
        return False
    if op == "cmp":
        c = compare(v, node[3])
        if c is None:
            return False
        return {"eq": c == 0, "ne": c != 0, "lt": c < 0, "le": c <= 0, "gt": c > 0, "ge": c >= 0}[
            node[2]
        ]
    if op == "in":
        return any(compare(v, x) == 0 for x in node[2])
    if op == "startswith":
        return isinstance(v, str) and v.startswith(node[2])
    if op == "contains":
        return isinstance(v, list) and any(compare(x, node[2]) == 0 for x in v)
    raise AssertionError(op)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([-1.5, 0.0, -0.0, 2.5, 3.0, math.inf, -math.inf, math.nan]),
    st.sampled_from(["", "a", "ab", "b", "ba", "é"]),
    st.just(b"x"),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
PATHS = st.sampled_from(["a", "b", "l", "tags", "nest.c", "nest", "gone"])
DOCS = st.fixed_dictionaries(
    {},
    optional={
        "a": SCALARS,
        "l": VALUES,
        "b": SCALARS,
        "tags": st.lists(st.sampled_from(["a", "b", "c", 1, 2.0]), max_size=3),
        "nest": st.fixed_dictionaries({}, optional={"c": SCALARS}),
    },
)


def leaf_filters() -> st.SearchStrategy[obj.Expr]:
    return st.one_of(
        st.builds(lambda p, v: f(p) == v, PATHS, VALUES),
        st.builds(lambda p, v: f(p) != v, PATHS, SCALARS),
        st.builds(lambda p, v: f(p) < v, PATHS, SCALARS),
        st.builds(lambda p, v: f(p) <= v, PATHS, SCALARS),
        st.builds(lambda p, v: f(p) > v, PATHS, SCALARS),
        st.builds(lambda p, v: f(p) >= v, PATHS, SCALARS),
        st.builds(lambda p, vs: f(p).is_in(vs), PATHS, st.lists(SCALARS, max_size=3)),
        st.builds(lambda p, s: f(p).startswith(s), PATHS, st.sampled_from(["", "a", "b", "é"])),
        st.builds(lambda p, v: f(p).contains(v), PATHS, SCALARS),
        st.builds(lambda p: f(p).exists(), PATHS),
        st.builds(lambda p: f(p).is_none(), PATHS),
    )


FILTERS = st.recursive(
    leaf_filters(),
    lambda inner: st.one_of(
        st.builds(lambda x, y: x & y, inner, inner),
        st.builds(lambda x, y: x | y, inner, inner),
        st.builds(lambda x: ~x, inner),
    ),
    max_leaves=6,
)


@obj.document(
    collection="oracle_indexed",
    version=1,
    indexes=[obj.Composite(("a", "b"), name="by_a_b")],
)
@dataclass
class OracleIndexes:  # declares indexes on the dict documents of "oracle_indexed"
    a: Annotated[Optional[int], obj.Index]
    b: Annotated[Optional[str], obj.Index]
    tags: Annotated[list[str], obj.Each]


@pytest.fixture(scope="module")
def oracle_db() -> Iterator[obj.Db]:
    with tempfile.TemporaryDirectory() as tmp:
        db = obj.Db(pathlib.Path(tmp) / "oracle.obj", durability="none")
        db.index_info(OracleIndexes)  # builds the indexes
        yield db
        db.close()


_round = [0]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(docs=st.lists(DOCS, max_size=25), filters=st.lists(FILTERS, min_size=1, max_size=3))
def test_filters_match_a_python_oracle(
    oracle_db: obj.Db, docs: list[dict[str, Any]], filters: list[obj.Expr]
) -> None:
    _round[0] += 1
    for collection in ("oracle_plain", "oracle_indexed"):
        with oracle_db.transaction() as tx:
            for oid, _ in list(tx.all(collection)):
                tx.delete(collection, oid)
            ids_ = [tx.insert(collection, d) for d in docs]
        want = [i for i, d in zip(ids_, docs) if all(oracle(x.node, d) for x in filters)]
        q = oracle_db.query(collection)
        for x in filters:
            q = q.filter(x)
        got = q.fetch()
        if collection == "oracle_plain":
            assert [i for i, _ in got] == want  # a scan yields id order
        else:
            assert sorted(i for i, _ in got) == want  # an index yields key order
        assert all(repr(d) == repr(docs[ids_.index(i)]) for i, d in got)  # NaN-safe
        assert q.count() == len(want)
        assert sorted(q.ids()) == want


# -- streaming ------------------------------------------------------------------------------------


@obj.document(collection="stream_items", version=1)
@dataclass
class Tiny:
    n: int
    label: str


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read RSS")
def test_streaming_a_million_records_in_constant_memory(tmp_path: pathlib.Path) -> None:
    total = 1_000_000
    with obj.Db(tmp_path / "stream.obj", durability="none") as db:
        for start in range(0, total, 250_000):
            with db.transaction() as tx:
                ins = tx.insert
                for n in range(start, start + 250_000):
                    ins(Tiny(n, "x"))
        baseline = rss_bytes()
        peak = baseline
        seen = 0
        for oid, doc in db.query(Tiny):
            seen += 1
            if oid % 100_000 == 0:
                assert doc.n == oid - 1
                peak = max(peak, rss_bytes())
        assert seen == total
        # A million decoded documents would take hundreds of MB; streaming holds a batch.
        assert peak - baseline < 40 << 20, (peak - baseline) >> 20
        # Filters run in the engine over all of them; only matches become objects.
        assert db.query(Tiny).filter(f("n") >= total - 3).count() == 3
        assert [d.n for _, d in db.query(Tiny).filter(f("n") < 2)] == [0, 1]
        peak = max(peak, rss_bytes())
        assert peak - baseline < 40 << 20
        # all() and ids() stream as well.
        assert sum(1 for _ in db.all(Tiny)) == total
        assert db.query(Tiny).filter(f("label") == "x").count() == total
        assert rss_bytes() - baseline < 40 << 20
