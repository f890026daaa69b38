"""What the image I/O tests share: a real photo crop and an alpha ramp (fixtures), and small
helpers (float scaling, writing with OpenCV). A test module imports the fixtures by
their function names (``photo_fixture``) and asks for them by fixture name (``photo``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

H, W = 48, 64  # small non-square crop: keeps the suite fast and catches H/W swaps


@pytest.fixture(scope="module", name="photo")
def photo_fixture() -> np.ndarray:
    """A real photo crop, uint8 H×W×3 RGB."""
    return np.ascontiguousarray(skimage.data.astronaut()[100 : 100 + H, 180 : 180 + W])


@pytest.fixture(scope="module", name="ramp_alpha")
def ramp_alpha_fixture() -> np.ndarray:
    return np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))


def unit8(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0


def save_cv(path: Path, pixels: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, pixels)
    assert ok
    buf.tofile(str(path))
    return path
