"""The weights edgesr ships: they load, beat bicubic, match their model cards and their ONNX."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgesr.data.folder import write_skimage_corpus
from edgesr.models import create_model
from edgesr.train.evaluate import evaluate, load_pairs, mean_scores
from edgesr.weights import model_card, shipped_onnx, shipped_weights
from edgesr.weights_io import load_weights, weights_sha256

SHIPPED = ["osffnet_x4", "lmfn_x4"]


@pytest.fixture(scope="module")
def val_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("skimage")
    write_skimage_corpus(root, split="val")
    return root / "val"


def _card_means(text: str, name: str) -> tuple[float, float]:
    row = next(line for line in text.splitlines() if line.startswith("| **mean** |"))
    values = [float(v) for v in re.findall(r"\*\*([0-9.]+)\*\*", row)]
    return values[0], values[2]  # model PSNR, bicubic PSNR


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_beat_bicubic_and_reproduce_the_card(name: str, val_photos: Path) -> None:
    weights, card = shipped_weights(name), model_card(name)
    assert weights is not None and card is not None, f"{name}: weights and model card must ship together"
    model = load_weights(create_model(name), weights)
    means = mean_scores(evaluate(model, load_pairs(val_photos, scale=4), scale=4, method=name))
    card_model, card_bicubic = _card_means(card.read_text(), name)
    assert means[name][0] > means["bicubic"][0]
    assert abs(means[name][0] - card_model) < 0.01 and abs(means["bicubic"][0] - card_bicubic) < 0.01


def test_shipped_default_onnx_holds_the_shipped_weights() -> None:
    import onnx

    from edgesr.spec import ModelSpec

    path = shipped_onnx("osffnet_x4")
    assert path is not None, "the default model's ONNX must ship (edgesr-run's default)"
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    spec = ModelSpec.from_metadata(meta, source=str(path))
    assert spec.arch == "osffnet_x4" and spec.scale == 4
    model = load_weights(create_model("osffnet_x4"), shipped_weights("osffnet_x4"))
    assert spec.weights_sha256 == weights_sha256(model)
