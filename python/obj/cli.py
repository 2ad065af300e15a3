"""The ``python -m obj`` command line (also installed as ``obj``).

::

    obj stat FILE                       sizes, counts and indexes
    obj check FILE                      integrity check: exit 0 healthy, 1 damaged
    obj dump FILE COLLECTION [--limit N] [--json]
    obj export FILE [COLLECTION] --jsonl OUT
    obj import FILE COLLECTION --jsonl IN
    obj checkpoint FILE                 fold the write-ahead log into the file
    obj demo [PATH]                     a guided tour (in a temporary directory by default)

Exit status: 0 on success, 1 when the database is damaged or an operation fails, 2 for a
usage error or a missing file. Errors go to stderr, one line each; a progress bar is drawn
on stderr only when it is a terminal.

In JSON output a document is a JSON object; values JSON has no type for are tagged objects:
``{"$bytes": "<base64>"}``, ``{"$datetime": "<ISO 8601>"}``, ``{"$date": "<ISO 8601>"}``
and ``{"$uuid": "<hex>"}``. A raw (bytes) document is ``{"$bytes": ...}`` itself. Export
writes one line per document, ``{"collection": NAME, "id": ID, "doc": DOC}``; import takes
those lines or plain JSON objects, stores each under a new id (with ``--keep-ids``, under
the exported id, replacing a document there) and creates the database file if needed.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime
import json
import os
import pathlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import IO, Annotated, Any, Callable, Optional

from ._db import Db
from ._obj import __version__
from .document import Composite, Each, Index, Unique, document
from .errors import CorruptionError, IntegrityError, ObjError
from .query import field

__all__ = ["Task", "demo", "from_json", "main", "to_json"]


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


class _UsageError(Exception):
    """A usage problem found after parsing (exit status 2)."""


class _Damaged(Exception):
    """The database is damaged (exit status 1)."""


def to_json(value: Any) -> Any:
    """A document value as JSON-compatible data (see the module documentation)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": value.hex}
    return value


