"""The exception hierarchy, the mapping of engine errors, and argument checking."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable

import pytest

import obj
import obj._obj
import obj.errors
from tests.conftest import RunPython

SUBCLASSES = [
    "NotFoundError",
    "BusyError",
    "CorruptionError",
    "IntegrityError",
    "InvalidArgumentError",
    "EncryptionError",
    "FeatureUnsupportedError",
    "ConditionFailedError",
    "ChangesExpiredError",
]

#: Subclasses that are also a built-in OSError subclass, for ``except FileExistsError``.
DUAL = {
    "DatabaseExistsError": (obj.InvalidArgumentError, FileExistsError),
    "DatabaseNotFoundError": (obj.NotFoundError, FileNotFoundError),
    "InvalidValueError": (obj.InvalidArgumentError, ValueError),
}


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
    expected = ["ObjError", "ObjIOError", *SUBCLASSES, *DUAL]
    assert sorted(obj.errors.__all__) == sorted(expected)


@pytest.mark.parametrize("name", sorted(DUAL))
def test_file_errors_are_obj_errors_and_os_errors(name: str) -> None:
    cls = getattr(obj, name)
    assert cls is getattr(obj.errors, name) is getattr(obj._obj, name)
    assert cls.__bases__ == DUAL[name]
    assert cls.__module__ == "obj"
    assert cls.__doc__
    assert str(cls("message")) == "message"


def test_create_refuses_an_existing_file_and_open_a_missing_one(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "app.obj"
    with pytest.raises(obj.NotFoundError, match="does not exist") as missing:
        obj.Db.open(path)
    assert isinstance(missing.value, FileNotFoundError)
    assert not path.exists()
    with obj.Db.create(path) as db:
        db.insert("c", {"n": 1})
    with pytest.raises(obj.InvalidArgumentError, match="already exists") as exists:
        obj.Db.create(path)
    assert isinstance(exists.value, FileExistsError)
    with obj.Db.open(path) as db:
        assert db.count("c") == 1
    with obj.Db(path) as db:  # create-or-open, as before
        assert db.count("c") == 1
    # A read-only open of a missing file is the same error.
    with pytest.raises(FileNotFoundError):
        obj.Db(tmp_path / "nope.obj", read_only=True)


def test_io_error_is_an_obj_error_and_an_os_error() -> None:
    cls = obj.ObjIOError
    assert cls is obj.errors.ObjIOError is obj._obj.ObjIOError
    assert "ObjIOError" in obj.__all__
    assert cls.__bases__ == (obj.ObjError, OSError)
    assert cls.__module__ == "obj"
    assert cls.__doc__
    error = cls("message")
    assert str(error) == "message"
    assert error.errno is None
    with pytest.raises(OSError):
        raise error


# -- engine errors, one class each --------------------------------------------------------------


def test_busy(path: pathlib.Path) -> None:
    with obj.Db(path, locking="exclusive"), pytest.raises(obj.BusyError, match="busy"):
        obj.Db(path, busy_timeout=0)
    with (
        obj.Db(path) as db,
        db.transaction(),
        obj.Db(path, busy_timeout=0) as other,
        pytest.raises(obj.BusyError, match="busy"),
    ):
        other.transaction()


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


def test_path_whose_directory_is_a_file_is_an_os_error(tmp_path: pathlib.Path) -> None:
    plain = tmp_path / "plain-file"
    plain.write_bytes(b"not a directory")
    where = plain / "app.obj"
    for read_only in (False, True):
        with pytest.raises(obj.ObjIOError) as caught:
            obj.Db(where, read_only=read_only)
        error = caught.value
        assert isinstance(error, OSError)
        assert error.errno == errno.ENOTDIR
        assert error.strerror == os.strerror(errno.ENOTDIR)
        assert error.filename == str(where)
        assert f"{plain} is a file, not a directory" in str(error), str(error)


def test_path_that_is_a_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(obj.ObjIOError, match="is a directory") as caught:
        obj.Db(tmp_path)
    assert caught.value.errno == errno.EISDIR
    assert caught.value.filename == str(tmp_path)


def test_missing_directory_is_named(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "no-such-dir"
    for read_only in (False, True):
        with pytest.raises(obj.NotFoundError) as caught:
            obj.Db(missing / "app.obj", read_only=read_only)
        assert f"directory {missing} does not exist" in str(caught.value), str(caught.value)
    assert not missing.exists()


@pytest.mark.parametrize("empty", ["", b""])
def test_empty_path(path: pathlib.Path, empty: str) -> None:
    with pytest.raises(obj.InvalidArgumentError, match="path must not be empty"):
        obj.Db(empty)
    with pytest.raises(obj.InvalidArgumentError, match="path must not be empty"):
        obj.Db(empty, read_only=True)
    with obj.Db(path) as db:
        with pytest.raises(obj.InvalidArgumentError, match="dest must not be empty"):
            db.backup(empty)
        with pytest.raises(obj.InvalidArgumentError, match="path must not be empty"):
            db.attach(empty, "other")


@pytest.mark.parametrize("bad", ["app\0.obj", b"app\0.obj", pathlib.Path("dir/a\0b")])
def test_nul_byte_in_path(path: pathlib.Path, bad: object) -> None:
    with pytest.raises(obj.InvalidArgumentError, match="path must not contain a NUL byte"):
        obj.Db(bad)  # type: ignore[arg-type]
    nul = "dest must not contain a NUL byte"
    with obj.Db(path) as db, pytest.raises(obj.InvalidArgumentError, match=nul):
        db.backup(bad)  # type: ignore[arg-type]


def _as_unprivileged_user(check: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Runs ``check`` in a forked child and returns what it returned. Permission bits do not
    stop root, so a root child first becomes the unprivileged "nobody" (the interpreter and
    obj are already loaded: nothing has to be readable by that user but the test's files)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 0
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            result = check()
        except BaseException as e:
            result = {"child failed": repr(e)}
            status = 1
        with os.fdopen(write_end, "w") as out:
            out.write(json.dumps(result))
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as reply:
        text = reply.read()
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(text)
    return result


def test_read_write_open_without_permission_names_the_file_and_read_only() -> None:
    # Outside pytest's tmp_path, which only its owner may enter.
    base = pathlib.Path(tempfile.mkdtemp(prefix="obj-permission-"))
    try:
        base.chmod(0o755)
        where = base / "app.obj"
        wal = pathlib.Path(str(where) + "-wal")
        with obj.Db(where) as db:
            db.insert("c", b"one document")

        def attempt() -> dict[str, object]:
            try:
                obj.Db(where)
                out: dict[str, object] = {"type": None}
            except obj.ObjError as e:
                out = {
                    "type": type(e).__name__,
                    "os_error": isinstance(e, OSError),
                    "errno": getattr(e, "errno", None),
                    "filename": getattr(e, "filename", None),
                    "message": str(e),
                }
            with obj.Db(where, read_only=True) as db:
                out["count"] = db.count("c")
            return out

        # A file the user may only read; then a writable file in a directory the user may not
        # write to (its log cannot be created).
        for case, file_mode, dir_mode, failing in [
            ("read-only file", 0o444, 0o755, where),
            ("read-only directory", 0o666, 0o555, wal),
        ]:
            if failing == wal:
                wal.unlink()
            where.chmod(file_mode)
            base.chmod(dir_mode)
            try:
                out = _as_unprivileged_user(attempt)
            finally:
                base.chmod(0o755)
            assert out["type"] == "ObjIOError" and out["os_error"], (case, out)
            assert out["errno"] in (errno.EACCES, errno.EPERM), (case, out)
            assert out["filename"] == str(failing), (case, out)
            message = str(out["message"])
            assert f"{failing} for writing failed" in message, (case, out)
            assert "open it with read_only=True" in message, (case, out)
            assert out["count"] == 1, (case, out)
    finally:
        base.chmod(0o755)
        shutil.rmtree(base)


# Runs with RLIMIT_FSIZE set (and SIGXFSZ ignored), so a write past the limit fails with
# EFBIG like a full disk. Prints one JSON line per failure it met.
FILE_SIZE_CHILD = r"""
import json, resource, signal, sys
import obj
path, where = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
db = obj.Db(path, checkpoint_frames=int(sys.argv[3]))
db.insert("c", b"before the limit")
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
acked = 1
errors = []
for i in range(200):
    try:
        db.insert("c", bytes([i % 256]) * 3000)
        acked += 1
    except obj.ObjError as e:
        errors.append({"type": type(e).__name__, "os_error": isinstance(e, OSError),
                       "errno": getattr(e, "errno", None),
                       "filename": getattr(e, "filename", None), "message": str(e)})
        if len(errors) == 3:
            break
