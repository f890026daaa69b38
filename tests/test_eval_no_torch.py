"""edgesr-eval and edgesr-weights on a runtime-only install (``.[cpu]``), simulated as in
tests/test_runtime_no_torch.py: a ``sitecustomize`` makes torch, onnx, scikit-image and the other
extras raise ModuleNotFoundError in the subprocess.

edgesr-eval scores an .onnx file, and a shipped ONNX through ``--engine ort``, with numpy metrics
only. Oracle: the same graph run by a plain ONNX Runtime session in this (full) process, scored
by scikit-image's PSNR on BT.601 Y (tests/oracles.py), on HR/LR pairs made here with OpenCV, so
no edgesr code makes the inputs either.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from battery_util import assert_refused, run
from oracles import psnr_y_oracle
from test_runtime_no_torch import runtime_only_env  # noqa: F401 (the fixture)

from edgesr.weights import shipped_onnx

PHOTO = Path(__file__).resolve().parents[1] / "runtime" / "examples" / "chelsea_160x120.png"


def _pairs(root: Path, *, scale: int, hr_size: tuple[int, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """<root>/HR/*.png and <root>/LR_bicubic/X<scale>/*x<scale>.png from two crops of the
    bundled photo (RGB arrays returned by name)."""
    photo = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / f"X{scale}").mkdir(parents=True)
    width, height = hr_size
    pairs = {}
    for name, (x, y) in {"left": (0, 0), "right": (160 - width, 120 - height)}.items():
        hr = np.ascontiguousarray(photo[y:y + height, x:x + width])
        lr = cv2.resize(hr, (width // scale, height // scale), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / "HR" / f"{name}.png"), cv2.cvtColor(hr, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png"), cv2.cvtColor(lr, cv2.COLOR_RGB2BGR))
        pairs[name] = (hr, lr)
    return pairs


def _oracle_psnr(model: Path, hr: np.ndarray, lr: np.ndarray, *, scale: int) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    nchw = np.ascontiguousarray(lr.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    sr = np.clip(session.run(None, {session.get_inputs()[0].name: nchw})[0][0].transpose(1, 2, 0), 0, 1)
    return psnr_y_oracle(sr, hr, border=scale)


def _psnr_by_image(path: Path, method: str) -> dict[str, float]:
    return {r["image"]: float(r["psnr_db"]) for r in csv.DictReader(path.open()) if r["method"] == method}


@pytest.mark.parametrize(("model_args", "method", "scale"), [
    (["--model", "TOY"], "conv_x2 (ort)", 2),
    (["--model", "lkdn_x4", "--engine", "ort"], "lkdn_x4 (ort)", 4),
])
def test_eval_scores_an_onnx_without_torch(runtime_only_env, toy_onnx: Path, tmp_path: Path,  # noqa: F811
                                           model_args: list[str], method: str, scale: int) -> None:
    model = toy_onnx if model_args[1] == "TOY" else shipped_onnx(model_args[1])
    args = [str(toy_onnx) if a == "TOY" else a for a in model_args]
    pairs = _pairs(tmp_path / "set", scale=scale, hr_size=(96, 80))  # LR >= 15 px: no padding
    result = run("edgesr-eval", *args, "--data", tmp_path / "set", "--csv", tmp_path / "s.csv",
                 env=runtime_only_env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    scores = _psnr_by_image(tmp_path / "s.csv", method)
    assert set(scores) == {*pairs, "mean"}
    oracle = {name: _oracle_psnr(model, hr, lr, scale=scale) for name, (hr, lr) in pairs.items()}
    for name, db in oracle.items():
        assert scores[name] == pytest.approx(db, abs=0.01), name
    assert scores["mean"] == pytest.approx(np.mean(list(oracle.values())), abs=0.01)


@pytest.mark.parametrize(("args", "needles"), [
    (["--model", "osffnet_x4"], ["needs the `train` extra", "pip install -e '.[train]'", "--engine ort"]),
    (["--model", "lmfn_x4", "--engine", "ort"], ["needs the `export` extra", "pip install -e '.[export]'"]),
])
def test_eval_paths_that_need_torch_are_one_line(runtime_only_env, tmp_path: Path,  # noqa: F811
                                                 args: list[str], needles: list[str]) -> None:
    _pairs(tmp_path / "set", scale=4, hr_size=(96, 80))
    assert_refused(run("edgesr-eval", *args, "--data", tmp_path / "set", env=runtime_only_env),
                   "edgesr-eval", *needles)


def test_weights_list_shows_the_shipped_files_and_convert_names_its_extra(runtime_only_env, tmp_path: Path) -> None:  # noqa: F811
    from importlib import resources

    shipped = sorted({Path(f.name).stem for f in resources.files("edgesr.weights").iterdir()
                      if f.name.endswith((".safetensors", ".onnx"))})
    result = run("edgesr-weights", "list", env=runtime_only_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ("the full model table needs torch (pip install -e '.[torch]'); "
                                     "listing the shipped files")
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()}
    assert sorted(rows) == shipped
    for name in ("lkdn_x4", "osffnet_x4"):  # what edgesr-run runs here: their ONNX ships
        assert rows[name][1:3] == ["shipped", "onnx"]
    assert rows["bsrn_x4"][1:3] == ["shipped", "-"]
    result = run("edgesr-weights", "convert", tmp_path / "x.pth", "-o", tmp_path / "x.safetensors",
                 env=runtime_only_env)
    assert_refused(result, "edgesr-weights", "needs the `torch` extra", "pip install -e '.[torch]'")
