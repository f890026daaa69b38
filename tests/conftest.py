"""Shared fixtures. Tests run on CPU; GPU/TensorRT tests skip with the reason."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (runtime-only environment)")


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """A real photo (scikit-image's bundled astronaut), HxWx3 uint8."""
    skdata = pytest.importorskip("skimage.data")
    return skdata.astronaut()


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(0)
    if HAS_TORCH:
        import torch

        torch.manual_seed(0)
