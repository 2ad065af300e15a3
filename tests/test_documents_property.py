"""Property tests: generated document schemas and values, and generated dict-native
documents, round-trip through the database unchanged."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import itertools
import pathlib
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import obj
from tests.conftest import plain


class Mood(enum.Enum):
    CALM = 1
    ANGRY = "angry"
    BORED = 2.5


LEAVES: dict[Any, st.SearchStrategy[Any]] = {
    int: st.integers(min_value=-(2**63), max_value=2**63 - 1),
    float: st.floats(allow_nan=False),
    str: st.text(max_size=20),
    bytes: st.binary(max_size=20),
    bool: st.booleans(),
    datetime.datetime: st.datetimes()
    | st.datetimes(
        timezones=st.builds(
            datetime.timezone,
            st.integers(-23 * 60, 23 * 60).map(lambda m: datetime.timedelta(minutes=m)),
        ),
        min_value=datetime.datetime(2, 1, 1),
        max_value=datetime.datetime(9998, 12, 31),
    ),
    datetime.date: st.dates(),
    uuid.UUID: st.uuids(),
    Mood: st.sampled_from(Mood),
}

_names = (f"S{i}" for i in itertools.count())
_collections = (f"generated_{i}" for i in itertools.count())


def _struct(field_types: list[Any]) -> type:
    fields = [(f"f{i}", t) for i, t in enumerate(field_types)]
    return dataclasses.make_dataclass(next(_names), fields)


TYPES = st.recursive(
    st.sampled_from(list(LEAVES)),
    lambda inner: st.one_of(
        inner.map(lambda t: Optional[t]),
        inner.map(lambda t: list[t]),  # type: ignore[valid-type]
        st.lists(inner, min_size=1, max_size=3).map(lambda ts: tuple[tuple(ts)]),  # type: ignore[misc]
        inner.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
        st.lists(inner, min_size=1, max_size=4).map(_struct),
    ),
    max_leaves=8,
)


def values_of(tp: Any) -> st.SearchStrategy[Any]:
    if tp in LEAVES:
        return LEAVES[tp]
    if dataclasses.is_dataclass(tp):
        return st.builds(tp, **{f.name: values_of(f.type) for f in dataclasses.fields(tp)})
    origin, args = getattr(tp, "__origin__", None), getattr(tp, "__args__", ())
    if origin is list:
        return st.lists(values_of(args[0]), max_size=4)
    if origin is tuple:
        return st.tuples(*(values_of(a) for a in args))
    if origin is dict:
        return st.dictionaries(st.text(max_size=5), values_of(args[1]), max_size=3)
    if tp is Any:
        return JSONISH
    # Optional[T]
    inner = next(a for a in args if a is not type(None))
    return st.none() | values_of(inner)


@pytest.fixture(scope="module")
def shared_db() -> Iterator[obj.Db]:
    with tempfile.TemporaryDirectory() as tmp:
        db = obj.Db(pathlib.Path(tmp) / "prop.obj", durability="none")
        yield db
        db.close()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), field_types=st.lists(TYPES, min_size=1, max_size=5))
def test_generated_schemas_round_trip(
    shared_db: obj.Db, data: st.DataObject, field_types: list[Any]
) -> None:
    cls = obj.document(collection=next(_collections), version=1)(_struct(field_types))
    docs = data.draw(st.lists(values_of(cls), min_size=1, max_size=3))
    with shared_db.transaction() as tx:
        ids = [tx.insert(d) for d in docs]
        assert [tx.get(cls, i) for i in ids] == docs
    assert [shared_db.get(cls, i) for i in ids] == docs
    assert list(shared_db.all(cls)) == list(zip(ids, docs))
    # Read by collection name, through the schema stored in the file.
    by_name = shared_db.get(cls.__obj_doctype__.collection, ids[0])  # type: ignore[attr-defined]
    assert isinstance(by_name, dict)
    assert list(by_name) == [f.name for f in dataclasses.fields(cls)]


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(doc=st.dictionaries(st.text(max_size=8), JSONISH, max_size=6))
def test_dict_documents_round_trip(shared_db: obj.Db, doc: dict[str, Any]) -> None:
    oid = shared_db.insert("dict_docs", doc)
    back = shared_db.get("dict_docs", oid)
    assert back == doc
    assert list(back) == list(doc)  # key order is kept


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), field_types=st.lists(TYPES | st.just(Any), min_size=1, max_size=5))
def test_reads_by_class_and_by_name_decode_the_same_bytes_alike(
    shared_db: obj.Db, data: st.DataObject, field_types: list[Any]
) -> None:
    # A read by class builds Python objects from the bytes, a read by name builds the
    # engine's values and converts them: one walker under both, so they agree, and on
    # damage both raise CorruptionError.
    cls = obj.document(collection=next(_collections), version=1)(_struct(field_types))
    dt = cls.__obj_doctype__  # type: ignore[attr-defined]
    docs = data.draw(st.lists(values_of(cls), min_size=1, max_size=3))
    ids = [shared_db.insert(d) for d in docs]
    for oid, doc in zip(ids, docs):
        assert shared_db.get(cls, oid) == doc
        assert shared_db.get(dt.collection, oid) == plain(doc)
        payload = shared_db.get_raw(dt.collection, oid)
        assert payload is not None
        for cut in range(len(payload)):
            with pytest.raises(obj.CorruptionError):
                dt.decode(1, payload[:cut])
