"""obj.AsyncDb: explicit async mirrors of Db, its transactions and queries; one bounded pool
of worker threads; a write transaction holds one worker for its life; waiting writers hold
none; cancellation and exceptions roll back; close() waits for open transactions."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable

import pytest

import obj
from obj import aio


@obj.document(collection="async_orders", version=1)
@dataclass
class Order:
    email: Annotated[str, obj.Unique]
    region: Annotated[str, obj.Index]
    total: float = 0.0


def run(coro: Any, timeout: float = 60.0) -> Any:
    """Runs ``coro``; a deadlock fails the test instead of hanging it."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


# -- the surface: explicit, complete, no forwarding ----------------------------------------

PAIRS = [
    (obj.Db, aio.AsyncDb),
    (obj.WriteTransaction, aio.AsyncTransaction),
    (obj.ReadTransaction, aio.AsyncReadTransaction),
    (obj.Query, aio.AsyncQuery),
    (obj.Collection, aio.AsyncCollection),
    (obj.Table, aio.AsyncTable),
]

#: Methods that return at once: builders, handles, and async iterators (``async for``).
NOT_AWAITED = {
    "all",
    "iter_all",
    "index_range",
    "query",
    "collection",
    "transaction",
    "read_transaction",
    "filter",
    "sort_by",
    "limit",
    "offset",
    "sort_buffer_limit",
    "changes",
    "context",
}


def _public(cls: type) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_"))


def _params(fn: Callable[..., Any]) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()][1:]


@pytest.mark.parametrize(("blocking", "mirror"), PAIRS, ids=lambda c: c.__name__)
def test_every_public_method_has_an_explicit_async_mirror(blocking: type, mirror: type) -> None:
    for klass in mirror.__mro__:
        assert "__getattr__" not in vars(klass), f"{klass.__name__} forwards dynamically"
    missing = [n for n in _public(blocking) if not hasattr(mirror, n)]
    assert not missing, f"{mirror.__name__} lacks {missing}"
    for name in _public(blocking):
        sync = inspect.getattr_static(blocking, name)
        mine = inspect.getattr_static(mirror, name)
        if isinstance(sync, classmethod):
            assert isinstance(mine, classmethod), name
            continue
        if not callable(sync):
            assert isinstance(mine, property), f"{mirror.__name__}.{name} should be a property"
            continue
        method = getattr(mirror, name)
        # (A table's query and scan run at once and return a page.)
        awaited = name not in NOT_AWAITED or blocking is obj.Table
        assert inspect.iscoroutinefunction(method) == awaited, (
            f"{mirror.__name__}.{name} should {'' if awaited else 'not '}be async"
        )
        assert _params(getattr(blocking, name)) == _params(method), (
            f"{mirror.__name__}.{name} takes other arguments than {blocking.__name__}.{name}"
        )


def test_open_takes_exactly_the_options_of_db() -> None:
    options = {
        p.name
        for p in inspect.signature(obj.Db).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not p.name.startswith("_")
    }
    assert set(obj.DbOptions.__annotations__) == options


@pytest.mark.parametrize("workers", [0, -1, True, 1.5, "2", None])
def test_workers_must_be_a_positive_int(tmp_path: Path, workers: Any) -> None:
    with pytest.raises(obj.InvalidArgumentError, match="workers"):
        run(obj.AsyncDb.open(tmp_path / "w.obj", workers=workers))
    assert not (tmp_path / "w.obj").exists()


def test_bad_db_options_are_reported_and_leave_no_worker(tmp_path: Path) -> None:
    before = threading.active_count()
    with pytest.raises(obj.InvalidArgumentError, match="durability"):
        run(obj.AsyncDb.open(tmp_path / "o.obj", durability="sometimes"))  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


# -- every method works -------------------------------------------------------------------


