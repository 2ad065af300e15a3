"""Commit rate per sync mode: one small document per transaction, obj against sqlite3 (WAL
mode) at the matching `synchronous` level, in the same run.

    python benches/sync_modes.py [--commits N] [--rounds R]

full = fsync the log on every commit (obj default; sqlite3 synchronous=FULL),
normal = sync at checkpoints only (sqlite3 synchronous=NORMAL), off = never sync.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))

from harness import Table, best, scratch_dir

import obj

SQLITE_LEVEL = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    table = Table(
        f"single-document commits ({args.commits} per round, best of {args.rounds})",
        ["obj", "sqlite3"],
    )
    with scratch_dir("obj-sync-") as tmp:
        for mode in ("full", "normal", "off"):
            db = obj.Db(os.path.join(tmp, f"{mode}.obj"), sync=mode)  # type: ignore[arg-type]

            def obj_round(db: obj.Db = db) -> int:
                for i in range(args.commits):
                    db.insert("events", {"n": i, "kind": "click"})
                return args.commits

            con = sqlite3.connect(os.path.join(tmp, f"{mode}.sqlite"), isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(f"PRAGMA synchronous={SQLITE_LEVEL[mode]}")
            con.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, doc TEXT)")

            def sqlite_round(con: sqlite3.Connection = con) -> int:
                for i in range(args.commits):
                    con.execute("BEGIN")
                    con.execute(
                        "INSERT INTO events (doc) VALUES (?)", (f'{{"n": {i}, "kind": "click"}}',)
                    )
                    con.execute("COMMIT")
                return args.commits

            res = {"obj": best(args.rounds, obj_round), "sqlite3": best(args.rounds, sqlite_round)}
            table.add(f"sync={mode}", res)
            rates = f"obj {1 / res['obj']:,.0f}/s, sqlite3 {1 / res['sqlite3']:,.0f}/s"
            print(f"sync={mode} commits: {rates}")
            db.close()
            con.close()
    print(table.render())


if __name__ == "__main__":
    main()