_TAGS: dict[str, Callable[[str], Any]] = {
    "$bytes": lambda s: base64.b64decode(s.encode("ascii"), validate=True),
    "$datetime": datetime.datetime.fromisoformat,
    "$date": datetime.date.fromisoformat,
    "$uuid": uuid.UUID,
}


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json`."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key in _TAGS and isinstance(inner, str):
                return _TAGS[key](inner)
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


class _Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def step(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"{self.label} [{bar:<30}] {self.done:,}/{self.total:,}"
        else:
            text = f"{self.label} {self.done:,}"
        sys.stderr.write("\r" + text)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()


def _existing(path: str) -> pathlib.Path:
    where = pathlib.Path(path)
    if not where.exists():
        raise _UsageError(f"{path}: no such file")
    if not where.is_file():
        raise _UsageError(f"{path}: not a file")
    return where


def _open(path: str, *, read_only: bool = True) -> Db:
    """Opens an existing database (never creates one)."""
    where = _existing(path)
    try:
        return Db(where, read_only=read_only)
    except (CorruptionError, IntegrityError) as e:
        raise _Damaged(f"{path} is damaged or not an obj database: {e}") from None


def _collections(db: Db, name: str | None) -> list[str]:
    names: list[str] = db.collections()
    if name is None:
        return names
    if name not in names:
        raise _UsageError(f"{db.path}: no collection named {name!r} (it has: {', '.join(names)})")
    return [name]


def _cmd_stat(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.file) as db:
        stat = db.stat()
    if args.json:
        json.dump(dataclasses.asdict(stat), out, indent=2)
        out.write("\n")
    else:
        out.write(f"{args.file}\n{stat.describe()}\n")
    return 0


def _cmd_check(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.file) as db:
        try:
            report = db.integrity_check()
        except (CorruptionError, IntegrityError) as e:
            raise _Damaged(f"{args.file} is damaged: {e}") from None
    out.write(
        f"{args.file}: ok ({report.page_count:,} pages checked, {report.free_pages:,} free)\n"
    )
    return 0


def _documents(db: Db, collection: str, limit: int | None) -> Iterator[tuple[int, Any]]:
    for n, (doc_id, doc) in enumerate(db.all(collection)):
        if limit is not None and n >= limit:
            return
        yield doc_id, doc


def _cmd_dump(args: argparse.Namespace, out: IO[str]) -> int:
    if args.limit is not None and args.limit < 0:
        raise _UsageError("--limit must be >= 0")
    with _open(args.file) as db:
        _collections(db, args.collection)
        total = db.count(args.collection)
        progress = _Progress(f"dump {args.collection}", min(total, args.limit or total))
        for doc_id, doc in _documents(db, args.collection, args.limit):
            if args.json:
                line = json.dumps({"id": doc_id, "doc": to_json(doc)}, ensure_ascii=False)
            else:
                line = f"{doc_id}: {doc!r}"
            out.write(line + "\n")
            progress.step()
        progress.close()
    return 0


def _cmd_export(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.file) as db:
        names = _collections(db, args.collection)
        total = sum(db.count(name) for name in names)
        progress = _Progress("export", total)
        written = 0
        dest = sys.stdout if args.jsonl == "-" else open(args.jsonl, "w", encoding="utf-8")  # noqa: SIM115
        try:
            for name in names:
                for doc_id, doc in db.all(name):
                    record = {"collection": name, "id": doc_id, "doc": to_json(doc)}
                    dest.write(json.dumps(record, ensure_ascii=False) + "\n")
                    written += 1
                    progress.step()
        finally:
            if dest is not sys.stdout:
                dest.close()
        progress.close()
    if args.jsonl != "-":
        out.write(f"exported {written:,} documents from {len(names)} collections to {args.jsonl}\n")
    return 0


def _import_lines(source: IO[str]) -> Iterator[tuple[int, int | None, Any]]:
    for lineno, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise _UsageError(f"line {lineno}: not JSON ({e})") from None
        if not isinstance(record, dict):
            raise _UsageError(f"line {lineno}: expected a JSON object")
        if "doc" in record and set(record) <= {"collection", "id", "doc"}:
            doc_id = record.get("id")
            if doc_id is not None and (
                isinstance(doc_id, bool) or not isinstance(doc_id, int) or doc_id < 1
            ):
                raise _UsageError(f"line {lineno}: id must be an int >= 1")
            doc = from_json(record["doc"])
        else:
            doc_id, doc = None, from_json(record)
        if not isinstance(doc, (dict, bytes)):
            raise _UsageError(f"line {lineno}: a document must be a JSON object")
        yield lineno, doc_id, doc


def _cmd_import(args: argparse.Namespace, out: IO[str]) -> int:
    if args.jsonl != "-":
        _existing(args.jsonl)
    # Import creates the database when the file does not exist yet.
    exists = pathlib.Path(args.file).exists()
    db = _open(args.file, read_only=False) if exists else Db(args.file)
    with db:
        source = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")  # noqa: SIM115
        progress = _Progress(f"import {args.collection}", None)
        count = 0
        try:
            with db.transaction() as tx:
                for lineno, doc_id, doc in _import_lines(source):
                    try:
                        if doc_id is None or not args.keep_ids:
                            tx.insert(args.collection, doc)
                        else:
                            tx.upsert(args.collection, doc_id, doc)
                    except ObjError as e:
                        raise _UsageError(f"line {lineno}: {type(e).__name__}: {e}") from None
                    count += 1
                    progress.step()
        finally:
            if source is not sys.stdin:
                source.close()
            progress.close()
    out.write(f"imported {count:,} documents into {args.collection!r}\n")
    return 0


def _cmd_checkpoint(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.file, read_only=False) as db:
        info = db.checkpoint()
    state = "deferred" if info.deferred else ("log reset" if info.wal_reset else "log kept")
    out.write(f"{args.file}: checkpoint copied {info.frames_copied:,} pages ({state})\n")
    return 0


def _cmd_demo(args: argparse.Namespace, out: IO[str]) -> int:
    if args.path is not None:
        demo(pathlib.Path(args.path))
    else:
        with tempfile.TemporaryDirectory(prefix="obj-demo-") as tmp:
            demo(pathlib.Path(tmp) / "demo.obj")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obj",
        description="Command-line tools for obj databases.",
        epilog="Exit status: 0 success, 1 damaged database or failed operation, "
        "2 usage error or missing file.",
    )
    parser.add_argument("--version", action="version", version=f"obj {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    cmd = commands.add_parser("stat", help="sizes, document counts and indexes")
    cmd.add_argument("file", help="database file")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(run=_cmd_stat)

    cmd = commands.add_parser(
        "check", help="check the integrity of a database (exit 0 healthy, 1 damaged)"
    )
    cmd.add_argument("file", help="database file")
    cmd.set_defaults(run=_cmd_check)

    cmd = commands.add_parser("dump", help="print the documents of a collection")
    cmd.add_argument("file", help="database file")
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("--limit", type=int, metavar="N", help="at most N documents")
    cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    cmd.set_defaults(run=_cmd_dump)

    cmd = commands.add_parser("export", help="write documents as JSON lines")
    cmd.add_argument("file", help="database file")
    cmd.add_argument("collection", nargs="?", help="collection name (default: all)")
    cmd.add_argument("--jsonl", required=True, metavar="OUT", help="output file ('-': stdout)")
    cmd.set_defaults(run=_cmd_export)

    cmd = commands.add_parser(
        "import", help="store JSON lines as dict-native documents, in one transaction"
    )
    cmd.add_argument("file", help="database file")
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("--jsonl", required=True, metavar="IN", help="input file ('-': stdin)")
    cmd.add_argument(
        "--keep-ids",
        action="store_true",
        help="store exported lines under their ids (replacing documents there)",
    )
    cmd.set_defaults(run=_cmd_import)

    cmd = commands.add_parser("checkpoint", help="fold the write-ahead log into the file")
    cmd.add_argument("file", help="database file")
    cmd.set_defaults(run=_cmd_checkpoint)

    cmd = commands.add_parser(
        "demo", help="create a database, write and read documents, show the file sizes"
    )
    cmd.add_argument(
        "path", nargs="?", help="database file to use (default: a new temporary directory)"
    )
    cmd.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m obj`` and the ``obj`` script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace, IO[str]], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return run(args, sys.stdout)
    except _UsageError as e:
        print(f"obj {args.command}: error: {e}", file=sys.stderr)
        return 2
    except _Damaged as e:
        print(f"obj {args.command}: damaged: {e}", file=sys.stderr)
        return 1
    except (CorruptionError, IntegrityError) as e:
        print(f"obj {args.command}: damaged: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except ObjError as e:
        print(f"obj {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``obj dump ... | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as e:
        print(f"obj {args.command}: error: {e}", file=sys.stderr)
        return 1
