"""Small helpers shared by the benchmarks in this directory: timing, optional peers and
result tables. Each benchmark script runs obj and its peers in the same process, on the
same data, and reports ratios (machines are noisy; only differences of 1.5x or more are
real unless repeated)."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType

__all__ = ["Table", "best", "optional_peer", "scratch_dir"]


def best(rounds: int, run: Callable[[], int]) -> float:
    """Best seconds per operation over ``rounds`` runs; ``run`` returns its operation count."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        ops = run()
        results.append((time.perf_counter() - start) / max(ops, 1))
    return min(results)


def optional_peer(name: str) -> ModuleType | None:
    """The module ``name``, or None (with a note) when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        print(f"note: {name} is not installed; its column is skipped (pip install {name})")
        return None


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[str]:
    """A temporary directory on the same file system as the system temp dir."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def file_size(path: str) -> int:
    """Bytes used by a file and its sidecars (``-wal``, ``-shm``, ``-lock``)."""
    total = 0
    for suffix in ("", "-wal", "-shm", "-lock"):
        with contextlib.suppress(FileNotFoundError):
            total += os.path.getsize(path + suffix)
    return total


class Table:
    """Rows of seconds-per-operation by system; printed in µs with ratios against obj."""

    def __init__(self, title: str, systems: Sequence[str]) -> None:
        self.title = title
        self.systems = list(systems)
        self.rows: list[tuple[str, dict[str, float]]] = []

    def add(self, operation: str, results: dict[str, float]) -> None:
        self.rows.append((operation, results))

    def render(self) -> str:
        others = [s for s in self.systems if s != "obj"]
        width = {s: max(14, len(s) + 8) for s in self.systems}
        head = f"{'operation':<34}" + "".join(f"{s + ' µs/op':>{width[s]}}" for s in self.systems)
        head += "".join(f"{s + '/obj':>{width[s]}}" for s in others)
        lines = [self.title, head, "-" * len(head)]
        for name, res in self.rows:
            line = f"{name:<34}"
            for s in self.systems:
                line += f"{res[s] * 1e6:>{width[s]}.3f}" if s in res else f"{'-':>{width[s]}}"
            for s in others:
                if s in res and "obj" in res:
                    line += f"{res[s] / res['obj']:>{width[s] - 1}.2f}x"
                else:
                    line += f"{'-':>{width[s]}}"
            lines.append(line)
        return "\n".join(lines)
