"""Untrained weights are never used silently: every command refuses a model edgesr ships no
weights for, in one line naming the way out, unless --allow-untrained (timing only)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from battery_util import assert_refused, run

NEEDLES = ("ships no trained weights for imdn_x3", "--allow-untrained")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), np.full((24, 24, 3), 128, np.uint8))
    return path


def test_edgesr_run_refuses_an_untrained_model(photo: Path, tmp_path: Path) -> None:
    result = run("edgesr-run", photo, "-o", tmp_path / "out.png", "--model", "imdn", "--scale", "3",
                 env={"EDGESR_CACHE_DIR": str(tmp_path / "cache")})
    assert_refused(result, "edgesr-run", *NEEDLES)
    assert not (tmp_path / "out.png").exists()


def test_edgesr_export_refuses_an_untrained_model(tmp_path: Path) -> None:
    result = run("edgesr-export", "--model", "imdn_x3", "-o", tmp_path / "o.onnx")
    assert_refused(result, "edgesr-export", *NEEDLES)
    assert not (tmp_path / "o.onnx").exists()


def test_edgesr_bench_refuses_an_untrained_model(tmp_path: Path) -> None:
    result = run("edgesr-bench", "--model", "imdn", "--scale", "3", "--repeats", "1",
                 env={"EDGESR_CACHE_DIR": str(tmp_path / "cache")})
    assert_refused(result, "edgesr-bench", *NEEDLES)
