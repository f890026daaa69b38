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

import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch
from edgesr.export.dsconv_onnx import (
    DSCONV_CUSTOM_OPSETS,
    MIN_OPSET,
    attach_dsconv_function,
    dsconv_as_custom_op,
    inline_dsconv_functions,
)
from edgesr.export.fp16_range import fp32_scopes
from edgesr.export.fp16 import (
    convert_to_fp16,
    node_labels,
    sorted_counts,
    verify_fp16_graph,
)
from onnx import TensorProto
from torch import nn

import edgesr
from edgesr.errors import ConfigError, EdgeSRError, ExportError, WeightsError
from edgesr.fileio import check_output_file, check_writable_folder, write_atomically
from edgesr.metrics import psnr
from edgesr.models.registry import (
    count_params,
    create_model,
    is_test_variant,
    model_name,
    model_spec,
)
from edgesr.ops.dsconv import DSConv
from edgesr.spec import (
    DEFAULT_OPSET,
    INPUT_NAME,
    METADATA_PREFIX,
    OUTPUT_NAME,
    ModelSpec,
)
from edgesr.weights import shipped_weights
from edgesr.weights_io import load_weights, weights_sha256

__all__ = [
    "FP16_MIN_PSNR_DB",
    "FP32_MAX_ABS_ERROR",
    "FP32_MIN_PSNR_DB",
    "ExportReport",
    "ParityResult",
    "check_fp16_parity",
    "check_parity",
    "default_output_name",
    "export_model",
    "float_param_count",
    "onnx_from_model",
    "onnx_session",
    "photo_crop",
    "run_onnx",
    "simplify_onnx",
    "spec_for",
]

logger = logging.getLogger(__name__)

# Self-check tolerances (printed by edgesr-export --help).
FP32_MAX_ABS_ERROR = 1e-3
FP32_MIN_PSNR_DB = 60.0
FP16_MIN_PSNR_DB = 45.0
ODD_HEIGHT_PX, ODD_WIDTH_PX = 37, 29  # odd, different from the trace size
PHOTO_CROP_PX = 96
TRACE_HEIGHT_PX, TRACE_WIDTH_PX = 32, 48  # raised to the model's min_input_px when larger
_MAX_OPSET = 20  # the newest the exporter knows (MIN_OPSET: GridSample needs 16)
SIMPLIFIERS = ("onnxsim", "onnxslim")

# Dim names of the dynamic axes.
_IN_DIMS = {0: "batch", 2: "height", 3: "width"}
_OUT_DIMS = {0: "batch", 2: "sr_height", 3: "sr_width"}



# --------------------------------------------------------------------------- results


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


@dataclass(frozen=True, kw_only=True)
class ExportReport:
    """What :func:`export_model` wrote and measured."""

    model: str
    path: Path
    size_bytes: int
    opset: int
    node_counts: dict[str, int]  # main-graph nodes by op_type, most frequent first
    params: int  # float elements in the initializers
    torch_params: int  # trainable parameters of the PyTorch model
    simplifier: str  # "onnxsim 0.8.1", "onnxslim 0.1.98" or "none"
    weights_source: str
    spec: ModelSpec  # as written into the file's metadata
    parity: tuple[ParityResult, ...] = ()
    fp32_kept: tuple[tuple[str, str], ...] = ()  # FP16 export: (name, op_type) kept FP32

    @property
    def precision(self) -> str:
        return self.spec.precision

    @property
    def node_total(self) -> int:
        return sum(self.node_counts.values())

    @property
    def fp32_nodes(self) -> tuple[str, ...]:
        """FP16 export: ``"name (OpType)"`` of the nodes kept float32."""
        return tuple(node_labels(self.fp32_kept))

    @property
    def fp32_op_counts(self) -> dict[str, int]:
        """FP16 export: the kept float32 nodes by op_type, most frequent first."""
        return sorted_counts(op_type for _, op_type in self.fp32_kept)


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


def float_param_count(model: onnx.ModelProto) -> int:
    """Float elements (float32/float16/bfloat16/float64) in the main graph's initializers."""
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)
    return sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer if t.data_type in floats)


def _node_counts(model: onnx.ModelProto) -> dict[str, int]:
    return sorted_counts(n.op_type for n in model.graph.node)


