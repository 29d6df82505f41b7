"""The bad-input battery's one assertion: refused up front, in one line, with nothing touched.

Every module in this folder drives the command line with inputs a careless or
hostile user gives, through :func:`refused`.  A case passes only when the
command exits non-zero, prints exactly one line on stderr that starts with
``unitscope: error:`` and names the problem (no traceback), and leaves the
folders it was pointed at byte for byte as they were.

Set ``UNITSCOPE_BAD_INPUT_TABLE=FILE`` to collect every case and its message
as tab-separated lines (the table in a closing note is made from it).
"""

from __future__ import annotations

import hashlib
import os
import traceback
from pathlib import Path
from typing import Iterable

import pytest
from typer.testing import CliRunner

from unitscope.cli.main import app


def tree_snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under ``root`` (hidden ones too): relative path -> (mode, sha256)."""
    root = Path(root)
    if not root.exists():
        return {}
    snap = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            snap[rel] = (0, "link:" + os.readlink(path))
        elif path.is_dir():
            snap[rel] = (path.stat().st_mode, "dir")
        else:
            snap[rel] = (path.stat().st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return snap


def _record(case: str, args: list[str], message: str) -> None:
    table = os.environ.get("UNITSCOPE_BAD_INPUT_TABLE")
    if table:
        with open(table, "a", encoding="utf-8") as fh:
            fh.write(f"{case}\t{' '.join(args)}\t{message}\n")


def refused(args: list[str], *, mentions: Iterable[str], unchanged: Iterable[Path] = (),
            env: dict | None = None, case: str | None = None) -> str:
    """Run ``unitscope ARGS`` and assert it refuses cleanly; return the error line.

    ``mentions`` are fragments the line must contain (case-insensitive): the
    option or file at fault and what is accepted.  Each folder in
    ``unchanged`` must hold exactly what it held before the command ran.
    """
    args = [str(a) for a in args]
    unchanged = [Path(p) for p in unchanged]
    before = {p: tree_snapshot(p) for p in unchanged}
    result = CliRunner().invoke(app, args, env=env)
    detail = f"unitscope {' '.join(args)}\nexit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        detail += "\n" + "".join(traceback.format_exception(result.exception))
        pytest.fail("uncaught exception\n" + detail)
    assert result.exit_code != 0, detail
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, "expected exactly one line on stderr\n" + detail
    line = lines[0]
    assert line.startswith("unitscope: error: "), detail
    assert "Traceback" not in result.stderr, detail
    for fragment in mentions:
        assert fragment.lower() in line.lower(), f"{fragment!r} not named in the error\n{detail}"
    for path, snap in before.items():
        assert tree_snapshot(path) == snap, f"{path} changed although the command was refused\n{detail}"
    _record(case or os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], args, line)
    return line


@pytest.fixture
def refuse():
    """The :func:`refused` check, as a fixture."""
    return refused
