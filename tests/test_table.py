"""obj.Table beyond the model test: secondary indexes, transactions, AsyncTable, errors."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest

import obj
import obj._obj
from obj import aio


def users(db: obj.Db | obj.WriteTransaction) -> obj.Table:
    return db.table("users", indexes=["email", ("org", "joined")])


def fill(t: obj.Table) -> None:
    for i in range(12):
        t.put(
            f"user#{i:02d}",
            {"email": f"u{i % 4}@x.org", "org": "acme" if i % 2 else "zeta", "joined": 2000 + i},
        )


def numbers(page: obj.Page) -> list[int]:
    return [item["joined"] - 2000 for item in page]


def test_index_equality_range_prefix_and_order() -> None:
    with obj.Db.memory() as db:
        t = users(db)
        fill(t)
        assert numbers(t.query_index("email", "u1@x.org")) == [1, 5, 9]
        assert numbers(t.query_index("email", obj.sk > "u2@x.org")) == [3, 7, 11]
        assert numbers(t.query_index("email", obj.sk.begins_with("u0"))) == [0, 4, 8]
        acme = t.query_index(("org", "joined"), ("acme",))
        assert numbers(acme) == [1, 3, 5, 7, 9, 11]
        assert numbers(t.query_index("org,joined", ("acme",), reverse=True)) == [11, 9, 7, 5, 3, 1]
        between = obj.sk.between(("acme", 2003), ("acme", 2007))
        assert numbers(t.query_index(("org", "joined"), between)) == [3, 5, 7]
        everything = t.query_index("email")
        assert len(everything) == 12 and everything.last_key is None
        filtered = t.query_index("email", "u1@x.org", filter=obj.field("org") == "acme")
        assert numbers(filtered) == [1, 5, 9]


def test_index_pages_resume_after_last_key_in_both_directions() -> None:
    with obj.Db.memory() as db:
        t = users(db)
        fill(t)
        for reverse in (False, True):
            full = numbers(t.query_index("email", reverse=reverse))
            for size in range(1, 13):
                got: list[int] = []
                after = None
                while True:
                    page = t.query_index("email", limit=size, reverse=reverse, start_after=after)
                    got += numbers(page)
                    if page.last_key is None:
                        break
                    assert isinstance(page.last_key, bytes) and len(page) == size
                    after = page.last_key
                assert got == full, (reverse, size)


def test_indexes_follow_every_write_and_are_built_for_existing_items() -> None:
    with obj.Db.memory() as db:
        plain = db.table("users")
        fill(plain)
        t = users(db)  # built now, from the twelve items
        assert numbers(t.query_index("email", "u1@x.org")) == [1, 5, 9]
        t.put("user#01", {"email": "other@x.org", "org": "acme", "joined": 2001})
        t.delete("user#05")
        t.update("user#09", set={"email": "u2@x.org"})
        assert numbers(t.query_index("email", "u1@x.org")) == []
        assert numbers(t.query_index("email", "u2@x.org")) == [2, 6, 9, 10]
        t.batch_write(deletes=["user#02", "user#06"])
        assert numbers(t.query_index("email", "u2@x.org")) == [9, 10]
        report = db.integrity_check()
        assert report is not None


def test_an_item_without_the_attribute_is_not_listed() -> None:
    with obj.Db.memory() as db:
        t = db.table("t", indexes=["score"])
        t.put("a", {"score": 3})
        t.put("b", {"name": "no score"})
        t.put("d", {"score": None})
        t.put("c", {"score": 1.5})
        assert [i.get("score") for i in t.query_index("score")] == [1.5, 3]
        assert [i["score"] for i in t.query_index("score", obj.sk < 2)] == [1.5]


def test_index_errors_name_the_problem() -> None:
    with obj.Db.memory() as db:
        t = users(db)
        with pytest.raises(obj.NotFoundError, match='no index named "age"'):
            t.query_index("age", 3)
        with pytest.raises(obj.InvalidArgumentError, match="indexes"):
            db.table("users", indexes="email")
        with pytest.raises(obj.InvalidArgumentError, match="start_after"):
            t.query_index("email", start_after=("a", None))  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError, match="limit"):
            t.query_index("email", limit=0)


def test_indexes_declared_in_a_transaction_roll_back_with_it(tmp_path: pathlib.Path) -> None:
    with obj.Db(tmp_path / "t.obj") as db:
        with pytest.raises(RuntimeError), db.transaction() as tx:
            t = users(tx)
            t.put("user#00", {"email": "a@x", "org": "acme", "joined": 2000})
            assert [i["email"] for i in t.query_index("email", "a@x")] == ["a@x"]
            raise RuntimeError("roll back")
        assert db.table("users").count() == 0
        assert "users" not in db.collections()


def test_transactions_see_their_own_writes_and_read_transactions_refuse_writes() -> None:
    with obj.Db.memory() as db:
        t = db.table("t")
        t.put("a", {"n": 1}, sk=1)
        with db.transaction() as tx:
            tt = tx.table("t")
            tt.put("a", {"n": 2}, sk=2)
            assert [i["n"] for i in tt.query("a")] == [1, 2]
            assert [i["n"] for i in t.query("a")] == [1]  # not committed yet
            assert tt.update("a", sk=1, add={"n": 10}) == {"n": 11}
        assert [i["n"] for i in t.query("a")] == [11, 2]
        with db.read_transaction() as rx:
            rt = rx.table("t")
            assert rt.get("a", sk=2) == {"n": 2}
            t.put("a", {"n": 3}, sk=3)
            assert rt.count("a") == 2  # its snapshot
            with pytest.raises(obj.ObjError, match="read transaction"):
                rt.put("a", {"n": 4}, sk=4)


def test_a_failed_condition_in_a_transaction_writes_nothing_and_the_transaction_goes_on() -> None:
    with obj.Db.memory() as db:
        with db.transaction() as tx:
            t = tx.table("t")
            t.put("a", {"v": 1})
            with pytest.raises(obj.ConditionFailedError):
                t.put("a", {"v": 2}, condition=obj.field("v") == 5)
            with pytest.raises(obj.ConditionFailedError):
                t.update("a", set={"v": 3}, condition=obj.field("v") > 1)
            with pytest.raises(obj.ConditionFailedError):
                t.delete("a", condition=obj.field("pk").not_exists())
            t.put("b", {"v": 1}, condition=obj.field("pk").not_exists())
        t = db.table("t")
        assert t.get("a") == {"v": 1} and t.get("b") == {"v": 1}


def test_keys_of_the_wrong_type_are_refused_with_the_table_types_named() -> None:
    with obj.Db.memory() as db:
        t = db.table("t")
        t.put(1, {"x": 1}, sk="a")
        with pytest.raises(obj.InvalidArgumentError, match="int partition keys and str sort"):
            t.put("1", {"x": 1}, sk="a")
        with pytest.raises(obj.InvalidArgumentError, match="no sort keys"):
            t.put(1, {"x": 1})
        with pytest.raises(obj.InvalidArgumentError, match="partition key"):
            t.put(1.5, {"x": 1}, sk="a")  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError, match="partition key"):
            t.put(True, {"x": 1}, sk="a")
        with pytest.raises(obj.InvalidArgumentError, match="sort keys are str"):
            t.query(1, sk=obj.sk > 3)
        with pytest.raises(obj.InvalidArgumentError, match="dict"):
            t.put(1, [1, 2], sk="b")  # type: ignore[arg-type]
        with pytest.raises(obj.InvalidArgumentError, match="64-bit"):
            t.put(2**63, {"x": 1}, sk="a")
        assert t.count() == 1


def test_async_table_mirrors_the_table(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        async with await aio.AsyncDb.open(tmp_path / "a.obj") as adb:
            t = await adb.table("users")
            await t.put("org", {"name": "Ada"}, sk=1)
            await t.put_with_sk("org", 2, {"name": "Bob"})
            assert await t.get("org", sk=1) == {"name": "Ada"}
            page = await t.query("org", sk=obj.sk >= 2)
            assert [i["name"] for i in page] == ["Bob"]
            assert await t.update("org", sk=2, add={"logins": 1}) == {"name": "Bob", "logins": 1}
            await t.batch_write(puts=[("org", 3, {"name": "Cy"})], deletes=[("org", 1)])
            assert await t.batch_get([("org", 1), ("org", 3)]) == [None, {"name": "Cy"}]
            assert await t.count() == 2 and await t.count("org") == 2
            assert len(await t.scan()) == 2
            assert await t.delete_with_sk("org", 3)
            async with adb.transaction() as tx:
                tt = await tx.table("users")
                await tt.put("org", {"name": "Di"}, sk=4)
                assert await tt.get_with_sk("org", 4) == {"name": "Di"}
            assert await t.get("org", sk=4) == {"name": "Di"}

    asyncio.run(main())


@pytest.fixture
def clock() -> Iterator[Callable[[float], None]]:
    """Sets the engine's clock (seconds since the epoch) for the test; restored after."""
    obj._obj._set_clock(1_000_000.0)
    try:
        yield obj._obj._set_clock
    finally:
        obj._obj._set_clock(None)