def test_every_db_method_works(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "a.obj", workers=2)
        assert adb.workers == 2 and not adb.closed and not adb.read_only
        assert adb.path == tmp_path / "a.obj" and adb.wal_path.name == "a.obj-wal"
        assert adb.page_size == 4096 and adb.attached == {} and isinstance(adb.db, obj.Db)
        oid = await adb.insert(Order(email="a@x", region="us", total=5.0))
        assert await adb.get(Order, oid) == Order(email="a@x", region="us", total=5.0)
        for i in range(20):
            await adb.insert(Order(email=f"u{i}@x", region=["us", "eu"][i % 2], total=float(i)))
        assert await adb.count(Order) == 21
        seen = [oid async for oid, _ in adb.all(Order)]
        assert seen == sorted(seen) and len(seen) == 21
        eu = [o.region async for _, o in adb.index_range(Order, "region", "eu", "eu")]
        assert eu == ["eu"] * 10
        found = await adb.find_unique(Order, "email", "u3@x")
        assert found is not None and found.total == 3.0
        assert await adb.find_unique(Order, "email", "nobody") is None
        assert await adb.upsert(Order, oid, Order(email="a@x", region="ap")) is True
        assert (await adb.update(Order, oid, lambda o: setattr(o, "total", 7.0))).total == 7.0
        assert await adb.delete(Order, 10_000) is False

        ev = await adb.insert("events", {"kind": "click"})
        assert await adb.get("events", ev) == {"kind": "click"}
        raw = await adb.insert("blobs", b"\x00\x01")
        assert await adb.get_raw("blobs", raw) == b"\x00\x01"
        with pytest.raises(TypeError, match="missing its value"):
            await adb.insert("blobs")
        assert await adb.upsert("events", ev, {"kind": "view"}) is True
        assert await adb.update("events", ev, lambda d: {**d, "n": 1}) == {"kind": "view", "n": 1}
        assert await adb.delete("events", ev) is True
        assert await adb.collections() == ["async_orders", "blobs", "events"]

        assert {r[0] for r in await adb.indexes(Order)} == {"email", "region"}
        assert {i.name for i in await adb.index_info(Order)} == {"email", "region"}
        assert await adb.migrate(Order) == 0
        assert (await adb.stat()).collections
        assert await adb.wal_frames() > 0
        assert (await adb.checkpoint()).wal_reset
        assert (await adb.compact()).pages_after > 0
        assert (await adb.integrity_check()).page_count > 0
        assert [r.id for r in await adb.dump_raw("blobs")] == [raw]
        assert await adb.backup(tmp_path / "copy.obj") > 0
        await adb.attach(tmp_path / "copy.obj", "old")
        assert await adb.count("old.blobs") == 1
        await adb.detach("old")
        assert await adb.get(Order, 9999) is None
        await adb.close()
        assert adb.closed and adb.db.closed
        await adb.close()  # idempotent

    run(main())


def test_every_query_method_works(tmp_path: Path) -> None:
    async def main() -> None:
        async with await obj.AsyncDb.open(tmp_path / "q.obj") as adb:
            for i in range(10):
                await adb.insert(Order(email=f"q{i}@x", region=["us", "eu"][i % 2], total=i))
            q = adb.query(Order).filter(obj.field("total") > 2).filter(lambda o: o.total < 9)
            assert [o.total for _, o in await q.fetch()] == [3, 4, 5, 6, 7, 8]
            top = q.sort_by("total", reverse=True).offset(1).limit(2)
            assert [o.total for _, o in await top.fetch()] == [7, 6]
            assert await top.count() == 2
            assert len(await top.ids()) == 2
            first = await top.first()
            assert first is not None and first[1].total == 7
            assert "python filter" in await top.explain()
            assert "index region" in await adb.query(Order).index_range("region", "eu").explain()
            streamed = [o.total async for _, o in q.sort_by(lambda o: -o.total)]
            assert streamed == [8, 7, 6, 5, 4, 3]
            with pytest.raises(obj.InvalidArgumentError, match="sort would hold more"):
                await adb.query(Order).sort_by("email").sort_buffer_limit(3).fetch()
            assert isinstance(q.query, obj.Query) and "filter" in repr(q)
            assert await adb.query("async_orders").count() == 10
            with pytest.raises(obj.InvalidArgumentError):
                q.filter(42)  # type: ignore[arg-type]

    run(main())


