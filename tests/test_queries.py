"""The query builder: Python predicates and sorts, declarative field filters evaluated in
the engine, automatic index use, bounded sorts and streaming."""

from __future__ import annotations

import datetime
import fractions
import math
import os
import pathlib
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Optional

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
    # A mismatched type, NaN or a missing field is false for == and the orderings; != is
    # exactly ~(==), so it holds for all of those.
    assert ids(q.filter(f("v") != 1)) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert ids(q.filter(~(f("v") == 1))) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert ids(q.filter(f("v") > 5)) == []
    assert ids(q.filter(~(f("v") > 5))) == list(range(1, 11))
    assert ids(q.filter(f("v") == "1")) == [4]
    assert ids(q.filter(f("v") == True)) == [5]  # noqa: E712 (bool is not a number)
    assert ids(q.filter(f("v") == None)) == [6]  # noqa: E711
    assert ids(q.filter(f("v").is_none())) == [6, 7]
    assert ids(q.filter(f("v").exists())) == [1, 2, 3, 4, 5, 6, 8, 9, 10]
    assert ids(q.filter(f("v") == [1, 2])) == [8]
    assert ids(q.filter(f("v").contains(2))) == [8]
    assert ids(q.filter(f("v").contains("1"))) == [4]  # a substring of a str
    assert ids(q.filter(f("v").contains(1))) == [8]  # an element of a list
    assert ids(q.filter(f("v") == math.nan)) == []  # NaN equals nothing...
    assert ids(q.filter(f("v") != math.nan)) == list(range(1, 11))  # ...so != holds for all
    assert ids(q.filter(f("v.deeper") != 1)) == list(range(1, 11))
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
    # Descending is the exact reverse: ties (two counts of 0) by id descending.
    assert ids(q.sort_by("count", reverse=True)) == [
        orders[i] for i in sorted(range(6), key=lambda i: (ORDERS[i].count, i), reverse=True)
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


def test_top_k_orders_ties_like_the_full_sort(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in range(200):
            tx.insert("stable", {"k": i % 5})
    rows = db.query("stable").fetch()
    for reverse in (False, True):
        # Ties by id; descending is the exact reverse (ids descending among equal keys).
        want_all = sorted(rows, key=lambda r: (r[1]["k"], r[0]), reverse=reverse)
        for k in (1, 7, 60):
            for key in ("k", lambda d: d["k"]):
                got = db.query("stable").sort_by(key, reverse=reverse).limit(k).fetch()
                assert got == want_all[:k]
        assert db.query("stable").sort_by("k", reverse=reverse).fetch() == want_all


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
    if op == "cmp" and node[2] == "ne":
        return not oracle(("cmp", node[1], "eq", node[3]), doc)
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
        if isinstance(v, str) and isinstance(node[2], str):
            return node[2] in v
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
        # Lists, or a str where the Each index of "oracle_indexed" expects lists.
        "tags": st.one_of(
            st.lists(st.sampled_from(["a", "b", "c", 1, 2.0]), max_size=3),
            st.sampled_from(["abc", "b", ""]),
        ),
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


# -- contains: list elements and str substrings --------------------------------------------------


@obj.document(collection="q_texts", version=1)
@dataclass
class Text:
    s: str
    words: Annotated[list[str], obj.Each] = field(default_factory=list)
    nums: Annotated[list[int], obj.Each] = field(default_factory=list)
    address: Optional[Address] = None


@obj.document(collection="q_mixed_each", version=1)
@dataclass
class MixedEach:  # declares an Each index on the dict documents of "q_mixed_each"
    tags: Annotated[list[str], obj.Each]


def test_contains_matches_str_substrings_and_list_elements(db: obj.Db) -> None:
    texts = [
        Text("hello world", ["hello", "world"], [1, 2], Address("New York")),
        Text("worldly", ["w"], [2], Address("York")),
        Text("", [], [], None),
    ]
    with db.transaction() as tx:
        a, b, c = (tx.insert(t) for t in texts)
        q = tx.query(Text)
        assert ids(q.filter(f("s").contains("world"))) == [a, b]  # inside a transaction
    q = db.query(Text)
    assert ids(q.filter(f("s").contains("world"))) == [a, b]
    assert ids(q.filter(f("s").contains("o w"))) == [a]
    assert ids(q.filter(f("s").contains(""))) == [a, b, c]
    assert ids(q.filter(f("s").contains("World"))) == []  # case-sensitive, as `in` is
    assert ids(q.filter(f("address.city").contains("York"))) == [a, b]  # nested paths
    assert ids(q.filter(~f("s").contains("world"))) == [c]
    assert ids(q.filter(f("s").contains(1))) == []  # only a str holds a str
    # A list field: membership, answered by its Each index.
    assert ids(q.filter(f("words").contains("world"))) == [a]
    assert ids(q.filter(f("words").contains("wor"))) == []  # an element, not a substring
    assert q.filter(f("words").contains("world")).explain().startswith("index words")
    assert ids(q.filter(f("nums").contains(2))) == [a, b]
    assert ids(q.filter(f("nums").contains(2.0))) == [a, b]
    assert q.filter(f("nums").contains(2)).explain().startswith("index nums")
    # A str substring cannot use an index.
    assert q.filter(f("s").contains("world")).explain() == "scan + filter"
    assert q.filter(f("s").contains("world")).count() == 2
    # Typed records read by collection name (dicts decoded by the stored schema) agree.
    assert ids(db.query("q_texts").filter(f("s").contains("world"))) == [a, b]
    assert ids(db.query("q_texts").filter(f("words").contains("world"))) == [a]


def test_contains_on_dict_documents_with_an_each_index(db: obj.Db) -> None:
    db.index_info(MixedEach)  # builds the Each index on "q_mixed_each"
    docs = [
        {"tags": ["vip", "new"]},
        {"tags": "a vip customer"},  # a str where the index expects lists
        {"tags": "vip"},
        {"tags": [1, "vip x"]},
        {},
        {"tags": None},
    ]
    with db.transaction() as tx:
        got = [tx.insert("q_mixed_each", d) for d in docs]
        assert ids(tx.query("q_mixed_each").filter(f("tags").contains("vip"))) == got[:3]
    q = db.query("q_mixed_each")
    assert ids(q.filter(f("tags").contains("vip"))) == got[:3]
    assert q.filter(f("tags").contains("vip")).count() == 3
    # By name, a str may be a str field's substring, so the index is not read...
    assert q.filter(f("tags").contains("vip")).explain() == "scan + filter"
    # ...but any other value only matches list elements, which the index answers.
    assert q.filter(f("tags").contains(1)).explain().startswith("index tags")
    assert ids(q.filter(f("tags").contains(1))) == [got[3]]
    assert ids(q.filter(f("tags").contains(1.0))) == [got[3]]
    assert ids(q.filter(f("tags").contains(True))) == []
    # Through the class, the schema says `tags` is a list: the index answers str values.
    typed = db.query(MixedEach).filter(f("tags").contains("vip"))
    assert typed.explain().startswith("index tags")


# -- != is the negation of == --------------------------------------------------------------------


def test_not_equal_is_the_negation_of_equal(db: obj.Db) -> None:
    docs = [
        {"x": math.nan},
        {"x": 1.0},
        {"x": 1},
        {"x": True},
        {"x": -0.0},
        {"x": "1"},
        {"x": None},
        {},
        {"x": [1]},
        {"x": {"a": 1}},
    ]
    with db.transaction() as tx:
        for d in docs:
            tx.insert("ne", d)
        assert ids(tx.query("ne").filter(f("x") != 1.0)) == [1, 4, 5, 6, 7, 8, 9, 10]
    q = db.query("ne")
    assert ids(q.filter(f("x") != 1.0)) == [1, 4, 5, 6, 7, 8, 9, 10]  # NaN != 1.0 (IEEE)
    assert ids(q.filter(f("x") != math.nan)) == list(range(1, 11))
    assert ids(q.filter(f("x") != 0)) == [1, 2, 3, 4, 6, 7, 8, 9, 10]  # -0.0 == 0
    assert ids(q.filter(f("x") != True)) == [1, 2, 3, 5, 6, 7, 8, 9, 10]  # noqa: E712
    assert ids(q.filter(f("x") != None)) == [1, 2, 3, 4, 5, 6, 8, 9, 10]  # noqa: E711
    assert ids(q.filter(f("x") != {"a": 1})) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert ids(q.filter(f("x.deep") != 1)) == list(range(1, 11))  # a missing field
    assert ids(q.filter(f("x").is_in([1]) & (f("x") != 1))) == []


@obj.document(collection="q_floats", version=1)
@dataclass
class Reading:
    x: Annotated[float, obj.Index]
    label: str = ""


def test_not_equal_on_typed_and_indexed_fields(db: obj.Db) -> None:
    with db.transaction() as tx:
        got = [tx.insert(Reading(x)) for x in (math.nan, 1.0, -0.0, math.inf, 2.5)]
    q = db.query(Reading)
    assert ids(q.filter(f("x") != 1.0)) == [got[0], got[2], got[3], got[4]]
    assert ids(q.filter(f("x") == 1.0)) == [got[1]]
    assert sorted(ids(q.filter((f("x") >= 0) & (f("x") != 1.0)))) == [got[2], got[3], got[4]]
    assert ids(q.filter(f("label") != "")) == []


NE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, math.nan, math.inf, -math.inf, 2.0**53]),
    st.just(2**53 + 1),
    st.sampled_from(["", "1", "a"]),
    st.sampled_from([b"", b"1"]),
    st.lists(st.one_of(st.integers(0, 2), st.sampled_from([1.0, math.nan, "1"])), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 1), max_size=2),
)


