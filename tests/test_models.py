"""attrs classes, msgspec Structs and pydantic models as typed documents (#19): the same
codec, indexes, queries, migrations and errors as dataclasses. Each library is optional
(the one allowed skip is a missing optional dependency; the test extra installs them)."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import uuid
from typing import Annotated, Any, Callable, Optional

import pytest

import obj

attrs = pytest.importorskip("attrs")
msgspec = pytest.importorskip("msgspec")
pydantic = pytest.importorskip("pydantic")


# -- one model per library, the same fields ----------------------------------------------


@attrs.define
class AAddress:
    city: str
    zip: Optional[str] = None


@obj.document(collection="attrs_people", indexes=[obj.Composite(("city", "age"), name="ca")])
@attrs.define
class APerson:
    email: Annotated[str, obj.Unique]
    age: Annotated[int, obj.Index]
    city: str
    address: AAddress
    tags: Annotated[list[str], obj.Each] = attrs.Factory(list)
    born: Optional[datetime.date] = None
    key: Optional[uuid.UUID] = None
    extra: dict[str, Any] = attrs.Factory(dict)


class MAddress(msgspec.Struct):
    city: str
    zip: Optional[str] = None


@obj.document(collection="msgspec_people", indexes=[obj.Composite(("city", "age"), name="ca")])
class MPerson(msgspec.Struct):
    email: Annotated[str, obj.Unique]
    age: Annotated[int, obj.Index]
    city: str
    address: MAddress
    tags: Annotated[list[str], obj.Each] = []  # noqa: RUF012 (the library copies it)
    born: Optional[datetime.date] = None
    key: Optional[uuid.UUID] = None
    extra: dict[str, Any] = {}  # noqa: RUF012 (the library copies it)


class PAddress(pydantic.BaseModel):
    city: str
    zip: Optional[str] = None


@obj.document(collection="pydantic_people", indexes=[obj.Composite(("city", "age"), name="ca")])
class PPerson(pydantic.BaseModel):
    email: Annotated[str, obj.Unique]
    age: Annotated[int, obj.Index]
    city: str
    address: PAddress
    tags: Annotated[list[str], obj.Each] = []  # noqa: RUF012 (the library copies it)
    born: Optional[datetime.date] = None
    key: Optional[uuid.UUID] = None
    extra: dict[str, Any] = {}  # noqa: RUF012 (the library copies it)


@dataclasses.dataclass
class DAddress:
    city: str
    zip: Optional[str] = None


@obj.document(collection="dataclass_people", indexes=[obj.Composite(("city", "age"), name="ca")])
@dataclasses.dataclass
class DPerson:
    email: Annotated[str, obj.Unique]
    age: Annotated[int, obj.Index]
    city: str
    address: DAddress
    tags: Annotated[list[str], obj.Each] = dataclasses.field(default_factory=list)
    born: Optional[datetime.date] = None
    key: Optional[uuid.UUID] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def _person(cls: type, address: type, i: int) -> Any:
    values: dict[str, Any] = {
        "email": f"p{i}@x.org",
        "age": 20 + i % 7,
        "city": ["oslo", "rome", "lima"][i % 3],
        "address": address(city=f"c{i}", zip=None if i % 2 else f"z{i}"),
        "tags": [f"t{i % 4}", "all"],
        "born": datetime.date(1990, 1, 1 + i % 28) if i % 3 else None,
        "key": uuid.UUID(int=i),
        "extra": {"n": i, "nested": {"ok": True, "xs": [1.5, None, "s"]}},
    }
    return cls(**values)


MODELS: list[tuple[str, type, type]] = [
    ("dataclass", DPerson, DAddress),
    ("attrs", APerson, AAddress),
    ("msgspec", MPerson, MAddress),
    ("pydantic", PPerson, PAddress),
]


@pytest.fixture(params=MODELS, ids=[m[0] for m in MODELS])
def model(request: pytest.FixtureRequest) -> tuple[type, Callable[[int], Any]]:
    _, cls, address = request.param
    return cls, lambda i: _person(cls, address, i)


def test_round_trip_equal_objects_of_the_same_class(
    path: pathlib.Path, model: tuple[type, Callable[[int], Any]]
) -> None:
    cls, make = model
    with obj.Db(path) as db:
        people = [make(i) for i in range(30)]
        with db.transaction() as tx:
            ids = [tx.insert(p) for p in people]
    # Read back in a fresh handle (decoded from the file, not from memory).
    with obj.Db(path, read_only=True) as db:
        for i, p in zip(ids, people):
            back = db.get(cls, i)
            assert type(back) is cls
            assert back == p
            assert type(back.address) is type(p.address)
        assert [d for _, d in db.all(cls)] == people


def test_indexes_and_queries_work_as_for_dataclasses(
    path: pathlib.Path, model: tuple[type, Callable[[int], Any]]
) -> None:
    cls, make = model
    with obj.Db(path) as db:
        people = [make(i) for i in range(40)]
        with db.transaction() as tx:
            for p in people:
                tx.insert(p)
        assert db.find_unique(cls, "email", "p7@x.org") == people[7]
        by_age = [d for _, d in db.index_range(cls, "age", 22, 22)]
        assert by_age == [p for p in people if p.age == 22]
        q = db.query(cls).filter(obj.field("city") == "rome").filter(obj.field("age") >= 24)
        got = sorted(d.email for _, d in q.fetch())
        nested = db.query(cls).filter(obj.field("address.city") == "c5").fetch()
        assert [d for _, d in nested] == [people[5]]
        assert got == sorted(p.email for p in people if p.city == "rome" and p.age >= 24)
        tagged = sorted(d.email for _, d in db.index_range(cls, "tags", "t1", "t1"))
        assert tagged == sorted(p.email for p in people if "t1" in p.tags)
        with pytest.raises(obj.ObjError):
            db.insert(make(7))  # the same email: the unique index refuses it
        assert db.count(cls) == 40


def test_updates_and_deletes(path: pathlib.Path, model: tuple[type, Callable[[int], Any]]) -> None:
    cls, make = model
    with obj.Db(path) as db:
        oid = db.insert(make(1))
        changed = make(2)
        db.upsert(cls, oid, changed)
        assert db.get(cls, oid) == changed
        assert db.find_unique(cls, "email", "p1@x.org") is None
        assert db.find_unique(cls, "email", "p2@x.org") == changed
        assert db.delete(cls, oid)
        assert db.get(cls, oid) is None


def test_a_store_of_model_values(
    path: pathlib.Path, model: tuple[type, Callable[[int], Any]]
) -> None:
    cls, make = model
    collection = cls.__obj_doctype__.collection  # type: ignore[attr-defined]
    with obj.Db(path) as db:
        store = db.store(collection, values=cls)
        store["a"] = make(3)
        assert store["a"] == make(3)
        assert type(store["a"]) is cls


def test_frozen_models_load_too(path: pathlib.Path) -> None:
    @obj.document(collection="frozen_attrs")
    @attrs.frozen
    class FA:
        n: int

    @obj.document(collection="frozen_msgspec")
    class FM(msgspec.Struct, frozen=True):
        n: int

    @obj.document(collection="frozen_pydantic")
    class FP(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(frozen=True)
        n: int

    with obj.Db(path) as db:
        for cls in (FA, FM, FP):
            oid = db.insert(cls(n=5))
            back = db.get(cls, oid)
            assert back == cls(n=5)
            assert hash(back) == hash(cls(n=5))


def test_pydantic_models_loaded_behave_like_constructed_ones(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        oid = db.insert(_person(PPerson, PAddress, 4))
        back = db.get(PPerson, oid)
        assert back.model_dump() == _person(PPerson, PAddress, 4).model_dump()
        assert back.model_fields_set == set(PPerson.model_fields)
        assert back.model_copy(update={"age": 99}).age == 99
        assert PPerson.model_validate(back.model_dump()) == back


def test_migrations_between_versions_of_a_msgspec_struct(path: pathlib.Path) -> None:
    @obj.document(collection="notes_m", version=1)
    class NoteV1(msgspec.Struct):
        text: str

    @obj.document(collection="notes_m", version=2, history=[NoteV1])
    class Note(msgspec.Struct):
        text: str
        words: int

        @classmethod
        def migrate(cls, doc: Any, from_version: int) -> Note:
            return cls(text=doc.text, words=len(doc.text.split()))

    with obj.Db(path) as db:
        oid = db.insert(NoteV1(text="three little words"))
        assert db.get(Note, oid) == Note(text="three little words", words=3)


def test_what_is_refused_is_named(path: pathlib.Path) -> None:
    class NotAModel:
        x: int

    with pytest.raises(obj.InvalidArgumentError, match=r"attrs class, a msgspec\.Struct"):
        obj.document(collection="nope")(NotAModel)

    class Odd(pydantic.BaseModel):
        when: datetime.time

    with pytest.raises(obj.InvalidArgumentError, match=r"Odd\.when.*not supported"):
        obj.document(collection="odd")(Odd)
