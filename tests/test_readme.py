"""Every Python example in the README runs as written (#14).

The blocks run in order, in one namespace, in a fresh interpreter (as a user's script: no
classes declared by other tests) and an empty directory; a block that uses ``db`` after an
earlier one closed it gets the same file opened again (the later examples continue with
the database of the first).
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"

RUNNER = r"""
import re, sys, types
import obj

text = open(sys.argv[1], encoding="utf-8").read()
module = types.ModuleType("readme_examples")
sys.modules[module.__name__] = module
namespace = module.__dict__
for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
    line = text.count("\n", 0, m.start()) + 1
    db = namespace.get("db")
    if isinstance(db, obj.Db) and db.closed:
        namespace["db"] = obj.Db(db.path)
    try:
        exec(compile(m.group(1), f"README.md:{line}", "exec"), namespace)
    except Exception as exc:
        sys.exit(f"the README example at line {line} fails: {exc!r}")
db = namespace.get("db")
if isinstance(db, obj.Db):
    db.close()
print("ran", len(re.findall(r"^```python", text, re.M)), "examples")
"""


def test_the_readme_has_python_examples() -> None:
    assert len(re.findall(r"^```python", README.read_text(encoding="utf-8"), re.M)) >= 4


def test_readme_examples_run(tmp_path: pathlib.Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(README)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ran ")