def documented_eq(a: Any, b: Any) -> bool:
    """`==` as the docs define it: Python's ==, except that a bool is not a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(documented_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(documented_eq(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    return bool(a == b)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.lists(st.one_of(st.just(MISSING), NE_VALUES), max_size=12),
    probe=NE_VALUES,
)
def test_not_equal_matches_not_equal_oracle(
    oracle_db: obj.Db, values: list[Any], probe: Any
) -> None:
    # "a" is indexed (standard and composite), so it holds scalars only.
    docs = [
        {}
        if v is MISSING
        else {"l": v, "nest": {"c": v}, **({} if isinstance(v, (list, dict)) else {"a": v})}
        for v in values
    ]
    for collection in ("oracle_plain", "oracle_indexed"):
        with oracle_db.transaction() as tx:
            for oid, _ in list(tx.all(collection)):
                tx.delete(collection, oid)
            got_ids = [tx.insert(collection, d) for d in docs]
        for path in ("a", "l", "nest.c", "gone"):
            q = oracle_db.query(collection)
            eq = [i for i, d in zip(got_ids, docs) if documented_eq_at(d, path, probe)]
            ne = [i for i in got_ids if i not in eq]
            assert sorted(ids(q.filter(f(path) == probe))) == eq
            assert sorted(ids(q.filter(f(path) != probe))) == ne
            assert sorted(ids(q.filter(~(f(path) == probe)))) == ne
            assert q.filter(f(path) != probe).count() == len(ne)
            # Where Python's own != applies (scalars, no bool/number mixing), it agrees.
            plain = (int, float, str, bytes)
            for i, d in zip(got_ids, docs):
                v = lookup(d, path)
                if type(v) in plain and type(probe) in plain:
                    assert (i in ne) == bool(v != probe), (v, probe)


def documented_eq_at(doc: dict[str, Any], path: str, probe: Any) -> bool:
    v = lookup(doc, path)
    return v is not MISSING and documented_eq(v, probe)


# -- sorting: one order, index or not, either direction ------------------------------------------


def test_reverse_sort_streams_from_the_index(db: obj.Db, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.transaction() as tx:
        got = [tx.insert(Reading(float(i % 7), str(i))) for i in range(300)]
        # Inside a transaction, its own writes included.
        tq = tx.query(Reading).sort_by("x", reverse=True)
        assert tq.explain() == "index x [* .. *] (sorted by index, descending)"
        assert ids(tq.limit(3)) == [got[293], got[286], got[279]]
    q = db.query(Reading)
    assert q.sort_by("x", reverse=True).explain() == (
        "index x [* .. *] (sorted by index, descending)"
    )
    assert q.sort_by("x").explain() == "index x [* .. *] (sorted by index)"
    want = sorted(got, key=lambda i: ((i - 1) % 7, i), reverse=True)
    # Far past the sort buffer: nothing is held, since the index yields the order.
    monkeypatch.setattr(obj, "MAX_SORT_BUFFER", 10)
    assert ids(q.sort_by("x", reverse=True)) == want
    assert ids(q.sort_by("x", reverse=True).sort_buffer_limit(0)) == want
    assert ids(q.sort_by("x", reverse=True).offset(5).limit(20)) == want[5:25]
    assert q.sort_by("x", reverse=True).ids() == want
    with pytest.raises(obj.InvalidArgumentError, match="MAX_SORT_BUFFER"):
        q.sort_by("label", reverse=True).fetch()  # no index: a buffered sort
    # A filter on the sorted field reads a range of the index backwards.
    ranged = q.filter((f("x") >= 2) & (f("x") <= 4)).sort_by("x", reverse=True)
    assert ranged.explain() == "index x [2 .. 4] + filter (sorted by index, descending)"
    assert ids(ranged) == [i for i in want if 2 <= (i - 1) % 7 <= 4]
    sliced = q.index_range("x", 5, None).sort_by("x", reverse=True)
    assert sliced.explain() == "index x [5 .. *] (sorted by index, descending)"
    assert ids(sliced) == [i for i in want if (i - 1) % 7 >= 5]
    assert q.filter(f("x") > 5).sort_by("x", reverse=True).count() == len(
        [i for i in want if (i - 1) % 7 > 5]
    )


SORT_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -0.0, 0.0, 1.0, math.nan, math.inf, -math.inf, 2.0**63]),
    st.sampled_from([2**63 - 1, -(2**63)]),
    st.sampled_from(["", "a", "b", "\x00"]),
    st.sampled_from([b"", b"k", b"\x00"]),
    st.sampled_from([datetime.date(2024, 1, 2), datetime.date(1969, 12, 31)]),
    st.sampled_from([datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.datetime(1970, 1, 1)]),
    st.sampled_from([uuid.UUID(int=0), uuid.UUID(int=5)]),
)
SORT_VALUES = st.one_of(
    SORT_SCALARS,
    st.lists(st.one_of(st.integers(0, 2), st.sampled_from(["a", None])), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 1), max_size=2),
)

#: The documented order of types in a sort.
_RANK = [type(None), bool, (int, float), str, bytes, datetime.date, datetime.datetime, uuid.UUID]


def model_key(v: Any) -> tuple[Any, ...]:
    """The documented sort order, written independently of the engine."""
    if v is MISSING:
        v = None
    if isinstance(v, list):
        return (9, tuple(model_key(x) for x in v))
    if isinstance(v, dict):
        return (10, tuple((k.encode(), model_key(v[k])) for k in sorted(v)))
    if isinstance(v, datetime.datetime):
        return (6, v)
    for rank, kind in enumerate(_RANK):
        if isinstance(v, kind):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if isinstance(v, float) and math.isnan(v):
                    return (2, 1, 0)
                return (2, 0, fractions.Fraction(v) if not math.isinf(v) else v)
            if isinstance(v, str):
                return (3, v.encode())
            return (rank, v) if v is not None else (0,)
    raise AssertionError(v)


@obj.document(collection="sort_indexed", version=1)
@dataclass
class SortIndexes:  # declares an index on the dict documents of "sort_indexed"
    v: Annotated[Optional[int], obj.Index]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.lists(st.one_of(st.just(MISSING), SORT_SCALARS), max_size=30),
    lists=st.lists(SORT_VALUES, max_size=8),
    k=st.integers(0, 12),
    reverse=st.booleans(),
)
def test_sorts_are_one_total_order(
    oracle_db: obj.Db, values: list[Any], lists: list[Any], k: int, reverse: bool
) -> None:
    oracle_db.index_info(SortIndexes)
    scalar_docs = [{} if v is MISSING else {"v": v} for v in values]
    orders = {}
    for collection, docs in (
        ("sort_plain", scalar_docs + [{"v": v} for v in lists]),
        ("sort_plain_scalars", scalar_docs),
        ("sort_indexed", scalar_docs),
    ):
        with oracle_db.transaction() as tx:
            for oid, _ in list(tx.all(collection)):
                tx.delete(collection, oid)
            got_ids = [tx.insert(collection, d) for d in docs]
        q = oracle_db.query(collection)
        full = ids(q.sort_by("v", reverse=reverse))
        want = sorted(
            got_ids, key=lambda i: (model_key(docs[got_ids.index(i)].get("v", MISSING)), i)
        )
        if reverse:
            want.reverse()
        assert full == want
        assert ids(q.sort_by("v", reverse=reverse).limit(k)) == full[:k]
        assert ids(q.sort_by("v", reverse=reverse).offset(2).limit(k)) == full[2 : 2 + k]
        assert q.sort_by("v", reverse=reverse).ids() == full
        by_callable = q.sort_by(lambda d: d.get("v"), reverse=reverse)
        assert ids(by_callable) == full
        assert ids(by_callable.limit(k)) == full[:k]
        orders[collection] = [got_ids.index(i) for i in full]
        indexed = q.sort_by("v", reverse=reverse).explain()
        assert ("sorted by index" in indexed) == (collection == "sort_indexed")
    assert orders["sort_indexed"] == orders["sort_plain_scalars"]


def test_mixed_types_sort_like_index_keys(db: obj.Db) -> None:
    values = [b"", 0.5, True, "a", None, 1, -0.0, False, math.nan, 0]
    with db.transaction() as tx:
        for v in values:
            tx.insert("mixed", {"v": v})
        tx.insert("mixed", {})
    got = [d.get("v", "missing") for _, d in db.query("mixed").sort_by("v")]
    assert repr(got) == repr([None, "missing", False, True, -0.0, 0, 0.5, 1, math.nan, "a", b""])
    top = [d.get("v", "missing") for _, d in db.query("mixed").sort_by("v").limit(3)]
    assert repr(top) == repr([None, "missing", False])
    # A key callable's results follow the same order; values it cannot order are refused.
    got = [d.get("v") for _, d in db.query("mixed").sort_by(lambda d: d.get("v"))]
    assert repr(got) == repr([None, None, False, True, -0.0, 0, 0.5, 1, math.nan, "a", b""])
    with pytest.raises(obj.InvalidArgumentError, match="sort key"):
        db.query("mixed").sort_by(lambda d: object()).fetch()


# -- messages write values as Python does --------------------------------------------------------


@obj.document(collection="q_keys", version=1)
@dataclass
class Keyed:
    key: Annotated[uuid.UUID, obj.Unique]
    day: Annotated[datetime.date, obj.Index]
    at: Annotated[datetime.datetime, obj.Index]
    blob: Annotated[bytes, obj.Index]
    ratio: Annotated[float, obj.Index] = 0.0


def test_values_in_messages_read_like_python(db: obj.Db) -> None:
    k = uuid.UUID("12345678-1234-5678-1234-567812345678")
    day, at = datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5)
    db.insert(Keyed(k, day, at, b"k"))
    q = db.query(Keyed)
    assert q.filter(f("key") == k).explain() == (
        "index key [UUID('12345678-1234-5678-1234-567812345678') .. "
        "UUID('12345678-1234-5678-1234-567812345678')] + filter"
    )
    assert q.filter(f("day") == day).explain() == (
        "index day [datetime.date(2024, 1, 2) .. datetime.date(2024, 1, 2)] + filter"
    )
    assert q.filter(f("at") >= at).explain() == (
        "index at [datetime.datetime(2024, 1, 2, 3, 4, 5) .. *] + filter"
    )
    aware = datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)
    assert repr(aware) in q.filter(f("at") <= aware).explain()
    assert q.filter(f("blob") == b"k").explain() == "index blob [b'k' .. b'k'] + filter"
    assert q.filter(f("ratio") > 1.5).explain() == "index ratio [1.5 .. *] + filter"
    assert q.filter(f("ratio") > 2).explain() == "index ratio [2 .. *] + filter"
    assert q.index_range("ratio", 1e16, None).explain() == "index ratio [1e+16 .. *]"
    assert db.query("q_keys").index_range("blob", "it's", None).explain() == (
        'index blob ["it\'s" .. *]'
    )
    with pytest.raises(obj.InvalidArgumentError) as e:
        db.insert(Keyed(k, day, at, b"x"))
    assert "UUID('12345678-1234-5678-1234-567812345678')" in str(e.value)
    assert "Uuid(" not in str(e.value)
    with db.transaction() as tx:
        tx.upsert("c", 2**64 - 1, b"max")
        with pytest.raises(obj.InvalidArgumentError, match="use upsert") as e:
            tx.insert("c", b"no id left")
        assert "put" not in str(e.value).replace("upsert", "")


# -- arguments are checked at the call ------------------------------------------------------------


def test_bad_builder_arguments_raise_obj_errors_at_the_call(db: obj.Db) -> None:
    q = db.query("anything")
    calls: list[Callable[[], object]] = [
        lambda: f("a").is_in(5),  # type: ignore[arg-type]
        lambda: f("a").is_in(None),  # type: ignore[arg-type]
        lambda: f("a").is_in(b"ab"),
        lambda: f("a").is_in([f("b")]),
        lambda: f("a") == f("b"),
        lambda: f("a") < (f("b") == 1),
        lambda: f("a").contains(f("b")),
        lambda: f(1),  # type: ignore[arg-type]
        lambda: f("a").startswith(None),  # type: ignore[arg-type]
        lambda: (f("a") == 1) & 1,  # type: ignore[operator]
        lambda: True & (f("a") == 1),  # type: ignore[operator]
        lambda: None | (f("a") == 1),  # type: ignore[operator]
        lambda: q.filter(obj.Expr(("bogus", "a"))).fetch(),
        lambda: q.filter(obj.Expr(("cmp",))).fetch(),
        lambda: q.filter(obj.Expr(("and", 5))).fetch(),
        lambda: db.query(QOrder).filter(obj.Expr(("cmp",))).fetch(),
        lambda: q.limit(2**70),
        lambda: q.limit(2**63),
        lambda: q.offset(2**70),
        lambda: q.sort_buffer_limit(2**70),
        lambda: q.limit(-1),
        lambda: q.limit(None),  # type: ignore[arg-type]
        lambda: q.limit(False),
        lambda: q.offset(True),
        lambda: q.sort_buffer_limit(True),
        lambda: q.sort_by(123),  # type: ignore[arg-type]
        lambda: q.sort_by(""),
        lambda: q.sort_by("a", reverse="yes"),  # type: ignore[arg-type]
        lambda: q.sort_by("a", reverse=None),  # type: ignore[arg-type]
        lambda: q.filter("x"),  # type: ignore[arg-type]
        lambda: q.filter(123),  # type: ignore[arg-type]
        lambda: q.filter(f("x")),  # type: ignore[arg-type]
        lambda: q.index_range(123),  # type: ignore[arg-type]
        lambda: q.index_range(""),
    ]
    for call in calls:
        with pytest.raises(obj.InvalidArgumentError):
            call()
    with pytest.raises(obj.InvalidArgumentError, match="is_in"):
        f("a").is_in(5)  # type: ignore[arg-type]
    with pytest.raises(obj.InvalidArgumentError, match="limit"):
        q.limit(2**70)
    with pytest.raises(obj.InvalidArgumentError, match="offset"):
        q.offset(2**70)
    # The largest counts are accepted, and run.
    assert q.limit(2**63 - 1).offset(2**63 - 1).fetch() == []
    assert q.limit(2**63 - 1).count() == 0
    assert ids(q.filter(f("a").is_in(x for x in [1, 2]))) == []


def test_bad_values_raise_obj_errors_when_the_query_runs(db: obj.Db, orders: list[int]) -> None:
    q = db.query(QOrder)
    runs: list[Callable[[], object]] = [
        lambda: q.filter(f("total") == object()).fetch(),
        lambda: q.filter(f("tags").contains(object())).count(),
        lambda: q.filter(f("total").is_in([object()])).ids(),
        lambda: q.index_range("by_region_status", ("us", [1]), None).fetch(),
        lambda: q.index_range("region", object(), None).fetch(),
        lambda: q.index_range("region", ("us", "new", 3), None).fetch(),
        lambda: q.index_range("region", {"a": 1}, None).explain(),
        lambda: q.filter(f("total") == 2**70).fetch(),
    ]
    for run in runs:
        with pytest.raises(obj.InvalidArgumentError):
            run()
    with pytest.raises(obj.NotFoundError):
        q.index_range("nope").fetch()


# -- typed queries name fields of their class -----------------------------------------------------


@obj.document(collection="q_profiles", version=1)
@dataclass
class Profile:
    name: str
    address: Optional[Address] = None
    meta: dict[str, int] = field(default_factory=dict)
    anything: Any = None


def test_unknown_fields_of_a_class_are_refused(db: obj.Db) -> None:
    with db.transaction() as tx:
        pid = tx.insert(Profile("a", Address("Oslo"), {"k": 1}, {"x": 2}))
        with pytest.raises(obj.InvalidArgumentError, match=r"Profile has no field 'nope'"):
            tx.query(Profile).sort_by("nope")
    q = db.query(Profile)
    for build in [
        lambda: q.sort_by("nope"),
        lambda: q.sort_by("nope", reverse=True),
        lambda: q.filter(f("nope") == 1),
        lambda: q.filter(f("nope").exists()),
        lambda: q.filter(f("nope").is_none()),
        lambda: q.filter((f("name") == "a") & ~(f("nope") > 1)),
        lambda: q.filter((f("name") == "a") | f("nope").contains(1)),
    ]:
        with pytest.raises(obj.InvalidArgumentError) as e:
            build()
        assert "'nope'" in str(e.value) and "Profile" in str(e.value), str(e.value)
    # Nested document classes are checked too; a dict or Any field takes any key.
    with pytest.raises(obj.InvalidArgumentError, match="'zip'") as e:
        q.filter(f("address.zip") == "0150")
    assert "'address'" in str(e.value) and "Profile" in str(e.value)
    with pytest.raises(obj.InvalidArgumentError, match=r"'name' is a str"):
        q.sort_by("name.first")
    assert ids(q.filter(f("address.city") == "Oslo")) == [pid]
    assert ids(q.filter(f("meta.k") == 1)) == [pid]
    assert ids(q.filter(f("meta.other") == 1)) == []
    assert ids(q.filter(f("anything.x.y") == 2)) == []
    assert ids(q.filter(f("anything.x") == 2)) == [pid]
    assert ids(q.sort_by("address.city")) == [pid]
    # By collection name, a missing field is part of the filter semantics.
    by_name = db.query("q_profiles")
    assert ids(by_name.filter(f("nope") == 1)) == []
    assert ids(by_name.filter(f("nope") != 1)) == [pid]
    assert ids(by_name.sort_by("nope")) == [pid]
