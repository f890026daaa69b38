"""What the ``edgesr-run`` tests share: running the console script, the refusal check (exit 2,
one line), the ONNX files and photo crop (fixtures), and image helpers. A test module imports
the fixtures by their function names (``models_fixture``) and asks for them by fixture name
(``models``)."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import skimage.data

import battery_util
from conftest import toy_sr_model
from ort_models import classifier_model

REPO = Path(__file__).resolve().parents[1]
SCALE = 2
H, W = 48, 64


def run_cli(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``edgesr-run args --threads 1`` in a subprocess (battery_util.run)."""
    return battery_util.run("edgesr-run", *args, "--threads", 1, env=env, cwd=cwd, timeout=120)


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """edgesr-run's refusal: exit 2, one ``edgesr-run: error:`` line holding every needle."""
    return battery_util.assert_refused(result, "edgesr-run", *needles)


@pytest.fixture(scope="session", name="models")
def models_fixture(tmp_path_factory: pytest.TempPathFactory, toy_onnx: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli_models")
    paths = {name: folder / f"{name}.onnx" for name in ("nometa", "classifier")}
    paths["sr"] = toy_onnx  # x2, tile 32, overlap 4 (conftest)
    onnx.save(toy_sr_model(SCALE), str(paths["nometa"]))
    onnx.save(classifier_model(), str(paths["classifier"]))
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
