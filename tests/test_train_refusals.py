"""edgesr-train refuses bad environment and flag values in one line, exit 2, before any work
(nothing is created in --out-dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesr.train.cli import main


@pytest.mark.parametrize(("env", "flags", "message"), [
    ({"WORLD_SIZE": "0"}, [], "WORLD_SIZE='0': expected a process count >= 1"),
    ({"WORLD_SIZE": "two"}, [], "WORLD_SIZE='two'"),
    ({}, ["--seed", str(2**32)], "seed = 4294967296: expected an integer in [0, 2**32)"),
    ({}, ["--block-lr", "0"], "block_lr"),
    ({}, ["--block-lr", "nan"], "block_lr"),
    ({}, ["--hr-weight", "-1"], "hr_weight"),
    ({}, ["--hr-weight", "0", "--distill-weight", "0"], "hr_weight = 0 leaves no loss"),
])
def test_refused_in_one_line_before_any_work(env, flags, message, tmp_path: Path, monkeypatch, capsys) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "run"
    code = main(["--config", "osffnet_x4_distill", "--train-dir", str(tmp_path), "--out-dir", str(out), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists()
