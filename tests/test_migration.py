"""Every read path agrees with decoding through the current class once a collection holds
documents of an older version (#14 item 1)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Annotated, Any

import pytest

import obj
from obj import field


@obj.document(collection="people", version=1)
@dataclass
class PersonV1:
    name: str
    age: int
    email: str


@obj.document(collection="people", version=2, history=[PersonV1])
@dataclass
class Person:
    name: str
    birth_year: Annotated[int, obj.Index]
    handle: Annotated[str, obj.Unique]

    @classmethod
    def migrate(cls, doc: Any, from_version: int) -> Person:
        # The handle only exists after migration: the email's local part.
        return cls(doc.name, 2024 - doc.age, doc.email.split("@")[0])


def write_v1(path: pathlib.Path, people: list[PersonV1]) -> None:
    with obj.Db(path) as db, db.transaction() as tx:
        for p in people:
            tx.insert(p)


PEOPLE = [
    PersonV1("ann", 21, "ann@a.org"),
    PersonV1("bob", 30, "bob@b.org"),
    PersonV1("cy", 22, "cy@c.org"),
]


def decoded(db: obj.Db) -> list[Person]:
    return [p for _, p in db.all(Person)]


def test_filters_sorts_and_indexes_see_migrated_values(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.obj"
    write_v1(path, PEOPLE)
    with obj.Db(path) as db:
        q = db.query(Person).filter(field("birth_year") > 2001)
        assert sorted(p.name for _, p in q.fetch()) == ["ann", "cy"]
        assert [p.name for p in decoded(db) if p.birth_year > 2001] == ["ann", "cy"]
        assert [p.name for _, p in db.query(Person).sort_by("birth_year").fetch()] == [
            "bob",
            "cy",
            "ann",
        ]
        found = db.find_unique(Person, "handle", "bob")
        assert found is not None and found.name == "bob"
        assert [p.name for _, p in db.index_range(Person, "birth_year", 2002, 2003)] == [
            "cy",
            "ann",
        ]
        # A field only the old class had is not a field any more.
        assert db.query("people").filter(field("age") == 21).count() == 0
        # Stored records now have the new shape.
        assert db.get("people", 1) == {"name": "ann", "birth_year": 2003, "handle": "ann"}
        assert db.migrate(Person) == 0


def test_unique_never_admits_a_duplicate_of_the_migrated_value(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "u.obj"
    write_v1(path, [PersonV1("ann", 21, "same@a.org"), PersonV1("amy", 25, "same@b.org")])
    with obj.Db(path) as db:
        with pytest.raises(obj.InvalidArgumentError, match="handle"):
            db.insert(Person("zed", 1990, "zed"))
        with pytest.raises(obj.InvalidArgumentError, match="handle"):
            db.find_unique(Person, "handle", "same")
        # Nothing was written: the old records are as they were.
        assert db.get("people", 2) == {"name": "amy", "age": 25, "email": "same@b.org"}
        assert db.count("people") == 2


def test_read_only_handles_and_read_transactions_refuse_until_migrated(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "r.obj"
    write_v1(path, PEOPLE)
    with obj.Db(path, read_only=True) as ro:
        # Plain reads migrate on the fly...
        assert [p.name for p in decoded(ro)] == ["ann", "bob", "cy"]
        # ...engine-side reads would see the old fields, so they say what to run.
        for call in (
            lambda: ro.query(Person).filter(field("birth_year") > 2001).fetch(),
            lambda: ro.query(Person).sort_by("birth_year").fetch(),
            lambda: ro.find_unique(Person, "handle", "bob"),
        ):
            with pytest.raises(obj.InvalidArgumentError, match=r"db\.migrate\(Person\)"):
                call()
    with obj.Db(path) as db:
        with db.read_transaction() as r, pytest.raises(obj.InvalidArgumentError, match="migrate"):
            r.query(Person).filter(field("birth_year") > 2001).fetch()
        assert db.migrate(Person) == 3
        with db.read_transaction() as r:
            assert r.query(Person).filter(field("birth_year") > 2001).count() == 2
    with obj.Db(path, read_only=True) as ro:
        assert ro.query(Person).filter(field("birth_year") > 2001).count() == 2
        assert ro.find_unique(Person, "handle", "cy") is not None


def test_migration_inside_a_transaction_rolls_back_with_it(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.obj"
    write_v1(path, PEOPLE)
    with obj.Db(path) as db:
        with pytest.raises(RuntimeError), db.transaction() as tx:
            tx.insert(Person("dee", 2000, "dee"))
            assert tx.query(Person).filter(field("birth_year") > 2001).count() == 2
            raise RuntimeError("undo")
        assert db.get("people", 1) == {"name": "ann", "age": 21, "email": "ann@a.org"}
