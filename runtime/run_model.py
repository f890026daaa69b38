"""What ``edgesr-run``'s --model/--engine/--scale/--fp16/--weights name, and opening it.

A path is an ONNX file (read and checked before any engine loads) or an OpenVINO IR (.xml,
``--engine openvino`` only; ``auto`` picks it); a registered model name
uses the ONNX edgesr ships for it, else an export cached by the torch-side exporter (reached
through importlib: the runtime never imports torch), and ``--engine torch`` the PyTorch model.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgesr.errors import ConfigError, ModelFileError
from edgesr.runtime.engines import ENGINES, MODEL_ENGINES, choose_engine, open_engine
from edgesr.runtime.engines.openvino import OpenVinoOptions
from edgesr.runtime.engines.openvino_ir import inspect_ir, is_ir_path
from edgesr.runtime.engines.ort import OrtOptions
from edgesr.runtime.engines.protocol import Engine
from edgesr.runtime.engines.trt.options import TrtOptions
from edgesr.runtime.model_file import inspect_onnx
from edgesr.spec import DEFAULT_MODEL, ModelSpec
from edgesr.weights import shipped_onnx

__all__ = ["ResolvedModel", "open_resolved", "resolve_model"]


@dataclass(frozen=True, kw_only=True)
class ResolvedModel:
    """What to open: an ONNX file (ort/trt) or a registered model (torch)."""

    engine: str
    model_path: Path | None = None
    model_name: str | None = None
    weights: Path | None = None
    spec: ModelSpec | None = None  # known before opening for ONNX files
    lr_px: int | None = None  # the job's LR pixels (auto's rule), None = unknown
    why: str = "requested"  # why this engine (auto says which rule picked it)
    request: str = "auto"  # what open_engine is asked for: auto, an engine, or engine:DEVICE


def _looks_like_path(value: str) -> bool:
    return (value.lower().endswith(".onnx") or is_ir_path(value) or "/" in value or os.sep in value
            or (os.altsep is not None and os.altsep in value) or Path(value).exists())


def _scale_of_name(name: str) -> int | None:
    match = re.search(r"_x(\d+)$", name)
    return int(match.group(1)) if match else None


def _cached_onnx(name: str, *, weights: Path | None, fp16: bool, allow_untrained: bool) -> Path:
    """Export (or reuse) the ONNX of a registered model via the torch-side exporter."""
    module_name = "edgesr.export.cache"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise ModelFileError(
            f"model {name!r} is a registered model name, and exporting it needs the `export` "
            f"extra ({missing} is not installed here): pip install -e '.[export]' from the edgesr checkout, or pass an "
            f"exported .onnx file (--model path/to/{name}.onnx, made with `edgesr-export`)"
        ) from None
    path = module.cached_onnx_for(name, weights=weights, fp16=fp16, allow_untrained=allow_untrained)
    return Path(path)


def resolve_model(args: argparse.Namespace, *, lr_px: int | None = None) -> ResolvedModel:
    """Turn --model/--engine/--scale/--fp16/--weights into what to open (see the module notes);
    ``lr_px``: the job's LR pixels, which ``auto``'s rule reads."""
    request, why = args.engine, None
    if request == "auto" and args.model is not None and is_ir_path(args.model):
        request, why = "openvino", "the model is an OpenVINO IR, which only OpenVINO reads"
    choice = choose_engine(request, lr_px=lr_px)  # unknown names suggest close matches
    return replace(_resolve(args, choice.name), lr_px=lr_px, request=request, why=why or choice.summary)


def _resolve(args: argparse.Namespace, engine: str) -> ResolvedModel:
    weights = Path(args.weights) if args.weights else None
    # --fp16 needs an FP16 export, except for engines that run the fp32 graph in their half type
    fp16_graph = args.fp16 and not ENGINES[engine].half_from_fp32
    value: str | None = args.model

    if value is not None and _looks_like_path(value):
        if engine in MODEL_ENGINES:
            raise ConfigError(
                f"--engine {engine} runs registered PyTorch models (--model NAME such as "
                f"{DEFAULT_MODEL}), not ONNX files; use --engine ort for {value}"
            )
        if weights is not None:
            raise ConfigError(
                f"--weights applies to a registered --model NAME; the weights of {value} are "
                "inside the ONNX file: drop --weights"
            )
        if is_ir_path(value):
            if engine != "openvino":
                raise ConfigError(f"--model {value} is an OpenVINO IR, which only --engine openvino runs; "
                                  f"drop --engine {engine}, or pass the .onnx it was exported from")
            path, spec = inspect_ir(value, scale=args.scale)
            return ResolvedModel(engine=engine, model_path=path, spec=spec)
        if not value.lower().endswith(".onnx") and Path(value).is_file():
            raise ModelFileError(
                f"--model {value}: expected an .onnx file or a registered model name; export the "
                "model with edgesr-export and pass the .onnx"
            )
        info = inspect_onnx(value, scale=args.scale)
        return ResolvedModel(engine=engine, model_path=info.path, spec=info.spec)

    if value is None:
        name = DEFAULT_MODEL
        if engine not in MODEL_ENGINES and not fp16_graph and weights is None:
            shipped = shipped_onnx(DEFAULT_MODEL)
            if shipped is None:
                raise ModelFileError(
                    f"no --model given and the default model ({DEFAULT_MODEL}.onnx) is not shipped "
                    f"with this install; export it with `edgesr-export --model {DEFAULT_MODEL}` "
                    f"and pass --model {DEFAULT_MODEL}.onnx"
                )
            info = inspect_onnx(shipped, scale=args.scale)
            return ResolvedModel(engine=engine, model_path=info.path, spec=info.spec)
    else:
        name = value
        if _scale_of_name(name) is None and args.scale is not None:
            name = f"{name}_x{args.scale}"  # --model osffnet --scale 4, as edgesr-export takes it
    name_scale = _scale_of_name(name)
    if args.scale is not None and name_scale is not None and name_scale != args.scale:
        raise ConfigError(
            f"--scale {args.scale} contradicts --model {name}, an x{name_scale} model; drop "
            f"--scale or use the _x{args.scale} variant"
        )
    if weights is not None and not weights.is_file():
        raise ConfigError(f"--weights {args.weights}: the file does not exist; check the path")
    if engine in MODEL_ENGINES:
        return ResolvedModel(engine=engine, model_name=name, weights=weights)
    shipped = shipped_onnx(name) if weights is None and not fp16_graph else None
    if shipped is not None:  # the shipped graph of the shipped weights: no torch, no export
        info = inspect_onnx(shipped, scale=args.scale)
        return ResolvedModel(engine=engine, model_path=info.path, spec=info.spec)
    path = _cached_onnx(name, weights=weights, fp16=fp16_graph, allow_untrained=args.allow_untrained)
    info = inspect_onnx(path, scale=args.scale)
    return ResolvedModel(engine=engine, model_path=info.path, spec=info.spec)


def _engine_options(args: argparse.Namespace, model: ResolvedModel) -> dict[str, Any]:
    """Options per engine; ``--fp16`` is a precision request each ONNX engine checks against
    the graph (``engines.checks.check_precision``: an fp32 file is refused, saying how to export),
    except OpenVINO, which runs an fp32 graph in the device's half type."""
    precision = "fp16" if args.fp16 else None
    options: dict[str, Any] = {
        "ort": OrtOptions(intra_op_threads=args.threads, precision=precision,
                          log_severity=2 if args.verbose else 3),
        "trt": TrtOptions(precision=precision),
        "openvino": OpenVinoOptions(precision=precision, threads=args.threads),
    }
    if args.compile and model.engine not in MODEL_ENGINES:
        raise ConfigError("--compile applies to the torch engine only; add --engine torch, or drop "
                          "--compile (ONNX Runtime and TensorRT optimise the graph themselves)")
    if model.engine in MODEL_ENGINES and (args.fp16 or args.threads or args.allow_untrained or args.compile):
        try:
            torch_engine = importlib.import_module("edgesr.torch_engine")
        except ImportError:
            pass  # open_engine reports the missing torch when the torch engine is asked for
        else:
            options["torch"] = torch_engine.TorchOptions(
                precision="fp16" if args.fp16 else "fp32", threads=args.threads,
                allow_untrained=args.allow_untrained, compile=args.compile)
    return options


def open_resolved(args: argparse.Namespace, model: ResolvedModel) -> Engine:
    """Open the engine ``model`` names, with the options of ``args``."""
    return open_engine(
        model.request,  # auto, an engine, or engine:DEVICE (model.engine is the engine alone)
        model_path=model.model_path,
        spec=model.spec,
        model_name=model.model_name,
        weights=model.weights,
        options=_engine_options(args, model),
        lr_px=model.lr_px,
    )