def test_every_transaction_method_works(tmp_path: Path) -> None:
    async def main() -> None:
        async with await obj.AsyncDb.open(tmp_path / "t.obj") as adb:
            tx = adb.transaction()
            assert not tx.active
            with pytest.raises(obj.ObjError, match=r"async with adb\.transaction"):
                await tx.insert("x", b"1")
            async with tx:
                assert tx.active
                oid = await tx.insert(Order(email="t@x", region="us"))
                raw = await tx.insert("raw", b"r")
                assert await tx.get(Order, oid) == Order(email="t@x", region="us")
                assert await tx.get_raw("raw", raw) == b"r"
                assert await tx.count(Order) == 1
                assert await adb.count(Order) == 0  # the latest commit, from inside
                assert await tx.upsert(Order, oid, Order(email="t@x", region="eu")) is True
                updated = await tx.update(Order, oid, lambda o: setattr(o, "total", 2.0))
                assert updated.total == 2.0
                found = await tx.find_unique(Order, "email", "t@x")
                assert found is not None and found.region == "eu"
                assert [i async for i, _ in tx.all(Order)] == [oid]
                assert [i async for i, _ in tx.iter_all(Order)] == [oid]
                assert [i async for i, _ in tx.index_range(Order, "region", "eu")] == [oid]
                assert [i for i, _ in await tx.query(Order).fetch()] == [oid]
                assert {r[0] for r in await tx.indexes(Order)} == {"email", "region"}
                assert {i.name for i in await tx.index_info(Order)} == {"email", "region"}
                assert await tx.collections() == ["async_orders", "raw"]
                orders = tx.collection(Order)
                assert orders.target is Order
                second = await orders.insert(Order(email="c@x", region="ap"))
                assert (await orders.get(second)) == Order(email="c@x", region="ap")
                assert await orders.upsert(second, Order(email="c@x", region="us")) is True
                assert (await orders.update(second, lambda o: None)).region == "us"
                assert [i async for i, _ in orders.all()] == [oid, second]
                assert await orders.count_all() == 2
                assert await orders.delete(second) is True
                assert await tx.delete("raw", raw) is True
                await tx.commit()
                assert not tx.active
                with pytest.raises(obj.ObjError, match="has ended"):
                    await tx.insert("raw", b"late")
            assert await adb.count(Order) == 1
            with pytest.raises(obj.ObjError, match="already used"):
                async with tx:
                    pass

            async with adb.transaction() as tx:
                await tx.insert("raw", b"gone")
                await tx.rollback()
            assert await adb.count("raw") == 0

            snap = adb.read_transaction()
            with pytest.raises(obj.ObjError, match=r"async with adb\.read_transaction"):
                await snap.count(Order)
            async with snap:
                assert snap.active
                await adb.insert(Order(email="later@x", region="us"))
                assert await snap.count(Order) == 1  # the snapshot, not the new commit
                assert (await snap.get(Order, oid)) is not None
                assert await snap.get_raw("raw", 1) is None
                assert [i async for i, _ in snap.all(Order)] == [oid]
                assert [i async for i, _ in snap.iter_all(Order)] == [oid]
                assert [i async for i, _ in snap.index_range(Order, "region", "eu")] == [oid]
                assert await snap.find_unique(Order, "email", "later@x") is None
                assert await snap.query(Order).count() == 1
                assert {r[0] for r in await snap.indexes(Order)} == {"email", "region"}
                assert len(await snap.index_info(Order)) == 2
                assert await snap.collections() == ["async_orders", "raw"]
            assert not snap.active
            with pytest.raises(obj.ObjError, match="has ended"):
                await snap.count(Order)
            await snap.close()  # idempotent
            assert await adb.count(Order) == 2

    run(main())


