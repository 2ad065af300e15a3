"""insert_many: a batch of documents under new ids in one call (#22)."""

from __future__ import annotations

import asyncio
import pathlib
from dataclasses import dataclass
from typing import Annotated

import pytest

import obj


@obj.document(collection="many")
@dataclass
class Item:
    sku: Annotated[str, obj.Unique]
    qty: int


def test_db_insert_many_returns_ids_in_order_and_indexes_them(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        first = db.insert(Item("a", 1))
        ids = db.insert_many(Item(f"s{i}", i) for i in range(500))
        assert ids == list(range(first + 1, first + 501))
        assert db.get(Item, ids[42]) == Item("s42", 42)
        assert db.find_unique(Item, "sku", "s499") == Item("s499", 499)
        assert db.count(Item) == 501
        assert db.insert_many([]) == []


def test_by_collection_name_bytes_and_dicts(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        ids = db.insert_many("events", [b"raw", {"kind": "click", "n": 1}, bytearray(b"x")])
        assert [db.get("events", i) for i in ids] == [b"raw", {"kind": "click", "n": 1}, b"x"]
        with pytest.raises(TypeError, match="missing its values"):
            db.insert_many("events")
        with pytest.raises(obj.InvalidArgumentError, match="not one document"):
            db.insert_many("events", {"kind": "click"})


def test_a_bad_item_writes_nothing_on_db_and_raises_in_a_transaction(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        with pytest.raises(obj.InvalidArgumentError):
            db.insert_many([Item("x", 1), "not a document", Item("y", 2)])
        assert db.count(Item) == 0
        with pytest.raises(obj.ObjError):
            db.insert_many([Item("dup", 1), Item("dup", 2)])  # the unique index refuses
        assert db.count(Item) == 0
        with db.transaction() as tx:
            assert tx.insert_many([Item("t1", 1), Item("t2", 2)]) == [1, 2]
            assert tx.count(Item) == 2  # its own writes
        assert db.count(Item) == 2


def test_async_insert_many(path: pathlib.Path) -> None:
    async def main() -> list[int]:
        async with await obj.AsyncDb.open(path, workers=2) as adb:
            ids = await adb.insert_many([Item("a1", 1), Item("a2", 2)])
            async with adb.transaction() as tx:
                ids += await tx.insert_many("log", [b"one", b"two"])
            assert await adb.count(Item) == 2
            return ids

    assert asyncio.run(main()) == [1, 2, 1, 2]