def _check_opset(opset: int) -> None:
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= _MAX_OPSET:
        raise ConfigError(
            f"opset must be an integer from {MIN_OPSET} to {_MAX_OPSET}, received {opset!r}; "
            f"use the default {DEFAULT_OPSET} (GridSample needs 16; TensorRT mis-executes "
            "GridSample at opset 20)."
        )


def _check_output_folder(path: Path) -> None:
    check_writable_folder(path.parent if str(path.parent) else Path("."), what=f"ONNX output {path}")


def _write_atomic(model: onnx.ModelProto, path: Path, *, overwrite: bool = True) -> None:
    """Write ``model`` to ``path`` atomically; without ``overwrite`` a file that appeared
    meanwhile is refused at commit time (the caller checked the path first)."""
    write_atomically(path, lambda tmp: onnx.save(model, tmp), overwrite=overwrite)
    logger.info("wrote %s", path)


_TOOL_METADATA_PREFIXES = ("onnxsim.", "onnxslim.")


def _set_metadata(model: onnx.ModelProto, spec: ModelSpec, *, simplifier: str) -> None:
    # onnxsim 0.8 records its own bookkeeping (assigned node names, ...): not for users
    keep = {p.key: p.value for p in model.metadata_props
            if not p.key.startswith((METADATA_PREFIX, *_TOOL_METADATA_PREFIXES))}
    onnx.helper.set_model_props(model, {**keep, **spec.to_metadata()})  # replaces them all
    model.doc_string = (
        f"{spec.arch} (x{spec.scale}, {spec.precision}) exported by edgesr {spec.edgesr_version}; "
        f"simplifier: {simplifier}"
    )


def _constants_to_initializers(model: onnx.ModelProto) -> None:
    """Main-graph ``Constant`` nodes holding a tensor of more than one element become
    initializers (onnxsim leaves some folded weights as Constant nodes), so every weight
    is an initializer. Scalar constants (GELU's 0.5, a norm's eps) stay Constant nodes."""
    kept = []
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if (
            node.op_type == "Constant"
            and node.domain in ("", "ai.onnx")
            and set(attrs) == {"value"}
            and int(np.prod(attrs["value"].t.dims, dtype=np.int64)) > 1
        ):
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attrs["value"].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def _name_dynamic_dims(model: onnx.ModelProto) -> None:
    """Give lr/sr's dynamic axes stable names; fail if any was frozen to a number."""
    for values, names in ((model.graph.input, _IN_DIMS), (model.graph.output, _OUT_DIMS)):
        for vi in values:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) != 4:
                raise ExportError(f"{vi.name!r} has rank {len(dims)}; expected 4 (NCHW)")
            for axis, dim_name in names.items():
                if dims[axis].HasField("dim_value"):
                    raise ExportError(
                        f"axis {axis} of {vi.name!r} became static ({dims[axis].dim_value}) "
                        "during export; expected a dynamic axis. Export with --no-simplify "
                        "and report the model name."
                    )
                dims[axis].dim_param = dim_name


# --------------------------------------------------------------------------- simplify


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


# --------------------------------------------------------------------------- export


def _trace_size(spec: ModelSpec) -> tuple[int, int]:
    return max(TRACE_HEIGHT_PX, spec.min_size_px), max(TRACE_WIDTH_PX, spec.min_size_px)


def _torch_to_onnx(model: nn.Module, *, opset: int, height: int, width: int) -> onnx.ModelProto:
    # the custom domain only when there is a DSConv (torch warns about an unused domain)
    custom_opsets = DSCONV_CUSTOM_OPSETS if _dsconv_modules(model) else None
    generator = torch.Generator().manual_seed(0)
    lr = torch.rand(1, 3, height, width, generator=generator).to(_device(model))
    buffer = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with dsconv_as_custom_op(), torch.no_grad(), warnings.catch_warnings():
            # the legacy-exporter notice, and the trace noting DSConv's constant snake matrix
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                model, (lr,), buffer, dynamo=False, opset_version=opset,
                custom_opsets=custom_opsets, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: _IN_DIMS, OUTPUT_NAME: _OUT_DIMS},
            )
    except EdgeSRError:
        raise
    except Exception as exc:  # the exporter raises many types
        raise ExportError(
            f"torch.onnx.export failed for {type(model).__name__} at opset {opset}: {exc}"
        ) from exc
    finally:
        model.train(was_training)
    return attach_dsconv_function(onnx.load_from_string(buffer.getvalue()))


def _check_graph(model: onnx.ModelProto, what: str) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the {what} graph fails the ONNX checker: {exc}") from None


