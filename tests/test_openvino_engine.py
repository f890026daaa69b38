"""The OpenVINO engine (runtime/engines/openvino.py) against ONNX Runtime, the reference runtime.

Oracles: ONNX Runtime's output on the same graph (an independent implementation of the same
ONNX operators), PSNR computed here with numpy, OpenVINO's own device list for the refusal.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from battery_util import assert_refused, run

# Every test runs in a forked child (pytest-forked), and nothing here imports OpenVINO in the
# suite's own process: beside torch and ONNX Runtime there, OpenVINO's TBB threads make a later
# test segfault (TextIOWrapper.fileno on a freed buffer, seen under gdb).
pytestmark = [pytest.mark.forked,
              pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                 reason="OpenVINO is not installed (pip install -e '.[openvino]')")]

from edgesr.runtime.engines import choose_engine, engine_choices, open_engine  # noqa: E402
from edgesr.runtime.engines.openvino import OpenVinoEngine, OpenVinoOptions  # noqa: E402
from edgesr.runtime.engines.ort import OrtEngine, OrtOptions  # noqa: E402
from edgesr.weights import shipped_onnx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "runtime" / "examples" / "chelsea_160x120.png"


def ov():  # noqa: ANN201 - the openvino module, imported in the forked child only
    import openvino

    return openvino


def cpu_capabilities() -> set[str]:
    return set(ov().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def psnr_8bit(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def shipped_lkdn() -> Path:
    path = shipped_onnx("lkdn_x4")
    assert path is not None, "lkdn_x4.onnx is shipped in edgesr/weights/"
    return Path(path)


@pytest.fixture(scope="module")
def photo_crop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ov_photo") / "cat.png"
    Image.open(PHOTO).crop((40, 30, 120, 90)).save(path)  # 80x60: a second per engine at most
    return path


def test_edgesr_run_gives_the_same_png_on_ort_and_openvino(shipped_lkdn: Path, photo_crop: Path,
                                                           tmp_path: Path) -> None:
    outputs = {}
    for engine in ("ort", "openvino"):
        out = tmp_path / f"{engine}.png"
        result = run("edgesr-run", photo_crop, "-o", out, "--model", shipped_lkdn, "--engine", engine)
        assert result.returncode == 0, result.stderr
        assert f"engine: {engine} on" in result.stdout and "(fp32" in result.stdout
        outputs[engine] = np.asarray(Image.open(out).convert("RGB"))
    assert outputs["ort"].shape == outputs["openvino"].shape == (240, 320, 3)
    assert psnr_8bit(outputs["ort"], outputs["openvino"]) >= 60.0


def test_a_missing_device_is_refused_in_one_line(shipped_lkdn: Path, photo_crop: Path, tmp_path: Path) -> None:
    present = {d.split(".")[0] for d in ov().Core().available_devices}
    missing = next((d for d in ("NPU", "GPU") if d not in present), None)
    if missing is None:
        pytest.skip("this machine has both an Intel GPU and an NPU")
    out = tmp_path / "o.png"
    result = run("edgesr-run", photo_crop, "-o", out, "--model", shipped_lkdn, "--engine", f"openvino:{missing}")
    assert_refused(result, "edgesr-run", f"no {missing} device", "--engine openvino")
    assert not out.exists()


def test_device_names_are_engine_choices_and_unknown_ones_are_refused() -> None:
    assert {"openvino", "openvino:GPU", "openvino:NPU"} <= set(engine_choices())
    choice = choose_engine("openvino:GPU")
    assert (choice.name, choice.device) == ("openvino", "GPU")
    with pytest.raises(KeyError, match="openvino:TPU"):
        choose_engine("openvino:TPU")
    with pytest.raises(KeyError, match="ort:GPU"):  # ort picks providers, not devices
        choose_engine("ort:GPU")


@pytest.fixture(scope="module")
def tiny_lmfn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LMFN through the project's exporter: its DSConv is a model-local ONNX function."""
    pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from edgesr.export.cli import main

    path = tmp_path_factory.mktemp("ov_lmfn") / "lmfn.onnx"
    assert main(["--model", "lmfn-tiny_x2", "-o", str(path), "--no-check"]) == 0
    functions = {f"{f.domain}.{f.name}" for f in onnx.load(str(path)).functions}
    assert "edgesr.DynamicSnakeConv" in functions  # what OpenVINO cannot read without inlining
    return path


def test_lmfn_with_a_local_function_runs_and_matches_onnx_runtime(tiny_lmfn: Path) -> None:
    lr = np.random.default_rng(3).random((1, 3, 24, 40), dtype=np.float32)
    with OrtEngine(model_path=tiny_lmfn, options=OrtOptions(intra_op_threads=1, graph_cache=False)) as ort_engine:
        reference = ort_engine.run(lr)
    with OpenVinoEngine(model_path=tiny_lmfn, options=OpenVinoOptions(threads=1)) as engine:
        got = engine.run(lr)
        assert engine.info().precision == "fp32"
    assert got.shape == reference.shape == (1, 3, 48, 80)
    np.testing.assert_allclose(got, reference, atol=2e-4)


