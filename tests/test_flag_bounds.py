"""Resource flags have upper bounds (issue 16): a huge --threads or an overlap that fills the
tile is refused in one line naming the flag, exit 2, before any work and with no output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from battery_util import assert_refused, run

EXAMPLE = Path(__file__).resolve().parents[1] / "runtime" / "examples" / "chelsea_160x120.png"
CORES = len(os.sched_getaffinity(0))  # the oracle: what this process may run on


@pytest.mark.parametrize(("flags", "needle"), [
    (["--threads", "100000"], f"--threads 100000: expected 0 (the default) to {CORES}"),
    (["--threads", "-1"], "--threads -1"),
    (["--tile", "64", "--overlap", "32"], "--overlap 32: expected less than half of --tile 64"),
])
def test_edgesr_run_bounds(flags: list[str], needle: str, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = run("edgesr-run", EXAMPLE, "-o", out, *flags, env={"EDGESR_CACHE_DIR": str(tmp_path / "cache")})
    assert_refused(result, "edgesr-run", needle)
    assert not out.exists()


def test_edgesr_bench_floor_threads_bound(tmp_path: Path) -> None:
    result = run("edgesr-bench", "floor", "lkdn_x4", "--threads", str(CORES + 1),
                 env={"EDGESR_CACHE_DIR": str(tmp_path / "cache")})
    assert_refused(result, "edgesr-bench", f"--threads {CORES + 1}: expected 0 (the default) to {CORES}")
