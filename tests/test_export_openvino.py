"""edgesr-export --format openvino (export/openvino_ir.py) and IR in edgesr-run.

Oracles: ONNX Runtime running the exported .onnx file (an independent implementation of the
same operators); OpenVINO's own reader for the IR's rt_info; a hand computation for the FP16
weights file (2 bytes a weight instead of 4).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from battery_util import assert_refused, run

# Forked, and OpenVINO imported in the child only: see tests/test_openvino_engine.py.
pytestmark = [pytest.mark.forked,
              pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                 reason="OpenVINO is not installed (pip install -e '.[openvino]')")]

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "runtime" / "examples" / "chelsea_160x120.png"


#: Made at collection, in pytest's own process, so every forked test finds the same folder
#: (a fixture's temp folder is made again in each forked child).
_SHARED = Path(tempfile.mkdtemp(prefix="edgesr-test-openvino-ir-"))


@pytest.fixture(scope="module")
def exported() -> Path:
    """lmfn-tiny_x2 (a DSConv local function, the case OpenVINO cannot read as is) as ONNX + IR,
    in FP32 and FP16, exported by the first test that asks (in its forked child, through the
    CLI's main: torch is imported already); returns the folder."""
    from edgesr.export.cli import main

    done = _SHARED / "exported"
    if done.exists():
        return _SHARED
    said = {}
    for name, extra in (("lmfn", []), ("lmfn16", ["--fp16", "--no-check"])):  # FP16: sizes only
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["--model", "lmfn-tiny_x2", "--format", "openvino", *extra,
                         "-o", str(_SHARED / f"{name}.onnx")]) == 0
        said[name] = out.getvalue()
        assert f"wrote {_SHARED / name}.xml and {name}.bin (OpenVINO IR" in said[name]
    checks = [line for line in said["lmfn"].splitlines() if "openvino ir vs onnx (ORT)" in line]
    assert len(checks) == 2 and all("(ok;" in line for line in checks), said["lmfn"]
    done.touch()
    return _SHARED


def test_the_ir_computes_what_onnx_runtime_computes_from_the_onnx_file(exported: Path) -> None:
    import onnxruntime as ort
    import openvino as ov

    lr = np.random.default_rng(5).random((1, 3, 26, 34), dtype=np.float32)
    session = ort.InferenceSession(str(exported / "lmfn.onnx"), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"lr": lr})[0]
    model = ov.Core().read_model(str(exported / "lmfn.xml"))
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled(lr)[0], reference, atol=1e-4)
    assert model.get_rt_info(["framework", "edgesr.scale"]).astype(str) == "2"  # metadata kept
    assert model.get_rt_info(["framework", "edgesr.arch"]).astype(str) == "lmfn-tiny_x2"


def test_fp16_stores_the_weights_in_half_the_bytes(exported: Path) -> None:
    fp32, fp16 = (exported / "lmfn.bin").stat().st_size, (exported / "lmfn16.bin").stat().st_size
    assert 0.45 * fp32 < fp16 < 0.6 * fp32  # 2 bytes a weight instead of 4, plus small int shapes


def test_edgesr_run_picks_openvino_for_an_ir_and_matches_the_onnx_on_ort(exported: Path,
                                                                         tmp_path: Path) -> None:
    outputs, said = {}, {}
    for model, engine in (("lmfn.xml", "auto"), ("lmfn.onnx", "ort")):
        out = tmp_path / f"{engine}.png"
        result = run("edgesr-run", PHOTO, "-o", out, "--model", exported / model, "--engine", engine,
                     env={"EDGESR_CACHE_DIR": str(tmp_path / "cache")})
        assert result.returncode == 0, result.stderr
        outputs[engine], said[engine] = np.asarray(Image.open(out).convert("RGB")).astype(int), result.stdout
    assert "auto chose openvino: the model is an OpenVINO IR" in said["auto"]
    assert outputs["auto"].shape == outputs["ort"].shape == (240, 320, 3)
    assert np.abs(outputs["auto"] - outputs["ort"]).max() <= 1  # 8-bit rounding of ~1e-6 apart


def test_an_ir_on_another_engine_is_refused_in_one_line(exported: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    result = run("edgesr-run", PHOTO, "-o", out, "--model", exported / "lmfn.xml", "--engine", "ort")
    assert_refused(result, "edgesr-run", "OpenVINO IR", "--engine openvino")
    assert not out.exists()


def test_an_ir_without_its_weights_file_is_refused_in_one_line(exported: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "lonely.xml"
    lonely.write_bytes((exported / "lmfn.xml").read_bytes())
    result = run("edgesr-run", PHOTO, "-o", tmp_path / "o.png", "--model", lonely)
    assert_refused(result, "edgesr-run", "lonely.bin", "copy the .xml and .bin together")


def test_a_scale_that_contradicts_the_ir_is_refused(exported: Path, tmp_path: Path) -> None:
    result = run("edgesr-run", PHOTO, "-o", tmp_path / "o.png", "--model", exported / "lmfn.xml", "--scale", "3")
    assert_refused(result, "edgesr-run", "--scale 3 contradicts", "x2 model")


def test_an_ir_without_metadata_needs_scale_and_is_checked_by_its_shapes(exported: Path,
                                                                         tmp_path: Path) -> None:
    import openvino as ov

    model = ov.Core().read_model(str(exported / "lmfn.xml"))
    bare = ov.Model(model.outputs, model.get_parameters(), "bare")  # the graph, no rt_info
    ov.save_model(bare, str(tmp_path / "bare.xml"), compress_to_fp16=False)
    out = tmp_path / "o.png"
    result = run("edgesr-run", PHOTO, "-o", out, "--model", tmp_path / "bare.xml")
    assert_refused(result, "edgesr-run", "no edgesr metadata", "--scale")
    result = run("edgesr-run", PHOTO, "-o", out, "--model", tmp_path / "bare.xml", "--scale", "4")
    assert_refused(result, "edgesr-run", "[1, 3, 64, 64]", "[1, 3, 128, 128]")  # 32 px x2, not x4
    result = run("edgesr-run", PHOTO, "-o", out, "--model", tmp_path / "bare.xml", "--scale", "2",
                 env={"EDGESR_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (320, 240)


def test_an_existing_ir_is_not_clobbered(exported: Path, tmp_path: Path) -> None:
    onnx_path = tmp_path / "lmfn.onnx"
    (tmp_path / "lmfn.xml").write_text("mine")
    result = run("edgesr-export", "--model", "lmfn-tiny_x2", "--format", "openvino", "--no-check",
                 "-o", onnx_path, env={"EDGESR_CACHE_DIR": str(tmp_path / "cache")})
    assert_refused(result, "edgesr-export", "lmfn.xml", "exists", "--overwrite")
    assert (tmp_path / "lmfn.xml").read_text() == "mine"  # refused before the export: nothing written
    assert not (tmp_path / "lmfn.onnx").exists() and not (tmp_path / "lmfn.bin").exists()
