"""The ``python -m obj`` command line (also installed as ``obj``).

::

    obj stat FILE                       sizes, counts and indexes
    obj check FILE                      integrity check: exit 0 healthy, 1 damaged
    obj dump FILE COLLECTION [--limit N] [--json]
    obj export FILE [COLLECTION] --jsonl OUT
    obj import FILE [COLLECTION] --jsonl IN [--keep-ids]
    obj changes FILE [--since N] [--until N] [--collection C]... [--follow [--timeout S]]
                     [--jsonl]          the change log's records, in seq order
    obj checkpoint FILE                 fold the write-ahead log into the file
    obj demo [PATH]                     a guided tour (in a temporary directory by default)

Exit status: 0 on success, 1 when the database is damaged or an operation fails, 2 for a
usage error or a missing file. Errors go to stderr, one line each; a progress bar is drawn
on stderr only when it is a terminal.

In JSON output a document is a JSON object; values JSON has no type for are tagged objects:
``{"$bytes": "<base64>"}``, ``{"$datetime": "<ISO 8601>"}``, ``{"$date": "<ISO 8601>"}``,
``{"$uuid": "<hex>"}``, ``{"$vector": "<base64 of float32 LE>"}``, ``{"$set": [members]}``
and ``{"$float": "nan"}`` (or ``"-nan"``, ``"inf"``, ``"-inf"``), so
the output is strict JSON. A raw (bytes) document is ``{"$bytes": ...}`` itself; a dict whose
only key is one of these tags is written ``{"$dict": {...}}``. A malformed tag is an error.

Export writes, per collection, one line per stored schema of its typed documents,
``{"collection": NAME, "$schema": SCHEMA}`` (the shape the file stores, as plain data: see
``Schema::to_datum`` in ``crates/obj-core/src/codec/schema.rs``), then one line per
document, ``{"collection": NAME, "id": ID, "doc": DOC}``, with ``"$version": V`` for a
typed document. A keyed collection (an ``obj.Store``) has ``"$key": KEY`` in place of
``"id"``, in key order: the key as a string when it is UTF-8, else ``{"$bytes": ...}``. Its
documents may be any dict-native value, not only objects; one that is bytes is marked
``"$kind": "value"``, since a ``{"$bytes": ...}`` document is otherwise raw bytes. (``obj
dump --json`` writes the same ``"id"`` or ``"$key"`` and ``"doc"``.)

Import takes those lines or plain JSON objects and stores each in COLLECTION (without it,
in the collection the line names) under a new id (with ``--keep-ids``, under the exported
id, replacing a document there), or, for a line with a ``"$key"``, under its key in a keyed
collection (created keyed), replacing a document there; it creates the database file if
needed. It restores typed documents as the class that wrote them did (the same payload
bytes and schema version) and refuses, naming the line, anything that does not fit: a
typed document that does not match its schema, a schema that differs from the one the file
stores, dict-native or raw documents in a typed collection (or typed ones among dict-native
or raw documents), and keyed lines in an id collection (or lines without a key in a keyed
one). The whole import is one transaction: after a refused line the file is as it was (and
a file the import created is removed).

Changes prints the records of the file's change log (see ``obj.Db.changes``) after seq
``--since`` (default: all the log keeps) up to ``--until``, only those of the ``--collection``
names if given; with ``--follow`` it then waits for new commits (of any process) and prints
each as it comes, until ``--timeout`` seconds pass without one (default: until interrupted).
A record is a line ``SEQ TIME action=ACTION user=USER`` (``-`` for none, then ``meta=`` and
its JSON if it has any) and one indented line ``OP COLLECTION KEY`` per changed document;
with ``--jsonl``, one JSON object per record: ``{"seq": N, "time": "<ISO 8601, UTC>",
"action": ..., "user": ..., "meta": {...} or null, "changes": [{"collection": ...,
"key": ..., "op": "insert"|"update"|"delete", "old": DOC, "new": DOC}, ...]}``, tagged as
above (a key is the id, or the key's bytes as ``{"$bytes": ...}``; ``old``/``new`` null
where the log keeps no such image). A file that keeps no change log is a usage error (2);
``--since`` older than what retention kept fails (1), naming the oldest seq kept.
"""

from __future__ import annotations

import argparse
import array
import base64
import contextlib
import dataclasses
import datetime
import json
import math
import os
import pathlib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import IO, Annotated, Any, Callable, Literal, NoReturn, Optional, Protocol

from ._db import Db
from ._obj import Vector, __version__
from ._txn import WriteTransaction
from .columns import Column
from .document import Composite, Each, Index, Unique, document
from .errors import (
    ChangesExpiredError,
    ConditionFailedError,
    CorruptionError,
    IntegrityError,
    ObjError,
)
from .query import field
from .store import KeyTypeError
from .table import sk

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


@dataclasses.dataclass
class Team:
    """The root state of the demonstration (``db.state``): a team's members and budget."""

    members: dict[str, str] = dataclasses.field(default_factory=dict)
    budget: int = 0


