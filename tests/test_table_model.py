"""``obj.Table`` (``db.table(name)``) against a Python model: a dict from partition key to
a dict from sort key to item, read in key order.

First plain examples of each behaviour (so a failure reads as a sentence), then a stateful
property test: puts, gets, deletes, queries with every sort-key condition, filters,
``reverse`` and pagination at every page size, scans, counts, updates, conditional writes,
batches, transactions and reopening, over tables with str, bytes and int partition and
sort keys (and tables without sort keys). After every step each table must read exactly
as the model says.

``OBJ_TABLE_MODEL_EXAMPLES`` and ``OBJ_TABLE_MODEL_STEPS`` turn the stateful test up for
long runs.
"""

from __future__ import annotations

import operator
import os
import pathlib
import shutil
import tempfile
from typing import Any, Callable, Optional

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import obj
from obj import field

EXAMPLES = int(os.environ.get("OBJ_TABLE_MODEL_EXAMPLES", "50"))
STEPS = int(os.environ.get("OBJ_TABLE_MODEL_STEPS", "30"))

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

#: One sample key per key type, and a few more in key order.
SAMPLE = {
    "str": ["a", "b", "c"],
    "bytes": [b"a", b"b", b"c"],
    "int": [-(2**63), -1, 2**63 - 1],
}
KINDS = ["str", "bytes", "int"]
SK_KINDS: list[Optional[str]] = [None, "str", "bytes", "int"]
COMBOS = [(pk, sk) for pk in KINDS for sk in SK_KINDS]


def combo_id(combo: tuple[str, Optional[str]]) -> str:
    return f"pk={combo[0]}-sk={combo[1] or 'none'}"


class Rollback(Exception):
    """Raised inside a ``with db.transaction()`` block to roll it back."""


