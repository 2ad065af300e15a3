"""The ``python -m obj`` command line.

``python -m obj demo [PATH]`` creates (or opens) a database, writes and reads documents in
transactions and prints what it did, with the sizes of the database file and its log::

    $ python -m obj demo /tmp/demo.obj
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
from collections.abc import Sequence
from typing import Callable

from ._db import Db
from ._obj import __version__
from .errors import ObjError

__all__ = ["demo", "main"]


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
