"""Reading an ONNX model file into a :class:`ModelSpec` (ONNX Runtime only; no onnx, no torch).

``spec_from_onnx(path, scale=None)`` opens the file with an ONNX Runtime CPU session (graph
optimisations off, so it is quick), checks the graph looks like an SR model
(:func:`check_io`) and reads the ``edgesr.*`` entries of ``metadata_props``
(``custom_metadata_map``) with :func:`spec_from_session`, which the ``ort`` engine also calls
on its own session (one session per engine):

- one float input of rank 4 with 3 channels (where the channel dim is fixed), one output of
  rank 4 with 3 channels;
- with edgesr metadata: ``--scale`` (when given) must equal the metadata's scale;
- without metadata: ``scale`` must be given (the error asks for ``--scale``), and a 32×32
  probe is run: the output must be (1, 3, 32·s, 32·s). A spec built this way has
  ``arch="unknown"`` and ``min_size_px=16``: an unknown model may pool like ESA (which needs
  15 px), and ONNX Runtime can crash the whole process (SIGFPE) on too small an input
  instead of raising, so the engines pad tiny tiles up to 16 px.

Every failure is a one-line :class:`ModelFileError`: missing file, a folder, an empty or
non-ONNX file (garbage or truncated bytes), no metadata and no ``--scale``, a ``--scale``
that contradicts the metadata, and "not an SR model".
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesr.errors import EngineUnavailableError, ModelFileError
from edgesr.spec import META_SCALE, ModelSpec

logger = logging.getLogger(__name__)

#: Side of the square probe input run through models that carry no edgesr metadata.
PROBE_PX = 32
#: ``min_size_px`` given to models without metadata (ESA-style pooling needs 15).
UNKNOWN_MODEL_MIN_PX = 16
_FLOAT_TYPES = ("tensor(float)", "tensor(float16)")


def import_onnxruntime() -> Any:
    """``onnxruntime``, or a one-line EngineUnavailableError saying how to install it."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        raise EngineUnavailableError(
            "onnxruntime is not installed, and it is needed to read and run .onnx files; "
            "pip install -e '.[cpu]' (or '.[gpu]' on NVIDIA GPUs)"
        ) from None


def first_line(exc: BaseException, *, limit: int = 200) -> str:
    """A one-line, bounded summary of an exception message (ONNX Runtime's can be long)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.replace("[ONNXRuntimeError] : ", "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, kw_only=True)
class OnnxModelInfo:
    """What :func:`inspect_onnx` found: the spec plus the graph's I/O."""

    path: Path
    spec: ModelSpec
    has_metadata: bool
    input_name: str
    output_name: str
    input_shape: tuple[int | str | None, ...]
    output_shape: tuple[int | str | None, ...]
    input_type: str


def check_model_path(path: str | os.PathLike[str]) -> Path:
    """The path as a Path when it is an existing, non-empty regular file; else ModelFileError."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(
            f"model file {str(path)!r} does not exist; check the path, or export one with "
            "`edgesr-export --model osffnet --scale 4`"
        )
    if p.is_dir():
        raise ModelFileError(
            f"model {str(path)!r} is a folder, expected an .onnx file; pass the file inside it"
        )
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {str(path)!r}: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelFileError(
            f"model file {str(path)!r} is empty (0 bytes), expected an ONNX model; re-export or "
            "re-copy it"
        )
    return p


def _session(p: Path, ort: Any) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises pybind types (InvalidProtobuf, Fail, ...)
        raise ModelFileError(
            f"cannot load {str(p)!r} as an ONNX model: {first_line(exc)}; the file is not ONNX, "
            "truncated, or uses operators this ONNX Runtime lacks (re-export it with edgesr-export)"
        ) from None


def _dims(shape: Any) -> tuple[int | str | None, ...]:
    return tuple(shape) if isinstance(shape, (list, tuple)) else ()


def _not_sr(p: Path, what: str) -> ModelFileError:
    return ModelFileError(
        f"{str(p)!r} is not an SR model: {what}; expected input [N,3,H,W] -> output "
        "[N,3,s*H,s*W] (float), as edgesr-export writes"
    )


def check_io(session: Any, *, source: Path) -> tuple[Any, Any]:
    """(input, output) of an ONNX Runtime session that looks like an SR model: one float
    input [N,3,H,W] and one float output [N,3,s*H,s*W]; else ModelFileError naming ``source``."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise _not_sr(source, f"it has {len(inputs)} inputs and {len(outputs)} outputs, expected 1 and 1")
    inp, out = inputs[0], outputs[0]
    if inp.type not in _FLOAT_TYPES:
        raise _not_sr(source, f"its input {inp.name!r} is {inp.type}, expected tensor(float)")
    in_shape, out_shape = _dims(inp.shape), _dims(out.shape)
    if len(in_shape) != 4 or (isinstance(in_shape[1], int) and in_shape[1] != 3):
        raise _not_sr(source, f"its input {inp.name!r} has shape {list(in_shape)}, expected [N,3,H,W]")
    if out.type not in _FLOAT_TYPES:
        raise _not_sr(source, f"its output {out.name!r} is {out.type}, expected tensor(float)")
    if len(out_shape) != 4 or (isinstance(out_shape[1], int) and out_shape[1] != 3):
        raise _not_sr(source, f"its output {out.name!r} has shape {list(out_shape)}, expected [N,3,s*H,s*W]")
    return inp, out


