"""The exception hierarchy, the mapping of engine errors, and argument checking."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

import obj
import obj._obj
import obj.errors

SUBCLASSES = [
    "NotFoundError",
    "BusyError",
    "CorruptionError",
    "IntegrityError",
    "InvalidArgumentError",
    "EncryptionError",
    "FeatureUnsupportedError",
]


def test_base_class() -> None:
    assert issubclass(obj.ObjError, Exception)
    assert obj.ObjError.__module__ == "obj"
    assert obj.ObjError.__doc__


@pytest.mark.parametrize("name", SUBCLASSES)
def test_subclasses_are_one_object_everywhere(name: str) -> None:
    cls = getattr(obj, name)
    assert cls is getattr(obj.errors, name) is getattr(obj._obj, name)
    assert issubclass(cls, obj.ObjError)
    assert cls.__bases__ == (obj.ObjError,)
    assert cls.__module__ == "obj"
    assert cls.__doc__
    error = cls("message")
    assert str(error) == "message"
    with pytest.raises(obj.ObjError):
        raise error


def test_errors_module_exports() -> None:
    assert sorted(obj.errors.__all__) == sorted(["ObjError", *SUBCLASSES])


# -- engine errors, one class each --------------------------------------------------------------


def test_busy(path: pathlib.Path) -> None:
    with obj.Db(path), pytest.raises(obj.BusyError, match="busy"):
        obj.Db(path, busy_timeout=0)


def test_not_found(path: pathlib.Path) -> None:
    with pytest.raises(obj.NotFoundError, match="does not exist"):
        obj.Db(path, read_only=True)


def test_corruption(path: pathlib.Path) -> None:
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(obj.CorruptionError):
        obj.Db(path)


def test_short_file_is_corruption(path: pathlib.Path) -> None:
    path.write_bytes(b"tiny")
    with pytest.raises(obj.CorruptionError):
        obj.Db(path)


def test_invalid_argument_from_engine(db: obj.Db) -> None:
    with db.transaction() as tx, pytest.raises(obj.InvalidArgumentError, match="empty"):
        tx.insert("", b"x")


@pytest.mark.parametrize(
    "action",
    ["closed", "read_only_write", "read_only_checkpoint"],
)
def test_plain_obj_error(path: pathlib.Path, action: str) -> None:
    obj.Db(path).close()
    db = obj.Db(path, read_only=action != "closed")
    if action == "closed":
        db.close()
    with pytest.raises(obj.ObjError) as caught:
        if action == "read_only_checkpoint":
            db.checkpoint()
        else:
            db.transaction()
    assert type(caught.value) is obj.ObjError
    db.close()


# -- argument checking ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "word"),
    [
        ("text", "encode"),
        (42, "int"),
        (None, "NoneType"),
        ([1, 2], "list"),
    ],
)
def test_value_must_be_bytes_like(db: obj.Db, value: object, word: str) -> None:
    with db.transaction() as tx:
        with pytest.raises(obj.InvalidArgumentError, match="value") as caught:
            tx.insert("c", value)  # type: ignore[arg-type]
        assert word in str(caught.value)
        with pytest.raises(obj.InvalidArgumentError, match="value"):
            tx.upsert("c", 1, value)  # type: ignore[arg-type]
        assert tx.count("c") == 0


@pytest.mark.parametrize("name", [b"bytes", 1, None, ["c"]])
def test_collection_must_be_str(db: obj.Db, name: object) -> None:
    with db.transaction() as tx:
        calls: list[Callable[[], object]] = [
            lambda: tx.insert(name, b"x"),  # type: ignore[arg-type]
            lambda: tx.get(name, 1),  # type: ignore[arg-type]
            lambda: tx.upsert(name, 1, b"x"),  # type: ignore[arg-type]
            lambda: tx.delete(name, 1),  # type: ignore[arg-type]
            lambda: tx.count(name),  # type: ignore[arg-type]
            lambda: tx.iter_all(name),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(obj.InvalidArgumentError, match="collection must be a str"):
                call()
    with db.read_transaction() as r, pytest.raises(obj.InvalidArgumentError, match="collection"):
        r.get(name, 1)  # type: ignore[arg-type]


def test_collection_must_not_be_empty(db: obj.Db) -> None:
    with db.transaction() as tx:
        with pytest.raises(obj.InvalidArgumentError, match="collection name"):
            tx.insert("", b"x")
        with pytest.raises(obj.InvalidArgumentError, match="collection name"):
            tx.get("", 1)
    with db.read_transaction() as r, pytest.raises(obj.InvalidArgumentError, match="collection"):
        r.count("")


def test_collection_with_lone_surrogate(db: obj.Db) -> None:
    with db.transaction() as tx, pytest.raises(obj.InvalidArgumentError, match="collection"):
        tx.insert("bad\udc80", b"x")


@pytest.mark.parametrize(("doc_id", "word"), [(0, "got 0"), (-1, "got -1"), (2**64, "2\\*\\*64")])
def test_id_out_of_range(db: obj.Db, doc_id: int, word: str) -> None:
    with db.transaction() as tx:
        calls: list[Callable[[], object]] = [
            lambda: tx.get("c", doc_id),
            lambda: tx.upsert("c", doc_id, b"x"),
            lambda: tx.delete("c", doc_id),
        ]
        for call in calls:
            with pytest.raises(obj.InvalidArgumentError, match="id must be") as caught:
                call()
            assert caught.match(word)
    with db.read_transaction() as r, pytest.raises(obj.InvalidArgumentError, match="id must be"):
        r.get("c", 0)


@pytest.mark.parametrize("doc_id", ["1", 1.0, None, b"1"])
def test_id_must_be_int(db: obj.Db, doc_id: object) -> None:
    with db.transaction() as tx, pytest.raises(obj.InvalidArgumentError, match="id must be an int"):
        tx.get("c", doc_id)  # type: ignore[arg-type]


def test_id_accepts_index_objects(db: obj.Db) -> None:
    class Index:
        def __index__(self) -> int:
            return 7

    with db.transaction() as tx:
        tx.upsert("c", Index(), b"seven")  # type: ignore[arg-type]
        assert tx.get("c", 7) == b"seven"


def test_largest_id(db: obj.Db) -> None:
    with db.transaction() as tx:
        assert tx.upsert("c", 2**64 - 1, b"max") is False
        assert tx.get("c", 2**64 - 1) == b"max"


def test_wrong_argument_count_is_type_error(db: obj.Db) -> None:
    with db.transaction() as tx, pytest.raises(TypeError):
        tx.insert("c")  # type: ignore[call-arg]


def test_insert_after_largest_id_is_refused(db: obj.Db) -> None:
    with db.transaction() as tx:
        tx.upsert("c", 2**64 - 1, b"max")
        with pytest.raises(obj.ObjError):
            tx.insert("c", b"would reuse the id")
        assert tx.get("c", 2**64 - 1) == b"max"
