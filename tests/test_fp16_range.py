"""The FP16 range check (edgesr.export.fp16_range.fp32_scopes): it keeps float32 exactly the
modules whose values on the calibration photo come within 2**6 of float16's maximum, and says
no to the rest.

Oracles: float16's maximum from numpy (np.finfo), the calibration photo's largest value read
here with OpenCV, the headroom of 2**6 as the module documents it, and torch's ONNX exporter
for the node-name scopes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from edgesr.export.fp16_range import fp32_scopes, onnx_scope

PHOTO = Path(__file__).resolve().parents[1] / "runtime" / "examples" / "chelsea_160x120.png"
LIMIT = float(np.finfo(np.float16).max) / 2.0**6  # a peak above this is kept float32


class Gain(nn.Module):
    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


class Block(nn.Module):
    def __init__(self, gain: float) -> None:
        super().__init__()
        self.cell = Gain(gain)
        self.norm = nn.GroupNorm(1, 3)  # reads the cell's output, brings it back into range
        self.tail = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.norm(self.cell(x)))


def _model(*gains: float) -> nn.Module:
    model = nn.Module()
    model.blocks = nn.ModuleList(Block(g) for g in gains)
    model.forward = lambda x: model.blocks[1](model.blocks[0](x)) if len(gains) > 1 else model.blocks[0](x)
    return model.eval()


@pytest.fixture(scope="module")
def photo_peak() -> float:
    image = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    assert image is not None, PHOTO
    return float(image.max()) / 255.0


def test_a_module_just_over_the_limit_is_kept_float32_with_its_reader(photo_peak: float) -> None:
    over = 1.001 * LIMIT / photo_peak
    assert fp32_scopes(_model(over)) == ["/blocks.0/cell/", "/blocks.0/norm/"]


def test_a_module_just_under_the_limit_is_not(photo_peak: float) -> None:
    # says no: 0.1 % below the limit, and far below
    assert fp32_scopes(_model(0.999 * LIMIT / photo_peak)) == []
    assert fp32_scopes(_model(1.0)) == []


def test_only_the_block_that_reaches_the_range_is_listed(photo_peak: float) -> None:
    # block 0 is normalised back before block 1 multiplies: only block 1's cell overflows
    assert fp32_scopes(_model(2.0, 10 * LIMIT)) == ["/blocks.1/cell/", "/blocks.1/norm/"]


def test_scopes_are_the_node_prefixes_torchs_exporter_writes(tmp_path: Path) -> None:
    model = _model(3.0, 5.0)
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 3, 8, 8),), str(path), dynamo=False, opset_version=18)
    import onnx

    names = [n.name for n in onnx.load(str(path)).graph.node]
    for module in ("blocks.0.cell", "blocks.1.norm", "blocks.1.tail"):
        scope = onnx_scope(module)
        assert any(name.startswith(scope) for name in names), (scope, names)
    assert not any(name.startswith(onnx_scope("blocks.2.cell")) for name in names)
