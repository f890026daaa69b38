"""Reading an OpenVINO IR (``model.xml`` + ``model.bin``, from ``edgesr-export --format openvino``).

Only the ``openvino`` engine runs IR; ``edgesr-run --model x.xml`` picks it under ``auto`` and
refuses the other engines in one line. The spec comes from the edgesr metadata that OpenVINO's
ONNX frontend copied from the ONNX ``metadata_props`` into ``rt_info['framework']``, under the
same bounds as an ONNX file's (``ModelSpec.from_metadata``). An IR without it needs ``--scale``,
and is then checked by shape inference: a [1,3,32,32] input must give [1,3,32s,32s].
Every failure is one line: a missing ``.bin``, a file OpenVINO cannot read, a model that is
not [N,3,H,W] -> [N,3,sH,sW], a ``--scale`` that contradicts the metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgesr.errors import ModelFileError
from edgesr.runtime.model_file import PROBE_PX, UNKNOWN_MODEL_MIN_PX, check_model_path, first_line
from edgesr.spec import META_SCALE, ModelSpec

IR_SUFFIX = ".xml"
#: rt_info section where OpenVINO's ONNX frontend keeps the ONNX metadata_props.
RT_INFO_SECTION = "framework"


def is_ir_path(value: str | os.PathLike[str]) -> bool:
    return str(value).lower().endswith(IR_SUFFIX)


def ir_metadata(model: Any) -> dict[str, str]:
    """The ONNX metadata an OpenVINO model carries (``rt_info['framework']``), as strings."""
    rt_info = model.get_rt_info()
    if RT_INFO_SECTION not in rt_info:
        return {}
    return {str(key): value.astype(str) for key, value in rt_info[RT_INFO_SECTION].items()}


def read_ir(core: Any, path: str | os.PathLike[str]) -> Any:
    """``core.read_model`` of an IR, with one-line errors for a missing ``.bin`` or bad bytes."""
    xml = check_model_path(path)
    weights = xml.with_suffix(".bin")
    if not weights.is_file():
        raise ModelFileError(f"OpenVINO IR {str(xml)!r} has no weights file beside it ({weights.name}); copy "
                             "the .xml and .bin together")
    try:
        return core.read_model(str(xml), str(weights))
    except Exception as exc:  # noqa: BLE001  (OpenVINO raises RuntimeError subclasses)
        raise ModelFileError(f"OpenVINO cannot read {xml.name} as an IR model: {first_line(exc)}; re-export it "
                             "with edgesr-export --format openvino") from None


def _output_dims(model: Any, side: int) -> list[int] | None:
    """The static output shape for a [1,3,side,side] input, by shape inference (None: unknown)."""
    probe = model.clone()
    try:
        probe.reshape({probe.inputs[0]: [1, 3, side, side]})
    except Exception:  # noqa: BLE001  (a graph that cannot take that shape)
        return None
    shape = probe.outputs[0].get_partial_shape()
    return [d.get_length() for d in shape] if shape.is_static else None


def check_ir_io(model: Any, source: str) -> None:
    """One input [N,3,H,W] and one output [N,3,sH,sW]; else a one-line ModelFileError."""
    inputs, outputs = model.inputs, model.outputs
    shape = inputs[0].get_partial_shape() if len(inputs) == 1 else None
    if len(outputs) != 1 or shape is None or shape.rank.is_dynamic or shape.rank.get_length() != 4:
        raise ModelFileError(f"{source!r} is not an SR model: expected one input [N,3,H,W] and one output "
                             "[N,3,s*H,s*W], as edgesr-export writes")


def ir_spec(model: Any, *, source: str, scale: int | None = None) -> ModelSpec:
    """The spec of an IR model: its edgesr metadata, or ``scale`` checked by shape inference."""
    check_ir_io(model, source)
    meta = ir_metadata(model)
    if META_SCALE in meta:
        spec = ModelSpec.from_metadata(meta, source=repr(source))
        if scale is not None and scale != spec.scale:
            raise ModelFileError(f"--scale {scale} contradicts {source!r}, an x{spec.scale} model (metadata "
                                 f"{META_SCALE}={spec.scale}); drop --scale or pass --scale {spec.scale}")
        return spec
    if scale is None:
        ModelSpec.from_metadata(meta, source=repr(source))  # raises, asking for --scale
    dims = _output_dims(model, PROBE_PX)
    expected = [1, 3, PROBE_PX * scale, PROBE_PX * scale]
    if dims != expected:
        raise ModelFileError(f"{source!r} maps a [1, 3, {PROBE_PX}, {PROBE_PX}] input to {dims or 'an unknown shape'}, "
                             f"expected {expected} for --scale {scale}")
    return ModelSpec(arch="unknown", scale=scale, min_size_px=UNKNOWN_MODEL_MIN_PX, extra=meta)


def inspect_ir(path: str | os.PathLike[str], *, scale: int | None = None) -> tuple[Path, ModelSpec]:
    """(path, spec) of an IR file, read with OpenVINO (``edgesr-run`` calls it before opening)."""
    from edgesr.runtime.engines.openvino import import_openvino

    model = read_ir(import_openvino().Core(), path)
    return Path(path), ir_spec(model, source=str(path), scale=scale)
