"""obj next to the embedded databases Python users would pick instead, in one run.

    pip install '.[bench]'
    python benches/run.py [--n 100000] [--reps 3] [--systems obj,sqlite3,...] [--scale]

Every workload runs for every system in a fresh worker process (so peak RSS is the
system's own), and the systems alternate within each repetition so a noisy machine hurts
them alike. The table shows the median over repetitions. Workloads (documents shaped
``{customer_id, total, status, region, tags, email}``, see ``workload.py``):

- bulk insert: ``--n`` documents in one transaction, one durable commit;
- durable commits: ``--commits`` documents, one committed (fsynced) transaction each;
- point get: ``--ops`` random ids, each read and decoded;
- full scan: every document read and decoded;
- unique lookup: ``--ops`` random emails through a unique index;
- index range: ``--ops // 4`` random customer ids, 10 documents each, through an index;
- read-modify-write: ``--ops`` random ids read, ``total += 1``, written, one transaction;
- unindexed filter: ``total >= 999`` (about 0.1% of documents), no index on ``total``,
  rated in documents examined per second (one query examines all ``--n``);
- bytes per document on disk after a clean close, and the worker's peak RSS growth.

``--scale`` instead measures point get, unique lookup and index range at 10^4, 10^5 and
10^6 documents (``--sizes``), to show the per-operation cost stays flat.

Results go to ``benches/results/`` (``--out``): ``run.md``, ``run.json``, ``run.png``
(and ``scale.*``). How each peer is configured is printed with the results.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from workload import FILTER_FROM, RANGE_SIZE, System, Unsupported, chunks, make_docs  # noqa: E402

# (key, label, unit): throughput workloads in table order.
WORKLOADS = [
    ("bulk_insert", "bulk insert (1 txn)", "docs/s"),
    ("commit_each", "durable single-doc commits", "commits/s"),
    ("get", "random point get by id", "gets/s"),
    ("scan", "full scan with decode", "docs/s"),
    ("unique", "unique lookup (email)", "lookups/s"),
    ("equal_range", f"index range (customer_id, k={RANGE_SIZE})", "ranges/s"),
    ("update_totals", "read-modify-write (1 txn)", "updates/s"),
    ("filter_total", "unindexed filter (total >= 999)", "docs examined/s"),
]
SCALE_WORKLOADS = ["get", "unique", "equal_range"]

# Targets from the issue: (workload, peer, minimum obj/peer ratio).
TARGETS = [
    ("bulk_insert", "sqlite3", 2.0),
    ("get", "sqlite3", 3.0),
    ("get", "lmdb", 1.0),
    ("unique", "sqlite3", 2.0),
    ("equal_range", "sqlite3", 2.0),
    ("scan", "sqlite3", 2.0),
    ("commit_each", "sqlite3", 1.0),
]


def all_systems() -> list[type[System]]:
    from systems import Lmdb, Obj, Sqlite

    found: list[type[System]] = [Obj, Sqlite, Lmdb]
    with contextlib.suppress(ImportError):
        from peers import PEERS

        found += PEERS
    return found


def missing_modules(system: type[System]) -> list[str]:
    missing = []
    for module in system.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


# Worker side ---------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(run: Callable[[], int], expect: int, what: str) -> float:
    """Seconds taken by ``run``; its returned count must equal ``expect``."""
    start = time.perf_counter()
    got = run()
    elapsed = time.perf_counter() - start
    if got != expect:
        raise AssertionError(f"{what}: expected {expect}, got {got}")
    return elapsed


#: (workload key, run, the count ``run`` must return, operations to rate it by)
Step = tuple[str, Callable[[], int], int, int]


class LookupSteps:
    """The random ids, emails and customer ids of the lookup workloads (drawn from ``rng``
    in this order), and the steps that run them on a system."""

    def __init__(self, rng: random.Random, n: int, ops: int) -> None:
        self.get_ids = [rng.randrange(1, n + 1) for _ in range(ops)]
        self.emails = [f"customer{rng.randrange(n)}@example.com" for _ in range(ops)]
        self.customers = [rng.randrange(n // RANGE_SIZE) for _ in range(max(1, ops // 4))]

    def steps(self, system: System) -> tuple[Step, Step, Step]:
        """Point get, unique lookup and index range, in that order."""
        get_ids, emails, customers = self.get_ids, self.emails, self.customers
        return (
            ("get", lambda: system.get(get_ids), len(get_ids), len(get_ids)),
            ("unique", lambda: system.unique(emails), len(emails), len(emails)),
            (
                "equal_range",
                lambda: system.equal_range(customers),
                RANGE_SIZE * len(customers),
                len(customers),
            ),
        )


def worker_main(system_name: str, n: int, ops: int, commits: int, seed: int) -> dict[str, Any]:
    """One repetition of every workload for one system, in this (fresh) process."""
    cls = next(s for s in all_systems() if s.name == system_name)
    n = min(n, cls.max_n or n)
    ops = min(ops, cls.max_ops or ops)
    commits = min(commits, cls.max_ops or commits)
    docs = make_docs(0, n, seed)
    more = make_docs(n, n + commits, seed)
    rng = random.Random(seed)
    lookups = LookupSteps(rng, n, ops)
    update_ids = rng.sample(range(1, n + 1), min(ops, n))
    matching = sum(1 for d in docs if d["total"] >= FILTER_FROM)

    with tempfile.TemporaryDirectory(prefix=f"obj-bench-{system_name}-") as directory:
        system = cls(directory, durable=True)
        prepared = system.prepare(docs)
        prepared_more = system.prepare(more)
        baseline = rss_bytes()
        out: dict[str, Any] = {"system": system_name, "n": n, "ops": ops, "rate": {}}
        rate = out["rate"]

        system.open()

        def bulk() -> int:
            system.bulk_insert(prepared)
            return n

        rate["bulk_insert"] = n / timed(bulk, n, "bulk insert")
        system.close()
        out["bytes_per_doc"] = system.disk_bytes() / n

        system.open()
        get, unique, equal_range = lookups.steps(system)
        steps: list[Step] = [
            get,
            ("scan", system.scan, n, n),
            unique,
            equal_range,
            # Rated by documents examined, so systems run at a smaller --n compare fairly.
            ("filter_total", lambda: system.filter_total(FILTER_FROM), matching, n),
            (
                "update_totals",
                lambda: system.update_totals(update_ids),
                len(update_ids),
                len(update_ids),
            ),
        ]
        for key, run, expect, count in steps:
            try:
                seconds = timed(run, expect, key)
            except Unsupported as e:
                out.setdefault("unsupported", {})[key] = str(e)
                continue
            rate[key] = count / seconds

        def each() -> int:
            system.commit_each(prepared_more)
            return commits

        rate["commit_each"] = commits / timed(each, commits, "durable commits")
        system.close()
    out["rss_mib"] = (peak_rss_bytes() - baseline) / (1 << 20)
    return out


def scale_worker(
    system_name: str, n: int, ops: int, reps: int, seed: int
) -> dict[str, dict[str, float]]:
    """Microseconds per get / unique lookup / index range at ``n`` documents (median of
    ``reps`` rounds, built once, bulk-inserted 100,000 per transaction)."""
    cls = next(s for s in all_systems() if s.name == system_name)
    lookups = LookupSteps(random.Random(seed + n), n, ops)
    result: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix=f"obj-scale-{system_name}-") as directory:
        system = cls(directory, durable=True)
        system.open()
        for start, stop in chunks(n):
            system.bulk_insert(system.prepare(make_docs(start, stop, seed)))
        system.close()
        system.open()
        for key, run, expect, count in lookups.steps(system):
            try:
                seconds = [timed(run, expect, key) / count for _ in range(reps)]
            except Unsupported:
                continue
            result[key] = {"us_per_op": statistics.median(seconds) * 1e6}
        system.close()
    return result


# Parent side ---------------------------------------------------------------------------


def spawn(args: list[str]) -> Any:
    """Runs this script as a worker and returns the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def human(x: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def environment() -> dict[str, Any]:
    import sqlite3

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
    }
    for module, dist in [
        ("obj", "obj-db"),
        ("lmdb", "lmdb"),
        ("msgpack", "msgpack"),
        ("polodb", "polodb-python"),
        ("tinydb", "tinydb"),
        ("diskcache", "diskcache"),
        ("unqlite", "unqlite"),
        ("kohakuvault", "kohakuvault"),
        ("lmdb_object_store", "lmdb-object-store"),
    ]:
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            info[module] = version(dist)
    return info