def expired_in_stat(db: obj.Db, name: str) -> int:
    return next(c.expired for c in db.stat().collections if c.name == name)


def test_an_item_is_gone_for_every_read_from_the_moment_it_expires(
    clock: Callable[[float], None],
) -> None:
    with obj.Db.memory() as db:
        t = db.table("t", indexes=["v"])
        t.put("a", {"v": 1}, sk=1, ttl=10)
        t.put("a", {"v": 2}, sk=2, ttl=timedelta(seconds=20))
        t.put("a", {"v": 3}, sk=3)
        t.put("a", {"v": 4}, sk=4, ttl=datetime.fromtimestamp(1_000_030, timezone.utc))
        clock(1_000_009.999)
        assert t.get("a", sk=1) == {"v": 1}
        clock(1_000_010.0)  # exactly the expiry time: gone
        assert t.get("a", sk=1) is None
        assert [i["v"] for i in t.query("a")] == [2, 3, 4]
        assert [i["v"] for i in t.query("a", reverse=True, limit=1)] == [4]
        assert [i["v"] for i in t.scan()] == [2, 3, 4]
        assert [i["v"] for i in t.query_index("v")] == [2, 3, 4]
        assert t.batch_get([("a", 1), ("a", 2)]) == [None, {"v": 2}]
        assert (t.count(), t.count("a"), len(t)) == (3, 3, 3)
        with db.read_transaction() as rx:
            assert rx.table("t").get("a", sk=1) is None
        # Conditions see it as missing: put-if-absent succeeds, delete reports nothing.
        assert not t.delete("a", sk=1, condition=obj.field("pk").not_exists())
        t.put("a", {"v": 10}, sk=1, condition=obj.field("pk").not_exists())
        assert t.get("a", sk=1) == {"v": 10}  # no ttl now: it stays
        clock(1_000_025.0)
        # An update keeps an item's expiry; of an expired item it starts afresh.
        assert t.update("a", sk=4, add={"v": 1}) == {"v": 5}
        assert t.update("a", sk=2, set={"w": 1}) == {"w": 1}
        clock(1_000_031.0)
        assert [i.get("v", i.get("w")) for i in t.query("a")] == [10, 1, 3]
        assert t.count() == 3