_TASKS = [
    Task("T-1", "ana", "renew the passport", 3, ["admin"], due=datetime.date(2030, 1, 31)),
    Task("T-2", "ben", "fix the bike", 1, ["home", "outdoor"]),
    Task("T-3", "ana", "book the flights", 2, ["travel", "admin"]),
    Task("T-4", "cai", "plant tomatoes", 1, ["outdoor"], done=True),
    Task("T-5", "ana", "water the plants", 1, ["home"]),
]


def _count(n: int, noun: str) -> str:
    """``"1 document"``, ``"2 documents"``: what the CLI prints after counting."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


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
        _store_demo(db, out)
        _table_demo(db, out)
        _blobs_demo(db, out)
        _columns_demo(db, out)
        _changes_demo(db, out)
        _processes_demo(db, path, out)

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


#: What the second process of the demo runs: it opens the file the demo holds open.
_READER = """
import sys, obj
with obj.Db(sys.argv[1], read_only=True) as db:
    print(db.count("notes"), len(db.store("sessions")))
"""


def _processes_demo(db: Db, path: pathlib.Path, out: Callable[[str], None]) -> None:
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", _READER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if child.returncode == 0:
        notes, sessions = child.stdout.split()
        out(
            f"  another process opened {path.name} while this one has it open: it sees "
            f"{notes} notes and {sessions} sessions (snapshots, one writer at a time)"
        )
    else:
        out(f"  another process could not read {path.name}: {child.stderr.strip()}")


def _store_demo(db: Db, out: Callable[[str], None]) -> None:
    out("  a persistent dict (obj.Store over a keyed collection, keys in byte order):")
    sessions = db.store("sessions")
    sessions["user:42"] = {"plan": "pro", "seen": 3}
    sessions.put_many({f"user:{i}": {"plan": "free", "seen": i} for i in range(5)})
    out(
        f"    len(sessions) = {len(sessions)} (a counter, O(1)); sessions['user:42'] = "
        f"{sessions['user:42']}"
    )
    out(f"    prefix('user:4') -> {[key for key, _ in sessions.prefix('user:4')]}")
    found, missing = sessions.get_many(["user:1", "user:nope"])
    out(f"    get_many -> found {sorted(found)}, missing {missing}")


def _table_demo(db: Db, out: Callable[[str], None]) -> None:
    out("  items by partition and sort key (obj.Table, DynamoDB-style):")
    users = db.table("users", indexes=["email"])
    users.batch_write(
        puts=[
            (f"org#{org}", f"user#{i}", {"email": f"u{i}@{org}.org", "logins": 0})
            for org in ("acme", "zeta")
            for i in range(1, 5)
        ]
    )
    page = users.query("org#acme", sk=sk.begins_with("user#"), limit=2)
    out(
        f"    query('org#acme', begins_with 'user#', limit=2) -> {len(page)} items, "
        f"last_key {page.last_key!r}"
    )
    rest = users.query("org#acme", start_after=page.last_key)
    out(f"    the next page -> {[item['email'] for item in rest]}")
    try:
        users.put("org#acme", {"email": "dup"}, sk="user#1", condition=field("pk").not_exists())
    except ConditionFailedError:
        out("    a put-if-absent on an existing item: ConditionFailedError, nothing written")
    updated = users.update("org#zeta", sk="user#2", add={"logins": 1})
    out(f"    update(add logins 1) -> {updated}")
    hit = users.query_index("email", "u3@zeta.org")
    out(f"    query_index('email', 'u3@zeta.org') -> {[item['email'] for item in hit]}")
    users.put("org#acme", {"email": "temp@acme.org"}, sk="session#1", ttl=3600)
    out(f"    an item with ttl=3600 s; count('org#acme') = {users.count('org#acme')}")


def _blobs_demo(db: Db, out: Callable[[str], None]) -> None:
    out("  blobs (obj.BlobStore: streamed in 256 KiB chunks, with size and SHA-256):")
    media = db.blobs("media")
    with media.open("video:7", "wb", content_type="video/mp4", meta={"by": "ana"}) as f:
        for i in range(12):
            f.write(bytes([i]) * 100_000)
    info = media.stat("video:7")
    out(
        f"    streamed {info.size:,} bytes into 'video:7' ({info.content_type}, sha256 "
        f"{info.sha256[:16]}...), atomic at close"
    )
    with media.open("video:7") as f:
        f.seek(650_000)
        piece = f.read(4)
    out(f"    seek(650,000) + read(4) -> {piece!r} (reads only the chunk it needs)")
    try:
        with media.open("video:8", "wb") as f:
            f.write(b"partial")
            raise RuntimeError("upload interrupted")
    except RuntimeError:
        pass
    out(f"    an interrupted upload stored nothing: 'video:8' in media -> {'video:8' in media}")


def _columns_demo(db: Db, out: Callable[[str], None]) -> None:
    out("  columns (obj.Column: typed sequences packed in pages):")
    temps = db.column("demo-temperatures", "f64")
    temps.clear()
    temps.extend(float(20 + (i % 7)) / 2 for i in range(10_000))
    temps.append(36.6)
    out(
        f"    extend 10,000 f64 + append: len {len(temps):,}, temps[-1] = {temps[-1]}, "
        f"temps[100:103] = {temps[100:103]}"
    )
    try:
        db.column("demo-counts", "i32").append(2**40)
    except ObjError as e:
        out(f"    an i32 column refuses 2**40: {e}")


def _changes_demo(db: Db, out: Callable[[str], None]) -> None:
    out("  a change log in the file (who changed what, when and why, in the same commit):")
    db.enable_changes("both")
    log = db.change_log()
    start = log.last if log is not None else 0
    with db.transaction(action="reprioritise", user="ana", meta={"ticket": 42}) as tx:
        for oid, task in tx.query(Task).filter(field("key") == "T-2").fetch():
            task.priority += 1
            tx.upsert(Task, oid, task)
    with db.context(action="sign-up", user="web"):
        db.store("sessions")["user:99"] = {"plan": "trial", "seen": 0}
    for record in db.changes(since=start):
        what = ", ".join(f"{c.op} {c.collection}" for c in record.changes)
        out(
            f"    seq {record.seq}: action={record.action!r} user={record.user!r} "
            f"meta={record.meta} -> {what}"
        )
    out("  root state, kanta-style (db.state: one object, a structural diff per commit):")
    team = db.state(Team, name="demo-team")
    with team.transaction(action="hire", user="ana") as data:
        data.members[f"m{len(data.members) + 1}"] = "engineer"
        data.budget += 100
    try:
        with team.transaction(action="overspend", user="ben") as data:
            data.budget -= 10_000
            raise ValueError("over budget")
    except ValueError:
        out(f"    a state transaction that raised rolled back: budget {team.data.budget}")
    last = team.history()[-1]
    out(f"    history()[-1]: seq {last.seq} action={last.action!r} user={last.user!r}")
    for entry in last.diff:
        out(f"      {'/'.join(map(str, entry.path))}: {entry.old!r} -> {entry.new!r}")
    if len(team.history()) > 1:
        before = team.at(team.history()[-2].seq)
        out(f"    at(seq {team.history()[-2].seq}) -> budget {before.budget}")


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


def _float_name(value: float) -> str:
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    return "inf" if value > 0 else "-inf"


_FLOATS = {"nan": math.nan, "-nan": -math.nan, "inf": math.inf, "-inf": -math.inf}


def _float_tag(text: str) -> float:
    if text not in _FLOATS:
        raise ValueError("expected nan, -nan, inf or -inf")
    return _FLOATS[text]


#: How the value of each ``{"$tag": "<text>"}`` is read.
_TAGS: dict[str, Callable[[str], Any]] = {
    "$bytes": lambda s: base64.b64decode(s.encode("ascii"), validate=True),
    "$datetime": datetime.datetime.fromisoformat,
    "$date": datetime.date.fromisoformat,
    "$uuid": uuid.UUID,
    "$float": _float_tag,
    "$vector": lambda s: _vector(base64.b64decode(s.encode("ascii"), validate=True)),
}

#: A set is ``{"$set": [members]}`` (a list, so not one of the string tags above).
_SET_TAG = "$set"


def _vector(le: bytes) -> Vector:
    """The vector of float32 little-endian bytes."""
    if len(le) % 4:
        raise ValueError("a vector's bytes are a multiple of 4 long")
    floats = array.array("f", le)
    if sys.byteorder == "big":
        floats.byteswap()
    return Vector(floats)


#: A dict whose only key is a tag (or this) is written wrapped in it, so it reads back as a
#: dict rather than as the tagged value.
_DICT_TAG = "$dict"


def to_json(value: Any) -> Any:
    """A document value as strict JSON data (see the module documentation)."""
    if isinstance(value, dict):
        out = {str(k): to_json(v) for k, v in value.items()}
        if len(out) == 1 and (next(iter(out)) in (*_TAGS, _SET_TAG) or _DICT_TAG in out):
            return {_DICT_TAG: out}
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": _float_name(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": value.hex}
    if isinstance(value, Vector):
        return {"$vector": base64.b64encode(value.tobytes()).decode("ascii")}
    if isinstance(value, (set, frozenset)):
        return {_SET_TAG: [to_json(m) for m in sorted(value)]}
    return value


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json`. A malformed tag raises ValueError naming the field."""
    return _from_json(value, "")