def render_main(results: dict[str, Any]) -> str:
    systems = results["systems"]
    med = results["median"]
    lines = [
        f"## obj vs peers — n = {results['n']:,} documents, median of {results['reps']} "
        "repetitions",
        "",
        "Median throughput (higher is better):",
        "",
        "| workload | unit | " + " | ".join(systems) + " |",
        "|---|---|" + "---:|" * len(systems),
    ]
    for key, label, unit in WORKLOADS:
        cells = [human(med[s]["rate"][key]) if key in med[s]["rate"] else "n/a" for s in systems]
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    lines.append(
        "| size on disk | bytes/doc | "
        + " | ".join(f"{med[s]['bytes_per_doc']:.0f}" for s in systems)
        + " |"
    )
    lines.append(
        "| peak RSS growth | MiB | "
        + " | ".join(f"{med[s]['rss_mib']:.0f}" for s in systems)
        + " |"
    )
    peers = [s for s in systems if s != "obj"]
    lines += [
        "",
        "obj's advantage over each peer (obj ÷ peer for throughput, peer ÷ obj for bytes and "
        "RSS; above 1 means obj is better):",
        "",
        "| workload | " + " | ".join(peers) + " |",
        "|---|" + "---:|" * len(peers),
    ]
    for key, label, _unit in WORKLOADS:
        cells = []
        for s in peers:
            a, b = med["obj"]["rate"].get(key), med[s]["rate"].get(key)
            cells.append(f"{a / b:.2f}x" if a and b else "n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for key, label in (("bytes_per_doc", "size on disk"), ("rss_mib", "peak RSS growth")):
        base = med["obj"][key]
        cells = [f"{med[s][key] / base:.2f}x" if base > 0 else "n/a" for s in peers]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Targets (issue #9):", ""]
    for ok, text in check_targets(results):
        lines.append(f"- {'met' if ok else 'MISSED'}: {text}")
    lines += ["", "Configuration:", ""]
    for s in systems:
        lines.append(f"- **{s}** (n = {med[s]['n']:,}): {results['config'][s]}")
    for name, why in results["skipped"].items():
        lines.append(f"- **{name}**: skipped — {why}")
    env = ", ".join(f"{k} {v}" for k, v in results["environment"].items())
    lines += ["", f"Environment: {env}."]
    return "\n".join(lines)


def check_targets(results: dict[str, Any]) -> list[tuple[bool, str]]:
    med = results["median"]
    out = []
    for key, peer, want in TARGETS:
        if peer not in med or key not in med[peer]["rate"]:
            continue
        ratio = med["obj"]["rate"][key] / med[peer]["rate"][key]
        label = next(label for k, label, _ in WORKLOADS if k == key)
        out.append((ratio >= want, f"{label}: {ratio:.2f}x {peer} (target >= {want:g}x)"))
    if "sqlite3" in med:
        mine, theirs = med["obj"]["bytes_per_doc"], med["sqlite3"]["bytes_per_doc"]
        out.append(
            (
                mine <= theirs,
                f"size on disk: {mine:.0f} bytes/doc vs sqlite3 {theirs:.0f} (target <=)",
            )
        )
    return out


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rate = {k: statistics.median(r["rate"][k] for r in runs) for k in runs[0]["rate"]}
    return {
        "n": runs[0]["n"],
        "rate": rate,
        "bytes_per_doc": statistics.median(r["bytes_per_doc"] for r in runs),
        "rss_mib": statistics.median(r["rss_mib"] for r in runs),
        "unsupported": runs[0].get("unsupported", {}),
    }


def chart_main(results: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems, med = results["systems"], results["median"]
    fig, (ax, ax_size) = plt.subplots(
        1, 2, figsize=(13, 7.5), gridspec_kw={"width_ratios": [3, 1.2]}
    )
    labels = [label for _k, label, _u in WORKLOADS]
    height = 0.8 / len(systems)
    for j, s in enumerate(systems):
        xs, ys = [], []
        for i, (key, _label, _unit) in enumerate(WORKLOADS):
            if key in med[s]["rate"]:
                xs.append(med[s]["rate"][key] / med["obj"]["rate"][key])
                ys.append(i + j * height)
        ax.barh(ys, xs, height=height, label=s)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(labels))])
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("throughput relative to obj (obj = 1, log scale; left of the line is slower)")
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.09))
    sizes = [med[s]["bytes_per_doc"] for s in systems]
    ax_size.barh(range(len(systems)), sizes, color=[f"C{j}" for j in range(len(systems))])
    ax_size.set_yticks(range(len(systems)))
    ax_size.set_yticklabels(systems)
    ax_size.invert_yaxis()
    ax_size.set_xlabel("bytes on disk per document")
    fig.suptitle(
        f"obj vs peers, {results['n']:,} documents, median of {results['reps']} runs "
        f"({results['environment']['cpus']} CPUs)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_main(args: argparse.Namespace, selected: list[type[System]]) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in selected}
    for rep in range(args.reps):
        order = selected if rep % 2 == 0 else list(reversed(selected))
        for s in order:
            print(f"rep {rep + 1}/{args.reps}: {s.name} ...", file=sys.stderr, flush=True)
            result = spawn(
                [
                    "--worker",
                    s.name,
                    "--n",
                    str(args.n),
                    "--ops",
                    str(args.ops),
                    "--commits",
                    str(args.commits),
                    "--seed",
                    str(args.seed + rep),
                ]
            )
            runs[s.name].append(result)
    return {
        "n": args.n,
        "reps": args.reps,
        "systems": [s.name for s in selected],
        "config": {s.name: s.config for s in selected},
        "median": {name: median_of(r) for name, r in runs.items()},
        "runs": runs,
    }


def render_scale(results: dict[str, Any]) -> str:
    sizes, systems, data = results["sizes"], results["systems"], results["data"]
    lines = [
        f"## Scaling: µs per operation (median of {results['reps']}), "
        f"{results['ops']:,} operations per size",
        "",
        "| operation | system | " + " | ".join(f"n = {n:,}" for n in sizes) + " | "
        f"cost at {sizes[-1]:,} ÷ {sizes[0]:,} |",
        "|---|---|" + "---:|" * (len(sizes) + 1),
    ]
    for op in SCALE_WORKLOADS:
        for s in systems:
            costs = [data[s].get(str(n), {}).get(op, {}).get("us_per_op") for n in sizes]
            if all(c is None for c in costs):
                continue
            cells = [f"{c:.2f}" if c is not None else "-" for c in costs]
            growth = f"{costs[-1] / costs[0]:.2f}" if costs[0] and costs[-1] else "-"
            lines.append(f"| {op} | {s} | " + " | ".join(cells) + f" | {growth} |")
    return "\n".join(lines)


def chart_scale(results: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes, systems, data = results["sizes"], results["systems"], results["data"]
    fig, axes = plt.subplots(1, len(SCALE_WORKLOADS), figsize=(14, 4.5))
    for ax, op in zip(axes, SCALE_WORKLOADS):
        for j, s in enumerate(systems):
            pts = [
                (n, data[s][str(n)][op]["us_per_op"])
                for n in sizes
                if op in data[s].get(str(n), {})
            ]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=s, color=f"C{j}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(op)
        ax.set_xlabel("documents")
        ax.set_ylabel("µs per operation")
    axes[0].legend(fontsize=8)
    fig.suptitle("per-operation cost as the collection grows (flat is good)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_scale(args: argparse.Namespace, selected: list[type[System]]) -> dict[str, Any]:
    sizes = [int(float(x)) for x in args.sizes.split(",")]
    data: dict[str, dict[str, Any]] = {s.name: {} for s in selected}
    for n in sizes:
        for s in selected:
            if s.max_n is not None and n > s.max_n:
                continue
            print(f"scale n={n:,}: {s.name} ...", file=sys.stderr, flush=True)
            data[s.name][str(n)] = spawn(
                [
                    "--scale-worker",
                    s.name,
                    "--n",
                    str(n),
                    "--ops",
                    str(args.ops),
                    "--reps",
                    str(args.reps),
                    "--seed",
                    str(args.seed),
                ]
            )
    return {
        "sizes": sizes,
        "reps": args.reps,
        "ops": args.ops,
        "systems": [s.name for s in selected],
        "data": data,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="documents (default 10^5)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median is shown)")
    parser.add_argument("--ops", type=int, default=20_000, help="lookups per read workload")
    parser.add_argument("--commits", type=int, default=1000, help="durable single commits")
    parser.add_argument("--systems", default="", help="comma-separated subset (default all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", action="store_true", help="run the scaling comparison")
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="sizes for --scale")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="output directory")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scale-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker_main(args.worker, args.n, args.ops, args.commits, args.seed)))
        return
    if args.scale_worker:
        print(json.dumps(scale_worker(args.scale_worker, args.n, args.ops, args.reps, args.seed)))
        return

    wanted = {s.strip() for s in args.systems.split(",") if s.strip()}
    selected, skipped = [], {}
    for s in all_systems():
        if wanted and s.name not in wanted:
            continue
        missing = missing_modules(s)
        if missing:
            skipped[s.name] = f"cannot import {', '.join(missing)} (pip install '.[bench]')"
            print(f"note: {s.name} skipped: {skipped[s.name]}", file=sys.stderr)
        else:
            selected.append(s)
    if not selected or selected[0].name != "obj":
        parser.error("obj must be among --systems (ratios are against it)")

    os.makedirs(args.out, exist_ok=True)
    stem = "scale" if args.scale else "run"
    if args.scale:
        results = run_scale(args, selected)
        text = render_scale(results)
    else:
        results = run_main(args, selected)
        results["skipped"] = skipped
        results["environment"] = environment()
        text = render_main(results)
    results.setdefault("environment", environment())
    with open(os.path.join(args.out, f"{stem}.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, f"{stem}.md"), "w") as f:
        f.write(text + "\n")
    try:
        (chart_scale if args.scale else chart_main)(results, os.path.join(args.out, f"{stem}.png"))
        chart_note = f"chart: {os.path.join(args.out, stem + '.png')}"
    except ImportError:
        chart_note = "chart skipped: matplotlib is not installed (pip install '.[bench]')"
    print(text)
    print(f"\n{chart_note}; data: {os.path.join(args.out, stem + '.json')}")


if __name__ == "__main__":
    main()
