"""edgesr-export --format ort: ONNX Runtime's mobile format, loaded back and compared.

The oracle is ONNX Runtime running the exported .onnx file. LMFN is the case that matters:
its DynamicSnakeConv node is an ONNX local function, which the ORT format has to inline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgesr.export.cli import main


def test_ort_format_of_lmfn_runs_like_the_onnx_file(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path / "cache"))
    onnx_path = tmp_path / "lmfn.onnx"
    assert main(["--model", "lmfn-tiny_x2", "--format", "ort", "-o", str(onnx_path), "--no-check"]) == 0
    assert [f.name for f in onnx.load(str(onnx_path)).functions] == ["DynamicSnakeConv"]
    lr = np.random.default_rng(1).random((1, 3, 30, 22), dtype=np.float32)
    reference = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"lr": lr})[0]
    for name in ("lmfn.ort", "lmfn.with_runtime_opt.ort"):
        session = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"lr": lr})[0], reference, atol=1e-4)
        assert session.get_modelmeta().custom_metadata_map["edgesr.scale"] == "2"  # metadata survives
    config = (tmp_path / "lmfn.required_operators.config").read_text()
    assert "GridSample" in config and "edgesr;" not in config  # the function body, inlined
