"""obj.Store: a persistent dict over a keyed collection."""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import unittest
import uuid
from pathlib import Path
from typing import Annotated, Any

import pytest

import obj

try:
    from test import mapping_tests
except ImportError:  # pragma: no cover - interpreters built without the test package
    mapping_tests = None


@pytest.fixture
def db(tmp_path: Path) -> Any:
    with obj.Db(tmp_path / "s.obj") as d:
        yield d


# -- the CPython mapping-protocol suite, a fresh store per test --------------------------

if mapping_tests is not None:

    class _StoreBase:
        type2test = obj.Store

        def _reference(self) -> dict[str, Any]:
            return {"key1": "value1", "key2": 2, "key3": [1, 2, 3]}

        def _empty_mapping(self) -> obj.Store[str, Any]:
            import tempfile

            tmp = tempfile.mkdtemp()
            store = obj.Store.open(os.path.join(tmp, "m.obj"), sync="off")
            self.addCleanup(store.close)  # type: ignore[attr-defined]
            return store

    class TestStoreBasicMappingProtocol(_StoreBase, mapping_tests.BasicTestMappingProtocol):  # type: ignore[misc]
        pass

    class TestStoreMappingProtocol(_StoreBase, mapping_tests.TestMappingProtocol):  # type: ignore[misc]
        # dict-only parts of the suite: int keys (a store takes str and bytes keys), the
        # dict constructor and fromkeys, and copy() returning the same type.
        skip_reason = "dict-specific: int keys / dict constructor, not part of a store's protocol"

        def test_constructor(self) -> None:
            self.assertEqual(self._empty_mapping(), {})

        def test_values(self) -> None:
            d = self._full_mapping({"1": 2})
            self.assertEqual(list(d.values()), [2])

        def test_items(self) -> None:
            d = self._full_mapping({"1": 2})
            self.assertEqual(list(d.items()), [("1", 2)])

        def test_clear(self) -> None:
            d = self._full_mapping({"1": 1, "2": 2, "3": 3})
            d.clear()
            self.assertEqual(d, {})
            self.assertRaises(TypeError, d.clear, None)

        def test_update(self) -> None:
            d = self._empty_mapping()
            d.update({"1": 100})
            d.update({"2": 20})
            d.update({"1": 1, "2": 2, "3": 3})
            self.assertEqual(d, {"1": 1, "2": 2, "3": 3})
            d.update(x=1, y=2)
            d.update([("z", 9)])
            self.assertEqual(d, {"1": 1, "2": 2, "3": 3, "x": 1, "y": 2, "z": 9})

        def test_fromkeys(self) -> None:
            pass

        def test_copy(self) -> None:
            d = self._full_mapping({"1": 1, "2": 2, "3": 3})
            self.assertEqual(dict(d), {"1": 1, "2": 2, "3": 3})

        def test_get(self) -> None:
            d = self._empty_mapping()
            self.assertIs(d.get("c"), None)
            self.assertEqual(d.get("c", 3), 3)
            d = self._full_mapping({"a": 1, "b": 2})
            self.assertIs(d.get("c"), None)
            self.assertEqual(d.get("c", 3), 3)
            self.assertEqual(d.get("a"), 1)
            self.assertEqual(d.get("a", 3), 1)

        def test_setdefault(self) -> None:
            d = self._empty_mapping()
            self.assertRaises(TypeError, d.setdefault)

        def test_popitem(self) -> None:
            d = self._full_mapping({"a": 1, "b": 2})
            self.assertEqual(d.popitem(), ("a", 1))
            self.assertEqual(d.popitem(), ("b", 2))
            self.assertRaises(KeyError, d.popitem)

        def test_pop(self) -> None:
            d = self._empty_mapping()
            k, v = "abc", "def"
            d[k] = v
            self.assertRaises(KeyError, d.pop, "ghi")
            self.assertEqual(d.pop(k), v)
            self.assertEqual(len(d), 0)
            self.assertRaises(KeyError, d.pop, k)


