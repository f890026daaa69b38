"""Export self-checks: the exported graph against torch (FP32) and FP16 against FP32.

Run on ONNX Runtime's CPU provider at inputs other than the trace size: a random odd-size
input and a crop of a real photo (scikit-image's astronaut, when scikit-image is there).
The tolerances are printed by ``edgesr-export --help``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from edgesr.errors import ExportError
from edgesr.metrics import psnr
from edgesr.spec import INPUT_NAME, OUTPUT_NAME, ModelSpec

logger = logging.getLogger(__name__)

# Self-check tolerances (printed by edgesr-export --help).
FP32_MAX_ABS_ERROR = 1e-3
FP32_MIN_PSNR_DB = 60.0
FP16_MIN_PSNR_DB = 45.0
ODD_HEIGHT_PX, ODD_WIDTH_PX = 37, 29  # odd, different from the trace size
PHOTO_CROP_PX = 96

@dataclass(frozen=True, kw_only=True)
class ParityResult:
    """One comparison of the exported graph against a reference on one input."""

    label: str  # "odd-size random", "photo crop"
    input_shape: tuple[int, ...]
    reference: str  # "torch" or "onnx fp32"
    candidate: str  # "onnx fp32" or "onnx fp16"
    max_abs_error: float
    psnr_db: float
    tolerance: str
    passed: bool

    def line(self) -> str:
        shape = "x".join(str(d) for d in self.input_shape)
        return (
            f"{self.label} {shape}: {self.candidate} vs {self.reference} max abs "
            f"{self.max_abs_error:.2e}, PSNR {self.psnr_db:.1f} dB "
            f"({'ok' if self.passed else 'FAILED'}; {self.tolerance})"
        )


def model_device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device


def onnx_session(model: onnx.ModelProto | str | Path):  # noqa: ANN201 (onnxruntime is optional)
    """An ONNX Runtime CPU session for a ModelProto or file. A Q/DQ graph runs as written, in
    float (``session.disable_quant_qdq``; no effect on a float graph), not through ONNX Runtime's
    int8 kernels, whose sums saturate on CPUs without VNNI (edgesr.runtime.engines.int8_cpu): an
    INT8 export is scored for its consumers (TensorRT, NPUs: exact int32 sums), whatever CPU
    exports it."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError(
            "the export self-check needs onnxruntime, which is not installed; "
            "pip install onnxruntime (edgesr[cpu]) or export with --no-check"
        ) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ExportError(f"ONNX Runtime cannot load the exported graph: {exc}") from None


