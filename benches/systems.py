"""obj and its two main peers (sqlite3, lmdb) as ``workload.System`` adapters.

The other peers live in ``peers.py``. Each adapter does what a user of that database would
write for the job, with the durable settings the README recommends for it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from workload import Doc, System

import obj
from obj import field


@obj.document(collection="orders", version=1)
@dataclass
class Order:
    customer_id: Annotated[int, obj.Index]
    total: float
    status: str
    region: str
    tags: list[str]
    email: Annotated[str, obj.Unique]


class Obj(System):
    """obj with typed documents: dataclass in, dataclass out, the indexes maintained by the
    engine in the same transaction."""

    name = "obj"
    modules = ("obj",)
    config = (
        "typed @obj.document dataclass; Unique(email), Index(customer_id); "
        'durability="immediate" (fsync of the WAL per commit); default 256 MiB page cache'
    )

    #: ``changes=`` of the database (``benches/changes.py`` runs it with the log on).
    changes: str | None = None

    def open(self) -> None:
        self.db = obj.Db(
            os.path.join(self.directory, "bench.obj"),
            durability="immediate" if self.durable else "none",
            changes=self.changes,
        )

    def close(self) -> None:
        self.db.close()

    def prepare(self, docs: Sequence[Doc]) -> Sequence[Any]:
        return [Order(**d) for d in docs]

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        with self.db.transaction() as tx:
            insert = tx.insert
            for doc in docs:
                insert(doc)

    def commit_each(self, docs: Sequence[Any]) -> None:
        insert = self.db.insert
        for doc in docs:
            insert(doc)

    def update_totals(self, ids: Sequence[int]) -> int:
        with self.db.transaction() as tx:
            get, upsert = tx.get, tx.upsert
            for i in ids:
                doc = get(Order, i)
                doc.total += 1
                upsert(Order, i, doc)
        return len(ids)

    def get(self, ids: Sequence[int]) -> int:
        found = 0
        with self.db.read_transaction() as tx:
            get = tx.get
            for i in ids:
                if get(Order, i) is not None:
                    found += 1
        return found

    def scan(self) -> int:
        with self.db.read_transaction() as tx:
            return sum(1 for _ in tx.all(Order))

    def unique(self, emails: Sequence[str]) -> int:
        found = 0
        with self.db.read_transaction() as tx:
            find = tx.find_unique
            for email in emails:
                if find(Order, "email", email) is not None:
                    found += 1
        return found

    def equal_range(self, customer_ids: Sequence[int]) -> int:
        found = 0
        with self.db.read_transaction() as tx:
            index_range = tx.index_range
            for c in customer_ids:
                found += len(list(index_range(Order, "customer_id", c, c)))
        return found

    def filter_total(self, low: float) -> int:
        return len(self.db.query(Order).filter(field("total") >= low).fetch())


class Sqlite(System):
    """sqlite3 from the standard library: one table ``(id INTEGER PRIMARY KEY, doc TEXT)``
    holding JSON, expression indexes on the JSON fields, WAL mode with synchronous=FULL (one
    fsync of the WAL per commit, like obj), and a page cache as large as obj's."""

    name = "sqlite3"
    modules = ("sqlite3",)
    config = (
        "JSON text column; UNIQUE index on json_extract(doc,'$.email'), index on "
        "json_extract(doc,'$.customer_id'); journal_mode=WAL, synchronous=FULL; "
        "cache_size 256 MiB"
    )

    def open(self) -> None:
        self.con = sqlite3.connect(os.path.join(self.directory, "bench.db"), isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
        self.con.execute("PRAGMA cache_size=-262144")
        self.con.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, doc TEXT)")
        self.con.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS orders_email "
            "ON orders (json_extract(doc, '$.email'))"
        )
        self.con.execute(
            "CREATE INDEX IF NOT EXISTS orders_customer "
            "ON orders (json_extract(doc, '$.customer_id'))"
        )

    def close(self) -> None:
        self.con.close()

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        dumps = json.dumps
        self.con.execute("BEGIN")
        self.con.executemany("INSERT INTO orders (doc) VALUES (?)", [(dumps(d),) for d in docs])
        self.con.execute("COMMIT")

    def commit_each(self, docs: Sequence[Any]) -> None:
        dumps, execute = json.dumps, self.con.execute
        for doc in docs:
            execute("INSERT INTO orders (doc) VALUES (?)", (dumps(doc),))

    def update_totals(self, ids: Sequence[int]) -> int:
        loads, dumps, execute = json.loads, json.dumps, self.con.execute
        execute("BEGIN")
        for i in ids:
            doc = loads(execute("SELECT doc FROM orders WHERE id = ?", (i,)).fetchone()[0])
            doc["total"] += 1
            execute("UPDATE orders SET doc = ? WHERE id = ?", (dumps(doc), i))
        execute("COMMIT")
        return len(ids)

    def get(self, ids: Sequence[int]) -> int:
        loads, execute, found = json.loads, self.con.execute, 0
        execute("BEGIN")
        for i in ids:
            row = execute("SELECT doc FROM orders WHERE id = ?", (i,)).fetchone()
            if row is not None:
                loads(row[0])
                found += 1
        execute("COMMIT")
        return found

    def scan(self) -> int:
        loads = json.loads
        return sum(1 for _id, doc in self.con.execute("SELECT id, doc FROM orders") if loads(doc))

    def unique(self, emails: Sequence[str]) -> int:
        loads, execute, found = json.loads, self.con.execute, 0
        execute("BEGIN")
        for email in emails:
            row = execute(
                "SELECT id, doc FROM orders WHERE json_extract(doc, '$.email') = ?", (email,)
            ).fetchone()
            if row is not None:
                loads(row[1])
                found += 1
        execute("COMMIT")
        return found

    def equal_range(self, customer_ids: Sequence[int]) -> int:
        loads, execute, found = json.loads, self.con.execute, 0
        execute("BEGIN")
        for c in customer_ids:
            rows = execute(
                "SELECT id, doc FROM orders WHERE json_extract(doc, '$.customer_id') = ?", (c,)
            )
            found += len([(i, loads(doc)) for i, doc in rows])
        execute("COMMIT")
        return found

    def filter_total(self, low: float) -> int:
        loads = json.loads
        rows = self.con.execute(
            "SELECT id, doc FROM orders WHERE json_extract(doc, '$.total') >= ?", (low,)
        )
        return len([(i, loads(doc)) for i, doc in rows])


