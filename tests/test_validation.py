"""Bad arguments are refused at the call with an obj error that names them (#14 item 12),
and writer-only work from the writer's own thread fails at once (#14 item 13)."""

from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass
from typing import Annotated, Any

import pytest

import obj


@obj.document(collection="vusers")
@dataclass
class VUser:
    email: Annotated[str, obj.Unique]
    n: Annotated[int, obj.Index] = 0


NOT_A_NAME = [None, 1, True, 1.5, b"email", ["email"], VUser]


@pytest.mark.parametrize("index", NOT_A_NAME, ids=repr)
def test_index_names_must_be_str(db: obj.Db, index: Any) -> None:
    db.insert(VUser("a@b"))
    with pytest.raises(obj.InvalidArgumentError, match="index must be the name"):
        db.find_unique(VUser, index, "a@b")
    with pytest.raises(obj.InvalidArgumentError, match="index must be the name"):
        db.index_range(VUser, index, 1, 2)
    with db.read_transaction() as r, pytest.raises(obj.InvalidArgumentError, match="index"):
        r.find_unique(VUser, index, "a@b")
    with db.transaction() as tx, pytest.raises(obj.InvalidArgumentError, match="index"):
        tx.index_range(VUser, index)


def test_bool_is_not_a_document_id(db: obj.Db) -> None:
    db.insert(VUser("a@b"))
    for call in (
        lambda: db.get(VUser, True),
        lambda: db.get_raw("vusers", True),
        lambda: db.delete(VUser, True),
        lambda: db.upsert(VUser, True, VUser("c@d")),
    ):
        with pytest.raises(obj.InvalidArgumentError, match="bool"):
            call()
    with db.transaction() as tx, pytest.raises(obj.InvalidArgumentError, match="bool"):
        tx.get(VUser, False)
    assert db.count(VUser) == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cache_size", 2**70),
        ("cache_size", -1),
        ("page_size", 2**40),
        ("checkpoint_frames", 2**64),
        ("checkpoint_frames", 0),
        ("sync", ["full"]),
        ("durability", {}),
        ("busy_timeout", 1e300),
    ],
)
def test_out_of_range_options_are_invalid_arguments(
    tmp_path: pathlib.Path, option: str, value: Any
) -> None:
    with pytest.raises(obj.InvalidArgumentError, match=option):
        obj.Db(tmp_path / "o.obj", **{option: value})


def test_dump_raw_limit_is_checked(db: obj.Db) -> None:
    with pytest.raises(obj.InvalidArgumentError, match="max_records"):
        db.dump_raw("vusers", 2**70)
    with pytest.raises(obj.InvalidArgumentError, match="max_records"):
        db.dump_raw("vusers", -1)


def test_checkpoint_and_compact_inside_the_writers_own_thread_fail_at_once(
    tmp_path: pathlib.Path,
) -> None:
    with obj.Db(tmp_path / "w.obj", busy_timeout=5.0) as db:
        oid = db.insert("c", {"n": 1})
        for work in (db.checkpoint, db.compact):
            started = time.monotonic()
            with db.transaction() as tx, pytest.raises(obj.BusyError, match="this thread"):
                tx.insert("c", {"n": 2})
                work()
            assert time.monotonic() - started < 1.0
        started = time.monotonic()

        def checkpoint_inside(doc: Any) -> None:
            db.checkpoint()

        with pytest.raises(obj.BusyError, match=r"checkpoint\(\)"):
            db.update("c", oid, checkpoint_inside)
        assert time.monotonic() - started < 1.0
        assert db.get("c", oid) == {"n": 1}
