"""The obj.Table benchmark (`benches/table.py`) still runs end to end: a tiny run of each
system prints a row for every workload and writes a positive rate for each to the JSON.
Nothing here is timed; speed lives in `benches/`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benches" / "table.py"
ROWS = [
    "| put, one transaction | items/s |",
    "| random get (pk, sk) | gets/s |",
    "| query by pk (100 items) | queries/s |",
    "| query by pk (100 items) | items/s |",
    "| query sk begins_with (10 items) | queries/s |",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("system", ["obj", "sqlite3", "rocksdict"])
def test_each_system_reports_every_workload(tmp_path: Path, system: str) -> None:
    if system == "rocksdict":
        pytest.importorskip("rocksdict")
    out = tmp_path / "table.json"
    proc = run("--n", "300", "--ops", "50", "--reps", "1", "--systems", system, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for row in ROWS:
        assert row in proc.stdout, (row, proc.stdout)
        line = next(line for line in proc.stdout.splitlines() if line.startswith(row))
        assert "n/a" not in line, line
    assert "KeystoneDB" in proc.stdout
    results = json.loads(out.read_text())
    assert results["systems"] == [system]
    assert results["failures"] == {}
    median = results["median"][system]
    for workload in ("put", "get", "query", "begins_with", "query_items"):
        assert isinstance(median[workload], float) and median[workload] > 0, workload
    # 300 items: 3 full partitions of 100; every 10-item prefix span is full too.
    assert median["query_items_per_query"] == 100
    assert median["begins_with_items_per_query"] == 10
    assert len(results["runs"][system]["get"]) == 1


def test_ratios_to_a_peer(tmp_path: Path) -> None:
    out = tmp_path / "table.json"
    proc = run(
        "--n", "200", "--ops", "20", "--reps", "2", "--systems", "obj,sqlite3", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    ratio = results["ratio_obj_over_peer"]["sqlite3"]
    assert set(ratio) >= {"put", "get", "query", "begins_with"}
    assert all(r > 0 for r in ratio.values())
    assert len(results["runs"]["obj"]["put"]) == 2
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| random get"))
    assert "x)" in row  # obj / sqlite3 in brackets


def test_unknown_system_is_refused() -> None:
    proc = run("--systems", "obj,keystonedb")
    assert proc.returncode == 2
    assert "unknown keystonedb" in proc.stderr