def test_mapping_suite_is_available() -> None:
    if mapping_tests is None:
        pytest.skip("this interpreter has no test package (test.mapping_tests)")
    assert issubclass(TestStoreBasicMappingProtocol, unittest.TestCase)


# -- keys ---------------------------------------------------------------------------------


def test_str_and_bytes_keys_and_their_types(db: Any) -> None:
    s = db.store("s")
    s["user:42"] = {"name": "Ada"}
    s[b"raw"] = 1
    s[bytearray(b"ba")] = 2
    s[memoryview(b"mv")] = 3
    assert s["user:42"] == {"name": "Ada"}
    assert s["raw"] == 1 and s[b"ba"] == 2 and s["mv"] == 3
    assert list(s) == ["ba", "mv", "raw", "user:42"]
    b = db.store("s", keys="bytes")
    assert list(b) == [b"ba", b"mv", b"raw", b"user:42"]
    for bad in (1, 2.5, None, ("t",), object()):
        with pytest.raises(obj.store.KeyTypeError) as e:
            s[bad] = 1  # type: ignore[index]
        assert isinstance(e.value, TypeError)
        assert isinstance(e.value, obj.InvalidArgumentError)
        assert type(bad).__name__ in str(e.value)
        assert bad not in s
    with pytest.raises(KeyError):
        s["missing"]
    with pytest.raises(obj.InvalidArgumentError, match="1 to 1024 bytes"):
        s[""] = 1
    with pytest.raises(obj.InvalidArgumentError, match="1025 bytes"):
        s["x" * 1025] = 1
    s["y" * 1024] = "longest"
    assert s["y" * 1024] == "longest"


def test_unicode_normalisation_makes_equivalent_keys_one(db: Any) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    plain = db.store("plain")
    plain[composed] = 1
    plain[decomposed] = 2
    assert len(plain) == 2
    nfc = db.store("nfc", normalize="NFC")
    nfc[composed] = 1
    nfc[decomposed] = 2
    assert len(nfc) == 1 and nfc[composed] == 2 and decomposed in nfc
    nfkc = db.store("nfkc", normalize="NFKC")
    nfkc["\ufb01le"] = "ligature"  # "ﬁle"
    assert nfkc["file"] == "ligature"
    assert list(nfkc) == ["file"]
    with pytest.raises(obj.InvalidArgumentError, match="normalize"):
        db.store("x", normalize="NFX")


def test_key_errors_decide_unencodable_str_keys(db: Any) -> None:
    strict = db.store("k")
    with pytest.raises(obj.InvalidArgumentError, match="surrogateescape"):
        strict["\udcff"] = 1
    lenient = db.store("k2", key_errors="surrogateescape")
    lenient["a\udcff"] = 1
    assert list(lenient) == ["a\udcff"]
    assert db.store("k2", keys="bytes").keys() == {b"a\xff"}
    with pytest.raises(obj.InvalidArgumentError, match="key_errors"):
        db.store("k3", key_errors="no-such-handler")


# -- values -------------------------------------------------------------------------------


def test_default_values_are_the_dict_native_model(db: Any) -> None:
    s = db.store("v")
    values = [
        None,
        True,
        -(2**63),
        1.5,
        "text",
        b"\x00bytes",
        [1, [2, "x"], None],
        {"nested": {"list": [1.0, {"k": b"v"}]}},
        datetime.datetime(2026, 12, 1, 12, 30, tzinfo=datetime.timezone.utc),
        datetime.date(2026, 12, 1),
        uuid.UUID(int=7),
    ]
    for i, v in enumerate(values):
        s[f"k{i:02}"] = v
    assert [s[f"k{i:02}"] for i in range(len(values))] == values
    with pytest.raises(obj.ObjError):
        s["bad"] = object()
    assert "bad" not in s


def test_bytes_values_are_stored_untouched(db: Any) -> None:
    s = db.store("raw", values=bytes)
    s["a"] = b"\x80\x00 not a value codec"
    s["b"] = bytearray(b"ba")
    assert s["a"] == b"\x80\x00 not a value codec" and s["b"] == b"ba"
    assert type(s["b"]) is bytes
    with pytest.raises(obj.InvalidArgumentError, match="raw bytes"):
        s["c"] = "str"


