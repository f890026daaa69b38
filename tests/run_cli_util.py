"""What the ``edgesr-run`` tests share: running the console script, the refusal check (exit 2,
one line), the ONNX files and photo crop (fixtures), and image helpers. A test module imports
the fixtures by their function names (``models_fixture``) and asks for them by fixture name
(``models``)."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import skimage.data
from onnx import TensorProto, helper

from conftest import toy_sr_model

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("edgesr-run")
SCALE = 2
H, W = 48, 64


def run_cli(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "edgesr.runtime.cli"]
    return subprocess.run(command + [str(a) for a in args] + ["--threads", "1"], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback; returns that line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edgesr-run: error: ") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def onnx_graph(nodes: list, output_shape: list, inits: list = ()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, output_shape)], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="session", name="models")
def models_fixture(tmp_path_factory: pytest.TempPathFactory, toy_onnx: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli_models")
    paths = {name: folder / f"{name}.onnx" for name in ("nometa", "classifier")}
    paths["sr"] = toy_onnx  # x2, tile 32, overlap 4 (conftest)
    onnx.save(toy_sr_model(SCALE), str(paths["nometa"]))
    classifier = onnx_graph([helper.make_node("GlobalAveragePool", ["lr"], ["p"]),
                         helper.make_node("Flatten", ["p"], ["sr"])], ["n", 3])
    onnx.save(classifier, str(paths["classifier"]))
    return paths


@pytest.fixture(scope="module", name="photo")
def photo_fixture() -> np.ndarray:
    """Real photo crop (scikit-image astronaut), H×W×3 uint8 RGB."""
    return np.ascontiguousarray(skimage.data.astronaut()[60 : 60 + H, 200 : 200 + W])


def save_rgb(path: Path, rgb: np.ndarray) -> Path:
    pixels = rgb[:, :, ::-1] if rgb.ndim == 3 and rgb.shape[2] == 3 else rgb
    if rgb.ndim == 3 and rgb.shape[2] == 4:
        pixels = rgb[:, :, [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(pixels))
    return path


def read_raw(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def zero_size_png(path: Path) -> Path:
    """A PNG whose header says 0x0 pixels (what some broken tools write)."""
    ihdr = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b""))
    return path
