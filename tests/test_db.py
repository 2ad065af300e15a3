"""The database handle: opening, paths, options, closing, context manager, checkpoints."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import obj

from .conftest import RunPython


def wal_size(path: pathlib.Path) -> int:
    return os.path.getsize(str(path) + "-wal")


def fill(db: obj.Db, n: int = 20, collection: str = "docs") -> list[int]:
    with db.transaction() as tx:
        return [tx.insert(collection, b"doc %d" % i) for i in range(n)]


def test_open_creates_file_and_wal(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        assert path.exists()
        assert db.wal_path == pathlib.Path(str(path) + "-wal")
        assert db.wal_path.exists()
        assert db.path == path
        assert not db.read_only
        assert not db.closed
    assert db.closed


@pytest.mark.parametrize("kind", ["str", "pathlib", "pathlike"])
def test_path_accepts_str_and_pathlike(path: pathlib.Path, kind: str) -> None:
    class Custom(os.PathLike):  # type: ignore[type-arg]
        def __fspath__(self) -> str:
            return str(path)

    args: dict[str, str | os.PathLike[str]] = {
        "str": str(path),
        "pathlib": path,
        "pathlike": Custom(),
    }
    with obj.Db(args[kind]) as db, db.transaction() as tx:
        tx.insert("c", b"x")
    with obj.Db(str(path)) as db, db.read_transaction() as r:
        assert r.count("c") == 1


def test_path_of_wrong_type(path: pathlib.Path) -> None:
    with pytest.raises(obj.InvalidArgumentError, match="path"):
        obj.Db(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value", "word"),
    [
        ("busy_timeout", -1.0, "busy_timeout"),
        ("busy_timeout", float("nan"), "busy_timeout"),
        ("busy_timeout", "5", "busy_timeout"),
        ("read_only", 1, "read_only"),
        ("durability", "sometimes", "durability"),
        ("page_size", 1000, "page_size"),
        ("page_size", "4096", "page_size"),
        ("cache_size", -1, "cache_size"),
        ("checkpoint_frames", 0, "checkpoint_frames"),
    ],
)
def test_invalid_options(path: pathlib.Path, option: str, value: object, word: str) -> None:
    with pytest.raises(obj.InvalidArgumentError, match=word):
        obj.Db(path, **{option: value})  # type: ignore[arg-type]


def test_options_are_keyword_only(path: pathlib.Path) -> None:
    with pytest.raises(TypeError):
        obj.Db(path, True)  # type: ignore[call-arg]


@pytest.mark.parametrize("durability", ["immediate", "eventual", "none"])
def test_durability_modes_persist_after_close(path: pathlib.Path, durability: str) -> None:
    with obj.Db(path, durability=durability) as db:  # type: ignore[arg-type]
        fill(db, 5)
    with obj.Db(path) as db, db.read_transaction() as tx:
        assert tx.count("docs") == 5


def test_page_size_for_new_file(path: pathlib.Path) -> None:
    with obj.Db(path, page_size=8192) as db:
        fill(db, 3)
    assert path.stat().st_size % 8192 == 0
    with obj.Db(path) as db, db.read_transaction() as tx:
        assert tx.get("docs", 1) == b"doc 0"


def test_data_survives_reopen(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        ids = fill(db, 50)
    with obj.Db(path) as db, db.read_transaction() as tx:
        assert [i for i, _ in tx.iter_all("docs")] == ids
        assert tx.get("docs", ids[7]) == b"doc 7"


def test_close_is_idempotent_and_ends_use(path: pathlib.Path) -> None:
    db = obj.Db(path)
    db.close()
    db.close()
    assert db.closed
    with pytest.raises(obj.ObjError, match="closed"):
        db.transaction()
    with pytest.raises(obj.ObjError, match="closed"):
        db.read_transaction()
    with pytest.raises(obj.ObjError):
        db.checkpoint()


def test_close_ends_open_transactions(path: pathlib.Path) -> None:
    db = obj.Db(path)
    fill(db, 2)
    reader = db.read_transaction()
    db.close()
    with pytest.raises(obj.ObjError):
        reader.get("docs", 1)


def test_close_releases_the_lock(path: pathlib.Path) -> None:
    db = obj.Db(path)
    db.close()
    with obj.Db(path, busy_timeout=0):
        pass


def test_clean_exit_checkpoints(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        fill(db)
        assert wal_size(path) > obj.WAL_HEADER_SIZE
    assert wal_size(path) == obj.WAL_HEADER_SIZE == 64


def test_clean_exit_with_pinned_reader_does_not_raise(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        fill(db)
        reader = db.read_transaction()
        fill(db)
    # The fold was deferred for the reader; nothing was lost and nothing was raised. The
    # reader went with the handle.
    with pytest.raises(obj.ObjError, match="closed"):
        reader.count("docs")
    with obj.Db(path) as db, db.read_transaction() as r:
        assert r.count("docs") == 40


def test_clean_exit_with_open_write_transaction_rolls_back_loudly(path: pathlib.Path) -> None:
    # #14: closing used to discard the open transaction's writes silently.
    with pytest.raises(obj.ObjError, match="rolled back"), obj.Db(path) as db:
        fill(db)
        pending = db.transaction()
        pending.insert("docs", b"never committed")
    assert db.closed
    with pytest.raises(obj.ObjError):
        pending.commit()
    with obj.Db(path) as db, db.read_transaction() as r:
        assert r.count("docs") == 20


def test_exit_through_exception_skips_checkpoint_and_reraises(path: pathlib.Path) -> None:
    class Boom(Exception):
        pass

    error = Boom("user error")
    with pytest.raises(Boom) as caught, obj.Db(path) as db:
        fill(db)
        raise error
    assert caught.value is error
    assert db.closed
    # The log still holds the commits (no checkpoint ran), and the lock is gone.
    assert wal_size(path) > obj.WAL_HEADER_SIZE
    with obj.Db(path, busy_timeout=0) as again, again.read_transaction() as tx:
        assert tx.count("docs") == 20


def test_exit_through_base_exception_still_closes(path: pathlib.Path) -> None:
    with pytest.raises(KeyboardInterrupt), obj.Db(path) as db:
        raise KeyboardInterrupt
    assert db.closed
    with obj.Db(path, busy_timeout=0):
        pass


def test_exception_exit_releases_lock_for_other_processes(
    path: pathlib.Path, run_python: RunPython
) -> None:
    with pytest.raises(ValueError), obj.Db(path):
        raise ValueError
    result = run_python(
        "import obj, sys; obj.Db(sys.argv[1], busy_timeout=0).close(); print('opened')",
        str(path),
    )
    assert result.stdout.strip() == "opened", result.stderr


def test_checkpoint_folds_wal(db: obj.Db, path: pathlib.Path) -> None:
    fill(db)
    size_before = path.stat().st_size
    info = db.checkpoint()
    assert isinstance(info, obj.CheckpointInfo)
    assert info.frames_copied > 0
    assert info.wal_reset
    assert not info.deferred
    assert wal_size(path) == obj.WAL_HEADER_SIZE
    assert path.stat().st_size >= size_before
    with db.read_transaction() as tx:
        assert tx.count("docs") == 20


def test_checkpoint_without_changes_is_a_noop(db: obj.Db) -> None:
    assert db.checkpoint() == obj.CheckpointInfo(0, False, False)
    fill(db)
    db.checkpoint()
    assert db.checkpoint() == obj.CheckpointInfo(0, False, False)


def test_checkpoint_deferred_by_reader(db: obj.Db, path: pathlib.Path) -> None:
    fill(db, 5)
    with db.read_transaction() as old:
        fill(db, 5)
        info = db.checkpoint()
        assert info.deferred
        assert not info.wal_reset
        assert old.count("docs") == 5
    info = db.checkpoint()
    assert info.wal_reset
    assert wal_size(path) == obj.WAL_HEADER_SIZE


def test_automatic_checkpoint(path: pathlib.Path) -> None:
    with obj.Db(path, checkpoint_frames=10, durability="none") as db:
        for _ in range(30):
            fill(db, 1)
        assert wal_size(path) < 10 * 4096 * 2


def test_read_only_handle(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        fill(db, 3)
    with obj.Db(path, read_only=True) as db:
        assert db.read_only
        with db.read_transaction() as tx:
            assert tx.count("docs") == 3
        with pytest.raises(obj.ObjError, match="read-only") as caught:
            db.checkpoint()
        assert type(caught.value) is obj.ObjError
        with pytest.raises(obj.ObjError, match="read-only"):
            db.transaction()


def test_read_only_open_of_missing_file(path: pathlib.Path) -> None:
    with pytest.raises(obj.NotFoundError):
        obj.Db(path, read_only=True)
    assert not path.exists()


def test_open_in_missing_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(obj.ObjError):
        obj.Db(tmp_path / "nope" / "x.obj")


def test_open_a_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(obj.ObjError):
        obj.Db(tmp_path)


def test_repr(path: pathlib.Path) -> None:
    db = obj.Db(path)
    assert "test.obj" in repr(db)
    db.close()
    assert "closed" in repr(db)


def test_version() -> None:
    assert isinstance(obj.__version__, str)
    assert obj.__version__.count(".") == 2


def test_public_names() -> None:
    for name in obj.__all__:
        assert hasattr(obj, name), name


def test_demo_command(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "demo.obj"
    result = subprocess.run(
        [sys.executable, "-m", "obj", "demo", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "demo.obj-wal 64 bytes" in result.stdout
    assert "rolled back" in result.stdout
    assert "the next page -> ['u3@acme.org', 'u4@acme.org']" in result.stdout
    assert "ConditionFailedError, nothing written" in result.stdout
    assert "another process opened demo.obj while this one has it open: it sees 2 notes" in (
        result.stdout
    )
    with obj.Db(target, read_only=True) as db, db.read_transaction() as tx:
        assert tx.count("notes") == 2
        users = tx.table("users")
        assert users.count("org#acme") == 5
        assert users.get("org#zeta", sk="user#2") == {"email": "u2@zeta.org", "logins": 1}
    assert "action='reprioritise' user='ana' meta={'ticket': 42} -> update tasks" in (result.stdout)
    assert "budget: 0 -> 100" in result.stdout
    assert "streamed 1,200,000 bytes into 'video:7'" in result.stdout
    assert "an interrupted upload stored nothing: 'video:8' in media -> False" in result.stdout
    assert "len 10,001, temps[-1] = 36.6" in result.stdout
    with obj.Db(target, read_only=True) as db:
        actions = [r.action for r in db.changes()]
        assert actions[:2] == ["reprioritise", "sign-up"] and actions[-1] == "hire"
        from obj.cli import Team

        assert db.state(Team, name="demo-team").data.budget == 100


def test_demo_command_without_path() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "obj", "demo"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "checkpoint" in result.stdout


def test_demo_command_on_a_damaged_file(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "junk.obj"
    target.write_bytes(b"not a database" * 1000)
    result = subprocess.run(
        [sys.executable, "-m", "obj", "demo", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "CorruptionError" in result.stderr


def test_an_iterator_started_before_close_stops(path: pathlib.Path) -> None:
    # #14: an iterator over its own snapshot kept yielding after close().
    db = obj.Db(path)
    fill(db, 100)
    it = db.all("docs")
    assert next(it)[0] == 1
    db2 = obj.Db(path.with_name("second.obj"))
    fill(db2, 100)
    with db2.read_transaction() as r:
        in_snapshot = r.all("docs")
        assert next(in_snapshot)[0] == 1
        db.close()
        db2.close()
        for stopped in (it, in_snapshot):
            with pytest.raises(obj.ObjError, match="closed"):
                next(stopped)


def test_stat_reports_the_oldest_pinned_snapshot(path: pathlib.Path) -> None:
    with obj.Db(path) as db:
        fill(db, 100)
        first = db.stat()
        assert first.readers == 0 and first.oldest_snapshot_seq is None
        it = db.all("docs")
        next(it)  # half consumed: the iterator pins its snapshot
        pinned_at = db.stat().commit_seq
        for i in range(5):
            db.insert("docs", b"%d" % i)
        st = db.stat()
        assert st.readers == 1
        assert st.oldest_snapshot_seq == pinned_at
        assert st.commit_seq == pinned_at + 5
        assert st.oldest_snapshot_age is not None and st.oldest_snapshot_age >= 0
        assert "5 behind" in st.describe()
        # The pinned snapshot keeps the log from being reset...
        assert db.checkpoint().deferred
        del it
        # ...until it is gone.
        assert db.stat().readers == 0
        assert db.checkpoint().wal_reset
