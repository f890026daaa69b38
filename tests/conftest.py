"""Shared fixtures. Tests run on CPU; GPU/TensorRT tests skip with the reason.

Built once per session, so once per pytest-xdist worker: :func:`toy_onnx` (a torch-free x2 SR graph with edgesr metadata) and
:func:`tiny_export` (a real ``edgesr-export`` of osffnet-tiny_x4, needs torch).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

# One OpenMP thread per process (set before torch is imported; inherited by the console
# scripts the tests start). On a shared 2-core machine, torch's spin-waiting second thread
# made the small models of the tests up to 20x slower (a 40-iteration training test: 1.4 s
# with one thread, 32 s with two, under load). Set OMP_NUM_THREADS to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# edgesr's caches (exports, ONNX Runtime's optimised graphs) go to a folder of this test
# session, never the user's ~/.cache; tests about the cache set their own.
os.environ.setdefault("EDGESR_CACHE_DIR", tempfile.mkdtemp(prefix="edgesr-test-cache-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (runtime-only environment)")

#: Scale, tile and overlap of :func:`toy_onnx`.
TOY_SCALE, TOY_TILE_PX, TOY_OVERLAP_PX = 2, 32, 4


def toy_sr_model(scale: int = TOY_SCALE, *, noise: float = 0.005):  # noqa: ANN201 (onnx.ModelProto)
    """Nearest-neighbour x``scale`` plus a small random 3x3 mix of standard deviation ``noise``
    (Conv + DepthToSpace), without metadata; built with the onnx package only (no torch). The
    one toy SR graph of the suite."""
    from onnx import TensorProto, helper, numpy_helper

    s2 = scale * scale
    w = np.random.default_rng(0).normal(0.0, noise, (3 * s2, 3, 3, 3)).astype(np.float32)
    for c in range(3):
        w[c * s2 : (c + 1) * s2, c, 1, 1] += 1.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["lr", "w"], ["f"], pads=[1, 1, 1, 1]),
         helper.make_node("DepthToSpace", ["f"], ["sr"], blocksize=scale, mode="CRD")],
        "toy_sr",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3, "h2", "w2"])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="session")
def toy_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy x2 graph with edgesr metadata (tile 32, overlap 4), saved once per session."""
    import onnx

    from edgesr.spec import ModelSpec

    model = toy_sr_model()
    spec = ModelSpec(arch="conv_x2", scale=TOY_SCALE, tile_px=TOY_TILE_PX, overlap_px=TOY_OVERLAP_PX)
    for key, value in spec.to_metadata().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    path = tmp_path_factory.mktemp("toy_onnx") / "conv_x2.onnx"
    onnx.save(model, str(path))
    path.chmod(0o644)  # readable by the unprivileged user of the read-only-folder tests
    return path


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """osffnet-tiny_x4 (untrained, seeded) through the real exporter, once per session; the
    parity self-check is left to tests/test_export*.py, which test it."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from edgesr.export.onnx_export import export_model

    path = tmp_path_factory.mktemp("tiny_export") / "osffnet-tiny_x4.onnx"
    export_model("osffnet-tiny_x4", output=path, check=False)
    return path


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


@pytest.fixture(scope="module")
def photo_crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small real photos for training tests: 96x96 crops of three scikit-image photos (never
    Set5/Set14)."""
    import cv2
    from skimage import data

    root = tmp_path_factory.mktemp("photo_crops")
    for name in ("astronaut", "coffee", "chelsea"):
        image = getattr(data, name)()[40:136, 60:156]
        cv2.imwrite(str(root / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root
