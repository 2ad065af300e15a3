"""obj.AsyncDb: async mirrors of Db, transactions pinned to one worker, no loop blocking."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest

import obj


@obj.document(collection="async_orders", version=1)
@dataclass
class Order:
    email: Annotated[str, obj.Unique]
    region: Annotated[str, obj.Index]
    total: float = 0.0


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_async_crud_iteration_and_queries(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "a.obj")
        oid = await adb.insert(Order(email="a@x", region="us", total=5.0))
        got = await adb.get(Order, oid)
        assert got == Order(email="a@x", region="us", total=5.0)
        for i in range(20):
            await adb.insert(Order(email=f"u{i}@x", region=["us", "eu"][i % 2], total=float(i)))
        assert await adb.count(Order) == 21
        seen = [oid async for oid, _ in adb.all(Order)]
        assert seen == sorted(seen) and len(seen) == 21
        eu = [o.region async for _, o in adb.index_range(Order, "region", "eu", "eu")]
        assert eu == ["eu"] * 10
        found = await adb.find_unique(Order, "email", "u3@x")
        assert found is not None and found.total == 3.0
        rows = await adb.query(Order).filter(obj.field("total") > 15).fetch()
        assert sorted(o.total for _, o in rows) == [16.0, 17.0, 18.0, 19.0]
        assert await adb.query(Order).filter(lambda o: o.region == "us").count() == 11
        first = await adb.query(Order).sort_by("total", reverse=True).first()
        assert first is not None and first[1].total == 19.0
        await adb.close()

    run(main())


def test_async_transactions_commit_roll_back_and_pin_one_thread(tmp_path: Path) -> None:
    async def main() -> None:
        async with await obj.AsyncDb.open(tmp_path / "t.obj") as adb:
            async with adb.transaction() as tx:
                for i in range(5):
                    await tx.insert(Order(email=f"t{i}@x", region="us"))
                # Every step ran on the transaction's single worker thread.
                workers = tx._executor._threads
                assert len(workers) == 1
            assert await adb.count(Order) == 5
            with pytest.raises(RuntimeError):
                async with adb.transaction() as tx:
                    await tx.insert(Order(email="gone@x", region="eu"))
                    raise RuntimeError("boom")
            assert await adb.count(Order) == 5
            with pytest.raises(obj.InvalidArgumentError):
                async with adb.transaction() as tx:
                    await tx.insert(Order(email="t0@x", region="eu"))

    run(main())


def test_loop_is_not_blocked_while_a_writer_waits(tmp_path: Path) -> None:
    async def main() -> None:
        adb = await obj.AsyncDb.open(tmp_path / "w.obj", busy_timeout=5.0)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        async with adb.transaction() as first:
            await first.insert(Order(email="w1@x", region="us"))
            # A second writer waits for the first on its own worker; the loop keeps running.
            second = asyncio.create_task(adb.insert(Order(email="w2@x", region="us")))
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
