"""What the change log costs the writer, and how fast a consumer reads it back.

    pip install '.[bench]'
    python benches/changes.py [--n 100000] [--commits 1000] [--reps 5]

The bulk-insert and durable-commit workloads of ``benches/run.py`` (same documents, same
typed ``Order`` dataclass with a unique and a plain index, ``durability="immediate"``),
run with the change log off, with ``changes="keys"`` and with ``changes="both"``; each
setting in its own fresh process, alternating within every repetition so a noisy machine
hurts them alike. The table shows the best repetition of each (the fsync of a large
commit on a shared disk is bimodal here, so a median of few runs swings by 1.6x; the
best run is the cost of the code, as ``timeit`` advises) and each setting's rate as a
fraction of the log-off rate (the issue's budget: ``keys`` loses at most 10%, ``both`` at
most 30%); ``changes.json`` keeps every run.

Feed read: a consumer iterating ``db.changes()`` over ``--n`` inserted documents (in
commits of 1,000 documents) and touching every :class:`obj.DocumentChange` (its
collection, key and operation; for ``both`` also its new image, decoded into a
dict), rated in document changes per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from systems import Obj  # noqa: E402
from workload import make_docs  # noqa: E402

SETTINGS = ["off", "keys", "both"]
#: The issue's budget: the lowest acceptable rate as a fraction of the log-off rate.
BUDGET = {"keys": 0.90, "both": 0.70}
FEED_COMMIT = 1000


def worker(setting: str, n: int, commits: int, seed: int) -> dict[str, float]:
    """Bulk insert, durable commits and a feed read for one setting, in this process."""

    class System(Obj):
        changes = None if setting == "off" else setting

    docs = make_docs(0, n, seed)
    more = make_docs(n, n + commits, seed)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"obj-bench-changes-{setting}-") as directory:
        system = System(directory, durable=True)
        prepared = system.prepare(docs)
        prepared_more = system.prepare(more)
        system.open()
        start = time.perf_counter()
        system.bulk_insert(prepared)
        out["bulk_insert"] = n / (time.perf_counter() - start)
        start = time.perf_counter()
        system.commit_each(prepared_more)
        out["commit_each"] = commits / (time.perf_counter() - start)
        system.close()

    if setting == "off":
        return out
    with tempfile.TemporaryDirectory(prefix=f"obj-bench-feed-{setting}-") as directory:
        system = System(directory, durable=False)
        prepared = system.prepare(docs)
        system.open()
        for i in range(0, n, FEED_COMMIT):
            system.bulk_insert(prepared[i : i + FEED_COMMIT])
        db = system.db
        with_images = setting == "both"
        start = time.perf_counter()
        seen = 0
        for record in db.changes():
            for change in record.changes:
                _ = change.collection, change.key, change.op
                if with_images and change.new is None:
                    raise AssertionError("an insert without its new image")
                seen += 1
        elapsed = time.perf_counter() - start
        if seen != n:
            raise AssertionError(f"feed read {seen} changes, expected {n}")
        out["feed"] = seen / elapsed
        system.close()
    return out


def spawn(setting: str, args: argparse.Namespace) -> dict[str, float]:
    proc = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            setting,
            "--n",
            str(args.n),
            "--commits",
            str(args.commits),
            "--seed",
            str(args.seed),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker {setting} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def render(runs: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> str:
    med = {s: {k: max(r[k] for r in rs) for k in rs[0]} for s, rs in runs.items()}
    lines = [
        f"change log cost: n={args.n}, commits={args.commits}, reps={args.reps} (best run)",
        "",
        "| workload | off | keys | both | keys/off | both/off |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for key, label, unit in [
        ("bulk_insert", "bulk insert (1 txn)", "docs/s"),
        ("commit_each", "durable single-doc commits", "commits/s"),
    ]:
        off = med["off"][key]
        row = [f"{label} ({unit})", f"{off:,.0f}"]
        ratios = []
        for s in ("keys", "both"):
            row.append(f"{med[s][key]:,.0f}")
            ratio = med[s][key] / off
            ratios.append(f"{ratio:.2f}")
            ok = ratio >= BUDGET[s]
            verdicts.append(
                f"{'PASS' if ok else 'MISS'} {key} {s}: {ratio:.2f} of log-off "
                f"(budget >= {BUDGET[s]:.2f})"
            )
        lines.append("| " + " | ".join(row + ratios) + " |")
    lines.append("")
    for s in ("keys", "both"):
        rate = med[s]["feed"]
        lines.append(f"feed read ({s}): {rate:,.0f} document changes/s")
        verdicts.append(f"{'PASS' if rate >= 1e6 else 'MISS'} feed {s}: {rate:,.0f}/s (>= 1M)")
    return "\n".join([*lines, "", *verdicts])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.commits, args.seed)))
        return
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in SETTINGS}
    for rep in range(args.reps):
        order = SETTINGS if rep % 2 == 0 else SETTINGS[::-1]
        for s in order:
            runs[s].append(spawn(s, args))
    text = render(runs, args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "changes.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "changes.json"), "w") as f:
        json.dump(runs, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
