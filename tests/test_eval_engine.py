"""edgesr-eval --engine ort scores the shipped ONNX like the torch reference scores the weights.

Oracle: the torch path (the shipped safetensors in PyTorch) on the same images; the shipped
ONNX holds the same weights, so the PSNR-Y must agree to float rounding.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import pytest
import skimage.data

from edgesr.train.eval_cli import main


def _psnr_by_image(path: Path) -> dict[str, float]:
    rows = list(csv.DictReader(path.open()))
    key = next(k for k in rows[0] if "psnr" in k.lower())
    return {r["image"] + "/" + r["method"]: float(r[key]) for r in rows}


def test_ort_engine_scores_match_torch(tmp_path: Path) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "coffee.png"), skimage.data.coffee()[100:196, 200:296, ::-1])
    cv2.imwrite(str(hr / "chelsea.png"), skimage.data.chelsea()[60:124, 100:180, ::-1])
    for engine in ("torch", "ort"):
        assert main(["--model", "osffnet_x4", "--data", str(hr), "--engine", engine,
                     "--csv", str(tmp_path / f"{engine}.csv")]) == 0
    torch_scores, ort_scores = _psnr_by_image(tmp_path / "torch.csv"), _psnr_by_image(tmp_path / "ort.csv")
    assert torch_scores["coffee/bicubic"] == ort_scores["coffee/bicubic"]
    for image in ("coffee", "chelsea"):
        assert ort_scores[f"{image}/osffnet_x4 (ort)"] == pytest.approx(torch_scores[f"{image}/osffnet_x4"], abs=0.01)
