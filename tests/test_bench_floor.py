"""edgesr-bench floor: the dense-conv reference, the floor arithmetic and the command.

Oracles: hand computation (the reference conv's output on ones, the toy graph's Multi-Adds).
No timing is asserted: the machines are noisy; only what the numbers are made of.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgesr.benchmarks.cli import main
from edgesr.benchmarks.floor import DENSE_CONV, DENSE_CONV_CHANNELS, DENSE_CONV_KERNEL


def test_the_reference_is_a_dense_64_channel_3x3_conv() -> None:
    model = onnx.load(str(DENSE_CONV))
    assert [n.op_type for n in model.graph.node] == ["ConstantOfShape", "Conv"]
    assert (DENSE_CONV_CHANNELS, DENSE_CONV_KERNEL) == (64, 3)
    session = ort.InferenceSession(str(DENSE_CONV), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.ones((1, 64, 5, 6), np.float32)})
    # every weight 0.01; an interior output sums 64 channels x 9 taps of ones; a corner 64 x 4
    np.testing.assert_allclose(y[0, :, 2, 2], 0.01 * 64 * 9, rtol=1e-5)
    np.testing.assert_allclose(y[0, :, 0, 0], 0.01 * 64 * 4, rtol=1e-5)


def test_floor_command_on_the_toy_graph(toy_onnx: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "floor.json"
    assert main(["floor", str(toy_onnx), "--size", "40x30", "--rounds", "1", "--tiles", "16",
                 "--profile", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "measured/floor" in text and "tile 16" in text and "top ops" in text
    report = json.loads(out.read_text())
    assert report["schema"] == "edgesr.floor/1" and report["input"] == [30, 40]
    (graph,) = report["graphs"]
    # the toy graph: one 3x3 conv 3 -> 12 channels at 30x40 (DepthToSpace: no multiply-adds)
    assert graph["multi_adds"] == 30 * 40 * 12 * 3 * 9
    floor_ms = 2 * graph["multi_adds"] / (report["dense_conv_gflops"] * 1e9) * 1e3
    assert graph["floor_ms"] == pytest.approx(floor_ms)
    assert graph["ratio"] == pytest.approx(graph["median_ms"] / graph["floor_ms"])
    assert main(["floor", str(toy_onnx), "--size", "40x30", "--json", str(out)]) == 2  # no clobber


def test_floor_times_the_settings_variants_of_the_same_graph(toy_onnx: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "floor.json"
    assert main(["floor", str(toy_onnx), "--size", "40x30", "--rounds", "1",
                 "--settings", "extended", "no-spinning", "--json", str(out)]) == 0
    labels = [g["label"] for g in json.loads(out.read_text())["graphs"]]
    assert labels == ["conv_x2.onnx", "conv_x2.onnx, extended", "conv_x2.onnx, no-spinning"]
    assert "time over conv_x2.onnx's" in capsys.readouterr().out


def test_floor_refuses_bad_sizes_in_one_line(toy_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["floor", str(toy_onnx), "--size", "8x8"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


# forked: OpenVINO is loaded in a child process only, never in the suite's own (see
# tests/test_openvino_engine.py for why)
@pytest.mark.forked
@pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                    reason="OpenVINO is not installed (pip install -e '.[openvino]')")
def test_floor_per_engine_uses_the_best_conv_rate_of_each_precision(toy_onnx: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "floor.json"
    assert main(["floor", str(toy_onnx), "--size", "40x30", "--rounds", "1", "--engines", "ort", "openvino",
                 "--json", str(out)]) == 0
    assert "per engine" in capsys.readouterr().out
    report = json.loads(out.read_text())
    rows = report["engines"]
    assert [(r["engine"], r["precision"]) for r in rows][:2] == [("ort", "fp32"), ("openvino", "fp32")]
    macs = report["graphs"][0]["multi_adds"]
    for row in rows:  # by hand: 2 x Multi-Adds over the fastest conv among rows of its class
        same_class = [r["dense_conv_gflops"] for r in rows if (r["precision"] == "fp32") == (row["precision"] == "fp32")]
        assert row["floor_ms"] == pytest.approx(2 * macs / (max(same_class) * 1e9) * 1e3)
        assert row["ratio"] == pytest.approx(row["median_ms"] / row["floor_ms"])
    assert main(["floor", str(toy_onnx), "--size", "40x30", "--rounds", "1", "--engines", "--json",
                 str(out), "--overwrite"]) == 0
    assert "engines" not in json.loads(out.read_text())  # --engines with none: the ORT table only