print(json.dumps({"acked": acked, "errors": errors, "count": db.count("c")}))
"""


@pytest.mark.parametrize("where", ["log", "checkpoint"])
def test_write_failures_are_os_errors_and_later_refusals_name_the_cause(
    path: pathlib.Path, run_python: RunPython, where: str
) -> None:
    # A long log (no checkpoint before the limit) fails a commit's write to the log; frequent
    # automatic checkpoints keep the log small and fail while growing the main file instead.
    frames = "100000" if where == "log" else "8"
    proc = run_python(FILE_SIZE_CHILD, str(path), where, frames)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    first, *later = out["errors"]
    assert len(later) == 2, out
    wal = str(path) + "-wal"
    failed_file = wal if where == "log" else str(path)
    action = f"writing the {'WAL' if where == 'log' else 'database file'} {failed_file} failed"
    for error in out["errors"]:
        assert error["type"] == "ObjIOError" and error["os_error"], error
        assert error["errno"] == errno.EFBIG, error
        assert error["filename"] == failed_file, error
        assert action in error["message"], error
        assert os.strerror(errno.EFBIG) in error["message"], error
    for error in later:
        assert "failed earlier" in error["message"] and "reopen the database" in error["message"]
    if where == "checkpoint":
        # The commit itself succeeded; the user's first error is the refusal.
        assert "an automatic checkpoint failed earlier" in first["message"], first
    else:
        assert "failed earlier" not in first["message"], first
    assert out["count"] == out["acked"]
    with obj.Db(path) as db:
        assert db.count("c") == out["acked"]


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


@pytest.mark.parametrize(
    ("doc", "where", "word"),
    [
        ({"a": [1, object()]}, 'document["a"][1]', "cannot store a value of type object"),
        ({"a": {"b": {3: 4}}}, 'document["a"]["b"]', "dict keys must be str"),
        ({"t": (1, 2**70)}, 'document["t"][1]', "outside the 64-bit range"),
        ({"s": "x\udc80"}, 'document["s"]', "lone surrogates"),
    ],
)
def test_a_bad_value_deep_in_a_document_is_named_by_its_path(
    db: obj.Db, doc: dict[str, object], where: str, word: str
) -> None:
    with pytest.raises(obj.InvalidArgumentError) as e:
        db.insert("c", doc)
    assert str(e.value).startswith(f"{where}: "), str(e.value)
    assert word in str(e.value)
    store = db.store("kv")
    with pytest.raises(obj.InvalidArgumentError) as e:
        store["k"] = doc
    assert str(e.value).startswith(where.replace("document", "value", 1)), str(e.value)
    assert db.count("c") == 0 and len(store) == 0


def test_a_value_that_cannot_be_stored_is_also_a_value_error() -> None:
    with obj.Db.memory() as db:
        with pytest.raises(obj.InvalidValueError, match=r'\["c"\]\[1\].*complex') as e:
            db.insert("docs", {"c": [1, 2j]})
        assert isinstance(e.value, ValueError)
        assert isinstance(e.value, obj.InvalidArgumentError)
        with pytest.raises(ValueError, match=r'item\["v"\]'):
            db.table("t").put("k", {"v": object()})
        assert db.count("docs") == 0
        assert db.table("t").count() == 0