def _export_fp32(
    model: nn.Module, *, spec: ModelSpec, opset: int, simplify: bool, inline_functions: bool
) -> tuple[onnx.ModelProto, ModelSpec, str]:
    """The checked FP32 graph, the spec written into it (provenance filled in) and the
    simplifier used. ``opset`` was checked by the public entry point."""
    if spec.precision != "fp32":
        raise ConfigError(
            f"onnx_from_model writes FP32 graphs; received spec.precision={spec.precision!r}. "
            "Convert the FP32 graph with fp16_from_onnx, or call export_model(fp16=True)."
        )
    if opset == 20 and _dsconv_modules(model):
        logger.warning("opset 20: TensorRT mis-executes GridSample at opset 20; prefer 18")
    spec = _with_provenance(spec, model)
    height, width = _trace_size(spec)
    logger.info("exporting %s (opset %d, traced at %dx%d)...", spec.arch, opset, height, width)
    proto = _torch_to_onnx(model, opset=opset, height=height, width=width)
    if inline_functions:
        proto = inline_dsconv_functions(proto)
    simplifier = "none"
    if simplify:
        logger.info("simplifying...")
        proto, simplifier = simplify_onnx(proto)
    _constants_to_initializers(proto)
    _name_dynamic_dims(proto)
    _set_metadata(proto, spec, simplifier=simplifier)
    _check_graph(proto, "exported")
    return proto, spec, simplifier


def _dsconv_modules(model: nn.Module) -> list[DSConv]:
    return [m for m in model.modules() if isinstance(m, DSConv)]


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device


def onnx_from_model(
    model: nn.Module,
    *,
    spec: ModelSpec,
    path: str | Path | None,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    inline_functions: bool = False,
) -> onnx.ModelProto:
    """Export ``model`` to an FP32 ONNX graph (see the module docstring) and return it.

    ``spec`` goes into ``metadata_props``; an empty ``edgesr_version`` / ``weights_sha256``
    is filled from ``edgesr.__version__`` / the model's tensors. ``path`` (None: nothing
    written) is written atomically. ``inline_functions=True`` replaces every
    DynamicSnakeConv node by its standard-op body (for tools that cannot read local
    functions; TensorRT then cannot use the fused plugin).
    """
    _check_opset(opset)
    if path is not None:
        _check_output_folder(Path(path))
    proto, _, _ = _export_fp32(model, spec=spec, opset=opset, simplify=simplify,
                               inline_functions=inline_functions)
    if path is not None:
        _write_atomic(proto, Path(path))
    return proto


# --------------------------------------------------------------------------- checks


