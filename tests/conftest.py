"""Shared fixtures for the pytest suite (the user-facing contract of `obj`)."""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import obj


@pytest.fixture
def path(tmp_path: pathlib.Path) -> pathlib.Path:
    """Where a test's database lives (the file does not exist yet)."""
    return tmp_path / "test.obj"


@pytest.fixture
def db(path: pathlib.Path) -> Iterator[obj.Db]:
    """An open read-write database, closed after the test."""
    handle = obj.Db(path)
    try:
        yield handle
    finally:
        handle.close()


RunPython = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_python() -> RunPython:
    """Runs code in a fresh interpreter (the one running the tests), capturing its output:
    ``run_python(code, *argv, timeout=60)``."""

    def run(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def plain(value: Any) -> Any:
    """What a read by collection name gives for what a read by class gives."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