@obj.document(collection="store_people", version=1)
@dataclasses.dataclass
class Person:
    name: str
    age: int


def test_typed_values_go_through_the_codec(db: Any) -> None:
    s = db.store("store_people", values=Person)
    s["ada"] = Person("Ada", 36)
    assert s["ada"] == Person("Ada", 36)
    with pytest.raises(obj.InvalidArgumentError, match="Person"):
        s["x"] = {"name": "not a person"}
    with pytest.raises(obj.InvalidArgumentError, match="declared for collection 'store_people'"):
        db.store("other", values=Person)


def test_pickle_only_when_asked_for_by_name(db: Any) -> None:
    s = db.store("p", values="pickle")
    s["t"] = (1, {2, 3})
    assert s["t"] == (1, {2, 3})
    raw = db.store("p", values=bytes)
    assert pickle.loads(raw["t"]) == (1, {2, 3})
    assert "arbitrary code" in (obj.Db.store.__doc__ or "")
    # Nothing is pickled by default: an object is refused, not silently pickled.
    with pytest.raises(obj.ObjError):
        db.store("np")["s"] = object()
    with pytest.raises(obj.InvalidArgumentError, match="values"):
        db.store("q", values="marshal")


# -- the mapping protocol with real semantics ------------------------------------------------


def test_len_in_and_views(db: Any) -> None:
    s = db.store("m")
    s.update({"b": 2, "a": 1, "c": 3})
    keys, values, items = s.keys(), s.values(), s.items()
    assert len(s) == 3 and len(keys) == 3
    s["d"] = 4
    assert list(keys) == ["a", "b", "c", "d"]
    assert list(values) == [1, 2, 3, 4]
    assert ("d", 4) in items and ("d", 5) not in items
    assert keys & {"a", "z"} == {"a"}
    assert keys | {"z"} == {"a", "b", "c", "d", "z"}
    assert keys - {"a"} == {"b", "c", "d"}
    assert s == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert s != {"a": 1}
    assert s.pop("a") == 1 and s.pop("a", None) is None
    assert s.setdefault("e", 5) == 5 and s.setdefault("e", 6) == 5
    assert isinstance(s, collections.abc.MutableMapping)
    assert repr(s) == "<obj.Store 'm' (native values): 4 keys>"
    s.clear()
    assert len(s) == 0 and list(s) == []


def test_iteration_reads_a_snapshot_while_the_store_changes(db: Any) -> None:
    s = db.store("it")
    s.put_many({f"k{i:04}": i for i in range(2000)})
    seen = []
    for i, key in enumerate(s):
        seen.append(key)
        if i % 10 == 0:
            s[f"k{i:04}x"] = -1  # inserted just after the current key
            del s[f"k{1999 - i // 10:04}"]  # deleted ahead
    assert seen == [f"k{i:04}" for i in range(2000)]
    assert len(s) == 2000  # +200 inserted, -200 deleted


def test_range_and_prefix(db: Any) -> None:
    s = db.store("r")
    s.put_many({"a1": 1, "a2": 2, "b1": 3, "b2": 4, "c": 5})
    assert list(s.range("a2", "b2")) == [("a2", 2), ("b1", 3)]
    assert list(s.range(hi="a2")) == [("a1", 1)]
    assert list(s.range("b1", reverse=True)) == [("c", 5), ("b2", 4), ("b1", 3)]
    assert list(s.prefix("b")) == [("b1", 3), ("b2", 4)]
    assert list(s.prefix("b", reverse=True)) == [("b2", 4), ("b1", 3)]
    assert [k for k, _ in s.prefix("")] == ["a1", "a2", "b1", "b2", "c"]
    assert list(reversed(s)) == ["c", "b2", "b1", "a2", "a1"]


# -- batches and the write buffer -----------------------------------------------------------