def test_exceptions_roll_back_and_propagate(tmp_path: Path) -> None:
    async def main() -> None:
        async with await obj.AsyncDb.open(tmp_path / "e.obj") as adb:
            with pytest.raises(RuntimeError, match="boom"):
                async with adb.transaction() as tx:
                    await tx.insert(Order(email="gone@x", region="eu"))
                    raise RuntimeError("boom")
            assert await adb.count(Order) == 0
            await adb.insert(Order(email="dup@x", region="eu"))
            with pytest.raises(obj.InvalidArgumentError):
                async with adb.transaction() as tx:
                    await tx.insert(Order(email="new@x", region="eu"))
                    await tx.insert(Order(email="dup@x", region="eu"))
            assert await adb.count(Order) == 1

            def fail(order: Order) -> None:
                raise ZeroDivisionError

            with pytest.raises(ZeroDivisionError):
                await adb.update(Order, 1, fail)
            # The writer was given back each time: this starts at once.
            async with adb.transaction() as tx:
                await tx.insert(Order(email="ok@x", region="eu"))
            assert await adb.count(Order) == 2

    run(main())


# -- one bounded pool ----------------------------------------------------------------------


def _obj_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("obj-aio")}


def test_concurrent_write_transactions_share_a_bounded_pool_and_all_commit(
    tmp_path: Path,
) -> None:
    n = 24

    async def main() -> None:
        before = _obj_threads()
        seen: set[threading.Thread] = set()
        peak = 0
        adb = await obj.AsyncDb.open(tmp_path / "p.obj", workers=2, busy_timeout=30.0)
        counter = await adb.insert("counter", {"n": 0})

        def bump(doc: dict[str, int]) -> None:
            seen.add(threading.current_thread())
            doc["n"] += 1

        async def one(i: int) -> None:
            nonlocal peak
            async with adb.transaction() as tx:
                steps = set()
                for _ in range(3):
                    await tx.update("counter", counter, bump)
                    steps.add(threading.current_thread())
                    await asyncio.sleep(0)  # let every other task run in between
                    peak = max(peak, len(_obj_threads() - before))
                await tx.insert("log", {"i": i})
            assert len(steps) == 1

        async def reader() -> None:
            for _ in range(20):
                await adb.count("log")
                await asyncio.sleep(0)

        await asyncio.gather(*[one(i) for i in range(n)], reader(), reader())
        assert (await adb.get("counter", counter)) == {"n": 3 * n}
        assert await adb.count("log") == n
        assert len(seen) <= 2 and all(t.name.startswith("obj-aio") for t in seen)
        assert peak <= 2
        assert len(_obj_threads() - before) <= 2
        await adb.close()

    run(main())


def test_a_write_transaction_runs_every_step_on_one_worker(tmp_path: Path) -> None:
    async def main() -> None:
        async with await obj.AsyncDb.open(tmp_path / "one.obj", workers=4) as adb:
            oid = await adb.insert("c", {"n": 0})
            threads = []

            def note(doc: dict[str, int]) -> None:
                threads.append(threading.get_ident())

            async with adb.transaction() as tx:
                for _ in range(10):
                    await tx.update("c", oid, note)
                    await asyncio.gather(*[adb.count("c") for _ in range(4)])
                    await asyncio.sleep(0)
            assert len(set(threads)) == 1

    run(main())


def test_waiting_writers_hold_no_worker_so_reads_go_on(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "r.obj", workers=2, busy_timeout=30.0)
        await adb.insert("c", {"n": 0})
        holding = asyncio.Event()
        release = asyncio.Event()

        async def long_writer() -> None:
            async with adb.transaction() as tx:
                await tx.insert("c", {"n": 1})
                holding.set()
                await release.wait()

        async def other_writer(i: int) -> None:
            if i % 2:
                async with adb.transaction() as tx:
                    await tx.insert("c", {"n": i})
            else:
                await adb.insert("c", {"n": i})

        first = asyncio.ensure_future(long_writer())
        await holding.wait()
        others = [asyncio.ensure_future(other_writer(i)) for i in range(6)]
        await asyncio.sleep(0.05)
        # Six writers wait, one holds a worker: reads still get the other worker at once.
        start = time.monotonic()
        for _ in range(5):
            assert await adb.count("c") == 1
        assert time.monotonic() - start < 1.0
        assert not any(t.done() for t in others)
        release.set()
        await asyncio.gather(first, *others)
        assert await adb.count("c") == 8
        await adb.close()

    run(main())


