"""The benchmark harness (`benches/run.py`) still runs end to end: a tiny run with the
systems every test environment has (obj and sqlite3) produces the table, the JSON and
every workload's counts checked. Nothing here is timed; speed lives in `benches/`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "benches" / "run.py"


def run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN), "--systems", "obj,sqlite3", "--out", str(tmp_path), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_main_run_reports_every_workload_for_every_system(tmp_path: Path) -> None:
    proc = run(tmp_path, "--n", "400", "--reps", "2", "--ops", "100", "--commits", "5")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "run.json").read_text())
    assert results["systems"] == ["obj", "sqlite3"]
    for system in ("obj", "sqlite3"):
        median = results["median"][system]
        assert set(median["rate"]) == {
            "bulk_insert",
            "commit_each",
            "get",
            "scan",
            "unique",
            "equal_range",
            "update_totals",
            "filter_total",
        }
        assert all(rate > 0 for rate in median["rate"].values())
        assert median["bytes_per_doc"] > 0
        assert len(results["runs"][system]) == 2
    table = (tmp_path / "run.md").read_text()
    assert "| bulk insert (1 txn) | docs/s |" in table
    assert "durable single-doc commits" in table and "sqlite3" in proc.stdout


def test_scale_run_measures_each_size(tmp_path: Path) -> None:
    proc = run(tmp_path, "--scale", "--sizes", "200,400", "--reps", "1", "--ops", "50")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "scale.json").read_text())
    assert results["sizes"] == [200, 400]
    for size in ("200", "400"):
        ops = results["data"]["obj"][size]
        assert set(ops) == {"get", "unique", "equal_range"}
        assert all(v["us_per_op"] > 0 for v in ops.values())


def test_unknown_system_list_without_obj_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--systems", "sqlite3", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "obj must be among --systems" in proc.stderr