def _from_json(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == _DICT_TAG:
                if not isinstance(inner, dict):
                    raise ValueError(f"{_where(path)}{key} must hold a JSON object")
                return {k: _from_json(v, _field(path, k)) for k, v in inner.items()}
            if key == _SET_TAG:
                if not isinstance(inner, list):
                    raise ValueError(f"{_where(path)}{key} must hold a JSON array")
                members = [_from_json(v, f"{path}[{i}]") for i, v in enumerate(inner)]
                if not all(isinstance(m, (str, bytes, int, float)) for m in members):
                    raise ValueError(f"{_where(path)}{key} members are strings, bytes or numbers")
                return set(members)
            if key in _TAGS:
                if not isinstance(inner, str):
                    raise ValueError(
                        f"{_where(path)}{key} must hold a string, got {json.dumps(inner)}"
                    )
                try:
                    return _TAGS[key](inner)
                except ValueError as e:
                    raise ValueError(
                        f"{_where(path)}{key} value {inner!r} is malformed: {e}"
                    ) from None
        return {k: _from_json(v, _field(path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _field(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _where(path: str) -> str:
    return f"field {path}: " if path else ""


def _json_line(value: Any) -> str:
    """One line of strict JSON (no bare NaN or Infinity)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


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


def _creatable(path: str) -> pathlib.Path:
    """Where a command that creates its database (import, demo) may put it."""
    where = pathlib.Path(path)
    if where.exists() and not where.is_file():
        raise _UsageError(f"{path}: not a file")
    if not where.exists() and not where.parent.is_dir():
        raise _UsageError(f"{path}: no such directory {str(where.parent)!r}")
    return where


def _open(path: str, *, read_only: bool = True, empty_ok: bool = False) -> Db:
    """Opens an existing database (never creates one; an empty file only if ``empty_ok``,
    since opening it for writing would make it a database)."""
    where = _existing(path)
    if not empty_ok and where.stat().st_size == 0:
        raise _Damaged(f"{path} is an empty file, not an obj database")
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
        json.dump(dataclasses.asdict(stat), out, indent=2, allow_nan=False)
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


def _keyed(db: Db, collection: str) -> bool:
    return bool(db._key_kind(collection) == "keyed")


def _key_text(key: bytes) -> str | bytes:
    """A stored key as the CLI shows it: a str when it is UTF-8, else the bytes."""
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return key


def _records(
    db: Db, collection: str
) -> Iterator[tuple[tuple[str, Any], tuple[Literal["raw", "value", "typed"], int, Any]]]:
    """``((name, id or key), (kind, type_version, document))`` of every record, in id or
    key order, ``name`` what the JSON lines call it (``"id"`` or ``"$key"``), the key as
    :func:`_key_text` shows it."""
    if _keyed(db, collection):
        for key, stored in db._key_records(collection):
            yield ("$key", _key_text(key)), stored
    else:
        for doc_id, stored in db._records(collection):
            yield ("id", doc_id), stored


def _documents(db: Db, collection: str, limit: int | None) -> Iterator[tuple[tuple[str, Any], Any]]:
    """What ``obj dump`` shows: each record with its id or key, or a column's elements
    with their positions (``"$i"``)."""
    if _column_dtype(db, collection) is not None:
        column = db.column(collection)
        stop = len(column) if limit is None else min(limit, len(column))
        for i in range(0, stop, 4096):
            for k, value in enumerate(column[i : min(stop, i + 4096)]):
                yield ("$i", i + k), value
        return
    for n, (at, (_kind, _version, doc)) in enumerate(_records(db, collection)):
        if limit is not None and n >= limit:
            return
        yield at, doc


def _cmd_dump(args: argparse.Namespace, out: IO[str]) -> int:
    if args.limit is not None and args.limit < 0:
        raise _UsageError("--limit must be >= 0")
    with _open(args.file) as db:
        _collections(db, args.collection)
        total = _export_count(db, args.collection)
        progress = _Progress(f"dump {args.collection}", min(total, args.limit or total))
        for (where, at), doc in _documents(db, args.collection, args.limit):
            if args.json:
                line = _json_line({where: to_json(at), "doc": to_json(doc)})
            else:
                line = f"{at!r}: {doc!r}"
            out.write(line + "\n")
            progress.step()
        progress.close()
    return 0


def _column_dtype(db: Db, name: str) -> str | None:
    """The dtype of ``name`` when it is an :class:`obj.Column`, else None."""
    try:
        header = db._column_handle(name).header()
    except ObjError:
        return None
    return None if header is None else header[0]


def _export_lines(db: Db, name: str) -> Iterator[tuple[bool, str]]:
    """The lines of one collection: ``(is_document, line)``, its schemas first. A column
    is a ``{"collection", "$column": dtype}`` line and one ``{"collection", "$i",
    "value"}`` line per element, in order."""
    dtype = _column_dtype(db, name)
    if dtype is not None:
        yield False, _json_line({"collection": name, "$column": dtype})
        for i, value in enumerate(db.column(name)):
            yield True, _json_line({"collection": name, "$i": i, "value": to_json(value)})
        return
    for _version, schema in db._schemas(name):
        yield False, _json_line({"collection": name, "$schema": to_json(schema)})
    for (where, at), (kind, version, doc) in _records(db, name):
        record: dict[str, Any] = {"collection": name, where: to_json(at)}
        if kind == "typed":
            record["$version"] = version
        elif kind == "value" and isinstance(doc, bytes):
            record["$kind"] = "value"
        record["doc"] = to_json(doc)
        yield True, _json_line(record)


def _cmd_export(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.file) as db:
        names = _collections(db, args.collection)
        if args.jsonl != "-" and _same_file(args.jsonl, db.path, db.wal_path):
            raise _UsageError(f"--jsonl {args.jsonl} is the database itself; name another file")
        total = sum(_export_count(db, name) for name in names)
        progress = _Progress("export", total)
        written = 0
        dest = sys.stdout if args.jsonl == "-" else open(args.jsonl, "w", encoding="utf-8")  # noqa: SIM115
        try:
            for name in names:
                for is_doc, line in _export_lines(db, name):
                    dest.write(line + "\n")
                    if is_doc:
                        written += 1
                        progress.step()
        finally:
            if dest is not sys.stdout:
                dest.close()
        progress.close()
    if args.jsonl != "-":
        out.write(
            f"exported {_count(written, 'document')} from "
            f"{_count(len(names), 'collection')} to {args.jsonl}\n"
        )
    return 0


def _export_count(db: Db, name: str) -> int:
    """The document lines export writes for ``name`` (a column's elements)."""
    return len(db.column(name)) if _column_dtype(db, name) is not None else int(db.count(name))


def _same_file(path: str, *others: pathlib.Path) -> bool:
    try:
        return any(o.exists() and os.path.samefile(path, o) for o in others)
    except OSError:
        return False


@dataclasses.dataclass(frozen=True)
class _Line:
    """One parsed line of an import file."""

    number: int
    #: ``"schema"`` (a stored schema), ``"typed"`` (a typed document: ``doc`` holds its
    #: fields) or ``"plain"`` (a dict-native document, or raw bytes).
    #: ``"column"`` (a column and its dtype) and ``"element"`` (its next element: ``doc``
    #: the value, ``id`` its position).
    kind: Literal["schema", "typed", "plain", "column", "element"]
    doc: Any
    #: The collection an exported line names (None for a plain JSON object).
    collection: str | None = None
    id: int | None = None
    version: int = 0
    #: The key of a line of a keyed collection (None for one of an id collection).
    key: bytes | None = None
    #: A dict-native value that is bytes (``"$kind": "value"``), not raw bytes.
    as_value: bool = False


#: The keys of an exported document line and of a schema line.
_DOC_KEYS = {"collection", "id", "$key", "doc", "$version", "$kind"}
_SCHEMA_KEYS = {"collection", "$schema"}
_COLUMN_KEYS = {"collection", "$column"}
_ELEMENT_KEYS = {"collection", "$i", "value"}


def _read_lines(source: IO[bytes]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(source, 1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise _UsageError(
                f"line {number}: not UTF-8 text ({e.reason} at byte {e.start})"
            ) from None
        if text.strip():
            yield number, text


def _import_lines(source: IO[bytes]) -> Iterator[_Line]:
    for number, text in _read_lines(source):
        try:
            line = _parse_line(number, text)
        except RecursionError:
            raise _UsageError(f"line {number}: nested too deeply") from None
        except ValueError as e:
            raise _UsageError(f"line {number}: {e}") from None
        yield line


def _parse_line(number: int, text: str) -> _Line:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e})") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if set(record) == _SCHEMA_KEYS:
        schema = from_json(record["$schema"])
        if not isinstance(schema, dict):
            raise ValueError('"$schema" must be a JSON object')
        return _Line(number, "schema", schema, _collection(record))
    if set(record) == _COLUMN_KEYS:
        if not isinstance(record["$column"], str):
            raise ValueError('"$column" must be a dtype string such as "i64"')
        return _Line(number, "column", record["$column"], _collection(record))
    if set(record) == _ELEMENT_KEYS:
        at = record["$i"]
        if isinstance(at, bool) or not isinstance(at, int) or at < 0:
            raise ValueError(f'"$i" must be an int >= 0, got {json.dumps(at)}')
        return _Line(number, "element", from_json(record["value"]), _collection(record), at)
    if "doc" not in record or not set(record) <= _DOC_KEYS:
        return _plain(number, from_json(record), None, None)
    collection = _collection(record)
    doc_id = record.get("id")
    if doc_id is not None and (
        isinstance(doc_id, bool) or not isinstance(doc_id, int) or doc_id < 1
    ):
        raise ValueError(f"id must be an int >= 1, got {json.dumps(doc_id)}")
    key = _key(record["$key"]) if "$key" in record else None
    if key is not None and "id" in record:
        raise ValueError(
            'a line has an "id" (an id collection) or a "$key" (a keyed one), not both'
        )
    doc = from_json(record["doc"])
    if "$kind" in record:
        _check_kind(record, key, doc)
    if "$version" not in record:
        return _plain(number, doc, collection, doc_id, key, record.get("$kind") == "value")
    version = record["$version"]
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 1 << 32:
        raise ValueError(f'"$version" must be an int from 0 to 2**32-1, got {json.dumps(version)}')
    if not isinstance(doc, dict):
        raise ValueError("a typed document must be a JSON object of its fields")
    return _Line(number, "typed", doc, collection, doc_id, version, key)


def _key(value: Any) -> bytes:
    """The stored bytes of a line's ``"$key"``: a string (UTF-8) or ``{"$bytes": ...}``."""
    key = from_json(value)
    if isinstance(key, bytes):
        return key
    if not isinstance(key, str):
        raise ValueError(
            f'"$key" must be a string or {{"$bytes": "<base64>"}}, got {json.dumps(value)}'
        )
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f'"$key" {json.dumps(value)} is not valid Unicode (it holds a lone surrogate); '
            'write the key\'s bytes as {"$bytes": "<base64>"}'
        ) from None


def _check_kind(record: dict[str, Any], key: bytes | None, doc: Any) -> None:
    kind = record["$kind"]
    if key is None:
        raise ValueError('"$kind" is for lines of a keyed collection (with a "$key")')
    if "$version" in record:
        raise ValueError('a typed document ("$version") takes no "$kind"')
    if kind not in ("raw", "value"):
        raise ValueError(f'"$kind" must be "raw" or "value", got {json.dumps(kind)}')
    if kind == "raw" and not isinstance(doc, bytes):
        raise ValueError('"$kind": "raw" needs a {"$bytes": ...} document')


def _collection(record: dict[str, Any]) -> str | None:
    name = record.get("collection")
    if name is not None and not isinstance(name, str):
        raise ValueError(f'"collection" must be a string, got {json.dumps(name)}')
    return name


def _plain(
    number: int,
    doc: Any,
    collection: str | None,
    doc_id: int | None,
    key: bytes | None = None,
    as_value: bool = False,
) -> _Line:
    # A keyed collection's documents may be any dict-native value; an id collection's
    # are objects or raw bytes.
    if key is None and not isinstance(doc, (dict, bytes)):
        raise ValueError('a document must be a JSON object (or {"$bytes": ...} for raw bytes)')
    return _Line(number, "plain", doc, collection, doc_id, key=key, as_value=as_value)


class _Target:
    """What an import has learnt about its collection: is it keyed, is it typed, which
    versions have a schema. A collection holds typed documents or dict-native and raw ones,
    never both: either kind among the other would make its readers fail."""

    def __init__(self, db: Db, name: str) -> None:
        self.name = name
        try:
            count = db.count(name)
            kind = db._key_kind(name)
        except ObjError as e:
            raise _UsageError(str(e)) from None
        self.keyed: bool | None = None if kind is None else kind == "keyed"
        self.versions = {version for version, _ in db._schemas(name)}
        self.typed: bool | None = True if self.versions else (False if count else None)
        self.column: Column | None = None
        self.next_index = 0
        self.pending: list[Any] = []

    #: Elements of a column waiting to be appended (in batches: one append per element
    #: would rewrite the column's last chunk each time).
    _COLUMN_BATCH = 10_000

    def column_line(self, tx: WriteTransaction, line: _Line) -> None:
        """A column's dtype line (creates or checks the column), or its next element."""
        if line.kind == "column":
            if self.pending:
                self.flush()
            self.column = tx.column(self.name, line.doc)
            self.next_index = len(self.column)
            return
        if self.column is None:
            raise _UsageError(
                f"line {line.number}: an element of {self.name!r} before its "
                '{"collection": ..., "$column": dtype} line'
            )
        if line.id != self.next_index:
            raise _UsageError(
                f"line {line.number}: element {line.id} of column {self.name!r} where "
                f"element {self.next_index} comes next (elements import in order)"
            )
        self.pending.append(line.doc)
        self.next_index += 1
        if len(self.pending) >= self._COLUMN_BATCH:
            self.flush()

    def flush(self) -> None:
        """Appends the waiting elements."""
        if self.pending and self.column is not None:
            self.column.extend(self.pending)
        self.pending = []

    def admit(self, line: _Line) -> None:
        """Refuses a line of the other kind than the collection's."""
        if line.kind != "schema":
            self._admit_key(line)
        typed = line.kind != "plain"
        if self.typed is None:
            self.typed = typed
        elif typed and not self.typed:
            raise _UsageError(
                f"line {line.number}: collection {self.name!r} holds dict-native or raw "
                "documents, so typed documents cannot be imported into it; import them "
                "into another collection"
            )
        elif not typed and self.typed:
            what = "raw bytes" if isinstance(line.doc, bytes) else "a dict-native document"
            raise _UsageError(
                f"line {line.number}: collection {self.name!r} holds typed documents (it "
                f"stores a schema), so {what} cannot be imported into it (its class could "
                "no longer read the collection); import it into another collection"
            )
        if line.kind == "typed" and line.version not in self.versions:
            raise _UsageError(
                f"line {line.number}: no schema for {self.name!r} version {line.version}: "
                'the database stores none and no "$schema" line for it came before'
            )

    def _admit_key(self, line: _Line) -> None:
        """Refuses a keyed line in an id collection, and a line without a key in a keyed
        one (the first document line decides for a new collection)."""
        keyed = line.key is not None
        if self.keyed is None:
            self.keyed = keyed
        elif keyed and not self.keyed:
            raise _UsageError(
                f"line {line.number}: collection {self.name!r} holds documents under ids, "
                'so a keyed line (with a "$key") cannot be imported into it; import it into '
                "another collection"
            )
        elif not keyed and self.keyed:
            raise _UsageError(
                f"line {line.number}: collection {self.name!r} is keyed (an obj.Store), so "
                'each document line needs a "$key"; import it into another collection'
            )


def _import_line(tx: WriteTransaction, target: _Target, line: _Line, keep_ids: bool) -> None:
    if line.kind in ("column", "element"):
        target.column_line(tx, line)
        return
    if target.pending:
        target.flush()
    target.admit(line)
    doc_id = line.id if keep_ids else None
    if line.kind == "schema":
        target.versions.add(tx._register_schema(target.name, line.doc))
    elif line.key is not None and line.kind == "typed":
        tx._write_typed_key(target.name, line.key, line.version, line.doc)
    elif line.key is not None:
        raw = isinstance(line.doc, bytes) and not line.as_value
        handle = tx._key_handle(target.name, raw, KeyTypeError, "strict")
        handle.set(line.key, line.doc)
    elif line.kind == "typed":
        tx._write_typed(target.name, doc_id, line.version, line.doc)
    elif doc_id is None:
        tx.insert(target.name, line.doc)
    else:
        tx.upsert(target.name, doc_id, line.doc)


class _Targets:
    """The collections an import writes: the one named on the command line, or else the
    one each line names."""

    def __init__(self, db: Db, name: str | None) -> None:
        self._db = db
        self._fixed = name
        self._known: dict[str, _Target] = {}
        if name is not None:
            self._known[name] = _Target(db, name)

    def of(self, line: _Line) -> _Target:
        name = self._fixed if self._fixed is not None else line.collection
        if name is None:
            raise _UsageError(
                f"line {line.number}: a plain JSON object names no collection; name one on "
                "the command line (obj import FILE COLLECTION --jsonl IN)"
            )
        target = self._known.get(name)
        if target is None:
            try:
                target = self._known[name] = _Target(self._db, name)
            except _UsageError as e:
                raise _UsageError(f"line {line.number}: {e}") from None
        return target

    def flush(self) -> None:
        """Appends every column's waiting elements."""
        for target in self._known.values():
            target.flush()

    def describe(self) -> str:
        names = list(self._known)
        return repr(names[0]) if len(names) == 1 else f"{len(names)} collections"


def _cmd_import(args: argparse.Namespace, out: IO[str]) -> int:
    if args.jsonl != "-":
        _existing(args.jsonl)
    # Import creates the database when the file does not exist yet (and removes it again
    # when the import fails).
    exists = _creatable(args.file).exists()
    db = _open(args.file, read_only=False, empty_ok=True) if exists else Db(args.file)
    count = 0
    try:
        with db:
            targets = _Targets(db, args.collection)
            source = sys.stdin.buffer if args.jsonl == "-" else open(args.jsonl, "rb")  # noqa: SIM115
            progress = _Progress(f"import {args.collection or ''}".strip(), None)
            try:
                with db.transaction() as tx:
                    number = 0
                    try:
                        for line in _import_lines(source):
                            number = line.number
                            target = targets.of(line)
                            _import_line(tx, target, line, args.keep_ids)
                            if line.kind not in ("schema", "column"):
                                count += 1
                                progress.step()
                        targets.flush()
                    except ObjError as e:
                        raise _UsageError(f"line {number}: {e}") from None
            finally:
                if source is not sys.stdin.buffer:
                    source.close()
                progress.close()
    except BaseException:
        if not exists:
            for created in (db.path, db.wal_path):
                with contextlib.suppress(OSError):
                    created.unlink()
        raise
    out.write(f"imported {_count(count, 'document')} into {targets.describe()}\n")
    return 0


def _cmd_checkpoint(args: argparse.Namespace, out: IO[str]) -> int:
    with _open(args.file, read_only=False) as db:
        info = db.checkpoint()
    state = "deferred" if info.deferred else ("log reset" if info.wal_reset else "log kept")
    out.write(f"{args.file}: checkpoint copied {info.frames_copied:,} pages ({state})\n")
    return 0


class _DocumentChange(Protocol):
    """What ``obj changes`` reads of an ``obj.DocumentChange``."""

    @property
    def collection(self) -> str: ...
    @property
    def key(self) -> int | bytes: ...
    @property
    def op(self) -> str: ...
    @property
    def old(self) -> Any: ...
    @property
    def new(self) -> Any: ...


class _Change(Protocol):
    """What ``obj changes`` reads of an ``obj.Change`` (a change record)."""

    @property
    def seq(self) -> int: ...
    @property
    def time(self) -> datetime.datetime: ...
    @property
    def action(self) -> str | None: ...
    @property
    def user(self) -> str | None: ...
    @property
    def meta(self) -> dict[str, Any] | None: ...
    @property
    def changes(self) -> Sequence[_DocumentChange]: ...


def _change_json(change: _Change) -> str:
    """A change record as its line of ``obj changes --jsonl``."""
    return _json_line(
        {
            "seq": change.seq,
            "time": change.time.isoformat(),
            "action": change.action,
            "user": change.user,
            "meta": to_json(change.meta),
            "changes": [
                {
                    "collection": dc.collection,
                    "key": to_json(dc.key),
                    "op": dc.op,
                    "old": to_json(dc.old),
                    "new": to_json(dc.new),
                }
                for dc in change.changes
            ],
        }
    )


def _change_text(change: _Change) -> str:
    """A change record as ``obj changes`` prints it: a line, then one per document."""
    head = (
        f"{change.seq} {change.time.isoformat()} action={_word(change.action)} "
        f"user={_word(change.user)}"
    )
    if change.meta is not None:
        head += f" meta={_json_line(to_json(change.meta))}"
    lines = [head]
    for dc in change.changes:
        key = dc.key if isinstance(dc.key, int) else repr(_key_text(dc.key))
        lines.append(f"  {dc.op} {_word(dc.collection)} {key}")
    return "\n".join(lines)


def _word(text: str | None) -> str:
    """A name in a line of ``obj changes``: ``-`` for None, quoted when it has a space,
    is empty or could be mistaken for none (so a record stays one line per document)."""
    if text is None:
        return "-"
    if not text or text == "-" or not text.isprintable() or " " in text:
        return repr(text)
    return text


def _expired(path: str, since: int, oldest: int) -> ChangesExpiredError:
    return ChangesExpiredError(
        f"{path}: the records after seq {since} are no longer in the change log: retention "
        f"kept only seq {oldest} onwards (--since {oldest - 1} reads what is left)"
    )


def _cmd_changes(args: argparse.Namespace, out: IO[str]) -> int:
    for flag, value in (("--since", args.since), ("--until", args.until)):
        if value is not None and value < 0:
            raise _UsageError(f"{flag} must be a seq >= 0, got {value}")
    if args.timeout is not None:
        if not args.follow:
            raise _UsageError("--timeout is for --follow (how long to wait for a new commit)")
        if not math.isfinite(args.timeout) or args.timeout < 0:
            raise _UsageError(
                f"--timeout must be a number of seconds >= 0, got {args.timeout} (without "
                "it, --follow waits until interrupted)"
            )
    write = _change_json if args.jsonl else _change_text
    with _open(args.file) as db:
        info = db.change_log()
        if info is None:
            raise _UsageError(
                f"{args.file} keeps no change log (a program turns it on with "
                "obj.Db(path, changes=True) or db.enable_changes())"
            )
        # Without --since: all the log keeps (retention may trim it meanwhile: then from
        # where it starts by the time it is read).
        since = info.oldest - 1 if args.since is None else args.since
        while True:
            try:
                feed = db.changes(
                    since,
                    collections=args.collection,
                    until=args.until,
                    follow=args.follow,
                    timeout=args.timeout,
                )
                break
            except ChangesExpiredError as e:
                if args.since is not None:
                    raise _expired(args.file, since, int(e.oldest)) from None
                since = int(e.oldest) - 1
        try:
            for change in feed:
                out.write(write(change) + "\n")
                if args.follow:
                    out.flush()
        except ChangesExpiredError as e:
            # Retention trimmed records this feed had not read yet (a reader far behind).
            raise _expired(args.file, feed.position, int(e.oldest)) from None
    return 0


def _cmd_demo(args: argparse.Namespace, out: IO[str]) -> int:
    if args.path is not None:
        demo(_creatable(args.path))
    else:
        with tempfile.TemporaryDirectory(prefix="obj-demo-") as tmp:
            demo(pathlib.Path(tmp) / "demo.obj")
    return 0


class _Parser(argparse.ArgumentParser):
    """Reports a usage error on one line (``obj dump: error: ...``), without the usage text."""

    def error(self, message: str) -> NoReturn:
        _report(f"{self.prog}: error: {message} (see {self.prog} --help)")
        sys.exit(2)


def _report(message: str) -> None:
    """Writes one line to stderr, whatever the message holds."""
    print(" ".join(message.split()), file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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

    cmd = commands.add_parser(
        "dump", help="print the documents of a collection, with their ids or keys"
    )
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
        "import", help="store JSON lines (an export, or JSON objects) in one transaction"
    )
    cmd.add_argument("file", help="database file (created if missing)")
    cmd.add_argument(
        "collection", nargs="?", help="collection name (default: the one each line names)"
    )
    cmd.add_argument("--jsonl", required=True, metavar="IN", help="input file ('-': stdin)")
    cmd.add_argument(
        "--keep-ids",
        action="store_true",
        help="store exported lines under their ids (replacing documents there); lines "
        "with a key are always stored under it",
    )
    cmd.set_defaults(run=_cmd_import)

    cmd = commands.add_parser(
        "changes", help="print the records of the change log (who changed what, when)"
    )
    cmd.add_argument("file", help="database file")
    cmd.add_argument(
        "--since", type=int, metavar="N", help="records after seq N (default: all kept)"
    )
    cmd.add_argument("--until", type=int, metavar="N", help="records up to seq N (inclusive)")
    cmd.add_argument(
        "--collection",
        action="append",
        metavar="C",
        help="only the changes of collection C (repeatable)",
    )
    cmd.add_argument(
        "--follow", action="store_true", help="then wait for new commits and print them"
    )
    cmd.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --follow: stop after SECONDS without a new record (default: never)",
    )
    cmd.add_argument("--jsonl", action="store_true", help="one JSON object per record")
    cmd.set_defaults(run=_cmd_changes)

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
        commands = "stat, check, dump, export, import, changes, checkpoint, demo"
        _report(f"obj: error: name a command ({commands}); see obj --help")
        return 2
    prefix = f"obj {args.command}"
    try:
        return run(args, sys.stdout)
    except _UsageError as e:
        _report(f"{prefix}: error: {e}")
        return 2
    except _Damaged as e:
        _report(f"{prefix}: damaged: {e}")
        return 1
    except (CorruptionError, IntegrityError) as e:
        _report(f"{prefix}: damaged: {type(e).__name__}: {e}")
        return 1
    except ObjError as e:
        _report(f"{prefix}: error: {type(e).__name__}: {e}")
        return 1
    except BrokenPipeError:
        # The reader went away (``obj dump ... | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as e:
        _report(f"{prefix}: error: {e}")
        return 1
    except KeyboardInterrupt:
        _report(f"{prefix}: interrupted")
        return 130
    except Exception as e:  # the last resort: one line, never a traceback
        _report(f"{prefix}: error: unexpected {type(e).__name__}: {e} (please report this)")
        return 1
