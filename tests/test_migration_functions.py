"""``migrations={version: fn}``: documents of versions whose classes are gone from the code,
migrated by plain functions on dicts, and ``db.migrate`` recorded as ``action="migrate"``
(#19)."""

from __future__ import annotations

import datetime as dt
import enum
import pathlib
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

import pytest

import obj
from obj import field as qf


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


# The "old code": versions 1 and 2 of a collection, used only to write the files below
# (the classes that read them never mention these).
@obj.document(collection="fn_tasks", version=1)
@dataclass
class TaskV1:
    title: str
    hours: int


def v1_to_v2(d: dict[str, Any]) -> dict[str, Any]:
    return {"title": d["title"], "minutes": d["hours"] * 60, "level": "low"}


@obj.document(collection="fn_tasks", version=2, migrations={1: v1_to_v2})
@dataclass
class TaskV2:
    title: str
    minutes: int
    level: str


@dataclass
class Owner:
    name: str
    since: dt.date


def v2_to_v3(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": d["title"].upper(),
        "minutes": d["minutes"],
        "level": d["level"],
        "owner": {"name": "ops", "since": dt.date(2024, 1, 2)},
        "note": None,
    }


@obj.document(collection="fn_tasks", version=3, migrations={2: v2_to_v3, 1: v1_to_v2})
@dataclass
class Task:
    name: Annotated[str, obj.Unique]
    minutes: Annotated[int, obj.Index]
    level: Level
    owner: Owner
    note: Optional[str] = None
    tags: list[str] = field(default_factory=list)


def write_old(path: pathlib.Path, *, v2: bool = True) -> None:
    """Two version-1 tasks; with ``v2``, a version-2 write (which migrates them to 2)."""
    with obj.Db(path) as db, db.transaction() as tx:
        tx.insert(TaskV1("write docs", 2))  # id 1
        tx.insert(TaskV1("fix bug", 1))  # id 2
    if v2:
        with obj.Db(path) as db:
            db.insert(TaskV2("ship", 30, "high"))  # id 3