def test_a_writer_waits_busy_timeout_for_another_then_gets_busy_error(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "b.obj", workers=2, busy_timeout=0.2)
        async with adb.transaction() as tx:
            await tx.insert("c", {"n": 1})

            async def from_another_task() -> None:
                with pytest.raises(obj.BusyError, match="busy_timeout"):
                    await adb.insert("c", {"n": 2})
                with pytest.raises(obj.BusyError, match="busy_timeout"):
                    async with adb.transaction():
                        pass

            start = time.monotonic()
            await asyncio.ensure_future(from_another_task())
            assert 0.35 <= time.monotonic() - start < 5
        await adb.insert("c", {"n": 3})
        assert await adb.count("c") == 2
        await adb.close()

    run(main())


def test_one_worker_with_an_open_snapshot_can_still_write(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "s.obj", workers=1)
        await adb.insert("c", {"n": 0})
        async with adb.read_transaction() as snap:
            await adb.insert("c", {"n": 1})
            async with adb.transaction() as tx:
                await tx.insert("c", {"n": 2})
                # Inside the write transaction (which holds the only worker) the snapshot
                # and Db-level reads run on that worker.
                assert await snap.count("c") == 1
                assert await adb.count("c") == 2
            assert [d["n"] async for _, d in snap.all("c")] == [0]
        assert await adb.count("c") == 3
        await adb.close()

    run(main(), timeout=20)


def test_inside_a_write_transaction_db_writes_are_refused_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "n.obj", workers=1, busy_timeout=10.0)
        async with adb.transaction() as tx:
            await tx.insert("c", {"n": 1})
            start = time.monotonic()
            with pytest.raises(obj.BusyError, match=r"tx\.insert"):
                await adb.insert("c", {"n": 2})
            with pytest.raises(obj.BusyError, match="inside a write transaction"):
                async with adb.transaction():
                    pass
            with pytest.raises(obj.BusyError):
                await adb.checkpoint()
            assert time.monotonic() - start < 2  # not after busy_timeout
            async with adb.read_transaction() as snap:
                assert await snap.count("c") == 0
            # A task started in here works within the transaction's worker too.
            assert await asyncio.ensure_future(adb.count("c")) == 0
        assert await adb.count("c") == 1
        await adb.close()

    run(main(), timeout=20)


def test_other_tasks_wait_for_the_only_worker_and_then_run(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "w1.obj", workers=1)
        await adb.insert("c", {"n": 0})
        go = asyncio.Event()

        async def other_task() -> int:
            await go.wait()
            return await adb.count("c")

        reader = asyncio.ensure_future(other_task())  # started outside the transaction
        async with adb.transaction() as tx:
            go.set()
            await asyncio.sleep(0.1)
            assert not reader.done()  # the only worker is the transaction's
            await tx.insert("c", {"n": 1})
        assert await reader == 2  # it ran once the transaction had committed
        await adb.close()

    run(main(), timeout=20)


# -- cancellation --------------------------------------------------------------------------


def test_cancelling_a_task_inside_a_transaction_rolls_it_back(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "c.obj", workers=2, busy_timeout=10.0)
        inside = asyncio.Event()

        async def parked() -> None:
            async with adb.transaction() as tx:
                await tx.insert("c", {"n": 1})
                inside.set()
                await asyncio.Event().wait()

        task = asyncio.ensure_future(parked())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await adb.count("c") == 0

        # Cancelled while a step runs on the worker: the step finishes, then rolls back.
        started = threading.Event()

        def slow(doc: dict[str, int]) -> None:
            started.set()
            time.sleep(0.2)
            doc["n"] = 99

        oid = await adb.insert("c", {"n": 0})
        # Held here, so that dropping it cannot end the transaction behind the test's back.
        held = adb.transaction()

        async def mid_step() -> None:
            async with held as tx:
                await tx.update("c", oid, slow)

        task = asyncio.ensure_future(mid_step())
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.01)
        task.cancel()  # again, while the rollback waits for the step to finish
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not held.active
        # The writer is free again at once (not after busy_timeout).
        start = time.monotonic()
        async with adb.transaction() as tx:
            assert await tx.get("c", oid) == {"n": 0}
        assert time.monotonic() - start < 2
        await adb.close()

    run(main())


