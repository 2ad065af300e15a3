"""The ``python -m obj`` command line.

``python -m obj demo [PATH]`` creates (or opens) a database, writes and reads raw, typed
and dict documents in transactions, looks documents up through secondary indexes, runs a
query, and prints what it did, with the sizes of the database file and its log::

    $ python -m obj demo /tmp/demo.obj
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import pathlib
import sys
import tempfile
from collections.abc import Sequence
from typing import Annotated, Callable, Optional

from ._db import Db
from ._obj import __version__
from .document import Composite, Each, Index, Unique, document
from .errors import ObjError
from .query import field

__all__ = ["Task", "demo", "main"]


@document(
    collection="tasks",
    version=1,
    indexes=[Composite(("owner", "done"), name="by_owner_done")],
)
@dataclasses.dataclass
class Task:
    """The typed document of the demonstration."""

    key: Annotated[str, Unique]
    owner: Annotated[str, Index]
    title: str
    priority: int
    tags: Annotated[list[str], Each] = dataclasses.field(default_factory=list)
    done: bool = False
    due: Optional[datetime.date] = None  # noqa: UP045 (Python 3.9 evaluates the hints)


_TASKS = [
    Task("T-1", "ana", "renew the passport", 3, ["admin"], due=datetime.date(2030, 1, 31)),
    Task("T-2", "ben", "fix the bike", 1, ["home", "outdoor"]),
    Task("T-3", "ana", "book the flights", 2, ["travel", "admin"]),
    Task("T-4", "cai", "plant tomatoes", 1, ["outdoor"], done=True),
    Task("T-5", "ana", "water the plants", 1, ["home"]),
]


def _size(path: pathlib.Path) -> str:
    try:
        return f"{path.stat().st_size:,} bytes"
    except FileNotFoundError:
        return "absent"


def demo(path: pathlib.Path, out: Callable[[str], None] = print) -> None:
    """Runs the demonstration against the database at ``path``."""
    out(f"obj {__version__} demo: {path}")
    notes = [
        {"title": "buy milk", "done": False},
        {"title": "write the report", "done": False},
        {"title": "call the plumber", "done": True},
    ]
    with Db(path) as db:
        out(f"  opened {path.name} (the write-ahead log is {db.wal_path.name})")
        with db.transaction() as tx:
            before = tx.count("notes")
            ids = [tx.insert("notes", json.dumps(n).encode()) for n in notes]
        out(f"  committed {len(ids)} notes in one transaction: ids {ids} ({before} before)")

        try:
            with db.transaction() as tx:
                tx.insert("notes", b'{"title": "never stored"}')
                raise RuntimeError("changed my mind")
        except RuntimeError:
            pass
        with db.read_transaction() as snap:
            count = snap.count("notes")
        out(f"  a transaction that raised was rolled back: 'notes' still has {count}")

        with db.transaction() as tx:
            first = json.loads(tx.get("notes", ids[0]) or b"{}")
            first["done"] = True
            tx.upsert("notes", ids[0], json.dumps(first).encode())
            tx.delete("notes", ids[2])
        out(f"  marked note {ids[0]} done and deleted note {ids[2]}")

        with db.read_transaction() as snap:
            out(f"  snapshot read of 'notes' ({snap.count('notes')} documents, in id order):")
            for doc_id, payload in snap.iter_all("notes"):
                if doc_id in ids:
                    out(f"    {doc_id}: {payload.decode()}")

        _typed_demo(db, out)

        out(
            f"  before checkpoint: {path.name} {_size(path)}, "
            f"{db.wal_path.name} {_size(db.wal_path)}"
        )
        info = db.checkpoint()
        out(
            f"  checkpoint copied {info.frames_copied} pages into {path.name}; "
            f"log reset: {info.wal_reset}"
        )
        out(
            f"  after checkpoint:  {path.name} {_size(path)}, "
            f"{db.wal_path.name} {_size(db.wal_path)}"
        )

    with Db(path, read_only=True) as db, db.read_transaction() as snap:
        out(
            f"  reopened read-only: collections {snap.collections()}, "
            f"'notes' has {snap.count('notes')} documents"
        )
        first = next(iter(snap.all("tasks")), None)
        if first is not None:
            out(f"  a typed record read by collection name (schema from the file): {first[1]}")


def _typed_demo(db: Db, out: Callable[[str], None]) -> None:
    out("  typed documents (@obj.document dataclass Task, stored by a codec written in Rust):")
    with db.transaction() as tx:
        fresh = [t for t in _TASKS if tx.find_unique(Task, "key", t.key) is None]
        ids = [tx.insert(t) for t in fresh]
        tx.insert("events", {"event": "tasks added", "count": len(ids), "at": "demo"})
    out(f"    inserted {len(ids)} tasks and one dict-native event in one transaction")

    found = db.find_unique(Task, "key", "T-3")
    out(f"    find_unique(Task, 'key', 'T-3') -> {found}")
    titles = [t.title for _, t in db.index_range(Task, "owner", "ana", "ana")]
    out(f"    index_range(Task, 'owner', 'ana', 'ana') -> {titles}")
    outdoor = [t.key for _, t in db.index_range(Task, "tags", "outdoor", "outdoor")]
    out(f"    tasks tagged 'outdoor' (an Each index): {outdoor}")

    query = (
        db.query(Task)
        .filter((field("owner") == "ana") & (field("done") == False))  # noqa: E712
        .sort_by("priority", reverse=True)
    )
    out(f"    query plan: {query.explain()}")
    for oid, task in query.fetch():
        out(f"      {oid}: priority {task.priority} {task.title!r}")
    count = db.query(Task).filter(field("tags").contains("admin")).count()
    out(f"    {count} tasks are tagged 'admin' (counted in the engine, nothing decoded)")

    ana = db.query(Task).filter(field("key") == "T-5").first()
    if ana is not None:
        done = db.update(Task, ana[0], lambda t: setattr(t, "done", True))
        out(f"    update(Task, {ana[0]}, ...) marked {done.key} done")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m obj``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m obj", description="Command-line tools for obj databases."
    )
    parser.add_argument("--version", action="version", version=f"obj {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_cmd = commands.add_parser(
        "demo", help="create a database, write and read documents, show the file sizes"
    )
    demo_cmd.add_argument(
        "path", nargs="?", help="database file to use (default: a new temporary directory)"
    )
    args = parser.parse_args(argv)
    if args.command != "demo":
        parser.print_help()
        return 2
    try:
        if args.path is not None:
            demo(pathlib.Path(args.path))
        else:
            with tempfile.TemporaryDirectory(prefix="obj-demo-") as tmp:
                demo(pathlib.Path(tmp) / "demo.obj")
    except ObjError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0
