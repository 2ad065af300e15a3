"""Write and read transactions and the raw-bytes API on both."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import pytest

import obj


def put_all(db: obj.Db, docs: dict[str, list[bytes]]) -> dict[str, list[int]]:
    with db.transaction() as tx:
        return {c: [tx.insert(c, v) for v in values] for c, values in docs.items()}


# -- basic operations ------------------------------------------------------------------------


def test_insert_returns_increasing_ids_per_collection(db: obj.Db) -> None:
    with db.transaction() as tx:
        assert [tx.insert("a", b"x") for _ in range(3)] == [1, 2, 3]
        assert tx.insert("b", b"y") == 1
        assert tx.insert("a", b"z") == 4


def test_get_returns_bytes(db: obj.Db) -> None:
    with db.transaction() as tx:
        doc_id = tx.insert("c", bytearray(b"payload"))
        value = tx.get("c", doc_id)
        assert type(value) is bytes
        assert value == b"payload"
    with db.read_transaction() as tx:
        value = tx.get("c", doc_id)
        assert type(value) is bytes
        assert value == b"payload"


@pytest.mark.parametrize(
    "value",
    [b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview"), memoryview(b"xxsliced")[2:]],
)
def test_bytes_like_values(db: obj.Db, value: bytes | bytearray | memoryview) -> None:
    with db.transaction() as tx:
        doc_id = tx.insert("c", value)
        tx.upsert("c", 100, value)
    with db.read_transaction() as tx:
        assert tx.get("c", doc_id) == bytes(value)
        assert tx.get("c", 100) == bytes(value)


def test_empty_and_large_values(db: obj.Db) -> None:
    big = bytes(range(256)) * 4000  # ~1 MB: spills into overflow pages
    with db.transaction() as tx:
        empty_id = tx.insert("c", b"")
        big_id = tx.insert("c", big)
        assert tx.get("c", big_id) == big
    with db.read_transaction() as tx:
        assert tx.get("c", empty_id) == b""
        assert tx.get("c", big_id) == big


def test_missing_documents_and_collections_read_as_empty(db: obj.Db) -> None:
    with db.read_transaction() as tx:
        assert tx.get("nothing", 1) is None
        assert tx.count("nothing") == 0
        assert list(tx.iter_all("nothing")) == []
        assert tx.collections() == []
    with db.transaction() as tx:
        assert tx.get("nothing", 1) is None
        assert tx.count("nothing") == 0
        assert list(tx.iter_all("nothing")) == []
        assert tx.delete("nothing", 1) is False
        tx.insert("c", b"x")
        assert tx.get("c", 2) is None


def test_upsert_inserts_and_replaces(db: obj.Db) -> None:
    with db.transaction() as tx:
        assert tx.upsert("c", 10, b"first") is False
        assert tx.upsert("c", 10, b"second") is True
        assert tx.get("c", 10) == b"second"
        assert tx.count("c") == 1
        # Later inserts get ids above any upserted id.
        assert tx.insert("c", b"next") == 11


def test_delete(db: obj.Db) -> None:
    ids = put_all(db, {"c": [b"a", b"b", b"c"]})["c"]
    with db.transaction() as tx:
        assert tx.delete("c", ids[1]) is True
        assert tx.delete("c", ids[1]) is False
        assert tx.get("c", ids[1]) is None
        assert tx.count("c") == 2
    with db.read_transaction() as tx:
        assert [i for i, _ in tx.iter_all("c")] == [ids[0], ids[2]]


def test_ids_are_never_reused(db: obj.Db) -> None:
    with db.transaction() as tx:
        first = tx.insert("c", b"x")
        tx.delete("c", first)
        assert tx.insert("c", b"y") == first + 1


def test_count_and_collections(db: obj.Db) -> None:
    put_all(db, {"b": [b"1"] * 3, "a": [b"1"] * 5})
    with db.read_transaction() as tx:
        assert tx.count("a") == 5
        assert tx.count("b") == 3
        assert tx.collections() == ["a", "b"]
    with db.transaction() as tx:
        tx.insert("c", b"")
        assert tx.collections() == ["a", "b", "c"]


def test_iter_all_in_id_order(db: obj.Db) -> None:
    with db.transaction() as tx:
        for i in [5, 3, 9, 1, 7]:
            tx.upsert("c", i, b"v%d" % i)
    with db.read_transaction() as tx:
        assert list(tx.iter_all("c")) == [(i, b"v%d" % i) for i in [1, 3, 5, 7, 9]]


def test_iter_all_across_many_batches(db: obj.Db) -> None:
    values = [b"%06d" % i * (1 + i % 50) for i in range(5000)]
    ids = put_all(db, {"c": values})["c"]
    with db.transaction() as tx:
        for doc_id in ids[::3]:
            tx.delete("c", doc_id)
    expected = [(i, v) for n, (i, v) in enumerate(zip(ids, values)) if n % 3 != 0]
    with db.read_transaction() as tx:
        assert list(tx.iter_all("c")) == expected
    with db.transaction() as tx:
        assert list(tx.iter_all("c")) == expected


def test_iter_all_is_lazy_with_bounded_memory(db: obj.Db) -> None:
    value = b"x" * 20_000  # 400 documents of 20 kB: 8 MB in all
    with db.transaction() as tx:
        for _ in range(400):
            tx.insert("big", value)
    gc.collect()
    with db.read_transaction() as tx:
        tracemalloc.start()
        try:
            seen = 0
            for _, payload in tx.iter_all("big"):
                assert len(payload) == len(value)
                seen += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == 400
    # One batch of Python bytes objects at most, far below the 8 MB collection.
    assert peak < 2_000_000, peak


def test_iterators_are_independent(db: obj.Db) -> None:
    put_all(db, {"c": [b"%d" % i for i in range(100)]})
    with db.read_transaction() as tx:
        first, second = tx.iter_all("c"), tx.iter_all("c")
        assert next(first) == (1, b"0")
        assert next(first) == (2, b"1")
        assert next(second) == (1, b"0")
        assert iter(first) is first
        assert len(list(first)) == 98
        assert next(first, None) is None


def test_write_iterator_reads_the_transaction_as_it_was_when_it_started(db: obj.Db) -> None:
    # Deleting, inserting and replacing while iterating neither skips nor repeats nor
    # yields what was written after the iterator started (#14: it used to see them).
    put_all(db, {"c": [b"%d" % i for i in range(50)]})
    with db.transaction() as tx:
        tx.insert("c", b"own")  # the transaction's own write before the iterator: seen
        seen = []
        for doc_id, value in tx.iter_all("c"):
            seen.append((doc_id, value))
            if doc_id == 10:
                for later in range(11, 41):
                    tx.delete("c", later)
                tx.insert("c", b"new")
                tx.upsert("c", 45, b"changed")
        assert seen == [(i, b"%d" % (i - 1)) for i in range(1, 51)] + [(51, b"own")]
        # A new iterator sees the transaction as it is now.
        now = dict(tx.all("c"))
        assert sorted(now) == [*range(1, 11), *range(41, 53)]
        assert now[45] == b"changed"


def test_inserting_while_iterating_a_write_transaction_ends(db: obj.Db) -> None:
    put_all(db, {"c": [b"x"] * 5})
    with db.transaction() as tx:
        for doc_id, _ in tx.all("c"):
            tx.insert("c", {"copy_of": doc_id})
        assert tx.count("c") == 10
        copies = [d for _, d in tx.query("c").filter(obj.field("copy_of").exists())]
        assert len(copies) == 5
        # A query started inside the transaction reads a fixed view too.
        for _, d in tx.query("c").filter(obj.field("copy_of").exists()):
            tx.insert("c", {"copy_of": d["copy_of"]})
        assert tx.count("c") == 15
    assert db.count("c") == 15


def test_write_iterator_fails_once_the_transaction_ends(db: obj.Db) -> None:
    put_all(db, {"c": [b"x"] * 100})
    tx = db.transaction()
    it = tx.all("c")
    assert next(it)[0] == 1
    tx.commit()
    with pytest.raises(obj.ObjError, match="ended"):
        next(it)


# -- commit, rollback, isolation -------------------------------------------------------------


def test_commit_on_clean_exit(db: obj.Db) -> None:
    with db.transaction() as tx:
        doc_id = tx.insert("c", b"kept")
    assert not tx.active
    with db.read_transaction() as r:
        assert r.get("c", doc_id) == b"kept"


def test_rollback_on_exception(db: obj.Db) -> None:
    put_all(db, {"c": [b"before"]})
    error = RuntimeError("stop")
    with pytest.raises(RuntimeError) as caught, db.transaction() as tx:
        tx.insert("c", b"discarded")
        tx.upsert("c", 1, b"changed")
        tx.insert("other", b"discarded")
        raise error
    assert caught.value is error
    assert not tx.active
    with db.read_transaction() as r:
        assert list(r.iter_all("c")) == [(1, b"before")]
        assert r.collections() == ["c"]
    with db.transaction() as tx:
        assert tx.insert("c", b"next") == 2


def test_explicit_commit_and_rollback(db: obj.Db) -> None:
    tx = db.transaction()
    tx.insert("c", b"one")
    tx.commit()
    assert not tx.active
    tx = db.transaction()
    tx.insert("c", b"two")
    tx.rollback()
    with db.read_transaction() as r:
        assert r.count("c") == 1
    with db.transaction() as tx:
        tx.insert("c", b"three")
        tx.rollback()  # the block's exit then has nothing left to do
    with db.read_transaction() as r:
        assert r.count("c") == 1


def test_dropped_transaction_rolls_back_and_frees_the_writer(path: object) -> None:
    with obj.Db(path, busy_timeout=0.5) as db:  # type: ignore[arg-type]
        tx = db.transaction()
        tx.insert("c", b"never committed")
        del tx
        gc.collect()
        with db.transaction() as tx2, db.read_transaction() as r:
            assert r.count("c") == 0
            tx2.insert("c", b"x")


def test_write_sees_own_uncommitted_changes_readers_do_not(db: obj.Db) -> None:
    put_all(db, {"c": [b"old"]})
    with db.transaction() as tx:
        tx.upsert("c", 1, b"new")
        tx.insert("c", b"added")
        assert tx.get("c", 1) == b"new"
        assert tx.count("c") == 2
        with db.read_transaction() as r:
            assert r.get("c", 1) == b"old"
            assert r.count("c") == 1
            assert r.get("c", 2) is None


def test_snapshot_is_stable_across_later_commits(db: obj.Db) -> None:
    put_all(db, {"c": [b"v1"]})
    snapshot = db.read_transaction()
    with db.transaction() as tx:
        tx.upsert("c", 1, b"v2")
        tx.insert("c", b"more")
    assert snapshot.get("c", 1) == b"v1"
    assert list(snapshot.iter_all("c")) == [(1, b"v1")]
    snapshot.close()
    with db.read_transaction() as r:
        assert r.get("c", 1) == b"v2"
        assert r.count("c") == 2


# -- use after the end -------------------------------------------------------------------------


def test_write_transaction_unusable_after_its_block(db: obj.Db) -> None:
    with db.transaction() as tx:
        tx.insert("c", b"x")
    calls: list[Callable[[], object]] = [
        lambda: tx.insert("c", b"x"),
        lambda: tx.get("c", 1),
        lambda: tx.upsert("c", 1, b"x"),
        lambda: tx.delete("c", 1),
        lambda: tx.count("c"),
        lambda: tx.iter_all("c"),
        lambda: tx.collections(),
        tx.commit,
        tx.rollback,
        lambda: tx.__enter__(),
    ]
    for call in calls:
        with pytest.raises(obj.ObjError, match="transaction has ended"):
            call()


def test_read_transaction_unusable_after_its_block(db: obj.Db) -> None:
    with db.read_transaction() as tx:
        pass
    assert not tx.active
    calls: list[Callable[[], object]] = [
        lambda: tx.get("c", 1),
        lambda: tx.count("c"),
        lambda: tx.iter_all("c"),
        lambda: tx.collections(),
        lambda: tx.__enter__(),
    ]
    for call in calls:
        with pytest.raises(obj.ObjError, match="transaction has ended"):
            call()
    tx.close()  # idempotent


def test_iterator_unusable_after_its_transaction(db: obj.Db) -> None:
    put_all(db, {"c": [b"%d" % i for i in range(100)]})
    with db.read_transaction() as r:
        it = r.iter_all("c")
        next(it)
    with pytest.raises(obj.ObjError, match="transaction has ended"):
        next(it)
    with db.transaction() as w:
        wit = w.iter_all("c")
        next(wit)
    with pytest.raises(obj.ObjError, match="transaction has ended"):
        next(wit)


def test_reprs(db: obj.Db) -> None:
    with db.transaction() as tx:
        assert "active" in repr(tx)
    assert "ended" in repr(tx)
    with db.read_transaction() as r:
        assert "active" in repr(r)
    assert "ended" in repr(r)


# -- collection names and namespaces ---------------------------------------------------------


def test_collection_names(db: obj.Db) -> None:
    names = ["x", "orders", "ümlaut", "日本", "a b", "n" * 255]
    with db.transaction() as tx:
        for name in names:
            tx.insert(name, name.encode())
    with db.read_transaction() as r:
        assert sorted(r.collections()) == sorted(names)
        for name in names:
            assert r.get(name, 1) == name.encode()


def test_too_long_collection_name(db: obj.Db) -> None:
    with db.transaction() as tx, pytest.raises(obj.InvalidArgumentError, match="255"):
        tx.insert("n" * 256, b"x")


@pytest.mark.parametrize("name", ["archive.orders", "a.b.c", ".hidden", "trailing."])
def test_dotted_names_need_an_attached_namespace(db: obj.Db, name: str) -> None:
    namespace = name.split(".")[0]
    pattern = f"namespace '{namespace}'|namespace \"{namespace}\""
    with db.transaction() as tx:
        calls: list[Callable[[], object]] = [
            lambda: tx.get(name, 1),
            lambda: tx.count(name),
            lambda: tx.iter_all(name),
        ]
        for call in calls:
            with pytest.raises(obj.NotFoundError, match=pattern):
                call()
        # Attached namespaces are read-only: a write to a dotted name is refused as such.
        writes: list[Callable[[], object]] = [
            lambda: tx.insert(name, b"x"),
            lambda: tx.upsert(name, 1, b"x"),
            lambda: tx.delete(name, 1),
        ]
        for write in writes:
            with pytest.raises(obj.InvalidArgumentError, match=pattern):
                write()
    with db.read_transaction() as r:
        reads: list[Callable[[], object]] = [
            lambda: r.get(name, 1),
            lambda: r.count(name),
            lambda: r.iter_all(name),
        ]
        for read in reads:
            with pytest.raises(obj.NotFoundError, match="not attached"):
                read()


# -- one read surface -----------------------------------------------------------------------

READS = [
    "get",
    "get_raw",
    "count",
    "all",
    "iter_all",
    "find_unique",
    "index_range",
    "_query_cursor",
    "indexes",
    "collections",
    "query",
    "index_info",
]


@pytest.mark.parametrize("name", READS)
def test_the_db_and_both_transactions_share_one_read_surface(name: str) -> None:
    # Each read is written once (obj._obj.Reads, obj._reads.Reads) and inherited by all
    # three, so they cannot drift apart (before, Db had no iter_all).
    method = getattr(obj.Db, name)
    assert getattr(obj.ReadTransaction, name) is method
    assert getattr(obj.WriteTransaction, name) is method


def test_db_iter_all_is_all(db: obj.Db) -> None:
    put_all(db, {"c": [b"a", b"b"]})
    assert list(db.iter_all("c")) == list(db.all("c")) == [(1, b"a"), (2, b"b")]


@obj.document(collection="surface_items", version=1)
@dataclass
class SurfaceItem:
    sku: Annotated[str, obj.Unique]
    price: float = 0.0


def test_index_reads_build_a_class_s_indexes_in_a_write_transaction_too(db: obj.Db) -> None:
    # Every index read gets the class ready the same way: the Db in a write of its own, a
    # write transaction in itself (before, tx.index_info skipped it and listed nothing).
    with db.transaction() as tx:
        assert [(i.name, i.status) for i in tx.index_info(SurfaceItem)] == [("sku", "ready")]
        assert tx.find_unique(SurfaceItem, "sku", "x") is None
    assert [(i.name, i.status) for i in db.index_info(SurfaceItem)] == [("sku", "ready")]
    with db.read_transaction() as r:
        assert [i.name for i in r.index_info(SurfaceItem)] == ["sku"]
