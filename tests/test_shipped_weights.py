"""The weights edgesr ships: their cards' Set5 rows reproduce, the default is the best x4 model,
it gains over bicubic at least what IMDN's official x4 gains, and shipped ONNX files hold them.

Oracles: the model cards' rows are only reproduced here (they were measured by
``python -m edgesr.train.model_card``); the bar for the default is IMDN's published Set5 row
(32.21 dB against bicubic's 28.42: +3.79 dB, IMDN paper / OSFFNet Table 1). Set5 is never used
for training or checkpoint choice. Skips where ``../shared`` (Set5) is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgesr.models import create_model
from edgesr.models.registry import MODEL_TABLE
from edgesr.spec import DEFAULT_MODEL
from edgesr.train.evaluate import evaluate, load_pairs, mean_scores
from edgesr.weights import model_card, shipped_onnx, shipped_weights
from edgesr.weights_io import load_weights, weights_sha256

SET5 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks" / "Set5"
SHIPPED = sorted(n for n in MODEL_TABLE if shipped_weights(n) is not None)
SHIPPED_X4 = [n for n in SHIPPED if n.endswith("_x4")]
IMDN_X4_GAIN_DB = 32.21 - 28.42
needs_set5 = pytest.mark.skipif(not SET5.is_dir(), reason=f"{SET5} is absent (not a checkout beside shared/)")


def _card_set5_psnr(name: str) -> float:
    row = next(line for line in model_card(name).read_text().splitlines() if line.startswith("| Set5 |"))
    return float(re.search(r"\*\*([0-9.]+) /", row)[1])


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_file_has_a_card_with_benchmark_rows(name: str) -> None:
    card = model_card(name)
    assert card is not None, f"{name}: weights and model card ship together"
    text = card.read_text()
    assert "| Set5 |" in text and "| Set14 |" in text


@pytest.fixture(scope="module")
def set5_means() -> dict[str, tuple[float, float]]:
    pairs = load_pairs(SET5, scale=4)
    means = {}
    for name in SHIPPED_X4:
        scores = mean_scores(evaluate(load_weights(create_model(name), shipped_weights(name)), pairs,
                                      scale=4, method=name))
        means[name], means["bicubic"] = scores[name], scores["bicubic"]
    return means


@pytest.mark.slow
@needs_set5
def test_cards_reproduce_and_the_default_is_the_best_shipped_x4(set5_means) -> None:
    for name in SHIPPED_X4:
        assert set5_means[name][0] == pytest.approx(_card_set5_psnr(name), abs=0.01), name
    assert DEFAULT_MODEL == max(SHIPPED_X4, key=lambda n: set5_means[n][0])


@pytest.mark.slow
@needs_set5
def test_the_default_gains_over_bicubic_at_least_what_imdn_gains(set5_means) -> None:
    assert set5_means[DEFAULT_MODEL][0] - set5_means["bicubic"][0] >= IMDN_X4_GAIN_DB


@pytest.mark.parametrize("name", [n for n in SHIPPED if shipped_onnx(n) is not None])
def test_shipped_onnx_holds_the_shipped_weights(name: str) -> None:
    import onnx

    from edgesr.spec import ModelSpec

    path = shipped_onnx(name)
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    spec = ModelSpec.from_metadata(meta, source=str(path))
    assert spec.arch == name and spec.precision == "fp32"
    assert spec.weights_sha256 == weights_sha256(load_weights(create_model(name), shipped_weights(name)))


def test_the_default_model_ships_as_onnx() -> None:
    assert shipped_onnx(DEFAULT_MODEL) is not None, "edgesr-run's default needs no torch"


@pytest.mark.slow
@needs_set5
@pytest.mark.parametrize("name", [n for n in SHIPPED_X4 if shipped_onnx(n) is not None])
def test_shipped_deployment_onnx_scores_the_card_on_set5(name: str, tmp_path: Path) -> None:
    """The shipped ONNX is the deployment form (edgesr.models.deploy); through ONNX Runtime it
    must give the Set5 PSNR the card measured with the training form in PyTorch, to 0.01 dB."""
    import csv

    import onnx

    from edgesr.train.eval_cli import main

    meta = {p.key: p.value for p in onnx.load(str(shipped_onnx(name)), load_external_data=False).metadata_props}
    assert meta["edgesr.graph_form"] == "deployment"
    out = tmp_path / "scores.csv"
    assert main(["--model", name, "--data", str(SET5), "--engine", "ort", "--csv", str(out)]) == 0
    rows = [r for r in csv.DictReader(out.open()) if r["method"] == f"{name} (ort)" and r["image"] != "mean"]
    assert len(rows) == 5
    mean = sum(float(r["psnr_db"]) for r in rows) / len(rows)  # the mean recomputed here
    assert mean == pytest.approx(_card_set5_psnr(name), abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 3])
def test_osffnet_x2_and_x3_export_without_allow_untrained(scale: int, tmp_path: Path) -> None:
    """Issue 15: the headline export works at every scale of the paper, from shipped weights."""
    import onnx

    from edgesr.export.cli import main

    out = tmp_path / f"osffnet_x{scale}.onnx"
    assert main(["--model", "osffnet", "--scale", str(scale), "-o", str(out), "--no-check"]) == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["edgesr.weights_sha256"] == weights_sha256(
        load_weights(create_model(f"osffnet_x{scale}"), shipped_weights(f"osffnet_x{scale}")))