def test_put_many_is_all_or_nothing(db: Any) -> None:
    s = db.store("pm")
    s.put_many([("a", 1), ("b", 2)])
    with pytest.raises(obj.ObjError):
        s.put_many({"c": 3, "d": object()})
    assert dict(s) == {"a": 1, "b": 2}


@pytest.mark.parametrize("values", [None, bytes, "pickle"])
def test_put_many_takes_any_two_item_pairs_and_names_a_bad_one(db: Any, values: Any) -> None:
    s = db.store(f"pairs-{values}", values=values)
    v1, v2 = (b"1", bytearray(b"2")) if values is bytes else (1, [2])
    s.put_many([["a", v1], ("b", v2)])
    assert dict(s) == {"a": bytes(v1) if values is bytes else v1, "b": v2}
    for bad in [("c",), ("c", v1, v1), 7]:
        with pytest.raises((obj.InvalidArgumentError, TypeError, ValueError)):
            s.put_many([("d", v1), bad])
    assert list(s) == ["a", "b"]


def test_get_many_and_delete_many_keep_the_callers_key_types(db: Any) -> None:
    s = db.store("gm")
    s.put_many({"a": 1, "b": 2})
    found, missing = s.get_many(["a", b"b", "z"])
    assert found == {"a": 1, b"b": 2} and missing == ["z"]
    found, missing = s.get_many(["z"], default=0)
    assert found == {"z": 0} and missing == ["z"]
    assert s.delete_many(["a", "zz", "a"]) == 1
    assert list(s) == ["b"]


def test_write_buffer_flushes_when_full_on_flush_on_read_and_on_close(tmp_path: Path) -> None:
    path = tmp_path / "buf.obj"
    db = obj.Db(path)
    s = db.store("b", buffer=3, autoflush_on_read=False)
    s["a"] = 1
    s["b"] = 2
    assert s.pending == 2
    assert db.store("b").get("a") is None  # not committed yet
    assert s["a"] == 1 and len(s) == 2 and list(s) == ["a", "b"]  # read-your-writes
    del s["a"]
    assert "a" not in s and s.pending == 2
    s["c"] = 3  # third pending write: commits
    assert s.pending == 0
    assert dict(db.store("b")) == {"b": 2, "c": 3}
    s["d"] = 4
    assert s.exists("d", flush=False) and s.pending == 1
    assert s.exists("d") and s.pending == 1  # autoflush_on_read is off
    s.flush()
    assert s.pending == 0
    s["e"] = 5
    auto = db.store("b", buffer=10)
    auto["f"] = 6
    assert auto["b"] == 2 and auto.pending == 0  # a read flushed it
    s.close()
    auto.close()
    db.close()
    with obj.Db(path) as again:
        assert dict(again.store("b")) == {"b": 2, "c": 3, "d": 4, "e": 5, "f": 6}


def test_close_strict_reraises_a_failing_final_flush(tmp_path: Path) -> None:
    db = obj.Db(tmp_path / "c.obj")
    s = db.store("c", buffer=10, values=bytes)
    s["a"] = b"1"
    db.close()
    with pytest.raises(obj.ObjError):
        s.close(strict=True)
    s.close(strict=True)  # idempotent


def test_a_transaction_batches_store_writes(db: Any) -> None:
    with db.transaction() as tx:
        st = tx.store("tx")
        st["a"] = 1
        st["b"] = 2
        assert len(st) == 2 and st["a"] == 1
        assert len(db.store("tx")) == 0
    assert dict(db.store("tx")) == {"a": 1, "b": 2}
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.store("tx")["c"] = 3
        raise RuntimeError("roll back")
    assert "c" not in db.store("tx")
    with db.read_transaction() as rt:
        assert rt.store("tx")["a"] == 1
        with pytest.raises(obj.ObjError):
            rt.store("tx")["z"] = 0


def test_a_store_and_an_id_collection_do_not_mix(db: Any) -> None:
    db.insert("orders", {"n": 1})
    with pytest.raises(obj.InvalidArgumentError, match="ids, not keys"):
        db.store("orders")
    db.store("kv")["a"] = 1
    with pytest.raises(obj.InvalidArgumentError, match="keyed collection"):
        db.insert("kv", {"n": 1})