def _probe(p: Path, session: Any, inp: Any, scale: int) -> None:
    shape = _dims(inp.shape)
    h = shape[2] if isinstance(shape[2], int) and shape[2] > 0 else PROBE_PX
    w = shape[3] if isinstance(shape[3], int) and shape[3] > 0 else PROBE_PX
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    x = np.random.default_rng(0).random((1, 3, h, w)).astype(dtype)
    try:
        (y,) = session.run(None, {inp.name: x})
    except Exception as exc:
        raise _not_sr(p, f"running a 1x3x{h}x{w} probe failed ({first_line(exc, limit=120)})") from None
    got = tuple(getattr(y, "shape", ()))
    if (len(got) == 4 and got[:2] == (1, 3) and got[2] % h == 0 and got[3] % w == 0
            and got[2] // h == got[3] // w):
        factor = got[2] // h
        if factor != scale:
            if factor <= 1:
                raise _not_sr(p, f"it maps a 1x3x{h}x{w} input to {got}, i.e. it does not upscale")
            raise ModelFileError(
                f"{str(p)!r} upscales by {factor} (a 1x3x{h}x{w} probe gave {got}), but --scale "
                f"{scale} was given; pass --scale {factor}"
            )
        return
    raise _not_sr(p, f"it maps a 1x3x{h}x{w} input to {got}, expected (1, 3, {h * scale}, {w * scale})")


def _check_scale(scale: int | None) -> None:
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1):
        raise ModelFileError(f"scale={scale!r}, expected a positive integer such as 4; fix --scale")


def spec_from_session(session: Any, *, source: Path, scale: int | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of the model an ONNX Runtime ``session`` runs (see the module
    notes): its edgesr metadata, or ``scale`` plus a probe run for files without.

    The session's I/O must have passed :func:`check_io`; ``source`` (the file) names it in
    errors. The ``ort`` engine passes its own session, so one file opens one session.
    """
    _check_scale(scale)
    p = Path(source)
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if META_SCALE in meta:
        spec = ModelSpec.from_metadata(meta, source=repr(str(p)))  # numbers within their ranges
        if scale is not None and scale != spec.scale:
            raise ModelFileError(
                f"--scale {scale} contradicts {str(p)!r}, an x{spec.scale} model (metadata "
                f"{META_SCALE}={spec.scale}); drop --scale or pass --scale {spec.scale}"
            )
    else:
        if scale is None:
            ModelSpec.from_metadata(meta, source=repr(str(p)))  # raises, asking for --scale
            raise ModelFileError(f"{str(p)!r} has no edgesr metadata: pass --scale")
        _probe(p, session, session.get_inputs()[0], scale)
        spec = ModelSpec(arch="unknown", scale=scale, min_size_px=UNKNOWN_MODEL_MIN_PX, extra=meta)
        logger.debug("%s has no edgesr metadata; using scale %d from --scale", p, scale)
    return spec


def inspect_onnx(path: str | os.PathLike[str], *, scale: int | None = None) -> OnnxModelInfo:
    """Open ``path`` with ONNX Runtime and return its spec and I/O (see the module notes)."""
    _check_scale(scale)
    p = check_model_path(path)
    session = _session(p, import_onnxruntime())
    inp, out = check_io(session, source=p)
    spec = spec_from_session(session, source=p, scale=scale)
    return OnnxModelInfo(
        path=p,
        spec=spec,
        has_metadata=META_SCALE in session.get_modelmeta().custom_metadata_map,
        input_name=inp.name,
        output_name=out.name,
        input_shape=_dims(inp.shape),
        output_shape=_dims(out.shape),
        input_type=inp.type,
    )


def spec_from_onnx(path: str | os.PathLike[str], *, scale: int | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of an ONNX SR model (metadata, or ``scale`` for files without)."""
    return inspect_onnx(path, scale=scale).spec


__all__ = [
    "OnnxModelInfo",
    "PROBE_PX",
    "UNKNOWN_MODEL_MIN_PX",
    "check_io",
    "check_model_path",
    "first_line",
    "import_onnxruntime",
    "inspect_onnx",
    "spec_from_onnx",
    "spec_from_session",
]
