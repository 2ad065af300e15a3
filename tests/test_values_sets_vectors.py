"""Sets and float32 vectors: DynamoDB's set types and embeddings, in every dict-native value
(table items, store values, dict documents)."""

from __future__ import annotations

import array
import pickle
from typing import Any

import pytest

import obj

np = pytest.importorskip("numpy")


def round_trip(value: Any) -> Any:
    with obj.Db.memory() as db:
        t = db.table("t")
        t.put("k", {"v": value})
        item = t.get("k")
        assert item is not None
        store = db.store("s")
        store["k"] = {"v": value}
        assert store["k"] == item  # the same codec
        doc = db.insert("docs", {"v": value})
        assert db.get("docs", doc) == item
        return item["v"]


@pytest.mark.parametrize(
    "members",
    [{"a", "b"}, frozenset({b"x", b"\x00"}), {1, 2.5, -3}, {2**62}, set()],
    ids=["str", "bytes", "numbers", "big-int", "empty"],
)
def test_sets_come_back_as_sets(members: Any) -> None:
    back = round_trip(members)
    assert type(back) is set
    assert back == set(members)


@pytest.mark.parametrize(
    "bad",
    [{1, "a"}, {b"a", "a"}, {(1, 2)}, {True}, {None}],
    ids=["int-and-str", "bytes-and-str", "tuple", "bool", "none"],
)
def test_a_set_of_mixed_or_other_members_is_refused_naming_the_path(bad: Any) -> None:
    with obj.Db.memory() as db:
        with pytest.raises(obj.InvalidValueError, match=r'item\["deep"\]\["s"\]') as e:
            db.table("t").put("k", {"deep": {"s": bad}})
        assert isinstance(e.value, ValueError)
        assert db.table("t").count() == 0


def test_vectors_from_array_numpy_and_obj_vector_come_back_as_obj_vector() -> None:
    floats = [0.1, -2.5, 3.0e10, 1e-8]
    expected = array.array("f", floats).tolist()  # the same values rounded to float32
    for given in (
        array.array("f", floats),
        np.array(floats, dtype=np.float32),
        obj.Vector(floats),
    ):
        back = round_trip(given)
        assert isinstance(back, obj.Vector)
        assert back == expected and back == floats  # equal to the float32 values
        assert list(back) == expected and back.tolist() == expected
        assert len(back) == 4 and back[1] == -2.5 and back[-1] == expected[-1]
        assert back[1:3] == expected[1:3] and isinstance(back[1:3], obj.Vector)
        assert back != [0.1, -2.5, 3.0e10] and back != "abcd"


def test_a_plain_list_of_floats_stays_a_list() -> None:
    back = round_trip([0.1, 0.2, 0.3])
    assert type(back) is list and back == [0.1, 0.2, 0.3]


def test_a_vector_shares_its_memory_with_numpy_and_is_read_only() -> None:
    v = round_trip(np.arange(1000, dtype=np.float32))
    a = np.asarray(v)
    assert a.dtype == np.float32 and a.shape == (1000,)
    assert np.shares_memory(a, np.asarray(v))  # no copy: both views of v's buffer
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 5
    m = memoryview(v)
    assert (m.format, m.shape, m.readonly, m.nbytes) == ("f", (1000,), True, 4000)
    assert a.sum() == sum(range(1000))
    assert pickle.loads(pickle.dumps(v)) == v
    assert v.tobytes() == np.arange(1000, dtype="<f4").tobytes()
    with pytest.raises(TypeError):
        hash(v)


def test_vectors_of_other_shapes_or_types_are_refused() -> None:
    with obj.Db.memory() as db:
        t = db.table("t")
        for bad, what in [
            (np.zeros((2, 2), dtype=np.float32), "dimension"),
            (np.zeros(3, dtype=np.float64), "float64"),
            (array.array("d", [1.0]), 'type code "d"'),
        ]:
            with pytest.raises(obj.InvalidValueError, match=what):
                t.put("k", {"v": bad})
        with pytest.raises(obj.InvalidArgumentError, match="float32's range"):
            obj.Vector([1e300])
        with pytest.raises(obj.InvalidArgumentError, match="numbers"):
            obj.Vector(["a"])


def test_sets_work_with_update_add_filters_and_each_indexes() -> None:
    with obj.Db.memory() as db:
        t = db.table("t")
        t.put("a", {"tags": {"x"}})
        assert t.update("a", add={"tags": {"y", "x"}})["tags"] == {"x", "y"}
        assert t.update("a", add={"ids": {1, 2}})["ids"] == {1, 2}  # a missing one is created
        with pytest.raises(obj.InvalidArgumentError, match="str members"):
            t.update("a", add={"tags": {3}})
        with pytest.raises(obj.InvalidArgumentError, match="number"):
            t.update("a", add={"tags": 1})
        t.put("b", {"tags": {"z"}})
        assert [i["tags"] for i in t.scan(filter=obj.field("tags").contains("y"))] == [{"x", "y"}]
        assert len(t.scan(filter=obj.field("tags") == {"y", "x"})) == 1
        db.insert("tagged", {"tags": {"p", "q"}})
        db.insert("tagged", {"tags": {"q"}})
        found = db.query("tagged").filter(obj.field("tags").contains("q")).fetch()
        assert len(found) == 2


def test_repr_shows_the_float32_values() -> None:
    assert repr(obj.Vector([0.1, 1, 2.5])) == "obj.Vector([0.1, 1.0, 2.5])"
    assert repr(obj.Vector()) == "obj.Vector([])"
