"""The examples of the KeystoneDB Python README (the store whose users ``obj.Table`` is
for), run as written with only the names translated: ``keystonedb.Database`` is
``obj.Db`` (``Database.create`` -> ``obj.Db.create``, ``Database.open`` -> ``obj.Db.open``,
``Database.create_in_memory()`` -> ``obj.Db.memory()``) and the item calls
(``db.put/get/delete/put_with_sk/get_with_sk/delete_with_sk``) go to ``db.table("t")``,
with the README's bytes keys. Each example runs in an empty directory of its own (the
README's ``./mydb.keystone``), after what the README says comes before it.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

import obj

PATH = "./mydb.keystone"


@pytest.fixture(autouse=True)
def in_empty_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def opened() -> Iterator[list[obj.Db]]:
    """Handles a test opened, closed at the end whatever happens (a handle keeps the
    file's lock)."""
    handles: list[obj.Db] = []
    yield handles
    for handle in handles:
        handle.close()


# -- Basic Operations -------------------------------------------------------------------


def test_basic_operations(opened: list[obj.Db], capsys: pytest.CaptureFixture[str]) -> None:
    # Create a new database
    db = obj.Db.create("./mydb.keystone")
    opened.append(db)

    # Put an item
    db.table("t").put(
        b"user#123",
        {
            "name": "Alice",
            "age": 30,
            "active": True,
            "tags": ["python", "rust"],
        },
    )

    # Get an item
    item = db.table("t").get(b"user#123")
    if item:
        print(f"Name: {item['name']}, Age: {item['age']}")

    assert capsys.readouterr().out == "Name: Alice, Age: 30\n"
    assert item == {"name": "Alice", "age": 30, "active": True, "tags": ["python", "rust"]}
    assert item["active"] is True

    # Delete an item
    db.table("t").delete(b"user#123")

    # Flush to disk
    db.flush()

    assert db.table("t").get(b"user#123") is None
    assert pathlib.Path(PATH).is_file()
    db.close()
    with obj.Db.open(PATH) as again:
        assert again.table("t").get(b"user#123") is None
        assert again.table("t").count() == 0


def test_a_put_is_on_disk_after_flush(opened: list[obj.Db]) -> None:
    db = obj.Db.create("./mydb.keystone")
    opened.append(db)
    db.table("t").put(b"user#123", {"name": "Alice", "age": 30})
    assert db.flush() is None
    # The process dies without a checkpoint: what was flushed is there on reopening.
    db.close_without_checkpoint()
    with obj.Db.open(PATH) as again:
        assert again.table("t").get(b"user#123") == {"name": "Alice", "age": 30}


def test_create_refuses_an_existing_file(opened: list[obj.Db]) -> None:
    """README: "Raises IOError if database already exists"."""
    db = obj.Db.create("./mydb.keystone")
    db.table("t").put(b"key1", {"value": "kept"})
    db.close()
    with pytest.raises(obj.InvalidArgumentError) as e:
        opened.append(obj.Db.create("./mydb.keystone"))
    assert isinstance(e.value, FileExistsError)
    assert isinstance(e.value, IOError)
    assert isinstance(e.value, obj.ObjError)
    try:
        obj.Db.create("./mydb.keystone")
    except IOError as err:  # noqa: UP024 - as the README's users catch it
        assert "mydb.keystone" in str(err)
    else:
        pytest.fail("Db.create over an existing file did not raise")
    with obj.Db.open(PATH) as again:
        assert again.table("t").get(b"key1") == {"value": "kept"}


# -- With Sort Keys ----------------------------------------------------------------------


def test_with_sort_keys(opened: list[obj.Db]) -> None:
    db = obj.Db.create("./mydb.keystone")
    opened.append(db)

    # Put with sort key
    db.table("t").put_with_sk(
        b"org#acme",
        b"user#123",
        {
            "name": "Alice",
            "role": "admin",
        },
    )

    # Get with sort key
    item = db.table("t").get_with_sk(b"org#acme", b"user#123")

    assert item == {"name": "Alice", "role": "admin"}
    assert db.table("t").get(b"org#acme", sk=b"user#123") == item

    # Delete with sort key
    db.table("t").delete_with_sk(b"org#acme", b"user#123")

    assert db.table("t").get_with_sk(b"org#acme", b"user#123") is None
    assert db.table("t").count() == 0


def test_sort_keys_allow_many_items_under_one_partition_key() -> None:
    """README: put_with_sk "Allows multiple items with same PK but different SKs"."""
    db = obj.Db.memory()
    try:
        db.table("t").put_with_sk(b"org#acme", b"user#123", {"name": "Alice"})
        db.table("t").put_with_sk(b"org#acme", b"user#456", {"name": "Bob"})
        db.table("t").put_with_sk(b"org#other", b"user#123", {"name": "Carol"})
        assert db.table("t").get_with_sk(b"org#acme", b"user#123") == {"name": "Alice"}
        assert db.table("t").get_with_sk(b"org#acme", b"user#456") == {"name": "Bob"}
        assert db.table("t").get_with_sk(b"org#other", b"user#123") == {"name": "Carol"}
        assert db.table("t").get_with_sk(b"org#acme", b"user#789") is None
        assert db.table("t").count(b"org#acme") == 2
        db.table("t").delete_with_sk(b"org#acme", b"user#123")
        assert db.table("t").get_with_sk(b"org#acme", b"user#123") is None
        assert db.table("t").get_with_sk(b"org#acme", b"user#456") == {"name": "Bob"}
        assert db.table("t").get_with_sk(b"org#other", b"user#123") == {"name": "Carol"}
    finally:
        db.close()


# -- In-Memory Database --------------------------------------------------------------------


def test_in_memory_database(in_empty_dir: pathlib.Path) -> None:
    # Create in-memory database (no persistence)
    db = obj.Db.memory()

    # Use same API as persistent database
    db.table("t").put(b"key1", {"value": "test"})
    item = db.table("t").get(b"key1")

    assert item == {"value": "test"}
    db.flush()
    db.close()
    assert list(in_empty_dir.iterdir()) == []  # nothing touched the disk
    with obj.Db.memory() as other:  # and nothing is left for the next one
        assert other.table("t").get(b"key1") is None


# -- Opening Existing Database ---------------------------------------------------------------


def test_opening_existing_database(opened: list[obj.Db]) -> None:
    first = obj.Db.create("./mydb.keystone")
    first.table("t").put(b"key1", {"value": "test"})
    first.flush()
    first.close()

    # Open an existing database
    db = obj.Db.open("./mydb.keystone")
    opened.append(db)

    assert db.table("t").get(b"key1") == {"value": "test"}
    db.table("t").put(b"key2", {"value": "more"})
    assert db.table("t").count() == 2


def test_open_refuses_a_missing_file(in_empty_dir: pathlib.Path, opened: list[obj.Db]) -> None:
    """README: "Raises IOError if database doesn't exist"."""
    with pytest.raises(obj.NotFoundError) as e:
        opened.append(obj.Db.open("./mydb.keystone"))
    assert isinstance(e.value, FileNotFoundError)
    assert isinstance(e.value, IOError)
    assert isinstance(e.value, obj.ObjError)
    assert not (in_empty_dir / "mydb.keystone").exists()  # open never creates
    assert list(in_empty_dir.iterdir()) == []


# -- Supported Value Types -------------------------------------------------------------------


def test_supported_value_types() -> None:
    db = obj.Db.memory()
    try:
        db.table("t").put(
            b"test",
            {
                "string": "hello",  # String (S)
                "number_int": 42,  # Number (N) - integer
                "number_float": 3.14,  # Number (N) - float
                "binary": b"binary data",  # Binary (B)
                "boolean": True,  # Boolean (Bool)
                "null": None,  # Null
                "list": [1, 2, "three"],  # List (L)
                "nested": {  # Map (M)
                    "inner": "value",
                    "count": 10,
                },
                "vector": [0.1, 0.2, 0.3],  # Vector (VecF32) - for embeddings
            },
        )

        item = db.table("t").get(b"test")
        assert item["string"] == "hello"
        assert item["number_int"] == 42
        assert item["boolean"] is True
        assert item["list"] == [1, 2, "three"]
        assert item["nested"]["inner"] == "value"

        # ... and the rest of what was written comes back as it was written: a plain list
        # of floats stays a list of Python floats, exactly (not float32 values).
        assert item == {
            "string": "hello",
            "number_int": 42,
            "number_float": 3.14,
            "binary": b"binary data",
            "boolean": True,
            "null": None,
            "list": [1, 2, "three"],
            "nested": {"inner": "value", "count": 10},
            "vector": [0.1, 0.2, 0.3],
        }
        assert type(item["number_int"]) is int
        assert type(item["number_float"]) is float and item["number_float"] == 3.14
        assert type(item["binary"]) is bytes
        assert item["null"] is None
        assert type(item["vector"]) is list
        assert [type(x) for x in item["vector"]] == [float, float, float]
        assert item["vector"][0] == 0.1  # not 0.10000000149011612 (float32)
        assert type(item["nested"]["count"]) is int
    finally:
        db.close()


# -- Context Manager (Automatic Flush) ---------------------------------------------------------


def test_context_manager(opened: list[obj.Db]) -> None:
    obj.Db.create("./mydb.keystone").close()  # the database of the examples before

    class DatabaseContext:
        def __init__(self, path: str) -> None:
            self.path = path
            self.db: Any = None

        def __enter__(self) -> Any:
            self.db = obj.Db.open(self.path)
            return self.db

        def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
            if self.db:
                self.db.flush()

    # Usage
    ctx = DatabaseContext("./mydb.keystone")
    with ctx as db:
        db.table("t").put(b"key", {"value": "data"})
        # Automatically flushed on exit
    opened.append(ctx.db)

    assert db.table("t").get(b"key") == {"value": "data"}
    # Flushed: it survives the process dying without a checkpoint.
    ctx.db.close_without_checkpoint()
    with obj.Db.open(PATH) as again:
        assert again.table("t").get(b"key") == {"value": "data"}


# -- Error Handling ------------------------------------------------------------------------------


@pytest.mark.parametrize("exists", [True, False], ids=["file-exists", "file-missing"])
def test_error_handling(
    exists: bool, opened: list[obj.Db], capsys: pytest.CaptureFixture[str]
) -> None:
    complex_object = complex(1, 2)  # what the README leaves undefined: a complex value
    if exists:
        obj.Db.create("./mydb.keystone").close()
    else:
        db = obj.Db.memory()  # the db of the examples before, when the open fails
        opened.append(db)

    try:
        db = obj.Db.open("./mydb.keystone")
        opened.append(db)
    except IOError as e:  # noqa: UP024 - as written in the README
        print(f"Failed to open database: {e}")

    try:
        db.table("t").put(b"key", {"invalid": complex_object})
    except ValueError as e:
        print(f"Invalid value type: {e}")

    try:
        item = db.table("t").get(b"nonexistent")
        if item is None:
            print("Item not found")
    except Exception as e:
        print(f"Unexpected error: {e}")

    lines = capsys.readouterr().out.splitlines()
    if exists:
        assert len(lines) == 2, lines
    else:
        assert len(lines) == 3, lines
        assert lines[0].startswith("Failed to open database: ")
        assert "mydb.keystone" in lines[0]
    assert lines[-2].startswith("Invalid value type: ")
    assert "invalid" in lines[-2][len("Invalid value type: ") :]
    assert lines[-1] == "Item not found"
    assert db.table("t").get(b"key") is None


def test_a_complex_value_is_an_invalid_argument_naming_the_attribute() -> None:
    with obj.Db.memory() as db:
        t = db.table("t")
        t.put(b"key", {"fine": 1})
        for item in (
            {"ok": 1, "weird_attr": complex(1, 2)},
            {"ok": 1, "weird_attr": [1, complex(1, 2)]},
            {"ok": 1, "weird_attr": {"deeper": complex(1, 2)}},
        ):
            with pytest.raises(obj.InvalidArgumentError, match="weird_attr") as e:
                t.put(b"key", item)
            assert isinstance(e.value, obj.ObjError)
            assert "complex" in str(e.value)
            with pytest.raises(obj.InvalidArgumentError, match="weird_attr"):
                t.put(b"other", item)
        assert t.get(b"key") == {"fine": 1}  # the failed puts wrote nothing
        assert t.get(b"other") is None
        assert t.count() == 1


# -- API Reference -----------------------------------------------------------------------------


def test_api_reference_reads_and_deletes_of_missing_items() -> None:
    """get/get_with_sk return None for a missing item; delete and delete_with_sk of a
    missing item are no error (idempotent)."""
    with obj.Db.memory() as db:
        pk_only, with_sk = db.table("t"), db.table("t2")
        assert pk_only.get(b"nonexistent") is None
        pk_only.put(b"key", {"v": 1})
        assert pk_only.delete(b"key") is True
        assert pk_only.delete(b"key") is False
        pk_only.delete(b"never")
        with_sk.put_with_sk(b"org#acme", b"user#1", {"v": 1})
        assert with_sk.get_with_sk(b"org#acme", b"user#2") is None
        assert with_sk.get_with_sk(b"org#none", b"user#1") is None
        with_sk.delete_with_sk(b"org#acme", b"user#2")
        assert with_sk.delete_with_sk(b"org#acme", b"user#1") is True
        assert with_sk.delete_with_sk(b"org#acme", b"user#1") is False


def test_api_reference_invalid_item_structure() -> None:
    """README: put "Raises ValueError for invalid item structure" (here
    obj.InvalidArgumentError): an item is a dict with str attribute names."""
    with obj.Db.memory() as db:
        t = db.table("t")
        for bad in ([("name", "Alice")], "Alice", b"Alice", None, {1: "one"}, {b"k": 1}):
            with pytest.raises(obj.InvalidArgumentError):
                t.put(b"key", bad)  # type: ignore[arg-type]
        assert t.get(b"key") is None
        assert t.count() == 0


def test_performance_tip_many_puts_then_one_flush(opened: list[obj.Db]) -> None:
    """README: "put multiple items and call flush() once"."""
    db = obj.Db.create("./mydb.keystone")
    opened.append(db)
    for i in range(100):
        db.table("t").put(f"key{i:03}".encode(), {"value": i})
    db.flush()
    db.close_without_checkpoint()
    with obj.Db.open(PATH) as again:
        assert again.table("t").count() == 100
        assert again.table("t").get(b"key042") == {"value": 42}
