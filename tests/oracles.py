"""Oracles written here, outside the product code, for the tests that need an expected value.

- ``bicubic_upscale``: Keys' cubic convolution (a = -0.75, OpenCV's INTER_CUBIC constant),
  half-pixel centres, edge pixels replicated, written from the formulas in numpy.
- ``torch_sr`` / ``reference_sr``: a model's output by PyTorch itself and by ONNX's reference
  evaluator (onnx.reference, op by op in numpy, not ONNX Runtime).
- ``skimage_psnr``: scikit-image's PSNR.
"""

from __future__ import annotations

import numpy as np
import pytest

KEYS_A = -0.75  # OpenCV's cv2.INTER_CUBIC constant (imgproc/src/resize.cpp, interpolateCubic)


def keys_weights(t: np.ndarray) -> np.ndarray:
    """The four cubic-convolution weights for taps at offsets -1, 0, 1, 2 from floor(x)."""
    a = KEYS_A
    distances = np.stack([1 + t, t, 1 - t, 2 - t], axis=-1)
    near = ((a + 2) * distances - (a + 3)) * distances**2 + 1  # |d| <= 1
    far = ((a * distances - 5 * a) * distances + 8 * a) * distances - 4 * a  # 1 < |d| < 2
    return np.where(distances <= 1, near, far)


def _resize_axis(values: np.ndarray, scale: int, axis: int) -> np.ndarray:
    size = values.shape[axis]
    centres = (np.arange(size * scale) + 0.5) / scale - 0.5
    base = np.floor(centres).astype(int)
    weights = keys_weights(centres - base)  # (out, 4)
    taps = np.clip(base[:, None] + np.arange(-1, 3)[None, :], 0, size - 1)  # replicate the edge
    moved = np.moveaxis(values, axis, 0)
    out = np.einsum("ok,ok...->o...", weights, moved[taps])
    return np.moveaxis(out, 0, axis)


def bicubic_upscale(plane: np.ndarray, scale: int) -> np.ndarray:
    """A 2-D plane upscaled by an integer ``scale`` (float64), separably along rows then columns."""
    return _resize_axis(_resize_axis(np.asarray(plane, np.float64), scale, 0), scale, 1)


def torch_sr(model, lr: np.ndarray) -> np.ndarray:  # noqa: ANN001
    import torch

    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(lr, np.float32))).numpy()


def reference_sr(proto, lr: np.ndarray) -> np.ndarray:  # noqa: ANN001
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(proto).run(None, {proto.graph.input[0].name: lr.astype(np.float32)})[0]


def skimage_psnr(candidate: np.ndarray, reference: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(reference.astype(np.float64), candidate.astype(np.float64),
                                         data_range=1.0))


def ort_sr(proto, lr: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The graph (a ModelProto or an .onnx path) run by ONNX Runtime's CPU provider directly
    (not through edgesr's session)."""
    import onnxruntime as ort

    source = proto.SerializeToString() if hasattr(proto, "SerializeToString") else str(proto)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: lr.astype(np.float32)})[0]


# The export self-check's tolerances as edgesr-export --help and the README state them.
FP32_MAX_ABS, FP32_MIN_DB, FP16_MIN_DB = 1e-3, 60.0, 45.0


def parity_verdict(reference: np.ndarray, candidate: np.ndarray, *, fp16: bool) -> tuple[float, float, bool]:
    """(max abs error, PSNR dB by scikit-image, passed) under the stated tolerances."""
    if not np.isfinite(candidate).all():
        return float("inf"), float("-inf"), False
    max_abs = float(np.abs(candidate.astype(np.float64) - reference.astype(np.float64)).max())
    db = skimage_psnr(candidate, reference)
    passed = db >= FP16_MIN_DB if fp16 else (max_abs <= FP32_MAX_ABS and db >= FP32_MIN_DB)
    return max_abs, db, passed


def assert_checker_agrees(result, reference: np.ndarray, candidate: np.ndarray, *, fp16: bool) -> bool:  # noqa: ANN001
    """The checker's numbers and verdict equal the oracle's on the same outputs; returns the verdict."""
    max_abs, db, passed = parity_verdict(reference, candidate, fp16=fp16)
    assert result.passed == passed, (result.line(), max_abs, db)
    if np.isfinite(max_abs):
        assert result.max_abs_error == pytest.approx(max_abs, rel=1e-6, abs=1e-9), result.line()
        assert result.psnr_db == pytest.approx(db, abs=1e-6), result.line()
    return passed


def psnr_y_oracle(sr: np.ndarray, hr: np.ndarray, *, border: int) -> float:
    """The SR tables' PSNR-Y by scikit-image: float SR in [0, 1] to 8 bits (half up, as
    MATLAB's im2uint8), ``border`` pixels cropped, skimage's rgb2ycbcr Y (BT.601, 16-235),
    skimage's PSNR with a peak of 255."""
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio

    sr8 = np.clip(np.floor(np.asarray(sr, np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)
    y_sr, y_hr = (rgb2ycbcr(image[border:-border, border:-border])[..., 0] for image in (sr8, hr))
    return float(peak_signal_noise_ratio(y_hr, y_sr, data_range=255))
