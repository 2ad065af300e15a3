"""A handle used in a child process after fork() refuses clearly, and the child can open
the database afresh; the parent's handle, locks and files are untouched."""

from __future__ import annotations

import os
import pathlib
import sys
import time

import pytest

import obj

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


def in_child(body: object) -> int:
    """Runs ``body()`` in a forked child; its return value is the child's exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            code = body()  # type: ignore[operator]
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_the_parents_handle_refuses_in_the_child_and_keeps_working_in_the_parent(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "fork.obj"
    with obj.Db(path) as db:
        oid = db.insert("c", {"n": 1})
        db.table("t").put("k", {"v": 1})

        def child() -> int:
            for use in (
                lambda: db.get("c", oid),
                lambda: db.insert("c", {"n": 2}),
                lambda: db.table("t").get("k"),
                lambda: db.transaction().__enter__(),
            ):
                try:
                    use()
                except obj.ObjError as e:
                    if "open the database again in the child" not in str(e):
                        return 2
                else:
                    return 1
            db.close()  # must release none of the parent's locks, and write nothing
            return 0

        assert in_child(child) == 0
        # The parent goes on: its reads, writes and its lock on the file are all intact.
        assert db.get("c", oid) == {"n": 1}
        db.insert("c", {"n": 3})
        with pytest.raises(obj.BusyError):
            obj.Db(path, busy_timeout=0.05, locking="exclusive")
        assert db.count("c") == 2
    with obj.Db(path, read_only=True) as db:
        assert db.count("c") == 2
        db.integrity_check()


def test_a_child_opens_the_database_afresh(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "fresh.obj"
    with obj.Db(path) as db:
        db.insert("c", {"n": 1})
    with obj.Db(path, read_only=True) as reader:

        def child() -> int:
            with obj.Db(path, read_only=True) as mine:
                return 0 if mine.count("c") == 1 else 1

        assert in_child(child) == 0
        assert reader.count("c") == 1


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_an_async_db_in_the_child_refuses_too(tmp_path: pathlib.Path) -> None:
    import asyncio

    from obj import aio

    async def main() -> None:
        adb = await aio.AsyncDb.open(tmp_path / "a.obj")
        await adb.insert("c", {"n": 1})

        def child() -> int:
            try:
                adb._source().count("c")
            except obj.ObjError:
                return 0
            return 1

        assert in_child(child) == 0
        assert await adb.count("c") == 1
        await adb.close()

    asyncio.run(main())


def test_children_forked_at_any_moment_open_the_database_afresh(tmp_path: pathlib.Path) -> None:
    # The engine's background thread (which lets go of idle read marks) must never be
    # holding one of its locks when the process forks: the child gets no copy of the
    # thread, and would wait on that lock forever when it opens a database.
    path = tmp_path / "forks.obj"
    with obj.Db(path) as db:
        db.insert("c", {"n": 1})
        hung = 0
        for i in range(150):
            assert db.get("c", 1) == {"n": 1}  # keeps an idle mark for the thread to drop
            time.sleep(0.0004 * (i % 25))
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                code = 1
                try:
                    with obj.Db(path, read_only=True) as mine:
                        code = 0 if mine.get("c", 1) == {"n": 1} else 2
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 10
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    assert os.waitstatus_to_exitcode(status) == 0
                    break
                if time.monotonic() > deadline:
                    hung += 1
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.001)
        assert hung == 0, f"{hung} children hung opening the database"