def onnx_session(model: onnx.ModelProto | str | Path):  # noqa: ANN201 (onnxruntime is optional)
    """An ONNX Runtime CPU session for a ModelProto or file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError(
            "the export self-check needs onnxruntime, which is not installed; "
            "pip install onnxruntime (edgesr[cpu]) or export with --no-check"
        ) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
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
            x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)).to(_device(model))
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


def _compare(
    reference: np.ndarray, candidate: np.ndarray, *, label: str, lr: np.ndarray,
    reference_name: str, candidate_name: str, fp16: bool,
) -> ParityResult:
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
    return _fp32_parity(model, _as_session(onnx_model), lr=lr, scale=scale, label=label)[0]


def _fp32_parity(
    model: nn.Module, session, *, lr: np.ndarray, scale: int, label: str,  # noqa: ANN001
) -> tuple[ParityResult, np.ndarray]:
    """:func:`check_parity`, also returning the FP32 ONNX output (the FP16 check's reference)."""
    reference = _torch_sr(model, lr)
    candidate = run_onnx(session, lr)
    _expect_shape(reference, lr, scale, "torch")
    _expect_shape(candidate, lr, scale, "ONNX")
    result = _compare(reference, candidate, label=label, lr=lr, reference_name="torch",
                      candidate_name="onnx fp32", fp16=False)
    return result, candidate


def check_fp16_parity(
    fp32_model, fp16_model, *, lr: np.ndarray, scale: int, label: str = "input",  # noqa: ANN001
) -> ParityResult:
    """The FP16 graph vs the FP32 graph (ModelProtos, files or sessions; ONNX Runtime CPU)
    on ``lr``."""
    reference = run_onnx(_as_session(fp32_model), lr)
    return _fp16_parity(reference, _as_session(fp16_model), lr=lr, scale=scale, label=label)


def _fp16_parity(
    reference: np.ndarray, fp16_session, *, lr: np.ndarray, scale: int, label: str,  # noqa: ANN001
) -> ParityResult:
    """:func:`check_fp16_parity` against an FP32 ONNX output already computed for ``lr``."""
    candidate = run_onnx(fp16_session, lr)
    _expect_shape(candidate, lr, scale, "FP16 ONNX")
    if candidate.dtype != np.float32:
        raise ExportError(f"the FP16 graph returns {candidate.dtype}; expected float32 output")
    return _compare(reference, candidate, label=label, lr=lr, reference_name="onnx fp32",
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


def _check_inputs(spec: ModelSpec) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    h, w = max(ODD_HEIGHT_PX, spec.min_size_px), max(ODD_WIDTH_PX, spec.min_size_px)
    inputs = [("odd-size random", rng.random((1, 3, h, w), dtype=np.float32))]
    photo = photo_crop(size_px=max(PHOTO_CROP_PX, spec.min_size_px))
    if photo is not None:
        inputs.append(("photo crop", photo))
    return inputs


def _fail_if_any(results: Sequence[ParityResult], name: str) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        raise ExportError(
            f"{name}: the exported graph does not match: "
            + "; ".join(r.line() for r in failed)
            + ". Nothing was written. Try --no-simplify (or without --fp16) and report the model name."
        )


# --------------------------------------------------------------------------- export_model


def untrained_error(name: str) -> WeightsError:
    """The one refusal of a model without weights (export, the export cache, run, bench)."""
    return WeightsError(
        f"edgesr ships no trained weights for {name} (`edgesr-weights list` shows which "
        "models have them); pass --weights FILE, or --allow-untrained to export the seeded "
        "random initialization for timing only"
    )


def _model_with_weights(name: str, weights: str | Path | None, *,
                        allow_untrained: bool = False) -> tuple[nn.Module, str]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the untrained initialization is reproducible
        model = create_model(name)
    if weights is not None:
        load_weights(model, weights)
        return model, f"file {weights}"
    shipped = shipped_weights(name)
    if shipped is not None:
        load_weights(model, shipped)
        return model, f"shipped ({shipped.name})"
    if not (allow_untrained or is_test_variant(name)):
        raise untrained_error(name)
    logger.warning("%s: exporting the UNTRAINED initialization (timing only; its output is "
                   "not a useful upscale)", name)
    return model, "untrained initialization"


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

    model, source = _model_with_weights(name, weights, allow_untrained=allow_untrained)
    scopes = fp32_scopes(model) if fp16 else []  # measured before export: values past float16
    proto, spec, simplifier = _export_fp32(
        model, spec=model_spec(name), opset=opset, simplify=simplify,
        inline_functions=inline_functions and not fp16,
    )
    parity: list[ParityResult] = []
    fp32_outputs: list[tuple[str, np.ndarray, np.ndarray]] = []  # label, lr, FP32 ONNX sr
    if check:
        logger.info("checking torch vs ONNX Runtime...")
        session = onnx_session(proto)
        for label, lr in _check_inputs(spec):
            result, sr = _fp32_parity(model, session, lr=lr, scale=spec.scale, label=label)
            parity.append(result)
            fp32_outputs.append((label, lr, sr))
        _fail_if_any(parity, name)

    final, fp32_kept = proto, []
    if fp16:
        logger.info("converting to FP16...")
        final, fp32_kept = convert_to_fp16(proto, fp32_scopes=scopes)
        if inline_functions:
            final = inline_dsconv_functions(final)
        spec = replace(spec, precision="fp16")
        _set_metadata(final, spec, simplifier=simplifier)
        verify_fp16_graph(final, full_check=True)
        if check:
            logger.info("checking FP16 vs FP32 ONNX...")
            half = onnx_session(final)
            results = [_fp16_parity(sr, half, lr=lr, scale=spec.scale, label=label)
                       for label, lr, sr in fp32_outputs]
            parity += results
            _fail_if_any(results, name)

    _write_atomic(final, path, overwrite=overwrite)
    return ExportReport(
        model=name, path=path, size_bytes=path.stat().st_size, opset=opset,
        node_counts=_node_counts(final), params=float_param_count(final),
        torch_params=count_params(model), simplifier=simplifier, weights_source=source,
        spec=spec, parity=tuple(parity), fp32_kept=tuple(fp32_kept),
    )
