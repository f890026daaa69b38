"""benchmarks/gpu_check: its shell script parses, and its kernel check (which flags a wrong
kernel) works, run here on the CPU under TRITON_INTERPRET=1 with tiny cases."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = r"""
import json, os, sys
os.environ["TRITON_INTERPRET"] = "1"
import numpy as np
from edgesr.benchmarks import gpu_check
cases = [(3, 0, 1, 2, 5, 6, 3, 1.0, "float32"), (5, 1, 1, 3, 4, 7, 4, 0.7, "float32")]
good = gpu_check.kernel_rows(cases, device="cpu")
# a wrong oracle must be flagged: shift the reference by one
import edgesr.ops.dsconv_reference as ref
orig = ref.dynamic_snake_conv_reference
ref.dynamic_snake_conv_reference = lambda *a, **k: orig(*a, **k) + 1.0
bad = gpu_check.kernel_rows(cases[:1], device="cpu")
print("RESULTS " + json.dumps({"good": good, "bad": bad, "table": gpu_check.table(["a", "b"], [[1, 2]])}))
"""


def test_gpu_check_script_parses(tmp_path: Path) -> None:
    script = REPO / "benchmarks" / "gpu_check.sh"
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # the parse check says no: the same script without its closing "fi"
    broken = tmp_path / "broken.sh"
    broken.write_text("\n".join(line for line in script.read_text().splitlines() if line.strip() != "fi"))
    proc = subprocess.run(["bash", "-n", str(broken)], capture_output=True, text=True)
    assert proc.returncode != 0 and "syntax error" in proc.stderr
    # every part the script runs is a subcommand the module accepts (argparse's choices)
    parts = re.findall(r"python3 -m edgesr\.benchmarks\.gpu_check (\w+)", script.read_text())
    assert parts == ["kernel", "trt"]
    usage = subprocess.run([sys.executable, "-m", "edgesr.benchmarks.gpu_check", "--help"],
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 0 and "{kernel,trt}" in usage.stdout
    wrong = subprocess.run([sys.executable, "-m", "edgesr.benchmarks.gpu_check", "kernal"],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2


@pytest.mark.skipif(
    importlib.util.find_spec("triton") is None or importlib.util.find_spec("torch") is None,
    reason="the Triton interpreter needs triton and torch CPU tensors",
)
def test_kernel_check_passes_the_kernel_and_flags_a_mismatch() -> None:
    env = {**os.environ, "TRITON_DEFAULT_FP_FUSION": "1"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULTS "))
    out = json.loads(line[len("RESULTS "):])
    assert [row[-1] for row in out["good"]] == ["ok", "ok"]
    assert [row[-1] for row in out["bad"]] == ["FAIL"] and float(out["bad"][0][2]) >= 0.99
    assert out["table"] == "| a | b |\n|---|---|\n| 1 | 2 |"