def typed(value: Any) -> Any:
    """``value`` with the type of every part spelled out: ``True == 1`` and ``1 == 1.0`` in
    Python, but a store that gives back 1 for True (or 1.0 for 1) is wrong."""
    if isinstance(value, dict):
        return ("dict", sorted((k, typed(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(v) for v in value])
    return (type(value).__name__, value)


def same(got: Any, expected: Any) -> None:
    assert typed(got) == typed(expected), f"got {got!r}, expected {expected!r}"


# -- plain examples: keys ---------------------------------------------------------------


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_put_get_delete_for_every_key_type_combination(
    db: obj.Db, combo: tuple[str, Optional[str]]
) -> None:
    pk_kind, sk_kind = combo
    t = db.table(combo_id(combo))
    pks = SAMPLE[pk_kind]
    if sk_kind is None:
        for i, pk in enumerate(pks):
            t.put(pk, {"i": i})
        assert [t.get(pk) for pk in pks] == [{"i": 0}, {"i": 1}, {"i": 2}]
        t.put(pks[1], {"i": 10})  # a put replaces the whole item
        assert t.get(pks[1]) == {"i": 10}
        assert t.count() == 3
        assert t.delete(pks[1]) is True
        assert t.delete(pks[1]) is False
        assert t.get(pks[1]) is None
        assert [x["i"] for x in t.scan()] == [0, 2]
        assert t.scan().last_key is None
    else:
        sks = SAMPLE[sk_kind]
        for i, pk in enumerate(pks):
            for j, sk in enumerate(sks):
                if j % 2:
                    t.put(pk, {"i": i, "j": j}, sk=sk)
                else:
                    t.put_with_sk(pk, sk, {"i": i, "j": j})
        assert t.get(pks[2], sk=sks[1]) == {"i": 2, "j": 1}
        assert t.get_with_sk(pks[0], sks[2]) == {"i": 0, "j": 2}
        assert t.count() == 9 and t.count(pks[1]) == 3
        assert t.delete(pks[1], sk=sks[0]) is True
        assert t.delete_with_sk(pks[1], sks[0]) is False
        assert t.delete_with_sk(pks[1], sks[1]) is True
        assert t.get(pks[1], sk=sks[0]) is None and t.get_with_sk(pks[1], sks[1]) is None
        assert t.count(pks[1]) == 1 and t.count() == 7
        assert [(x["i"], x["j"]) for x in t.query(pks[1])] == [(1, 2)]
        assert [(x["i"], x["j"]) for x in t.scan()] == [
            (0, 0),
            (0, 1),
            (0, 2),
            (1, 2),
            (2, 0),
            (2, 1),
            (2, 2),
        ]
    db.close()
    with obj.Db(db.path) as again:  # it is all on disk
        t = again.table(combo_id(combo))
        assert t.count() == (2 if sk_kind is None else 7)


def test_key_order_ints_numerically_str_by_code_point_bytes_by_byte(db: obj.Db) -> None:
    ints = [
        -(2**63),
        -(2**63) + 1,
        -(2**32),
        -256,
        -255,
        -2,
        -1,
        0,
        1,
        255,
        256,
        2**32,
        2**63 - 2,
        2**63 - 1,
    ]
    # U+FFFF < U+1F600 by code point (UTF-8 order); UTF-16 order would put it after.
    strs = ["A", "Z", "a", "ab", "a\u00e9", "b", "\u00e9", "\uffff", "\U0001f600"]
    # A prefix comes before its extensions; 0x80 and up after ASCII (unsigned bytes).
    byts = [b"\x00", b"\x00\x00", b"\x01", b"a", b"a\x00", b"ab", b"a\xff", b"\x7f", b"\x80"]
    byts += [b"\xff", b"\xff\x00"]
    for name, keys in (("ints", ints), ("strs", strs), ("bytes", byts)):
        assert keys == sorted(keys)
        t = db.table(name)
        for k in reversed(keys):
            t.put(k, {"k": k})
        assert [x["k"] for x in t.scan()] == keys, name
        s = db.table(name + "-sk")
        for k in reversed(keys):
            s.put(keys[0], {"k": k}, sk=k)
        assert [x["k"] for x in s.query(keys[0])] == keys, name
        assert [x["k"] for x in s.query(keys[0], reverse=True)] == keys[::-1], name
        for k in keys:
            assert t.get(k) == {"k": k} and s.get(keys[0], sk=k) == {"k": k}
            assert type(t.get(k)["k"]) is type(k)


def test_partitions_do_not_interleave_in_a_scan(db: obj.Db) -> None:
    """Every item of partition b"a" (whatever its sort key) comes before every item of
    b"a\\x00": a composite key must not let the sort key leak into the partition's order."""
    t = db.table("t")
    t.put(b"a\x00", {"n": 3}, sk=b"\x00")
    t.put(b"a", {"n": 2}, sk=b"\xff\xff")
    t.put(b"a", {"n": 1}, sk=b"\x00")
    t.put(b"b", {"n": 4}, sk=b"\x00")
    page = t.scan()
    assert [x["n"] for x in page] == [1, 2, 3, 4]
    assert page.last_key is None
    ints = db.table("ints")
    ints.put(-1, {"n": 0}, sk=2**63 - 1)
    ints.put(0, {"n": 1}, sk=-(2**63))
    ints.put(2**63 - 1, {"n": 2}, sk=0)
    assert [x["n"] for x in ints.scan()] == [0, 1, 2]
    strs = db.table("strs")
    strs.put("a", {"n": 0}, sk="\U0001f600")
    strs.put("ab", {"n": 1}, sk="a")
    assert [x["n"] for x in strs.scan()] == [0, 1]


@pytest.mark.parametrize("bad", [2**63, -(2**63) - 1, 2**64, -(2**70)])
def test_int_keys_beyond_64_bits_are_refused(db: obj.Db, bad: int) -> None:
    t = db.table("t")
    with pytest.raises(obj.InvalidArgumentError):
        t.put(bad, {"x": 1})
    s = db.table("s")
    with pytest.raises(obj.InvalidArgumentError):
        s.put(1, {"x": 1}, sk=bad)
    assert t.count() == 0 and s.count() == 0


@pytest.mark.parametrize("bad", [1.5, None, ("a",), ["a"], {"a": 1}, object()], ids=repr)
def test_keys_of_other_python_types_are_refused(db: obj.Db, bad: Any) -> None:
    t = db.table("t")
    with pytest.raises(obj.InvalidArgumentError):
        t.put(bad, {"x": 1})
    if bad is not None:  # sk=None is no sort key
        with pytest.raises(obj.InvalidArgumentError):
            t.put("pk", {"x": 1}, sk=bad)
    assert t.count() == 0


@pytest.mark.parametrize("first", COMBOS, ids=combo_id)
def test_a_tables_key_types_are_fixed_by_its_first_item(
    db: obj.Db, first: tuple[str, Optional[str]]
) -> None:
    pk_kind, sk_kind = first
    t = db.table("t")
    pk = SAMPLE[pk_kind][0]
    sk = None if sk_kind is None else SAMPLE[sk_kind][0]
    t.put(pk, {"first": True}, sk=sk)

    def refused() -> None:
        for other in KINDS:
            if other != pk_kind:  # another pk type, same sort keys
                with pytest.raises(obj.InvalidArgumentError):
                    t.put(SAMPLE[other][1], {"x": 1}, sk=sk)
                with pytest.raises(obj.InvalidArgumentError):
                    t.batch_write(
                        puts=[
                            (SAMPLE[other][1], {"x": 1})
                            if sk is None
                            else (SAMPLE[other][1], sk, {"x": 1})
                        ]
                    )
        if sk_kind is None:  # a sort key on a table without them
            for other in KINDS:
                with pytest.raises(obj.InvalidArgumentError):
                    t.put(pk, {"x": 1}, sk=SAMPLE[other][1])
                with pytest.raises(obj.InvalidArgumentError):
                    t.put_with_sk(SAMPLE[pk_kind][1], SAMPLE[other][1], {"x": 1})
        else:  # no sort key, or another sort-key type, on a table with them
            with pytest.raises(obj.InvalidArgumentError):
                t.put(SAMPLE[pk_kind][1], {"x": 1})
            for other in KINDS:
                if other != sk_kind:
                    with pytest.raises(obj.InvalidArgumentError):
                        t.put(pk, {"x": 1}, sk=SAMPLE[other][1])
        assert t.count() == 1
        assert list(t.scan()) == [{"first": True}]

    refused()
    t.put(SAMPLE[pk_kind][2], {"second": True}, sk=sk)  # the same types are fine
    assert t.count() == 2
    assert t.delete(SAMPLE[pk_kind][2], sk=sk)
    db.close()
    with obj.Db(db.path) as again:  # the key types are part of the table, on disk
        t = again.table("t")
        refused()
        # Other tables are tables of their own.
        other_kind = KINDS[(KINDS.index(pk_kind) + 1) % 3]
        again.table("u").put(SAMPLE[other_kind][0], {"x": 1})
        assert again.table("u").count() == 1


# -- plain examples: items ----------------------------------------------------------------


def test_item_values_come_back_as_written(db: obj.Db) -> None:
    item = {
        "none": None,
        "true": True,
        "false": False,
        "zero": 0,
        "min": -(2**63),
        "max": 2**63 - 1,
        "float": 3.14,
        "negzero": -0.0,
        "inf": float("inf"),
        "str": "h\u00e9llo \U0001f600",
        "empty": "",
        "bytes": b"\x00\xff",
        "floats": [0.1, 0.2, 0.3],
        "mixed": [1, 2.5, "three", b"4", None, True, [5], {"six": 6}],
        "nested": {"inner": {"deeper": [{"k": b"v"}]}, "count": 10},
        "emptylist": [],
        "emptydict": {},
    }
    t = db.table("t")
    t.put("k", item)
    same(t.get("k"), item)
    same(t.query("k").items, [item])
    same(t.batch_get(["k"]), [item])
    db.close()
    with obj.Db(db.path) as again:
        same(again.table("t").get("k"), item)


def test_bad_item_values_are_invalid_arguments_and_write_nothing(db: obj.Db) -> None:
    t = db.table("t")
    t.put("k", {"ok": 1})
    for bad in (
        {"x": complex(1, 2)},
        {"x": object()},
        {"x": [1, object()]},
        {"x": {"y": complex(0, 1)}},
        {1: "int attribute name"},
    ):
        with pytest.raises(obj.InvalidArgumentError):
            t.put("k", bad)
        with pytest.raises(obj.InvalidArgumentError):
            t.put("new", bad)
        with pytest.raises(obj.InvalidArgumentError):
            t.update("k", set=bad)
    assert t.get("k") == {"ok": 1} and t.get("new") is None and t.count() == 1


# -- plain examples: queries --------------------------------------------------------------

SK_CASES = {
    "str": ["a", "ab", "abc", "b", "ba", "c"],
    "bytes": [b"\x00", b"a", b"ab", b"a\xff", b"b", b"\xff"],
    "int": [-(2**63), -5, -1, 0, 3, 2**63 - 1],
}


@pytest.mark.parametrize("kind", KINDS)
def test_query_with_every_sort_key_condition(db: obj.Db, kind: str) -> None:
    sks = sorted(SK_CASES[kind])
    t = db.table("t")
    for sk in sks:
        t.put("p", {"sk": sk}, sk=sk)
    t.put("other", {"sk": sks[0]}, sk=sks[0])  # another partition is never in a query
    mid, lo, hi = sks[2], sks[1], sks[4]
    missing = {"str": "aa", "bytes": b"a\x00", "int": 1}[kind]
    cases: list[tuple[Any, list[Any]]] = [
        (None, sks),
        (mid, [mid]),
        (missing, []),
        (obj.sk == mid, [mid]),
        (obj.sk == missing, []),
        (obj.sk < mid, [s for s in sks if s < mid]),
        (obj.sk <= mid, [s for s in sks if s <= mid]),
        (obj.sk > mid, [s for s in sks if s > mid]),
        (obj.sk >= mid, [s for s in sks if s >= mid]),
        (obj.sk < missing, [s for s in sks if s < missing]),
        (obj.sk >= missing, [s for s in sks if s >= missing]),
        (obj.sk < sks[0], []),
        (obj.sk > sks[-1], []),
        (obj.sk.between(lo, hi), [s for s in sks if lo <= s <= hi]),
        (obj.sk.between(mid, mid), [mid]),
        (obj.sk.between(missing, sks[-1]), [s for s in sks if missing <= s]),
    ]
    for cond, expected in cases:
        for reverse in (False, True):
            page = t.query("p", sk=cond, reverse=reverse)
            want = expected[::-1] if reverse else expected
            assert [x["sk"] for x in page] == want, (cond, reverse)
            assert page.last_key is None
            assert len(page) == len(want) and page.items == list(page)
    assert t.query("nobody").items == [] and t.query("nobody").last_key is None


def test_begins_with_on_str_and_on_bytes_sort_keys(db: obj.Db) -> None:
    s = db.table("s")
    for sk in ["a", "ab", "abc", "ab\U0001f600", "b", "\u00e9", "\u00e9t\u00e9"]:
        s.put("p", {"sk": sk}, sk=sk)
    assert [x["sk"] for x in s.query("p", sk=obj.sk.begins_with("ab"))] == [
        "ab",
        "abc",
        "ab\U0001f600",
    ]
    assert [x["sk"] for x in s.query("p", sk=obj.sk.begins_with("\u00e9"))] == [
        "\u00e9",
        "\u00e9t\u00e9",
    ]
    assert [x["sk"] for x in s.query("p", sk=obj.sk.begins_with("ab"), reverse=True)] == [
        "ab\U0001f600",
        "abc",
        "ab",
    ]
    assert s.query("p", sk=obj.sk.begins_with("abd")).items == []
    assert s.query("p", sk=obj.sk.begins_with("c")).items == []
    b = db.table("b")
    for sk in [b"\x00", b"a", b"a\x00", b"a\xff", b"a\xff\xff", b"b", b"\xff", b"\xff\x00"]:
        b.put(b"p", {"sk": sk}, sk=sk)
    assert [x["sk"] for x in b.query(b"p", sk=obj.sk.begins_with(b"a"))] == [
        b"a",
        b"a\x00",
        b"a\xff",
        b"a\xff\xff",
    ]
    # The prefix ending in 0xff: its range has no simple "next prefix" upper bound.
    assert [x["sk"] for x in b.query(b"p", sk=obj.sk.begins_with(b"a\xff"))] == [
        b"a\xff",
        b"a\xff\xff",
    ]
    assert [x["sk"] for x in b.query(b"p", sk=obj.sk.begins_with(b"\xff"))] == [
        b"\xff",
        b"\xff\x00",
    ]
    assert [x["sk"] for x in b.query(b"p", sk=obj.sk.begins_with(b"\x00"))] == [b"\x00"]


def test_query_filter_over_the_item_and_the_key_values(db: obj.Db) -> None:
    t = db.table("t")
    for i in range(10):
        t.put("p", {"i": i, "even": i % 2 == 0, **({"tag": "x"} if i % 3 == 0 else {})}, sk=i)
    evens = t.query("p", filter=field("even") == True)  # noqa: E712 - a filter, not a test
    assert [x["i"] for x in evens] == [0, 2, 4, 6, 8]
    assert [x["i"] for x in t.query("p", filter=field("tag").exists())] == [0, 3, 6, 9]
    assert [x["i"] for x in t.query("p", filter=field("tag").not_exists())] == [1, 2, 4, 5, 7, 8]
    assert [x["i"] for x in t.query("p", filter=~field("tag").exists())] == [1, 2, 4, 5, 7, 8]
    both = (field("i") >= 3) & ((field("tag") == "x") | (field("i") == 4))
    assert [x["i"] for x in t.query("p", filter=both)] == [3, 4, 6, 9]
    assert [x["i"] for x in t.query("p", filter=both, reverse=True)] == [9, 6, 4, 3]
    # With a sort-key condition too: the condition picks the range, the filter the items.
    got = t.query("p", sk=obj.sk.between(2, 8), filter=field("even") == False)  # noqa: E712
    assert [x["i"] for x in got] == [3, 5, 7]
    # "pk" and "sk" name the key values ...
    assert [x["i"] for x in t.query("p", filter=field("sk") > 6)] == [7, 8, 9]
    assert [x["i"] for x in t.query("p", filter=field("pk") == "p")] == list(range(10))
    assert t.query("p", filter=field("pk") == "q").items == []
    assert [x["i"] for x in t.scan(filter=(field("pk") == "p") & (field("sk") < 2))] == [0, 1]
    # ... unless the item has attributes of those names.
    s = db.table("shadow")
    s.put("p", {"pk": "mine", "sk": -1, "i": 0}, sk=5)
    s.put("p", {"i": 1}, sk=6)
    assert [x["i"] for x in s.query("p", filter=field("pk") == "mine")] == [0]
    assert [x["i"] for x in s.query("p", filter=field("pk") == "p")] == [1]
    assert [x["i"] for x in s.query("p", filter=field("sk") < 0)] == [0]
    assert [x["i"] for x in s.query("p", filter=field("sk") == 6)] == [1]
    assert s.get("p", sk=5) == {"pk": "mine", "sk": -1, "i": 0}


def test_limit_counts_the_items_after_the_filter(db: obj.Db) -> None:
    t = db.table("t")
    for i in range(20):
        t.put("p", {"i": i}, sk=i)
    page = t.query("p", filter=field("i") >= 15, limit=3)
    assert [x["i"] for x in page] == [15, 16, 17]
    assert page.last_key == ("p", 17)
    page = t.query("p", filter=field("i") >= 15, limit=3, start_after=page.last_key)
    assert [x["i"] for x in page] == [18, 19]
    assert page.last_key is None
    # Exactly at the end: the last page is full and says there is no more.
    page = t.query("p", filter=field("i") >= 17, limit=3)
    assert [x["i"] for x in page] == [17, 18, 19]
    assert page.last_key is None
    page = t.query("p", filter=field("i") < 3, limit=3)
    assert [x["i"] for x in page] == [0, 1, 2]
    assert page.last_key is None
    page = t.query("p", filter=field("i") == 100, limit=3)
    assert page.items == [] and page.last_key is None
    page = t.scan(filter=field("i") <= 1, limit=1)
    assert [x["i"] for x in page] == [0] and page.last_key == ("p", 0)


def walk(call: Callable[..., Any], limit: int) -> tuple[list[Any], list[Any]]:
    """All pages of ``call`` at ``limit``: the items, and each page's ``last_key``."""
    items: list[Any] = []
    keys: list[Any] = []
    start = None
    for _ in range(10_000):
        page = call(limit=limit, start_after=start)
        assert list(page) == page.items and len(page) == len(page.items)
        assert len(page) <= limit
        items.extend(page.items)
        keys.append(page.last_key)
        if page.last_key is None:
            return items, keys
        start = page.last_key
    raise AssertionError("the pages never end")


def check_pages(call: Callable[..., Any], expected: list[Any], keys: list[Any]) -> None:
    """Walking ``call`` at every page size gives ``expected`` (whose keys are ``keys``);
    every page but the last is full, each says the key of its last item, the last says None
    -- also when it ends exactly at a page boundary."""
    assert len(expected) == len(keys)
    for limit in range(1, len(expected) + 2):
        items, last_keys = walk(call, limit)
        same(items, expected)
        pages = max(1, -(-len(expected) // limit))
        assert len(last_keys) == pages, (limit, last_keys)
        assert last_keys[:-1] == [keys[(i + 1) * limit - 1] for i in range(pages - 1)], limit
        assert last_keys[-1] is None
        for key in last_keys[:-1]:
            assert type(key) is tuple and len(key) == 2


def test_pagination_at_every_page_boundary(db: obj.Db) -> None:
    t = db.table("t")
    sks = [-(2**63), -7, -1, 0, 1, 2, 40, 2**62, 2**63 - 1]
    for sk in sks:
        t.put(5, {"sk": sk}, sk=sk)
    t.put(4, {"sk": 0}, sk=0)
    t.put(6, {"sk": 0}, sk=0)
    expected = [{"sk": sk} for sk in sks]
    keys = [(5, sk) for sk in sks]
    check_pages(lambda **kw: t.query(5, **kw), expected, keys)
    check_pages(lambda **kw: t.query(5, reverse=True, **kw), expected[::-1], keys[::-1])
    sub = [s for s in sks if -1 <= s <= 2**62]
    check_pages(
        lambda **kw: t.query(5, sk=obj.sk.between(-1, 2**62), **kw),
        [{"sk": s} for s in sub],
        [(5, s) for s in sub],
    )
    check_pages(
        lambda **kw: t.query(5, filter=field("sk") != 0, reverse=True, **kw),
        [{"sk": s} for s in sks[::-1] if s != 0],
        [(5, s) for s in sks[::-1] if s != 0],
    )
    all_items = [{"sk": 0}, *expected, {"sk": 0}]
    all_keys = [(4, 0), *keys, (6, 0)]
    check_pages(lambda **kw: t.scan(**kw), all_items, all_keys)
    check_pages(lambda **kw: t.query(99, **kw), [], [])
    # A table without sort keys: the key is (pk, None).
    u = db.table("u")
    for pk in ["b", "a", "c"]:
        u.put(pk, {"pk": pk})
    check_pages(
        lambda **kw: u.scan(**kw),
        [{"pk": "a"}, {"pk": "b"}, {"pk": "c"}],
        [("a", None), ("b", None), ("c", None)],
    )
    page = u.query("b", limit=1)
    assert page.items == [{"pk": "b"}] and page.last_key is None


def test_a_page_resumes_after_its_last_key_even_when_that_item_is_gone(db: obj.Db) -> None:
    t = db.table("t")
    for sk in range(6):
        t.put(b"p", {"sk": sk}, sk=sk)
    page = t.query(b"p", limit=2)
    assert page.last_key == (b"p", 1)
    t.delete(b"p", sk=1)
    t.put(b"p", {"sk": 0.5}, sk=0)  # before the cursor: not seen again
    t.put(b"p", {"sk": 9}, sk=9)  # after it: seen
    rest = t.query(b"p", start_after=page.last_key)
    assert [x["sk"] for x in rest] == [2, 3, 4, 5, 9]
    back = t.query(b"p", reverse=True, limit=2)
    assert [x["sk"] for x in back] == [9, 5] and back.last_key == (b"p", 5)
    rest = t.query(b"p", reverse=True, start_after=back.last_key)
    assert [x["sk"] for x in rest] == [4, 3, 2, 0.5]


def test_scan_walks_every_partition_in_key_order(db: obj.Db) -> None:
    t = db.table("t")
    items = {(pk, sk): {"pk": pk, "sk": sk} for pk in ["b", "a", "c"] for sk in [b"y", b"x"]}
    for (pk, sk), item in items.items():
        t.put(pk, item, sk=sk)
    order = sorted(items)
    assert t.scan().items == [items[k] for k in order]
    assert t.scan(filter=field("sk") == b"y").items == [items[k] for k in order if k[1] == b"y"]
    page = t.scan(limit=3)
    assert page.items == [items[k] for k in order[:3]] and page.last_key == order[2]
    page = t.scan(start_after=page.last_key)
    assert page.items == [items[k] for k in order[3:]] and page.last_key is None
    assert db.table("empty").scan().items == [] and db.table("empty").scan().last_key is None


def test_count(db: obj.Db) -> None:
    t = db.table("t")
    assert t.count() == 0 and t.count("a") == 0
    for pk, n in (("a", 3), ("b", 1), ("c", 5)):
        for i in range(n):
            t.put(pk, {"i": i}, sk=i)
    assert t.count() == 9
    assert [t.count(pk) for pk in "abcd"] == [3, 1, 5, 0]
    t.delete("c", sk=0)
    t.batch_write(deletes=[("a", 0), ("a", 1)])
    assert t.count() == 6 and t.count("a") == 1 and t.count("c") == 4
    u = db.table("u")
    u.put(1, {})
    u.put(2, {})
    assert u.count() == 2 and u.count(1) == 1 and u.count(3) == 0


# -- plain examples: updates and conditions ------------------------------------------------


def test_update_sets_removes_and_adds_and_returns_the_new_item(db: obj.Db) -> None:
    t = db.table("t")
    t.put("u", {"name": "Ada", "visits": 1, "score": 1.5, "old": True})
    new = t.update("u", set={"name": "Ada L.", "tags": ["x"]}, remove=["old"], add={"visits": 2})
    assert new == {"name": "Ada L.", "visits": 3, "score": 1.5, "tags": ["x"]}
    assert t.get("u") == new
    new = t.update("u", add={"score": 0.25, "visits": -10})
    assert new == {"name": "Ada L.", "visits": -7, "score": 1.75, "tags": ["x"]}
    assert type(new["visits"]) is int
    new = t.update("u", remove=["tags", "not-there"])
    assert new == {"name": "Ada L.", "visits": -7, "score": 1.75}
    assert t.get("u") == new and t.count() == 1


def test_update_creates_a_missing_item(db: obj.Db) -> None:
    t = db.table("t")
    t.put(1, {"a": 1}, sk=1)
    assert t.update(1, sk=2, set={"a": 2}) == {"a": 2}
    assert t.update(2, sk=1, add={"n": 5}) == {"n": 5}  # a missing number counts from 0
    assert t.update(2, sk=1, add={"n": 5}) == {"n": 10}
    assert t.get(1, sk=2) == {"a": 2} and t.get(2, sk=1) == {"n": 10}
    assert t.count() == 3


def test_conditions_on_put_delete_and_update(db: obj.Db) -> None:
    assert issubclass(obj.ConditionFailedError, obj.ObjError)
    t = db.table("t")
    t.put("k", {"v": 1, "state": "new"})
    before = t.scan().items

    def unchanged() -> None:
        assert t.scan().items == before
        assert t.count() == 1

    with pytest.raises(obj.ConditionFailedError):
        t.put("k", {"v": 2}, condition=field("v") == 2)
    unchanged()
    with pytest.raises(obj.ConditionFailedError):
        t.delete("k", condition=field("state") == "done")
    unchanged()
    with pytest.raises(obj.ConditionFailedError):
        t.update("k", set={"state": "done"}, add={"v": 1}, condition=field("v") > 1)
    unchanged()
    with pytest.raises(obj.ConditionFailedError):  # on a missing item no attribute exists
        t.update("missing", set={"x": 1}, condition=field("pk").exists())
    with pytest.raises(obj.ConditionFailedError):
        t.put("missing", {"x": 1}, condition=field("v") == 1)
    with pytest.raises(obj.ConditionFailedError):
        t.delete("missing", condition=field("v") == 1)
    unchanged()
    assert t.get("missing") is None
    # Conditions that hold write.
    t.put("k", {"v": 2, "state": "new"}, condition=(field("v") == 1) & (field("state") == "new"))
    assert t.get("k") == {"v": 2, "state": "new"}
    assert t.update("k", add={"v": 1}, condition=field("v") == 2) == {"v": 3, "state": "new"}
    assert t.update("k", set={"state": "done"}, condition=field("nope").not_exists()) == {
        "v": 3,
        "state": "done",
    }
    assert t.delete("k", condition=field("state") == "done") is True
    assert t.get("k") is None and t.count() == 0
    assert t.delete("k", condition=field("v").not_exists()) is False


def test_put_if_absent(db: obj.Db) -> None:
    t = db.table("t")
    absent = field("pk").not_exists()
    t.put(b"k", {"v": 1}, condition=absent)
    with pytest.raises(obj.ConditionFailedError):
        t.put(b"k", {"v": 2}, condition=absent)
    assert t.get(b"k") == {"v": 1}
    s = db.table("s")
    s.put(b"k", {"v": 1}, sk=1, condition=absent)
    s.put(b"k", {"v": 2}, sk=2, condition=absent)  # another sort key: another item
    with pytest.raises(obj.ConditionFailedError):
        s.put(b"k", {"v": 3}, sk=1, condition=absent)
    assert s.query(b"k").items == [{"v": 1}, {"v": 2}]
    # The same as ~exists().
    with pytest.raises(obj.ConditionFailedError):
        s.put(b"k", {"v": 3}, sk=2, condition=~field("pk").exists())
    s.put(b"k", {"v": 3}, sk=3, condition=~field("pk").exists())
    assert s.count() == 3


def test_not_exists_is_the_negation_of_exists(db: obj.Db) -> None:
    t = db.table("t")
    t.put("a", {"x": None})
    t.put("b", {"y": 1})
    t.put("c", {"x": {"deep": 1}})
    for name in ("x", "y", "z", "x.deep"):
        got = list(t.scan(filter=field(name).not_exists()))
        assert got == list(t.scan(filter=~field(name).exists())), name
        assert got == [x for x in t.scan() if not has(x, name)], name


def has(item: dict[str, Any], path: str) -> bool:
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


# -- plain examples: batches ---------------------------------------------------------------


def test_batch_get_answers_in_the_order_asked(db: obj.Db) -> None:
    t = db.table("t")
    t.put("a", {"n": 1})
    t.put("b", {"n": 2})
    assert t.batch_get(["b", "zz", "a"]) == [{"n": 2}, None, {"n": 1}]
    assert t.batch_get([]) == []
    s = db.table("s")
    s.put(1, {"n": 1}, sk=b"x")
    s.put(1, {"n": 2}, sk=b"y")
    assert s.batch_get([(1, b"y"), (2, b"x"), (1, b"x"), (1, b"z")]) == [
        {"n": 2},
        None,
        {"n": 1},
        None,
    ]


def test_batch_write_is_all_or_nothing(db: obj.Db) -> None:
    t = db.table("t")
    t.batch_write(puts=[("a", 1, {"n": 1}), ("a", 2, {"n": 2}), ("b", 1, {"n": 3})])
    assert t.count() == 3
    t.batch_write(puts=[("c", 1, {"n": 4})], deletes=[("a", 1), ("zz", 9)])
    assert t.scan().items == [{"n": 2}, {"n": 3}, {"n": 4}]
    before = t.scan().items
    for puts, deletes in (
        ([("d", 1, {"n": 5}), ("e", 1, {"bad": complex(1, 1)})], [("a", 2)]),
        ([("d", 1, {"n": 5}), (b"e", 1, {"n": 6})], [("a", 2)]),  # a bytes pk
        ([("d", 1, {"n": 5}), ("e", "1", {"n": 6})], [("a", 2)]),  # a str sk
        ([("d", 1, {"n": 5}), ("e", {"n": 6})], [("a", 2)]),  # no sk
        ([("d", 1, {"n": 5})], [("a", 2), ("b", 2**64)]),  # a bad key among the deletes
    ):
        with pytest.raises(obj.InvalidArgumentError):
            t.batch_write(puts=puts, deletes=deletes)
        assert t.scan().items == before
        assert t.get("d", sk=1) is None and t.get("a", sk=2) == {"n": 2}
    u = db.table("u")
    u.batch_write(puts=[("a", {"n": 1}), ("b", {"n": 2})])
    u.batch_write(deletes=["a"])
    assert u.scan().items == [{"n": 2}]
    with pytest.raises(obj.InvalidArgumentError):
        u.batch_write(puts=[("c", {"n": 3}), ("d", {"n": object()})], deletes=["b"])
    assert u.scan().items == [{"n": 2}]


# -- plain examples: transactions --------------------------------------------------------------


def test_a_transaction_sees_its_own_writes(db: obj.Db) -> None:
    db.table("t").put("a", {"n": 1}, sk=1)
    with db.transaction() as tx:
        t = tx.table("t")
        t.put("a", {"n": 2}, sk=2)
        t.put_with_sk("b", 1, {"n": 3})
        assert t.get("a", sk=2) == {"n": 2} and t.get_with_sk("b", 1) == {"n": 3}
        assert t.update("a", sk=1, add={"n": 10}) == {"n": 11}
        assert t.delete("b", sk=1) is True
        assert t.query("a").items == [{"n": 11}, {"n": 2}]
        assert t.query("a", sk=obj.sk > 1).items == [{"n": 2}]
        assert t.scan().items == [{"n": 11}, {"n": 2}]
        assert t.count() == 2 and t.count("b") == 0
        assert t.batch_get([("a", 1), ("b", 1)]) == [{"n": 11}, None]
        t.batch_write(puts=[("c", 1, {"n": 4})], deletes=[("a", 2)])
        assert t.scan().items == [{"n": 11}, {"n": 4}]
        page = t.scan(limit=1)
        assert page.last_key == ("a", 1)
        assert t.scan(start_after=page.last_key).items == [{"n": 4}]
        with pytest.raises(obj.ConditionFailedError):
            t.put("c", {"n": 5}, sk=1, condition=field("pk").not_exists())
        # Others do not see it before the commit.
        assert db.table("t").scan().items == [{"n": 1}]
    assert db.table("t").scan().items == [{"n": 11}, {"n": 4}]


def test_a_transaction_that_raises_leaves_nothing(db: obj.Db) -> None:
    db.table("t").put("a", {"n": 1})
    with pytest.raises(Rollback), db.transaction() as tx:
        t = tx.table("t")
        t.put("b", {"n": 2})
        t.update("a", set={"n": 99})
        t.delete("a")
        t.batch_write(puts=[("c", {"n": 3})])
        assert t.scan().items == [{"n": 2}, {"n": 3}]
        tx.table("new").put(7, {"n": 7}, sk=b"x")  # a table's first item
        raise Rollback
    assert db.table("t").scan().items == [{"n": 1}]
    assert db.table("new").count() == 0
    # The rolled-back first item fixed nothing: the table takes other key types.
    db.table("new").put("str", {"n": 8})
    assert db.table("new").scan().items == [{"n": 8}]
    db.close()
    with obj.Db(db.path) as again:
        assert again.table("t").scan().items == [{"n": 1}]


# -- the model -------------------------------------------------------------------------------

STR_KEYS = st.lists(
    st.sampled_from(["a", "b", "ab", "\u00e9", "\uffff", "\U0001f600"]), min_size=1, max_size=3
).map("".join)
BYTE_KEYS = st.lists(
    st.sampled_from([b"\x00", b"a", b"ab", b"\x7f", b"\x80", b"\xff"]), min_size=1, max_size=3
).map(b"".join)
INT_EDGES = [I64_MIN, I64_MIN + 1, -(2**32), -256, -1, 0, 1, 255, 2**32, I64_MAX - 1, I64_MAX]
INT_KEYS = st.one_of(st.sampled_from(INT_EDGES), st.integers(-3, 3), st.integers(I64_MIN, I64_MAX))
KEYS: dict[str, st.SearchStrategy[Any]] = {"str": STR_KEYS, "bytes": BYTE_KEYS, "int": INT_KEYS}

VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(I64_MIN, I64_MAX),
        st.floats(allow_nan=False),
        st.text(max_size=4),
        st.binary(max_size=4),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)
#: Values of "a", the attribute conditions and filters compare.
A_VALUES = st.sampled_from([-1, 0, 1, 2, 1.5, "x", "y", True, False, None, b"x", [1], {"k": 1}])
N_VALUES = st.integers(-5, 5)
ITEMS = st.fixed_dictionaries(
    {},
    optional={
        "a": A_VALUES,
        "b": VALUES,
        "c": st.lists(st.floats(allow_nan=False, width=64), max_size=3) | VALUES,
        "n": N_VALUES,
    },
)

MISSING = object()
ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
Pred = Callable[[dict[str, Any]], bool]
Cond = tuple[Any, Pred]


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _comparable(x: Any, v: Any) -> bool:
    """The field filter rules (obj.query): ints and floats compare numerically, a bool is
    not a number, any other mismatch is false."""
    if _number(x) and _number(v):
        return True
    return type(x) is type(v) and isinstance(x, (str, bytes, bool, type(None)))


def _eq(x: Any, v: Any) -> bool:
    return x is not MISSING and _comparable(x, v) and x == v


def compare(path: str, op: str, v: Any) -> Cond:
    f = field(path)
    expr = {
        "eq": lambda: f == v,
        "ne": lambda: f != v,
        "lt": lambda: f < v,
        "le": lambda: f <= v,
        "gt": lambda: f > v,
        "ge": lambda: f >= v,
    }[op]()

    def pred(view: dict[str, Any]) -> bool:
        x = view.get(path, MISSING)
        if op == "eq":
            return _eq(x, v)
        if op == "ne":
            return not _eq(x, v)
        return x is not MISSING and _comparable(x, v) and ORDERINGS[op](x, v)

    return expr, pred


def exists(path: str, negate: bool) -> Cond:
    if negate:
        return field(path).not_exists(), lambda view: path not in view
    return field(path).exists(), lambda view: path in view


def _and(a: Cond, b: Cond) -> Cond:
    return a[0] & b[0], lambda view: a[1](view) and b[1](view)


def _or(a: Cond, b: Cond) -> Cond:
    return a[0] | b[0], lambda view: a[1](view) or b[1](view)


def _not(a: Cond) -> Cond:
    return ~a[0], lambda view: not a[1](view)


def every_sk_condition(v: Any, w: Any, prefix: Any) -> list[tuple[str, Any, Callable[[Any], bool]]]:
    """Each form of sort-key condition around ``v`` (and ``w``, ``prefix``), with what it
    selects."""
    lo, hi = sorted([v, w])
    forms: list[tuple[str, Any, Callable[[Any], bool]]] = [
        (f"sk={v!r}", v, lambda s: s == v),
        (f"obj.sk == {v!r}", obj.sk == v, lambda s: s == v),
        (f"obj.sk < {v!r}", obj.sk < v, lambda s: s < v),
        (f"obj.sk <= {v!r}", obj.sk <= v, lambda s: s <= v),
        (f"obj.sk > {v!r}", obj.sk > v, lambda s: s > v),
        (f"obj.sk >= {v!r}", obj.sk >= v, lambda s: s >= v),
        (f"between({lo!r}, {hi!r})", obj.sk.between(lo, hi), lambda s: lo <= s <= hi),
        (f"between({v!r}, {v!r})", obj.sk.between(v, v), lambda s: s == v),
    ]
    if prefix is not None:
        forms.append(
            (f"begins_with({prefix!r})", obj.sk.begins_with(prefix), lambda s: s.startswith(prefix))
        )
    return forms


class Tab:
    """A table of the model: its key types and what it holds."""

    def __init__(self, pk_kind: str, sk_kind: Optional[str]) -> None:
        self.pk_kind, self.sk_kind = pk_kind, sk_kind
        self.name = combo_id((pk_kind, sk_kind))
        self.data: dict[Any, dict[Any, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"Tab({self.name})"

    def copy_data(self) -> dict[Any, dict[Any, dict[str, Any]]]:
        return {pk: dict(part) for pk, part in self.data.items()}

    def lookup(self, pk: Any, sk: Any) -> Optional[dict[str, Any]]:
        return self.data.get(pk, {}).get(sk)

    def store(self, pk: Any, sk: Any, item: dict[str, Any]) -> None:
        self.data.setdefault(pk, {})[sk] = item

    def remove(self, pk: Any, sk: Any) -> bool:
        part = self.data.get(pk, {})
        if sk not in part:
            return False
        del part[sk]
        if not part:
            del self.data[pk]
        return True

    def rows(self) -> list[tuple[tuple[Any, Any], dict[str, Any]]]:
        """Every ((pk, sk), item) in key order."""
        return [
            ((pk, sk), self.data[pk][sk]) for pk in sorted(self.data) for sk in self.sorted_sks(pk)
        ]

    def sorted_sks(self, pk: Any) -> list[Any]:
        part = self.data.get(pk, {})
        return [None] if None in part else sorted(part)

    def count(self) -> int:
        return sum(len(p) for p in self.data.values())

    def view(self, pk: Any, sk: Any, item: Optional[dict[str, Any]]) -> dict[str, Any]:
        """What a condition or filter sees: the key values as "pk" and "sk" (unless the
        item has attributes of those names), nothing for a missing item."""
        if item is None:
            return {}
        seen: dict[str, Any] = {"pk": pk}
        if self.sk_kind is not None:
            seen["sk"] = sk
        seen.update(item)
        return seen


class TableMachine(RuleBasedStateMachine):
    """One database, one or two tables of different key types; ``Tab.data`` is what each
    must hold."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="obj-table-model-"))
        self.path = self.dir / "table.obj"
        self.db: Optional[obj.Db] = None
        self.tabs: list[Tab] = []
        self.serial = 0

    @initialize(
        combos=st.lists(st.sampled_from(COMBOS), min_size=1, max_size=2, unique=True),
        data=st.data(),
    )
    def open_tables(self, combos: list[tuple[str, Optional[str]]], data: st.DataObject) -> None:
        self.tabs = [Tab(pk, sk) for pk, sk in combos]
        self.db = obj.Db(self.path, durability="eventual")
        # Some items to start from, so that the steps meet pages and partitions.
        for tab in self.tabs:
            t = self.table(tab)
            for _ in range(data.draw(st.integers(0, 12), f"{tab.name} items")):
                pk, sk = self.draw_key(data, tab)
                item = self.draw_item(data)
                self.put(t, tab, pk, sk, item, False)
                tab.store(pk, sk, item)

    def table(self, tab: Tab) -> Any:
        assert self.db is not None
        return self.db.table(tab.name)

    # -- what the rules draw --------------------------------------------------------------

    def draw_tab(self, data: st.DataObject) -> Tab:
        return data.draw(st.sampled_from(self.tabs), "table")

    def pks(self, tab: Tab) -> st.SearchStrategy[Any]:
        known = sorted(tab.data)
        new = KEYS[tab.pk_kind]
        return st.sampled_from(known) | new if known else new

    def sks(self, tab: Tab, pk: Any) -> st.SearchStrategy[Any]:
        if tab.sk_kind is None:
            return st.none()
        known = tab.sorted_sks(pk)
        new = KEYS[tab.sk_kind]
        return st.sampled_from(known) | new if known else new

    def draw_key(self, data: st.DataObject, tab: Tab) -> tuple[Any, Any]:
        known = [k for k, _ in tab.rows()]
        if known and data.draw(st.booleans(), "a stored key"):
            pk, sk = data.draw(st.sampled_from(known), "key")
            return pk, sk
        pk = data.draw(self.pks(tab), "pk")
        return pk, data.draw(self.sks(tab, pk), "sk")

    def draw_item(self, data: st.DataObject) -> dict[str, Any]:
        item = dict(data.draw(ITEMS, "item"))
        self.serial += 1
        item["v"] = self.serial
        return item

    def conditions(self, tab: Tab) -> st.SearchStrategy[Cond]:
        """Conditions and filters over the attributes and the key values."""
        atoms: list[st.SearchStrategy[Cond]] = [
            st.builds(
                compare,
                st.just("a"),
                st.sampled_from(["eq", "ne"]),
                st.sampled_from([-1, 0, 1, 1.5, "x", "y", True, False, None, b"x"]),
            ),
            st.builds(
                compare,
                st.just("a"),
                st.sampled_from(["lt", "le", "gt", "ge"]),
                st.sampled_from([-1, 0, 1, 1.5, "x", "y"]),
            ),
            st.builds(
                compare,
                st.just("n"),
                st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]),
                N_VALUES | st.just(0.5),
            ),
            st.builds(exists, st.sampled_from(["a", "b", "n", "pk"]), st.booleans()),
            st.builds(compare, st.just("pk"), st.just("eq"), self.pks(tab)),
        ]
        if self.serial:
            atoms.append(
                st.builds(compare, st.just("v"), st.just("eq"), st.integers(1, self.serial))
            )
        if tab.sk_kind is not None:
            known = sorted({sk for _, part in tab.data.items() for sk in part})
            sks = st.sampled_from(known) | KEYS[tab.sk_kind] if known else KEYS[tab.sk_kind]
            atoms.append(
                st.builds(
                    compare,
                    st.just("sk"),
                    st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]),
                    sks,
                )
            )
        return st.recursive(
            st.one_of(atoms),
            lambda inner: st.one_of(
                st.builds(_and, inner, inner), st.builds(_or, inner, inner), st.builds(_not, inner)
            ),
            max_leaves=3,
        )

    def draw_condition(self, data: st.DataObject, tab: Tab) -> Optional[Cond]:
        """A condition for a write, one time in three."""
        if data.draw(st.sampled_from([False, False, True]), "conditional"):
            return data.draw(self.conditions(tab), "condition")
        return None

    def sk_conditions(
        self, tab: Tab, pk: Any
    ) -> st.SearchStrategy[tuple[Any, Callable[[Any], bool]]]:
        assert tab.sk_kind is not None
        keys = self.sks(tab, pk)

        def plain(v: Any) -> tuple[Any, Callable[[Any], bool]]:
            return v, lambda s: s == v

        def cmp(op: str, v: Any) -> tuple[Any, Callable[[Any], bool]]:
            cond = {
                "eq": lambda: obj.sk == v,
                "lt": lambda: obj.sk < v,
                "le": lambda: obj.sk <= v,
                "gt": lambda: obj.sk > v,
                "ge": lambda: obj.sk >= v,
            }[op]()
            test = (lambda s: s == v) if op == "eq" else (lambda s: ORDERINGS[op](s, v))
            return cond, test

        def between(pair: list[Any]) -> tuple[Any, Callable[[Any], bool]]:
            lo, hi = sorted(pair)
            return obj.sk.between(lo, hi), lambda s: lo <= s <= hi

        options = [
            keys.map(plain),
            st.builds(cmp, st.sampled_from(["eq", "lt", "le", "gt", "ge"]), keys),
            st.lists(keys, min_size=2, max_size=2).map(between),
        ]
        if tab.sk_kind in ("str", "bytes"):
            prefixes = [sk[:i] for sk in tab.sorted_sks(pk) for i in range(1, len(sk) + 1)]
            prefix = (
                st.sampled_from(prefixes) | KEYS[tab.sk_kind] if prefixes else KEYS[tab.sk_kind]
            )

            def begins(p: Any) -> tuple[Any, Callable[[Any], bool]]:
                return obj.sk.begins_with(p), lambda s: s.startswith(p)

            options.append(prefix.map(begins))
        return st.one_of(options)

    # -- calls, with and without sort keys, both spellings ----------------------------------

    def put(self, t: Any, tab: Tab, pk: Any, sk: Any, item: Any, spelling: bool, **kw: Any) -> None:
        if tab.sk_kind is None:
            t.put(pk, item, **kw)
        elif spelling and not kw:
            t.put_with_sk(pk, sk, item)
        else:
            t.put(pk, item, sk=sk, **kw)

    def get(self, t: Any, tab: Tab, pk: Any, sk: Any, spelling: bool = False) -> Any:
        if tab.sk_kind is None:
            return t.get(pk)
        return t.get_with_sk(pk, sk) if spelling else t.get(pk, sk=sk)

    def delete(self, t: Any, tab: Tab, pk: Any, sk: Any, spelling: bool, **kw: Any) -> Any:
        if tab.sk_kind is None:
            return t.delete(pk, **kw)
        if spelling and not kw:
            return t.delete_with_sk(pk, sk)
        return t.delete(pk, sk=sk, **kw)

    def sk_kw(self, tab: Tab, sk: Any) -> dict[str, Any]:
        return {} if tab.sk_kind is None else {"sk": sk}

    def key(self, tab: Tab, pk: Any, sk: Any) -> Any:
        return pk if tab.sk_kind is None else (pk, sk)

    # -- writes ------------------------------------------------------------------------------

    @rule(data=st.data())
    def put_item(self, data: st.DataObject) -> None:
        tab = self.draw_tab(data)
        pk, sk = self.draw_key(data, tab)
        item = self.draw_item(data)
        spelling = data.draw(st.booleans(), "put_with_sk")
        cond = self.draw_condition(data, tab)
        t = self.table(tab)
        if cond is None:
            self.put(t, tab, pk, sk, item, spelling)
        elif cond[1](tab.view(pk, sk, tab.lookup(pk, sk))):
            self.put(t, tab, pk, sk, item, spelling, condition=cond[0])
        else:
            with pytest.raises(obj.ConditionFailedError):
                self.put(t, tab, pk, sk, item, spelling, condition=cond[0])
            return
        tab.store(pk, sk, item)
        same(self.get(t, tab, pk, sk, spelling), item)

    @rule(data=st.data())
    def fill(self, data: st.DataObject) -> None:
        """Several puts: one partition's sort keys, or several partitions of a table
        without sort keys (so there are pages to walk)."""
        tab = self.draw_tab(data)
        t = self.table(tab)
        pk = data.draw(self.pks(tab), "pk")
        for _ in range(data.draw(st.integers(1, 8), "items")):
            if tab.sk_kind is None:
                pk = data.draw(self.pks(tab), "pk")
            sk = data.draw(self.sks(tab, pk), "sk")
            item = self.draw_item(data)
            self.put(t, tab, pk, sk, item, False)
            tab.store(pk, sk, item)

    @rule(data=st.data())
    def put_if_absent(self, data: st.DataObject) -> None:
        tab = self.draw_tab(data)
        pk, sk = self.draw_key(data, tab)
        item = self.draw_item(data)
        t = self.table(tab)
        absent = field("pk").not_exists()
        if tab.lookup(pk, sk) is None:
            self.put(t, tab, pk, sk, item, False, condition=absent)
            tab.store(pk, sk, item)
        else:
            with pytest.raises(obj.ConditionFailedError):
                self.put(t, tab, pk, sk, item, False, condition=absent)

    @precondition(lambda self: any(tab.data for tab in self.tabs))
    @rule(data=st.data())
    def put_with_other_key_types(self, data: st.DataObject) -> None:
        """A table's key types are fixed by its first item: other ones are refused."""
        tab = data.draw(st.sampled_from([t for t in self.tabs if t.data]), "table")
        t = self.table(tab)
        item = self.draw_item(data)
        other_pk = data.draw(st.sampled_from([k for k in KINDS if k != tab.pk_kind]), "pk type")
        pk = data.draw(self.pks(tab), "pk")
        wrong_pk = data.draw(KEYS[other_pk], "wrong pk")
        if tab.sk_kind is None:
            sk_kind = data.draw(st.sampled_from(KINDS), "sk type")
            sk = data.draw(KEYS[sk_kind], "sk")
            calls = [
                lambda: t.put(wrong_pk, item),
                lambda: t.put(pk, item, sk=sk),
                lambda: t.put_with_sk(pk, sk, item),
                lambda: t.batch_write(puts=[(pk, {"ok": 1}), (wrong_pk, item)]),
            ]
        else:
            other_sk = data.draw(st.sampled_from([k for k in KINDS if k != tab.sk_kind]), "sk type")
            sk = data.draw(self.sks(tab, pk), "sk")
            wrong_sk = data.draw(KEYS[other_sk], "wrong sk")
            calls = [
                lambda: t.put(wrong_pk, item, sk=sk),
                lambda: t.put(pk, item),
                lambda: t.put(pk, item, sk=wrong_sk),
                lambda: t.put_with_sk(pk, wrong_sk, item),
                lambda: t.batch_write(puts=[(pk, sk, {"ok": 1}), (pk, wrong_sk, item)]),
            ]
        call = data.draw(st.sampled_from(calls), "call")
        with pytest.raises(obj.InvalidArgumentError):
            call()

    @rule(data=st.data())
    def delete_item(self, data: st.DataObject) -> None:
        tab = self.draw_tab(data)
        pk, sk = self.draw_key(data, tab)
        spelling = data.draw(st.booleans(), "delete_with_sk")
        cond = self.draw_condition(data, tab)
        t = self.table(tab)
        existed = tab.lookup(pk, sk) is not None
        if cond is None:
            assert self.delete(t, tab, pk, sk, spelling) is existed
        elif cond[1](tab.view(pk, sk, tab.lookup(pk, sk))):
            assert self.delete(t, tab, pk, sk, spelling, condition=cond[0]) is existed
        else:
            with pytest.raises(obj.ConditionFailedError):
                self.delete(t, tab, pk, sk, spelling, condition=cond[0])
            return
        tab.remove(pk, sk)
        assert self.get(t, tab, pk, sk) is None

    @rule(data=st.data())
    def update_item(self, data: st.DataObject) -> None:
        tab = self.draw_tab(data)
        pk, sk = self.draw_key(data, tab)
        old = tab.lookup(pk, sk)
        sets = data.draw(
            st.dictionaries(st.sampled_from(["a", "b", "c", "v"]), VALUES, max_size=2), "set"
        )
        removes = data.draw(
            st.lists(
                st.sampled_from([f for f in ["a", "b", "c", "n"] if f not in sets]),
                max_size=2,
                unique=True,
            ),
            "remove",
        )
        adds: dict[str, Any] = {}
        current = (old or {}).get("n", 0)
        if "n" not in removes and type(current) is int and data.draw(st.booleans(), "add"):
            inc = data.draw(st.integers(-3, 3) | st.sampled_from([2**40, -(2**40)]), "inc")
            if I64_MIN <= current + inc <= I64_MAX:
                adds["n"] = inc
        if old is None and not sets and not adds:
            sets = {"v": 0}
        cond = self.draw_condition(data, tab)
        new = dict(old or {})
        new.update(sets)
        for f in removes:
            new.pop(f, None)
        for f, inc in adds.items():
            new[f] = new.get(f, 0) + inc
        kw: dict[str, Any] = {
            **self.sk_kw(tab, sk),
            "set": sets or None,
            "remove": removes or None,
            "add": adds or None,
        }
        t = self.table(tab)
        if cond is not None:
            kw["condition"] = cond[0]
            if not cond[1](tab.view(pk, sk, old)):
                with pytest.raises(obj.ConditionFailedError):
                    t.update(pk, **kw)
                return
        same(t.update(pk, **kw), new)
        tab.store(pk, sk, new)

    @rule(data=st.data())
    def batch_write(self, data: st.DataObject) -> None:
        tab = self.draw_tab(data)
        keys: list[tuple[Any, Any]] = []
        for _ in range(data.draw(st.integers(0, 6), "batch size")):
            key = self.draw_key(data, tab)
            if key not in keys:
                keys.append(key)
        split = data.draw(st.integers(0, len(keys)), "puts")
        puts = [(pk, sk, self.draw_item(data)) for pk, sk in keys[:split]]
        deletes = keys[split:]
        put_args = [(pk, item) if tab.sk_kind is None else (pk, sk, item) for pk, sk, item in puts]
        delete_args = [self.key(tab, pk, sk) for pk, sk in deletes]
        t = self.table(tab)
        if puts and data.draw(st.booleans(), "poisoned"):
            at = data.draw(st.integers(0, len(puts) - 1), "bad one")
            pk, sk, item = puts[at]
            bad = {
                **item,
                "bad": data.draw(st.sampled_from([complex(1, 2), object()]), "bad value"),
            }
            put_args[at] = (pk, bad) if tab.sk_kind is None else (pk, sk, bad)
            with pytest.raises(obj.InvalidArgumentError):
                t.batch_write(puts=put_args, deletes=delete_args)
            return
        t.batch_write(puts=put_args, deletes=delete_args)
        for pk, sk, item in puts:
            tab.store(pk, sk, item)
        for pk, sk in deletes:
            tab.remove(pk, sk)

    # -- reads ---------------------------------------------------------------------------------

    @rule(data=st.data())
    def batch_get(self, data: st.DataObject) -> None:
        tab = self.draw_tab(data)
        keys: list[tuple[Any, Any]] = []
        for _ in range(data.draw(st.integers(0, 6), "keys")):
            key = self.draw_key(data, tab)
            if key not in keys:
                keys.append(key)
        got = self.table(tab).batch_get([self.key(tab, pk, sk) for pk, sk in keys])
        same(got, [tab.lookup(pk, sk) for pk, sk in keys])

    @precondition(lambda self: any(t.sk_kind is not None and t.data for t in self.tabs))
    @rule(data=st.data())
    def query_with_every_sk_condition(self, data: st.DataObject) -> None:
        """One stored partition, every form of sort-key condition around one bound."""
        tab = data.draw(
            st.sampled_from([t for t in self.tabs if t.sk_kind is not None and t.data]), "table"
        )
        pk = data.draw(st.sampled_from(sorted(tab.data)), "pk")
        v = data.draw(self.sks(tab, pk), "bound")
        w = data.draw(self.sks(tab, pk), "other bound")
        prefix = None
        if tab.sk_kind in ("str", "bytes"):
            prefix = data.draw(st.sampled_from([v[:i] for i in range(1, len(v) + 1)]), "prefix")
        reverse = data.draw(st.booleans(), "reverse")
        flt = data.draw(st.none() | self.conditions(tab), "filter")
        kw: dict[str, Any] = {"reverse": reverse}
        if flt is not None:
            kw["filter"] = flt[0]
        t = self.table(tab)
        sks = tab.sorted_sks(pk)
        if reverse:
            sks.reverse()
        for label, arg, test in every_sk_condition(v, w, prefix):
            rows = [
                ((pk, sk), tab.data[pk][sk])
                for sk in sks
                if test(sk) and (flt is None or flt[1](tab.view(pk, sk, tab.data[pk][sk])))
            ]
            page = t.query(pk, sk=arg, **kw)
            assert typed(page.items) == typed([i for _, i in rows]), label
            assert page.last_key is None, label
            limit = data.draw(st.integers(1, len(rows) + 1), f"limit for {label}")
            items, last_keys = walk(
                lambda arg=arg, **more: t.query(pk, sk=arg, **kw, **more), limit
            )
            assert typed(items) == typed([i for _, i in rows]), (label, limit)
            keys = [k for k, _ in rows]
            assert last_keys == [keys[i] for i in range(limit - 1, len(keys) - 1, limit)] + [
                None
            ], (label, limit)

    @rule(data=st.data())
    def query(self, data: st.DataObject) -> None:
        tab = self.draw_tab(data)
        pk = data.draw(self.pks(tab), "pk")
        t = self.table(tab)
        kw: dict[str, Any] = {}
        sk_test: Callable[[Any], bool] = lambda s: True  # noqa: E731
        if tab.sk_kind is not None and data.draw(st.booleans(), "sk condition"):
            kw["sk"], sk_test = data.draw(self.sk_conditions(tab, pk), "sk")
        flt = data.draw(st.none() | self.conditions(tab), "filter")
        if flt is not None:
            kw["filter"] = flt[0]
        reverse = data.draw(st.booleans(), "reverse")
        if reverse or data.draw(st.booleans(), "say reverse=False"):
            kw["reverse"] = reverse
        rows = [
            ((pk, sk), tab.data[pk][sk])
            for sk in (tab.sorted_sks(pk) if pk in tab.data else [])
            if (tab.sk_kind is None or sk_test(sk))
            and (flt is None or flt[1](tab.view(pk, sk, tab.data[pk][sk])))
        ]
        if reverse:
            rows.reverse()
        page = t.query(pk, **kw)
        same(page.items, [item for _, item in rows])
        assert page.last_key is None
        check_pages(
            lambda **more: t.query(pk, **kw, **more), [i for _, i in rows], [k for k, _ in rows]
        )

    @rule(data=st.data())
    def scan(self, data: st.DataObject) -> None:
        tab = self.draw_tab(data)
        flt = data.draw(st.none() | self.conditions(tab), "filter")
        kw = {} if flt is None else {"filter": flt[0]}
        rows = [
            (key, item)
            for key, item in tab.rows()
            if flt is None or flt[1](tab.view(key[0], key[1], item))
        ]
        t = self.table(tab)
        same(t.scan(**kw).items, [item for _, item in rows])
        check_pages(lambda **more: t.scan(**kw, **more), [i for _, i in rows], [k for k, _ in rows])

    # -- transactions, reopening ---------------------------------------------------------------

    @rule(data=st.data())
    def transaction(self, data: st.DataObject) -> None:
        """Writes in a transaction: it reads its own writes, others read the last commit;
        a commit makes them all visible, an exception none."""
        tab = self.draw_tab(data)
        assert self.db is not None
        commit = data.draw(st.booleans(), "commit")
        before = tab.copy_data()
        committed = [(key, item) for key, item in tab.rows()]
        try:
            with self.db.transaction() as tx:
                t = tx.table(tab.name)
                for _ in range(data.draw(st.integers(1, 4), "ops")):
                    pk, sk = self.draw_key(data, tab)
                    op = data.draw(st.sampled_from(["put", "delete", "update"]), "op")
                    if op == "put":
                        item = self.draw_item(data)
                        self.put(t, tab, pk, sk, item, data.draw(st.booleans()))
                        tab.store(pk, sk, item)
                    elif op == "delete":
                        existed = tab.lookup(pk, sk) is not None
                        assert self.delete(t, tab, pk, sk, False) is existed
                        tab.remove(pk, sk)
                    else:
                        sets = {"a": data.draw(A_VALUES, "a")}
                        new = {**(tab.lookup(pk, sk) or {}), **sets}
                        same(t.update(pk, **self.sk_kw(tab, sk), set=sets), new)
                        tab.store(pk, sk, new)
                    same(self.get(t, tab, pk, sk), tab.lookup(pk, sk))
                    same(
                        t.query(pk).items,
                        [tab.data[pk][s] for s in tab.sorted_sks(pk)] if pk in tab.data else [],
                    )
                same(t.scan().items, [item for _, item in tab.rows()])
                assert t.count() == tab.count()
                outside = self.table(tab)
                same(outside.scan().items, [item for _, item in committed])
                if not commit:
                    raise Rollback
        except Rollback:
            tab.data = before

    @rule()
    def close_and_reopen(self) -> None:
        assert self.db is not None
        self.db.close()
        self.db = obj.Db(self.path, durability="eventual")

    # -- what every step must leave ------------------------------------------------------------

    @invariant()
    def tables_read_as_the_model(self) -> None:
        if self.db is None:
            return
        for tab in self.tabs:
            t = self.table(tab)
            rows = tab.rows()
            page = t.scan()
            same(page.items, [item for _, item in rows])
            assert page.last_key is None
            assert t.count() == len(rows)
            for pk in tab.data:
                assert t.count(pk) == len(tab.data[pk])
            for (pk, sk), item in rows:
                same(self.get(t, tab, pk, sk), item)

    def teardown(self) -> None:
        if self.db is not None:
            self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TableMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestTableModel = TableMachine.TestCase


def test_the_model_orders_keys_as_the_contract_says() -> None:
    """A guard on the model itself: Python's order of each key type is the table's."""
    assert sorted([1, -1, I64_MIN, I64_MAX, 0]) == [I64_MIN, -1, 0, 1, I64_MAX]
    assert sorted(["\U0001f600", "\uffff", "a"]) == ["a", "\uffff", "\U0001f600"]
    assert sorted([b"\xff", b"a\x00", b"a", b"\x00"]) == [b"\x00", b"a", b"a\x00", b"\xff"]
    assert typed({"x": True}) != typed({"x": 1}) and typed([1.0]) != typed([1])