def test_version_one_reaches_three_through_both_functions(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.obj"
    write_old(path, v2=False)
    with obj.Db(path, read_only=True) as db:
        assert db.get("fn_tasks", 1) == {"title": "write docs", "hours": 2}
        assert [t for _, t in db.all(Task)] == [
            Task("WRITE DOCS", 120, Level.LOW, Owner("ops", dt.date(2024, 1, 2))),
            Task("FIX BUG", 60, Level.LOW, Owner("ops", dt.date(2024, 1, 2))),
        ]


def test_reads_migrate_through_every_later_function(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.obj"
    write_old(path)
    with obj.Db(path, read_only=True) as db:
        a = db.get(Task, 1)
        assert a == Task("WRITE DOCS", 120, Level.LOW, Owner("ops", dt.date(2024, 1, 2)))
        assert isinstance(a.owner, Owner) and isinstance(a.level, Level)
        assert db.get(Task, 3) == Task("SHIP", 30, Level.HIGH, Owner("ops", dt.date(2024, 1, 2)))
        assert [t.name for _, t in db.all(Task)] == ["WRITE DOCS", "FIX BUG", "SHIP"]
        # The stored records are still the old ones until a read-write handle migrates.
        assert db.get("fn_tasks", 1) == {"title": "write docs", "minutes": 120, "level": "low"}


def test_migrate_rewrites_once_and_indexes_see_the_new_values(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.obj"
    write_old(path)

    with obj.Db(path) as db:
        assert db.migrate(Task) == 3
        assert db.migrate(Task) == 0
        fixed = Task("FIX BUG", 60, Level.LOW, Owner("ops", dt.date(2024, 1, 2)))
        assert db.find_unique(Task, "name", "FIX BUG") == fixed
        got = db.query(Task).filter(qf("minutes") >= 60).sort_by("minutes").fetch()
        assert [t.name for _, t in got] == ["FIX BUG", "WRITE DOCS"]
        assert db.get("fn_tasks", 1)["name"] == "WRITE DOCS"


def test_migrate_is_recorded_as_a_migrate_action(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.obj"
    write_old(path)
    with obj.Db(path, changes="both") as db:
        before = db.change_log()
        assert before is not None
        start = before.last
        assert db.migrate(Task) == 3
        records = list(db.changes(since=start))
        assert len(records) == 1
        record = records[0]
        assert record.action == "migrate"
        assert sorted((c.key, c.op) for c in record.changes) == [
            (1, "update"),
            (2, "update"),
            (3, "update"),
        ]
        by_key = {c.key: c for c in record.changes}
        assert by_key[1].old == {"title": "write docs", "minutes": 120, "level": "low"}
        assert by_key[1].new["name"] == "WRITE DOCS"
        # A context names the action instead.
        with db.context(action="upgrade", user="ops"):
            assert db.migrate(Task) == 0


def test_a_context_overrides_the_migrate_action(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.obj"
    write_old(path)
    with obj.Db(path, changes="keys") as db:
        log = db.change_log()
        assert log is not None
        start = log.last
        with db.context(action="release-3", user="ops"):
            db.migrate(Task)
        (record,) = list(db.changes(since=start))
        assert (record.action, record.user) == ("release-3", "ops")


def test_a_function_that_returns_no_dict_or_a_wrong_shape_is_named(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "t.obj"
    write_old(path, v2=False)

    @obj.document(collection="fn_tasks", version=4, migrations={1: lambda d: [d]})
    @dataclass
    class NoDict:
        title: str

    @obj.document(collection="fn_tasks", version=4, migrations={1: lambda d: d})
    @dataclass
    class WrongShape:
        title: str

    with obj.Db(path) as db:
        with pytest.raises(obj.InvalidArgumentError, match=r"migrations\[1\] must return"):
            db.get(NoDict, 1)
        with pytest.raises(obj.InvalidArgumentError, match=r"does not fit version 4"):
            db.get(WrongShape, 1)  # {title, hours}: hours is not a field of WrongShape
        # Nothing was rewritten by the failed migration.
        with pytest.raises(obj.InvalidArgumentError, match="cannot migrate document 1"):
            db.migrate(WrongShape)
        assert db.get("fn_tasks", 1) == {"title": "write docs", "hours": 2}


def test_a_version_without_a_function_or_class_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.obj"
    write_old(path, v2=False)

    @obj.document(collection="fn_tasks", version=5, migrations={2: lambda d: {"title": d["title"]}})
    @dataclass
    class OnlyFromTwo:
        title: str

    with obj.Db(path, read_only=True) as db, pytest.raises(obj.InvalidArgumentError, match="1"):
        db.get(OnlyFromTwo, 1)
    write_old(tmp_path / "t2.obj")
    with obj.Db(tmp_path / "t2.obj", read_only=True) as db:
        assert db.get(OnlyFromTwo, 3) == OnlyFromTwo("ship")
        assert db.get(OnlyFromTwo, 1) == OnlyFromTwo("write docs")


def test_declaring_bad_migrations_is_refused() -> None:
    with pytest.raises(obj.InvalidArgumentError, match="ints from 1 to 1"):

        @obj.document(collection="fn_bad", version=2, migrations={2: lambda d: d})
        @dataclass
        class A:
            x: int

    with pytest.raises(obj.InvalidArgumentError, match="must be a function"):

        @obj.document(collection="fn_bad", version=2, migrations={1: "nope"})  # type: ignore[dict-item]
        @dataclass
        class B:
            x: int

    with pytest.raises(obj.InvalidArgumentError, match="must be a dict"):

        @obj.document(collection="fn_bad", version=2, migrations=[(1, lambda d: d)])  # type: ignore[arg-type]
        @dataclass
        class C:
            x: int

    @obj.document(collection="fn_both", version=1)
    @dataclass
    class Old:
        x: int

    with pytest.raises(obj.InvalidArgumentError, match="both history"):

        @obj.document(collection="fn_both", version=2, history=[Old], migrations={1: lambda d: d})
        @dataclass
        class D:
            x: int

            @classmethod
            def migrate(cls, doc: Any, from_version: int) -> D:
                return cls(doc.x)


@obj.document(collection="arch.fn_tasks", version=3, migrations={1: v1_to_v2, 2: v2_to_v3})
@dataclass
class ArchivedTask:
    name: str
    minutes: int
    level: Level
    owner: Owner
    note: Optional[str] = None
    tags: list[str] = field(default_factory=list)


def test_attached_files_migrate_with_the_functions_too(tmp_path: pathlib.Path) -> None:
    old = tmp_path / "old.obj"
    write_old(old)
    with obj.Db(tmp_path / "main.obj") as db:
        db.attach(old, "arch")
        got = db.get(ArchivedTask, 2)
        assert got is not None and got.name == "FIX BUG" and got.minutes == 60


@obj.document(collection="fn_models", version=1)
@dataclass
class ModelV1:
    title: str
    hours: int


def _model_class(kind: str) -> type:
    """Version 2 of ``fn_models`` as a ``kind`` model whose ``tags`` and ``done`` have
    defaults the migration leaves out."""
    migrations = {1: lambda d: {"title": d["title"], "minutes": d["hours"] * 60}}
    if kind == "attrs":
        attr = pytest.importorskip("attr")

        @obj.document(collection="fn_models", version=2, migrations=migrations)
        @attr.define
        class A:
            title: str
            minutes: int
            tags: list[str] = attr.Factory(list)
            done: bool = False

        return A
    if kind == "msgspec":
        msgspec = pytest.importorskip("msgspec")

        @obj.document(collection="fn_models", version=2, migrations=migrations)
        class M(msgspec.Struct):
            title: str
            minutes: int
            tags: list[str] = msgspec.field(default_factory=list)
            done: bool = False

        return M
    pydantic = pytest.importorskip("pydantic")

    @obj.document(collection="fn_models", version=2, migrations=migrations)
    class P(pydantic.BaseModel):
        title: str
        minutes: int
        tags: list[str] = pydantic.Field(default_factory=list)
        done: bool = False

    return P


@pytest.mark.parametrize("kind", ["attrs", "msgspec", "pydantic"])
def test_defaults_of_every_model_library_fill_what_a_migration_leaves_out(
    tmp_path: pathlib.Path, kind: str
) -> None:
    path = tmp_path / "m.obj"
    with obj.Db(path) as db:
        db.insert(ModelV1("plan", 2))
    cls = _model_class(kind)
    with obj.Db(path) as db:
        got = db.get(cls, 1)
        assert (got.title, got.minutes, got.tags, got.done) == ("plan", 120, [], False)
        assert db.migrate(cls) == 1
        stored = {"title": "plan", "minutes": 120, "tags": [], "done": False}
        assert db.get("fn_models", 1) == stored
