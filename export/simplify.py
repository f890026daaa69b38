"""Graph simplification after export: onnxsim, with onnxslim as the fallback."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import onnx

from edgesr.errors import ConfigError, ExportError

logger = logging.getLogger(__name__)

SIMPLIFIERS = ("onnxsim", "onnxslim")


def _run_onnxsim(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    import onnxsim

    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise ExportError("onnxsim's own check found the simplified graph differs")
    return simplified, f"onnxsim {str(onnxsim.__version__).lstrip('v')}"


def _run_onnxslim(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    import onnxslim

    slimmed = onnxslim.slim(model)
    if not isinstance(slimmed, onnx.ModelProto):
        raise ExportError(f"onnxslim returned {type(slimmed).__name__}, expected a ModelProto")
    return slimmed, f"onnxslim {onnxslim.__version__}"


def simplify_onnx(
    model: onnx.ModelProto, *, simplifiers: Sequence[str] = SIMPLIFIERS
) -> tuple[onnx.ModelProto, str]:
    """Simplify with the first of ``simplifiers`` that succeeds (onnxsim, then onnxslim);
    return the model and which one ran ("onnxsim 0.8.1"). Dynamic axes stay dynamic.

    A simplifier whose result fails ``onnx.checker`` (structure only: the export runs the
    full check, with strict shape inference, once on the finished graph) counts as failed."""
    runners = {"onnxsim": _run_onnxsim, "onnxslim": _run_onnxslim}
    failures = []
    for name in simplifiers:
        if name not in runners:
            raise ConfigError(f"unknown simplifier {name!r}; expected one of {', '.join(runners)}")
        try:
            simplified, label = runners[name](model)
            onnx.checker.check_model(simplified)
        except Exception as exc:  # third-party simplifiers raise anything (C++ errors too)
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            failures.append(f"{name}: {reason}")
            logger.warning("%s failed (%s); %s", name, reason,
                           "trying the next simplifier" if name != simplifiers[-1] else "giving up")
            continue
        logger.info("simplified with %s", label)
        return simplified, label
    raise ExportError(
        f"every simplifier failed ({'; '.join(failures)}); expected at least one to produce "
        "a valid graph. Export without simplification (--no-simplify, simplify=False)."
    )
