"""Every Python example in the README runs as written (#14).

The blocks run in order in one namespace, in an empty directory; a block that uses ``db``
after an earlier one closed it gets the same file opened again (the README says the later
examples continue with the database of the first).
"""

from __future__ import annotations

import pathlib
import re
import sys
import types

import pytest

import obj

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        blocks.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return blocks


def test_the_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 4


def test_readme_examples_run(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # A module of its own, as a user's script would be (dataclasses look classes up there).
    module = types.ModuleType("readme_examples")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    try:
        for line, code in python_blocks():
            db = namespace.get("db")
            if isinstance(db, obj.Db) and db.closed:
                namespace["db"] = obj.Db(db.path)
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"the README example at line {line} fails: {exc!r}") from exc
    finally:
        db = namespace.get("db")
        if isinstance(db, obj.Db):
            db.close()
