"""The published Set5/Set14 rows, reproduced with the authors' weights through every engine.

Oracles: BSRN's rows from the OSFFNet paper's Table 1 (seed 000; the same as BSRN's own
paper), LKDN's from its CVPRW 2023 paper (Table 4; the authors' README repeats it). A
reproduction within 0.02 dB PSNR and 0.001 SSIM proves our architectures, key maps,
degradation and metrics together. Skips where ``../shared`` (checkpoints, Set5, Set14) is absent.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCH = SHARED / "benchmarks"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (BENCH / "Set5").is_dir(), reason=f"{BENCH} is absent (not a checkout beside shared/)"),
]

# (model, set): (PSNR, SSIM) as published
PUBLISHED = {
    ("bsrn_x2", "Set5"): (38.10, 0.9610), ("bsrn_x3", "Set5"): (34.46, 0.9277),
    ("bsrn_x4", "Set5"): (32.35, 0.8966), ("bsrn_x4", "Set14"): (28.73, 0.7847),
    ("lkdn_x4", "Set5"): (32.39, 0.8979), ("lkdn_x4", "Set14"): (28.79, 0.7859),
}


def _mean_row(csv_path: Path, method: str) -> tuple[float, float]:
    rows = [r for r in csv.DictReader(csv_path.open()) if r["image"] == "mean" and r["method"] == method]
    return float(rows[0]["psnr_db"]), float(rows[0]["ssim"])


def _evaluate(tmp_path: Path, *args: str) -> Path:
    from edgesr.train.eval_cli import main

    out = tmp_path / f"scores{len(list(tmp_path.glob('scores*.csv')))}.csv"
    assert main([*args, "--csv", str(out)]) == 0
    return out


@pytest.mark.parametrize(("model", "bench"), [("bsrn_x2", "Set5"), ("bsrn_x3", "Set5"), ("lkdn_x4", "Set14")])
def test_shipped_official_weights_reproduce_the_published_row_in_torch(tmp_path: Path, model: str, bench: str) -> None:
    psnr, ssim = _mean_row(_evaluate(tmp_path, "--model", model, "--data", str(BENCH / bench)), model)
    assert psnr == pytest.approx(PUBLISHED[model, bench][0], abs=0.02)
    assert ssim == pytest.approx(PUBLISHED[model, bench][1], abs=0.001)


def test_the_authors_pth_reproduces_bsrn_x4_in_torch_and_onnx_runtime(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path / "cache"))
    pth = SHARED / "official-weights" / "bsrn" / "net_g_BSRN_x4.pth"
    published = PUBLISHED["bsrn_x4", "Set5"]
    torch_row = _mean_row(_evaluate(tmp_path, "--weights", str(pth), "--data", str(BENCH / "Set5")), "bsrn_x4")
    ort_row = _mean_row(_evaluate(tmp_path, "--model", "bsrn_x4", "--weights", str(pth), "--engine", "ort",
                                  "--data", str(BENCH / "Set5")), "bsrn_x4 (ort)")
    fp16_row = _mean_row(_evaluate(tmp_path, "--model", "bsrn_x4", "--weights", str(pth), "--engine", "ort",
                                   "--fp16", "--data", str(BENCH / "Set5")), "bsrn_x4 fp16 (ort)")
    for row in (torch_row, ort_row):
        assert row[0] == pytest.approx(published[0], abs=0.02)
        assert row[1] == pytest.approx(published[1], abs=0.001)
    assert fp16_row[0] == pytest.approx(published[0], abs=0.05)
