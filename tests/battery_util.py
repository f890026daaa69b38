"""Helpers of the hostile-input battery (tests/test_battery_*.py): run a console script in a
subprocess, check the one-line error contract, fingerprint every input.

The contract (issue 9): a refused case exits 2 with exactly one line on stderr, starting
``<prog>: error:``, and no traceback; nothing that existed before the run changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

def script(name: str) -> list[str]:
    path = Path(sys.executable).with_name(name)
    if path.exists():
        return [str(path)]
    module = {"edgesr-run": "edgesr.runtime.cli", "edgesr-export": "edgesr.export.cli",
              "edgesr-bench": "edgesr.benchmarks.cli", "edgesr-train": "edgesr.train.cli",
              "edgesr-eval": "edgesr.train.eval_cli"}[name]
    return [sys.executable, "-m", module]


def run(name: str, *args: object, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``name args`` in a subprocess, stdin closed, output captured."""
    return subprocess.run([*script(name), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def assert_refused(result: subprocess.CompletedProcess[str], prog: str, *needles: str,
                   code: int = 2) -> str:
    """Exit ``code``, exactly one stderr line ``<prog>: error: ...`` holding every needle."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def one_line(exc: pytest.ExceptionInfo) -> str:
    """The message of an error raised in process, checked to be one non-empty line."""
    message = str(exc.value)
    assert message and "\n" not in message, message
    return message


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 0 and nothing on stderr (no warning, no TensorRT notice, no traceback)."""
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stderr.strip() == "", result.stderr


def fingerprint(paths: Iterable[Path]) -> dict[str, str]:
    """sha256 of every regular file under ``paths`` (symlinks by their target path)."""
    found: dict[str, str] = {}
    for root in paths:
        walk = [root] if not root.is_dir() else sorted(p for p in root.rglob("*"))
        for path in walk:
            if path.is_symlink():
                found[str(path)] = "link->" + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` made unwritable for this process while the block runs.

    Root ignores permission bits, so under root the folder is made immutable (``chattr +i``,
    which root obeys); where that is not possible the test is skipped with the reason.
    """
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i: cannot make a folder read-only here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