def test_cancelling_a_transaction_that_waits_to_begin_leaks_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "cb.obj", workers=2, busy_timeout=10.0)
        # Waiting in line behind this AsyncDb's own writer (on the event loop).
        async with adb.transaction():
            waiter = asyncio.ensure_future(adb.transaction().__aenter__())
            await asyncio.sleep(0.05)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        # Waiting for the engine's writer, held by a blocking transaction of another thread:
        # the begin completes after the cancellation, and is rolled back then.
        blocking = adb.db.transaction()
        blocking.insert("c", {"n": "blocking"})
        held = adb.transaction()  # kept alive: only the rollback may end it
        waiter = asyncio.ensure_future(held.__aenter__())
        await asyncio.sleep(0.1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.get_running_loop().run_in_executor(None, blocking.commit)
        start = time.monotonic()
        async with adb.transaction() as tx:
            await tx.insert("c", {"n": "after"})
        assert time.monotonic() - start < 5
        assert not held.active
        assert sorted([d["n"] async for _, d in adb.all("c")]) == ["after", "blocking"]
        await adb.close()

    run(main())


# -- closing -------------------------------------------------------------------------------


def test_close_waits_for_open_transactions_and_refuses_new_work(tmp_path: Path) -> None:
    path = tmp_path / "cl.obj"

    async def main() -> None:
        adb = await obj.AsyncDb.open(path, workers=2)
        inside = asyncio.Event()
        go_on = asyncio.Event()

        async def writer() -> None:
            async with adb.transaction() as tx:
                await tx.insert("c", {"n": 1})
                inside.set()
                await go_on.wait()
                await adb.count("c")  # calls from inside an open transaction still run
                await tx.insert("c", {"n": 2})

        async def reader() -> int:
            async with adb.read_transaction() as snap:
                await go_on.wait()
                return await snap.count("c")

        w = asyncio.ensure_future(writer())
        r = asyncio.ensure_future(reader())
        await inside.wait()
        closing = asyncio.ensure_future(adb.close())
        await asyncio.sleep(0.05)
        assert not closing.done()
        with pytest.raises(obj.ObjError, match="closing"):
            await adb.count("c")
        with pytest.raises(obj.ObjError, match="closing"):
            async with adb.transaction():
                pass
        with pytest.raises(obj.ObjError, match="closing"):
            async with adb.read_transaction():
                pass
        go_on.set()
        await closing
        assert w.done() and r.done() and await r == 0
        assert adb.closed
        with pytest.raises(obj.ObjError, match="closed"):
            await adb.get("c", 1)
        with pytest.raises(obj.ObjError, match="closed"):
            async with adb.transaction():
                pass

        async def close_inside() -> None:
            again = await obj.AsyncDb.open(path)
            async with again.transaction():
                with pytest.raises(obj.ObjError, match="inside a transaction"):
                    await again.close()
            async with again.read_transaction():
                with pytest.raises(obj.ObjError, match="inside a transaction"):
                    await again.close()
            assert await again.count("c") == 2
            await again.close()

        await close_inside()

    run(main())
    with obj.Db(path) as db:
        assert db.count("c") == 2


def test_close_stops_the_worker_threads(tmp_path: Path) -> None:
    async def main() -> set[threading.Thread]:
        before = _obj_threads()
        async with await obj.AsyncDb.open(tmp_path / "st.obj", workers=3) as adb:
            await asyncio.gather(*[adb.insert("c", {"i": i}) for i in range(10)])
            await asyncio.gather(*[adb.count("c") for i in range(10)])
            mine = _obj_threads() - before
            assert 1 <= len(mine) <= 3
        return mine

    for thread in run(main()):
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_async_with_closes_without_checkpoint_on_an_exception(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(KeyError):
            async with await obj.AsyncDb.open(tmp_path / "x.obj") as adb:
                await adb.insert("c", {"n": 1})
                raise KeyError("out")
        assert adb.closed

    run(main())
    assert (tmp_path / "x.obj-wal").stat().st_size > obj.WAL_HEADER_SIZE
    with obj.Db(tmp_path / "x.obj") as db:
        assert db.count("c") == 1


# -- the loop never waits for the engine ---------------------------------------------------


def test_loop_is_not_blocked_while_a_writer_waits(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "w.obj", busy_timeout=5.0)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.ensure_future(ticker())
        async with adb.transaction() as first:
            await first.insert(Order(email="w1@x", region="us"))
            # A second writer waits for the first; the loop keeps running.
            second = asyncio.ensure_future(adb.insert(Order(email="w2@x", region="us")))
            start = time.monotonic()
            await asyncio.sleep(0.3)
            assert not second.done()
        await second
        assert ticks >= 10, f"the event loop was blocked (only {ticks} ticks)"
        assert time.monotonic() - start >= 0.3
        # Many concurrent readers alongside a writer.
        results = await asyncio.gather(
            *[adb.count(Order) for _ in range(20)], adb.insert(Order(email="w3@x", region="eu"))
        )
        assert all(n in (2, 3) for n in results[:20])
        t.cancel()
        await adb.close()

    run(main())


def test_async_store_on_the_db_and_in_transactions(tmp_path: Path) -> None:
    async def main() -> None:
        async with await obj.AsyncDb.open(tmp_path / "s.obj", workers=2) as adb:
            s = await adb.store("kv")
            await s.set("b", 2)
            await s.put_many({"a": 1, "c": 3})
            assert await s.get("a") == 1 and await s.get("zz") is None
            assert await s.getitem("c") == 3
            with pytest.raises(KeyError):
                await s.getitem("zz")
            assert await s.len() == 3 and await s.contains("b")
            assert [k async for k in s] == ["a", "b", "c"]
            assert [kv async for kv in s.prefix("b")] == [("b", 2)]
            assert [kv async for kv in s.range("b", reverse=True)] == [("c", 3), ("b", 2)]
            assert await s.get_many(["a", "x"]) == ({"a": 1}, ["x"])
            await s.delete("b")
            assert await s.delete_many(["a", "q"]) == 1
            assert [kv async for kv in s.items()] == [("c", 3)]
            async with adb.transaction() as tx:
                ts = await tx.store("kv")
                await ts.set("t", "in tx")
                assert await ts.len() == 2
            assert await s.get("t") == "in tx"
            async with adb.read_transaction() as rt:
                rs = await rt.store("kv")
                assert await rs.get("c") == 3
            buffered = await adb.store("kv", buffer=10)
            await buffered.set("z", 26)
            await buffered.flush()
            assert await s.get("z") == 26
            await s.clear()
            assert await s.len() == 0
            users = await adb.store("async_users", values=AsyncUser, buffer=10)
            await users.put_many({"u1": AsyncUser("a@x", 30), "u2": AsyncUser("b@x", 30)})
            assert await users.find_unique("email", "b@x") == AsyncUser("b@x", 30)
            assert [k async for k, _ in users.index_range("age", 30, 30)] == ["u1", "u2"]

    run(main())


@obj.document(collection="async_users", version=1)
@dataclass
class AsyncUser:
    email: Annotated[str, obj.Unique]
    age: Annotated[int, obj.Index]


def test_import_obj_leaves_asyncio_until_the_async_api_is_used() -> None:
    """`import obj` stays cheap: asyncio, its thread pool and pickle load on first use."""
    import subprocess
    import sys

    code = (
        "import sys, obj\n"
        "before = sorted(m for m in ('asyncio', 'obj.aio', 'pickle') if m in sys.modules)\n"
        "cls = obj.AsyncDb\n"
        "print(before, cls.__module__, 'asyncio' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")[0]
    assert out == "[] obj.aio True"
    with pytest.raises(AttributeError, match="no attribute 'AsyncNothing'"):
        obj.AsyncNothing  # noqa: B018
