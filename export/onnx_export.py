"""PyTorch -> simplified, checked ONNX with edgesr metadata (DESIGN sections 6 and 7).

Two entry points:

* :func:`onnx_from_model` lowers one ``nn.Module`` to an FP32 ``onnx.ModelProto``: the
  TorchScript exporter (``dynamo=False``, the exporter that reads the DSConv ``symbolic``)
  with every DSConv as one ``edgesr::DynamicSnakeConv`` node, its local function attached,
  input ``lr`` [N,3,H,W] and output ``sr`` [N,3,sH,sW] with N, H, W dynamic, simplified by
  onnxsim (onnxslim when onnxsim fails), checked by ``onnx.checker`` (full check), with the
  :class:`~edgesr.spec.ModelSpec` in ``metadata_props``; written atomically when given a path.
* :func:`export_model` does the whole job behind ``edgesr-export``: builds the named model,
  loads weights (``--weights`` file, else edgesr's shipped weights, else the untrained
  initialization with a WARNING), exports, optionally converts to FP16
  (:func:`edgesr.export.fp16.fp16_from_onnx`), checks itself, writes the file and returns an
  :class:`ExportReport`.

Self-check (``check=True``), all on ONNX Runtime's CPUExecutionProvider:

* FP32: torch vs ONNX on a random input of an odd size (1x3x37x29, larger when the model's
  minimum input side is larger) and on a real photo (the centre 96x96 of scikit-image's
  astronaut; skipped with a log line when scikit-image is not installed). Tolerance:
  max abs error <= 1e-3 and PSNR >= 60 dB (data range 1).
* FP16: the same inputs through the FP16 graph vs the FP32 ONNX graph: PSNR >= 45 dB and no
  NaN/Inf. (On the CPU provider, ONNX Runtime computes FP16 ops that lack a CPU FP16 kernel
  in float32, so this measures weight rounding and the graph's casts more than FP16
  arithmetic; GPU runs measure the rest.)
* ``sr`` must be ``scale`` x the input size. A failed check raises ExportError and writes
  nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from torch import nn

import edgesr
from edgesr.errors import ConfigError
from edgesr.export.deploy_graph import gelu_fusable
from edgesr.export.dsconv_onnx import MIN_OPSET, inline_dsconv_functions
from edgesr.export.export_report import ExportReport
from edgesr.export.fp16 import convert_to_fp16, verify_fp16_graph
from edgesr.export.fp16_range import fp32_scopes
from edgesr.export.graph_tidy import (
    constants_to_initializers,
    float_param_count,
    name_dynamic_dims,
    node_counts,
    set_metadata,
)
from edgesr.export.model_loading import model_with_weights
from edgesr.export.parity import (
    ParityResult,
    check_inputs,
    fail_if_any,
    fp16_parity,
    fp32_parity,
    onnx_session,
)
from edgesr.export.simplify import simplify_onnx
from edgesr.export.torch_trace import check_graph, dsconv_modules, torch_to_onnx, trace_size
from edgesr.fileio import check_output_file, check_writable_folder, write_atomically
from edgesr.models.deploy import deploy
from edgesr.models.registry import count_params, model_name, model_spec
from edgesr.spec import DEFAULT_OPSET, ModelSpec
from edgesr.weights_io import weights_sha256

__all__ = [
    "ExportReport",
    "default_output_name",
    "export_model",
    "onnx_from_model",
    "spec_for",
]

logger = logging.getLogger(__name__)

_MAX_OPSET = 20  # the newest the exporter knows (MIN_OPSET: GridSample needs 16)


# --------------------------------------------------------------------------- small helpers


def default_output_name(name: str, *, fp16: bool = False) -> str:
    """``osffnet_x4.onnx`` / ``osffnet_x4_fp16.onnx``."""
    return f"{name}_fp16.onnx" if fp16 else f"{name}.onnx"


def spec_for(name: str, *, model: nn.Module | None = None, precision: str = "fp32") -> ModelSpec:
    """The :class:`ModelSpec` written into the ONNX metadata: the table's spec + version, hash
    (of ``model``'s tensors; empty without a model)."""
    return _with_provenance(model_spec(name, precision=precision), model)


def _with_provenance(spec: ModelSpec, model: nn.Module | None) -> ModelSpec:
    """Fill an empty ``edgesr_version`` / ``weights_sha256`` (the latter from ``model``)."""
    return replace(
        spec,
        edgesr_version=spec.edgesr_version or edgesr.__version__,
        weights_sha256=spec.weights_sha256 or (weights_sha256(model) if model is not None else ""),
    )


def _check_opset(opset: int) -> None:
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= _MAX_OPSET:
        raise ConfigError(
            f"opset must be an integer from {MIN_OPSET} to {_MAX_OPSET}, received {opset!r}; "
            f"use the default {DEFAULT_OPSET} (GridSample needs 16; TensorRT mis-executes "
            "GridSample at opset 20)."
        )


def _write_atomic(model: onnx.ModelProto, path: Path, *, overwrite: bool = True) -> None:
    """Write ``model`` to ``path`` atomically; without ``overwrite`` a file that appeared
    meanwhile is refused at commit time (the caller checked the path first)."""
    write_atomically(path, lambda tmp: onnx.save(model, tmp), overwrite=overwrite)
    logger.info("wrote %s", path)


# --------------------------------------------------------------------------- export


def _export_fp32(
    model: nn.Module, *, spec: ModelSpec, opset: int, simplify: bool, inline_functions: bool,
    deployment: bool,
) -> tuple[onnx.ModelProto, ModelSpec, str]:
    """The checked FP32 graph, the spec written into it (provenance filled in) and the
    simplifier used. ``opset`` was checked by the public entry point. ``deployment``: export
    :func:`~edgesr.models.deploy.deploy`'s form (the weights hash stays the training form's)."""
    if spec.precision != "fp32":
        raise ConfigError(
            f"onnx_from_model writes FP32 graphs; received spec.precision={spec.precision!r}. "
            "Convert the FP32 graph with fp16_from_onnx, or call export_model(fp16=True)."
        )
    if opset == 20 and dsconv_modules(model):
        logger.warning("opset 20: TensorRT mis-executes GridSample at opset 20; prefer 18")
    spec = _with_provenance(spec, model)
    height, width = trace_size(spec)
    form = "deployment" if deployment else "training"
    logger.info("exporting %s, %s form (opset %d, traced at %dx%d)...", spec.arch, form, opset,
                height, width)
    proto = torch_to_onnx(deploy(model) if deployment else model, opset=opset, height=height,
                           width=width)
    if deployment:  # before onnxsim, which would fold GELU's 0.5 into the next conv
        gelu_fusable(proto)
    if inline_functions:
        proto = inline_dsconv_functions(proto)
    simplifier = "none"
    if simplify:
        logger.info("simplifying...")
        proto, simplifier = simplify_onnx(proto)
    constants_to_initializers(proto)
    name_dynamic_dims(proto)
    set_metadata(proto, spec, simplifier=simplifier, graph_form=form)
    check_graph(proto, "exported")
    return proto, spec, simplifier


def onnx_from_model(
    model: nn.Module,
    *,
    spec: ModelSpec,
    path: str | Path | None,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    inline_functions: bool = False,
    deployment: bool = True,
) -> onnx.ModelProto:
    """Export ``model`` to an FP32 ONNX graph (see the module docstring) and return it.

    ``spec`` goes into ``metadata_props``; an empty ``edgesr_version`` / ``weights_sha256``
    is filled from ``edgesr.__version__`` / the model's tensors. ``path`` (None: nothing
    written) is written atomically. ``inline_functions=True`` replaces every
    DynamicSnakeConv node by its standard-op body (for tools that cannot read local
    functions; TensorRT then cannot use the fused plugin). ``deployment=False`` exports the
    training form as it is (for comparisons; :mod:`edgesr.models.deploy`).
    """
    _check_opset(opset)
    if path is not None:  # a writable folder before the export work
        check_writable_folder(Path(path).parent, what=f"ONNX output {path}")
    proto, _, _ = _export_fp32(model, spec=spec, opset=opset, simplify=simplify,
                               inline_functions=inline_functions, deployment=deployment)
    if path is not None:
        _write_atomic(proto, Path(path))
    return proto


# --------------------------------------------------------------------------- export_model


def export_model(
    name_or_family: str,
    *,
    scale: int | None = None,
    weights: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    output: str | Path | None = None,
    check: bool = True,
    simplify: bool = True,
    inline_functions: bool = False,
    overwrite: bool = True,
    allow_untrained: bool = False,
    deployment: bool = True,
) -> ExportReport:
    """Export a named model to ONNX, check it, write it, and report (module docstring).

    ``output`` defaults to ``<name>.onnx`` (``<name>_fp16.onnx``) in the current folder;
    ``overwrite=False`` refuses an existing file. With ``fp16`` the FP32 graph is converted
    before DynamicSnakeConv is inlined (``inline_functions``), so the inlined body keeps
    its float32 computation.
    """
    name = model_name(name_or_family, scale=scale)
    _check_opset(opset)
    path = Path(output) if output is not None else Path(default_output_name(name, fp16=fp16))
    if path.suffix != ".onnx":
        raise ConfigError(f"output {str(path)!r} should end in .onnx; rename it")
    if weights is not None and path.resolve() == Path(weights).resolve():
        raise ConfigError(f"output {str(path)!r} is the weights file; choose another -o")
    # folder writable, not an input, no silent replacement: before the minutes of export work
    check_output_file(path, inputs=[weights] if weights is not None else [], overwrite=overwrite,
                      what="ONNX output")

    model, source = model_with_weights(name, weights, allow_untrained=allow_untrained)
    scopes = fp32_scopes(model) if fp16 else []  # measured before export: values past float16
    proto, spec, simplifier = _export_fp32(
        model, spec=model_spec(name), opset=opset, simplify=simplify,
        inline_functions=inline_functions and not fp16, deployment=deployment,
    )
    parity: list[ParityResult] = []
    fp32_outputs: list[tuple[str, np.ndarray, np.ndarray]] = []  # label, lr, FP32 ONNX sr
    if check:
        logger.info("checking torch vs ONNX Runtime...")
        session = onnx_session(proto)
        for label, lr in check_inputs(spec):
            result, sr = fp32_parity(model, session, lr=lr, scale=spec.scale, label=label)
            parity.append(result)
            fp32_outputs.append((label, lr, sr))
        fail_if_any(parity, name)

    final, fp32_kept = proto, []
    if fp16:
        logger.info("converting to FP16...")
        final, fp32_kept = convert_to_fp16(proto, fp32_scopes=scopes)
        if inline_functions:
            final = inline_dsconv_functions(final)
        spec = replace(spec, precision="fp16")
        set_metadata(final, spec, simplifier=simplifier,
                     graph_form="deployment" if deployment else "training")
        verify_fp16_graph(final, full_check=True)
        if check:
            logger.info("checking FP16 vs FP32 ONNX...")
            half = onnx_session(final)
            results = [fp16_parity(sr, half, lr=lr, scale=spec.scale, label=label)
                       for label, lr, sr in fp32_outputs]
            parity += results
            fail_if_any(results, name)

    _write_atomic(final, path, overwrite=overwrite)
    return ExportReport(
        model=name, path=path, size_bytes=path.stat().st_size, opset=opset,
        node_counts=node_counts(final), params=float_param_count(final),
        torch_params=count_params(model), simplifier=simplifier, weights_source=source,
        spec=spec, parity=tuple(parity), fp32_kept=tuple(fp32_kept),
    )