def test_expired_items_are_counted_by_stat_until_writes_or_compaction_reclaim_them(
    tmp_path: pathlib.Path, clock: Callable[[float], None]
) -> None:
    with obj.Db(tmp_path / "ttl.obj") as db:
        t = db.table("t")
        t.batch_write(puts=[(f"k{i:03d}", {"i": i}) for i in range(100)], ttl=5)
        t.put("keep", {"i": -1})
        clock(1_000_006.0)
        assert t.count() == 1
        assert expired_in_stat(db, "t") == 100
        t.put("other", {"i": -2})  # each write reclaims a few, oldest first
        left = expired_in_stat(db, "t")
        assert 0 < left < 100
        assert t.count() == 2
        db.compact()
        assert expired_in_stat(db, "t") == 0
        stat = next(c for c in db.stat().collections if c.name == "t")
        assert stat.doc_count == 2
        assert [i["i"] for i in t.scan()] == [-1, -2]
        db.integrity_check()


def test_expiry_survives_reopening(tmp_path: pathlib.Path, clock: Callable[[float], None]) -> None:
    path = tmp_path / "reopen.obj"
    with obj.Db(path) as db:
        db.table("t").put(1, {"n": 1}, ttl=60)
        db.table("t").put(2, {"n": 2})
    with obj.Db(path) as db:
        t = db.table("t")
        assert t.get(1) == {"n": 1}
        clock(1_000_061.0)
        assert t.get(1) is None and t.count() == 1


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "10", True, timedelta(0)])
def test_a_bad_ttl_is_refused(ttl: object) -> None:
    with obj.Db.memory() as db:
        with pytest.raises(obj.InvalidArgumentError, match="ttl"):
            db.table("t").put("a", {}, ttl=ttl)  # type: ignore[arg-type]
        assert db.table("t").count() == 0