def run_onnx(session, lr: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Run a session on an NCHW float32 batch and return ``sr``."""
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(lr, dtype=np.float32)})[0]


def _torch_sr(model: nn.Module, lr: np.ndarray) -> np.ndarray:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)).to(model_device(model))
            return model(x).cpu().numpy()
    finally:
        model.train(was_training)


def _expect_shape(sr: np.ndarray, lr: np.ndarray, scale: int, what: str) -> None:
    n, c, h, w = lr.shape
    expected = (n, 3, h * scale, w * scale)
    if tuple(sr.shape) != expected:
        raise ExportError(
            f"{what} output for input {tuple(lr.shape)} has shape {tuple(sr.shape)}; expected "
            f"{expected} (scale {scale}). The export is broken; report the model name."
        )


def compare_outputs(
    reference: np.ndarray, candidate: np.ndarray, *, label: str, lr: np.ndarray,
    reference_name: str, candidate_name: str, fp16: bool,
) -> ParityResult:
    """``candidate`` vs ``reference`` (outputs for ``lr``) under the FP32 or FP16 tolerance."""
    finite = bool(np.isfinite(candidate).all())
    if finite:
        max_abs = float(np.max(np.abs(candidate.astype(np.float64) - reference.astype(np.float64))))
        db = psnr(candidate, reference, data_range=1.0)
    else:
        max_abs, db = float("inf"), float("-inf")
    if fp16:
        tolerance = f"PSNR >= {FP16_MIN_PSNR_DB:g} dB, no NaN/Inf"
        passed = finite and db >= FP16_MIN_PSNR_DB
    else:
        tolerance = f"max abs <= {FP32_MAX_ABS_ERROR:g}, PSNR >= {FP32_MIN_PSNR_DB:g} dB"
        passed = finite and max_abs <= FP32_MAX_ABS_ERROR and db >= FP32_MIN_PSNR_DB
    return ParityResult(
        label=label, input_shape=tuple(lr.shape), reference=reference_name,
        candidate=candidate_name, max_abs_error=max_abs, psnr_db=db, tolerance=tolerance,
        passed=passed,
    )


def _as_session(model_or_session):  # noqa: ANN001, ANN202
    return model_or_session if hasattr(model_or_session, "run") else onnx_session(model_or_session)


def check_parity(
    model: nn.Module, onnx_model, *, lr: np.ndarray, scale: int,  # noqa: ANN001
    label: str = "input",
) -> ParityResult:
    """Torch vs the FP32 ONNX graph (ModelProto, file or ONNX Runtime session; CPU) on
    ``lr`` (NCHW float32 in [0, 1]). Raises ExportError on a wrong output shape; the
    tolerance verdict is in ``passed``."""
    return fp32_parity(model, _as_session(onnx_model), lr=lr, scale=scale, label=label)[0]


def fp32_parity(
    model: nn.Module, session, *, lr: np.ndarray, scale: int, label: str,  # noqa: ANN001
) -> tuple[ParityResult, np.ndarray]:
    """:func:`check_parity`, also returning the FP32 ONNX output (the FP16 check's reference)."""
    reference = _torch_sr(model, lr)
    candidate = run_onnx(session, lr)
    _expect_shape(reference, lr, scale, "torch")
    _expect_shape(candidate, lr, scale, "ONNX")
    result = compare_outputs(reference, candidate, label=label, lr=lr, reference_name="torch",
                      candidate_name="onnx fp32", fp16=False)
    return result, candidate


def check_fp16_parity(
    fp32_model, fp16_model, *, lr: np.ndarray, scale: int, label: str = "input",  # noqa: ANN001
) -> ParityResult:
    """The FP16 graph vs the FP32 graph (ModelProtos, files or sessions; ONNX Runtime CPU)
    on ``lr``."""
    reference = run_onnx(_as_session(fp32_model), lr)
    return fp16_parity(reference, _as_session(fp16_model), lr=lr, scale=scale, label=label)


def fp16_parity(
    reference: np.ndarray, fp16_session, *, lr: np.ndarray, scale: int, label: str,  # noqa: ANN001
) -> ParityResult:
    """:func:`check_fp16_parity` against an FP32 ONNX output already computed for ``lr``."""
    candidate = run_onnx(fp16_session, lr)
    _expect_shape(candidate, lr, scale, "FP16 ONNX")
    if candidate.dtype != np.float32:
        raise ExportError(f"the FP16 graph returns {candidate.dtype}; expected float32 output")
    return compare_outputs(reference, candidate, label=label, lr=lr, reference_name="onnx fp32",
                    candidate_name="onnx fp16", fp16=True)


def photo_crop(*, size_px: int = PHOTO_CROP_PX) -> np.ndarray | None:
    """The centre ``size_px`` square of scikit-image's astronaut as 1x3xHxW float32 in
    [0, 1], or None (logged) when scikit-image is not installed."""
    try:
        from skimage import data as skdata
    except ImportError:
        logger.info("scikit-image is not installed: skipping the photo parity check")
        return None
    image = skdata.astronaut()
    h, w = image.shape[:2]
    top, left = (h - size_px) // 2, (w - size_px) // 2
    crop = image[top : top + size_px, left : left + size_px, :3]
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def check_inputs(spec: ModelSpec) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    h, w = max(ODD_HEIGHT_PX, spec.min_size_px), max(ODD_WIDTH_PX, spec.min_size_px)
    inputs = [("odd-size random", rng.random((1, 3, h, w), dtype=np.float32))]
    photo = photo_crop(size_px=max(PHOTO_CROP_PX, spec.min_size_px))
    if photo is not None:
        inputs.append(("photo crop", photo))
    return inputs


def fail_if_any(results: Sequence[ParityResult], name: str) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        raise ExportError(
            f"{name}: the exported graph does not match: "
            + "; ".join(r.line() for r in failed)
            + ". Nothing was written. Try --no-simplify (or without --fp16) and report the model name."
        )