def test_store_open_owns_its_database(tmp_path: Path) -> None:
    path = tmp_path / "own.obj"
    with obj.Store.open(path, "cache") as s:
        s["a"] = 1
    with pytest.raises(obj.ObjError):
        s["a"]
    with obj.Store.open(path, name="cache") as s:
        assert s["a"] == 1


def test_threads_never_see_half_of_a_put_many(db: Any) -> None:
    s = db.store("th")
    s.put_many({f"k{i:03}": 0 for i in range(100)})
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            vals = set(s.values())
            if len(vals) != 1:
                errors.append(f"mixed generations {sorted(vals)}")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for gen in range(1, 30):
        s.put_many({f"k{i:03}": gen for i in range(100)})
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert set(s.values()) == {29}


def test_put_many_survives_sigkill_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "kill.obj"
    script = textwrap.dedent(
        f"""
        import obj, sys
        s = obj.Store.open({str(path)!r}, "k")
        gen = 0
        while True:
            gen += 1
            s.put_many({{f"k{{i:04}}": gen for i in range(500)}})
            print(gen, flush=True)
        """
    )
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        acked = 0
        for _ in range(5):
            acked = int(proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with obj.Store.open(path, "k") as s:
            values = set(s.values())
            assert len(values) == 1, values
            assert values.pop() >= acked
            assert len(s) == 500


def test_a_million_keys(tmp_path: Path) -> None:
    with obj.Store.open(tmp_path / "big.obj", sync="off") as s:
        for start in range(0, 1_000_000, 100_000):
            s.put_many((f"{i:08}", i) for i in range(start, start + 100_000))
        assert len(s) == 1_000_000
        assert s["00500000"] == 500_000
        assert list(s.range("00999998")) == [("00999998", 999_998), ("00999999", 999_999)]


@pytest.mark.parametrize("values", [None, bytes])
def test_a_buffered_write_of_a_value_the_store_cannot_hold_is_refused_at_once(
    db: Any, values: Any
) -> None:
    s = db.store(f"refuse-{values}", values=values, buffer=10)
    bad: Any = "text" if values is bytes else object()
    with pytest.raises(obj.InvalidArgumentError):
        s["k"] = bad
    s["ok"] = b"v" if values is bytes else {"v": 1}
    s.flush()
    assert list(s) == ["ok"] and "k" not in s
    # A bytearray is copied when buffered: changing it later does not change the write.
    if values is bytes:
        buf = bytearray(b"abc")
        s["b"] = buf
        buf[0] = ord("z")
        s.flush()
        assert s["b"] == b"abc"


# -- secondary indexes and migration of typed values ---------------------------------------


@obj.document(collection="store_users", version=1)
@dataclasses.dataclass
class IndexedUser:
    email: Annotated[str, obj.Unique]
    age: Annotated[int, obj.Index]


def test_indexes_declared_on_typed_values_work_in_a_store(db: Any) -> None:
    s = db.store("store_users", values=IndexedUser)
    s.put_many({"u1": IndexedUser("a@x", 30), "u2": IndexedUser("b@x", 40)})
    s["u3"] = IndexedUser("c@x", 30)
    assert db.find_unique(IndexedUser, "email", "b@x") == IndexedUser("b@x", 40)
    assert db.find_unique(IndexedUser, "email", "nobody") is None
    assert [d for _, d in db.index_range(IndexedUser, "age", 30, 30)] == [
        IndexedUser("a@x", 30),
        IndexedUser("c@x", 30),
    ]
    adults = db.query(IndexedUser).filter(obj.field("age") >= 35)
    assert [d.email for _, d in adults.fetch()] == ["b@x"] and adults.count() == 1
    # A unique value held under another key is refused, and nothing is written.
    with pytest.raises(obj.InvalidArgumentError, match="'u1'"):
        s["u4"] = IndexedUser("a@x", 1)
    assert "u4" not in s
    # Replacing and deleting keep the indexes in step.
    s["u1"] = IndexedUser("z@x", 31)
    del s["u2"]
    assert db.find_unique(IndexedUser, "email", "a@x") is None
    assert db.find_unique(IndexedUser, "email", "z@x") == IndexedUser("z@x", 31)
    assert db.index_range(IndexedUser, "age", 30, 30).count() == 1
    assert [d.email for _, d in db.query(IndexedUser).fetch()] == ["z@x", "c@x"]
    # The same reads inside a transaction see its own writes.
    with db.transaction() as tx:
        tx.store("store_users", values=IndexedUser)["u5"] = IndexedUser("e@x", 30)
        assert tx.find_unique(IndexedUser, "email", "e@x") == IndexedUser("e@x", 30)
        assert tx.index_range(IndexedUser, "age", 30, 30).count() == 2
    db.integrity_check()  # raises IntegrityError on any inconsistency


def test_a_typed_store_reads_its_indexes_with_its_own_keys(db: Any) -> None:
    s = db.store("store_users", values=IndexedUser, buffer=10)
    s["u1"] = IndexedUser("a@x", 30)
    s["u2"] = IndexedUser("b@x", 40)
    # Buffered writes are flushed first, so index reads see them.
    assert s.find_unique("email", "b@x") == IndexedUser("b@x", 40)
    s["u3"] = IndexedUser("c@x", 30)
    assert list(s.index_range("age", 30, 30)) == [
        ("u1", IndexedUser("a@x", 30)),
        ("u3", IndexedUser("c@x", 30)),
    ]
    assert [k for k, _ in s.index_range("age", lo=35)] == ["u2"]
    # The database-level queries name each match by its stored key.
    assert [k for k, _ in db.index_range(IndexedUser, "age", 40, 40)] == [b"u2"]
    assert [k for k, _ in db.query(IndexedUser).filter(obj.field("age") == 30)] == [b"u1", b"u3"]
    as_bytes = db.store("store_users", values=IndexedUser, keys="bytes")
    assert [k for k, _ in as_bytes.index_range("age", 30, 30)] == [b"u1", b"u3"]
    with pytest.raises(obj.InvalidArgumentError, match="values=SomeDocumentClass"):
        db.store("plain").find_unique("email", "a@x")
    with pytest.raises(obj.InvalidArgumentError, match="values=SomeDocumentClass"):
        db.store("plain").index_range("age")  # refused when called, not when iterated
    with pytest.raises(obj.NotFoundError):
        s.find_unique("nope", 1)


@obj.document(collection="store_migrants", version=1)
@dataclasses.dataclass
class MigrantV1:
    name: str


@obj.document(collection="store_migrants", version=2, history=[MigrantV1])
@dataclasses.dataclass
class Migrant:
    name: str
    handle: Annotated[str, obj.Unique]

    @classmethod
    def migrate(cls, doc: Any, from_version: int) -> Migrant:
        return cls(doc.name, doc.name.lower())


def test_older_typed_values_in_a_store_are_migrated_by_the_newer_class(tmp_path: Path) -> None:
    path = tmp_path / "m.obj"
    with obj.Db(path) as db:
        old = db.store("store_migrants", values=MigrantV1)
        old.put_many({"a": MigrantV1("Ann"), "b": MigrantV1("Bob")})
    with obj.Db(path) as db:
        s = db.store("store_migrants", values=Migrant)
        assert s["a"] == Migrant("Ann", "ann")  # decoded through migrate
        s["c"] = Migrant("Cy", "cy")  # the first write migrates every older record
        assert dict(s) == {
            "a": Migrant("Ann", "ann"),
            "b": Migrant("Bob", "bob"),
            "c": Migrant("Cy", "cy"),
        }
        # The unique index covers the migrated records too.
        assert db.find_unique(Migrant, "handle", "bob") == Migrant("Bob", "bob")
        with pytest.raises(obj.InvalidArgumentError):
            s["d"] = Migrant("Other", "ann")
    with obj.Db(path, read_only=True) as ro:
        assert [r.header.type_version for r in ro.dump_raw("store_migrants")] == [2, 2, 2]