class Lmdb(System):
    """py-lmdb with msgpack values under big-endian 8-byte ids, plus the secondary indexes a
    user maintains by hand in the same write transaction: ``email -> id`` and a dupsort
    ``customer_id -> id``. ``sync=True`` (the default: fsync at every commit)."""

    name = "lmdb"
    modules = ("lmdb", "msgpack")
    config = (
        "msgpack values, big-endian u64 keys; manual indexes email->id and dupsort "
        "customer_id->id in the same txn; sync=True (fsync per commit)"
    )

    def open(self) -> None:
        import lmdb

        self.env = lmdb.open(
            os.path.join(self.directory, "bench.lmdb"),
            map_size=1 << 36,
            max_dbs=4,
            sync=self.durable,
            metasync=self.durable,
        )
        self.main = self.env.open_db(b"orders")
        self.by_email = self.env.open_db(b"orders_email")
        self.by_customer = self.env.open_db(b"orders_customer", dupsort=True)
        with self.env.begin(db=self.main) as txn:
            last = txn.cursor()
            self.next_id = struct.unpack(">Q", last.key())[0] + 1 if last.last() else 1

    def close(self) -> None:
        self.env.close()

    def _put_all(self, txn: Any, docs: Sequence[Any]) -> None:
        import msgpack

        packb, pack = msgpack.packb, struct.Struct(">Q").pack
        main, by_email, by_customer = self.main, self.by_email, self.by_customer
        put = txn.put
        for doc in docs:
            key = pack(self.next_id)
            self.next_id += 1
            if not put(doc["email"].encode(), key, db=by_email, overwrite=False):
                raise KeyError(f"duplicate email {doc['email']!r}")
            put(pack(doc["customer_id"]), key, db=by_customer)
            put(key, packb(doc), db=main)

    def bulk_insert(self, docs: Sequence[Any]) -> None:
        with self.env.begin(write=True) as txn:
            self._put_all(txn, docs)

    def commit_each(self, docs: Sequence[Any]) -> None:
        for doc in docs:
            with self.env.begin(write=True) as txn:
                self._put_all(txn, [doc])

    def update_totals(self, ids: Sequence[int]) -> int:
        import msgpack

        packb, unpackb, pack = msgpack.packb, msgpack.unpackb, struct.Struct(">Q").pack
        with self.env.begin(write=True, db=self.main) as txn:
            get, put = txn.get, txn.put
            for i in ids:
                key = pack(i)
                doc = unpackb(get(key))
                doc["total"] += 1
                put(key, packb(doc))
        return len(ids)

    def get(self, ids: Sequence[int]) -> int:
        import msgpack

        unpackb, pack, found = msgpack.unpackb, struct.Struct(">Q").pack, 0
        with self.env.begin(db=self.main) as txn:
            get = txn.get
            for i in ids:
                raw = get(pack(i))
                if raw is not None:
                    unpackb(raw)
                    found += 1
        return found

    def scan(self) -> int:
        import msgpack

        unpackb = msgpack.unpackb
        with self.env.begin(db=self.main) as txn:
            return sum(1 for _key, raw in txn.cursor() if unpackb(raw))

    def unique(self, emails: Sequence[str]) -> int:
        import msgpack

        unpackb, found = msgpack.unpackb, 0
        with self.env.begin() as txn:
            get, main, by_email = txn.get, self.main, self.by_email
            for email in emails:
                key = get(email.encode(), db=by_email)
                if key is not None:
                    unpackb(get(key, db=main))
                    found += 1
        return found

    def equal_range(self, customer_ids: Sequence[int]) -> int:
        import msgpack

        unpackb, pack, found = msgpack.unpackb, struct.Struct(">Q").pack, 0
        with self.env.begin() as txn:
            cursor, get, main = txn.cursor(db=self.by_customer), txn.get, self.main
            for c in customer_ids:
                if cursor.set_key(pack(c)):
                    docs = [(key, unpackb(get(key, db=main))) for key in cursor.iternext_dup()]
                    found += len(docs)
        return found

    def filter_total(self, low: float) -> int:
        import msgpack

        unpackb = msgpack.unpackb
        with self.env.begin(db=self.main) as txn:
            return len(
                [(key, doc) for key, raw in txn.cursor() if (doc := unpackb(raw))["total"] >= low]
            )