def test_fp16_runs_the_cpus_half_type_and_says_so(shipped_lkdn: Path) -> None:
    capabilities = cpu_capabilities()
    if not capabilities & {"BF16", "FP16"}:
        pytest.skip(f"this CPU offers no half type to OpenVINO ({sorted(capabilities)})")
    expected = "bf16" if "BF16" in capabilities else "fp16"
    rgb = np.asarray(Image.open(PHOTO).convert("RGB").crop((40, 30, 104, 78)), dtype=np.float32) / 255
    lr = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
    options = {"openvino": OpenVinoOptions(precision="fp16", threads=1)}
    with open_engine("openvino", model_path=shipped_lkdn, options=options) as engine:
        assert engine.info().precision == expected
        half = engine.run(lr)
    with OrtEngine(model_path=shipped_lkdn, options=OrtOptions(intra_op_threads=1)) as ort_engine:
        exact = ort_engine.run(lr)
    error = np.abs(half - exact)
    # a half type really ran (bf16 keeps 8 bits of mantissa) and stayed close to fp32
    assert error.max() > 1e-4
    assert 10 * np.log10(1.0 / np.mean(error**2)) >= 40.0


def test_edgesr_run_on_openvino_never_imports_torch(photo_crop: Path, tmp_path: Path) -> None:
    # a runtime install with the openvino extra (onnx comes with it): torch made unimportable.
    # --fp16 on a model name runs the shipped fp32 graph in the half type: no export, no torch.
    half = ["--fp16"] if cpu_capabilities() & {"BF16", "FP16"} else []
    code = textwrap.dedent(f"""
        import sys
        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "safetensors", "onnxsim", "onnxslim", "skimage", "triton"):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, NotInstalled())
        from edgesr.runtime.cli import main
        code = main([{str(photo_crop)!r}, "-o", {str(tmp_path / 'o.png')!r}, "--model", "lkdn_x4",
                     "--engine", "openvino", *{half!r}])
        assert code == 0 and "torch" not in sys.modules, (code, sorted(m for m in sys.modules if "torch" in m))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "engine: openvino on CPU" in result.stdout and (tmp_path / "o.png").is_file()


def test_bench_times_fp32_and_the_half_type_in_one_run(shipped_lkdn: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from edgesr.benchmarks.cli import main

    out = tmp_path / "r.json"
    capabilities = cpu_capabilities()
    half = ["openvino@fp16"] if capabilities & {"BF16", "FP16"} else []  # else only fp32 runs
    assert main(["latency", str(shipped_lkdn), "--engine", "ort", "openvino", *half, "--size", "20x16",
                 "--warmup", "0", "--repeats", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["label"] for r in results] == ["ort", "openvino", *half]
    half_type = ["bf16" if "BF16" in capabilities else "fp16"] if half else []
    assert [r["precision"] for r in results] == ["fp32", "fp32", *half_type]
    report = tmp_path / "r.md"  # the targets give no bf16 figure: that row has no floor, not an error
    assert main(["report", str(out), "--target", "jetson-orin-nano", "-o", str(report)]) == 0
    rows = [line for line in report.read_text().splitlines() if line.startswith("| ") and "lkdn_x4" in line]
    assert len(rows) >= 2 + len(half)
    capsys.readouterr()
    for bad, needle in (("openvino@fp8", "unknown precision 'fp8'"), ("trt:GPU", "only openvino a device")):
        assert main(["latency", str(shipped_lkdn), "--engine", bad, "--repeats", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and needle in err, err


def test_auto_picks_openvino_on_a_cpu_for_jobs_large_enough_to_repay_its_start() -> None:
    from edgesr.runtime.engines import OPENVINO_AUTO_MIN_LR_PX
    from edgesr.runtime.engines.availability import ort_gpu_provider

    if ort_gpu_provider():
        pytest.skip("ONNX Runtime has a GPU provider here: auto prefers it")
    big = choose_engine("auto", lr_px=OPENVINO_AUTO_MIN_LR_PX)
    assert big.name == "openvino" and big.summary.startswith("OpenVINO ")
    for small in (None, 320 * 180, OPENVINO_AUTO_MIN_LR_PX - 1):
        choice = choose_engine("auto", lr_px=small)
        assert choice.name == "ort" and "openvino passed over" in choice.summary
        assert "tensorrt" not in choice.summary.lower()  # engines not installed are not mentioned


def test_a_folder_job_counts_the_pixels_it_will_upscale(tmp_path: Path) -> None:
    from edgesr.runtime.cli import folder_lr_px

    sizes = {"a.png": (30, 20), "b.png": (50, 10), "done.png": (40, 40)}
    jobs = []
    for name, size in sizes.items():
        Image.new("RGB", size).save(tmp_path / name)
        jobs.append((tmp_path / name, tmp_path / f"out_{name}"))
    Image.new("RGB", (4, 4)).save(tmp_path / "out_done.png")  # already upscaled: skipped
    assert folder_lr_px(jobs, overwrite=False) == 30 * 20 + 50 * 10
    assert folder_lr_px(jobs, overwrite=True) == 30 * 20 + 50 * 10 + 40 * 40
