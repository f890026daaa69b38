"""The shipped BSRN and LKDN x4 weights score the papers' Set5 rows, not the model cards' rows.

Oracles (literals, not read from the cards the code writes):
- BSRN x4 Set5 32.35 dB / 0.8966: OSFFNet paper (Wang and Zhang, AAAI 2024), Table 1, the BSRN
  row (the numbers BSRN's own paper prints);
- LKDN x4 Set5 32.39 dB / 0.8979: Xie et al., "Large Kernel Distillation Network for Efficient
  Single Image Super-Resolution", CVPRW 2023, Table 4;
- Bicubic x4 Set5 28.42 dB: the same OSFFNet Table 1 (the bicubic row).
The tolerance, 0.02 dB PSNR and 0.001 SSIM, is the rounding of the printed figures (0.005) plus
the differences between MATLAB's imresize/rgb2ycbcr pipeline and ours measured with the
authors' checkpoints (tests/test_published_rows.py). Skips where ``../shared`` (Set5) is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesr.models import create_model
from edgesr.published import published_row
from edgesr.train.evaluate import evaluate, load_pairs, mean_scores
from edgesr.weights import shipped_weights
from edgesr.weights_io import load_weights

SET5 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks" / "Set5"
PAPER_SET5_X4 = {"bsrn_x4": (32.35, 0.8966), "lkdn_x4": (32.39, 0.8979)}
PAPER_BICUBIC_SET5_X4_DB = 28.42
PSNR_TOL_DB, SSIM_TOL = 0.02, 0.001


def test_the_literals_are_the_rows_edgesr_prints_beside_its_own() -> None:
    # edgesr/published.py feeds the cards' "published" column: it must hold the papers' figures.
    for name, (db, ssim) in PAPER_SET5_X4.items():
        assert published_row(name, "Set5")[:2] == (db, ssim)


@pytest.mark.slow
@pytest.mark.skipif(not SET5.is_dir(), reason=f"{SET5} is absent (not a checkout beside shared/)")
@pytest.mark.parametrize("name", sorted(PAPER_SET5_X4))
def test_shipped_weights_score_the_papers_set5_row(name: str) -> None:
    weights = shipped_weights(name)
    assert weights is not None, f"{name} ships its converted official weights"
    means = mean_scores(evaluate(load_weights(create_model(name), weights), load_pairs(SET5, scale=4),
                                 scale=4, method=name))
    db, ssim = means[name]
    assert db == pytest.approx(PAPER_SET5_X4[name][0], abs=PSNR_TOL_DB)
    assert ssim == pytest.approx(PAPER_SET5_X4[name][1], abs=SSIM_TOL)
    # The same pipeline's bicubic lands on the paper's bicubic row, 3.9 dB below: the tolerance
    # separates a model from its baseline by two hundred times its width.
    assert means["bicubic"][0] == pytest.approx(PAPER_BICUBIC_SET5_X4_DB, abs=PSNR_TOL_DB)
    assert abs(means["bicubic"][0] - PAPER_SET5_X4[name][0]) > 100 * PSNR_TOL_DB
