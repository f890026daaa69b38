"""What ``edgesr-eval`` scores: a PyTorch model, or an ONNX graph through ONNX Runtime.

The same weights go through either path, so the two rows can be compared: ``--engine ort``
on a model name runs the ONNX edgesr ships for it, else exports it with the export cache
(checked against torch on the way), then runs the file as ``edgesr-run`` would. An .onnx file,
or a shipped ONNX through an ONNX engine, needs no torch (a runtime-only install).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgesr.errors import ConfigError, MissingExtraError, WeightsError


@dataclass
class ScoredModel:
    label: str  # the method column of the report
    scale: int
    runner: object  # a torch module, or an edgesr engine (``run(lr) -> sr``)
    close: Callable[[], None] = field(default=lambda: None)


def detected_model_name(weights: str) -> str:
    """The model-table name of a weights file: official layouts by their key maps, our own
    files by trying the full-size models of the table (tensor names and shapes must match)."""
    from edgesr.models.registry import MODEL_TABLE, create_model
    from edgesr.official_weights import convert_official, unknown_layout_error
    from edgesr.weights_io import read_state_dict

    state = read_state_dict(weights)
    conversion = convert_official(state)
    if conversion is not None:
        return conversion.model_name
    import torch

    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for name, entry in MODEL_TABLE.items():
        if "-" in entry.name:  # tiny variants and ablations are never shipped checkpoints
            continue
        with torch.device("meta"):  # shapes only: no memory, no initialisation work
            model = create_model(name)
        if {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes:
            return name
    raise unknown_layout_error(state)


def _onnx_engine(engine_name: str, path: Path, label: str) -> ScoredModel:
    from edgesr.runtime.engines import open_engine
    from edgesr.runtime.model_file import spec_from_onnx

    spec = spec_from_onnx(path)
    engine = open_engine(engine_name, model_path=path, spec=spec)
    return ScoredModel(f"{label} ({engine_name})", spec.scale, engine, engine.close)


def _candidate_name(model: str | None, scale: int | None) -> str | None:
    """The model-table spelling of --model/--scale without the (torch) table: osffnet + 4 ->
    osffnet_x4; None when there is no name. The table itself checks it on the torch path."""
    if model is None or (scale is not None and "_x" in model and not model.endswith(f"_x{scale}")):
        return None  # a contradiction: the table's check names it
    return f"{model}_x{scale}" if scale is not None and "_x" not in model else model


def _shipped_graph(model: str | None, *, scale: int | None, weights: str | None, engine: str | None,
                   fp16: bool) -> tuple[str, Path] | None:
    """(name, the shipped fp32 ONNX) when an ONNX engine scores the shipped weights, else None."""
    from edgesr.weights import shipped_onnx

    name = _candidate_name(model, scale)
    if name is None or engine in (None, "torch") or weights is not None or fp16:
        return None
    path = shipped_onnx(name)
    return (name, path) if path is not None else None


def _needs_torch(exc: ModuleNotFoundError, model: str | None, *, scale: int | None,
                 engine: str | None) -> Exception:
    """The one line for a torch path on an install without torch: an ONNX engine needs the
    export (no shipped ONNX), torch the model; names the torch-free way when edgesr ships the
    model's ONNX."""
    from edgesr.weights import shipped_onnx

    extra = "train" if engine in (None, "torch") else "export"
    error = MissingExtraError(command="edgesr-eval", extra=extra, module=exc.name or "torch")
    name = _candidate_name(model, scale)
    if name is not None and shipped_onnx(name) is not None:
        return ConfigError(f"{error}; or score the ONNX edgesr ships for it without torch: --engine ort")
    return error


def model_to_score(*, model: str | None, scale: int | None, weights: str | None,
                   engine: str | None, fp16: bool) -> ScoredModel:
    """Resolve the CLI's --model/--scale/--weights/--engine/--fp16 into something to score."""
    if model is not None and model.endswith(".onnx"):
        if engine == "torch" or weights:
            raise ConfigError("an .onnx model runs through ONNX Runtime: drop --engine torch and --weights")
        if fp16:
            raise ConfigError("--fp16 applies to model names; an .onnx file has its precision inside")
        return _onnx_engine(engine or "ort", Path(model), Path(model).stem)
    shipped = _shipped_graph(model, scale=scale, weights=weights, engine=engine, fp16=fp16)
    if shipped is not None:  # before any torch import: a runtime-only install scores it
        name, path = shipped
        return _onnx_engine(engine, path, name)
    try:
        from edgesr.models import create_model, model_name
    except ModuleNotFoundError as exc:
        raise _needs_torch(exc, model, scale=scale, engine=engine) from None
    from edgesr.weights import shipped_weights
    from edgesr.weights_io import load_weights

    if model is None:
        if weights is None:
            raise ConfigError("give --model NAME (or an .onnx file), or --weights FILE to detect the model from")
        name = detected_model_name(weights)
        if scale is not None and f"_x{scale}" not in name:
            raise ConfigError(f"--scale {scale} contradicts the checkpoint, which is {name}")
    else:
        name = model_name(model, scale=scale)
    weights_path = weights or shipped_weights(name)
    if weights_path is None:
        raise WeightsError(f"edgesr ships no weights for {name}; pass --weights FILE (from edgesr-train)")
    engine = engine or "torch"
    if fp16 and engine == "torch":
        raise ConfigError("--fp16 needs an ONNX engine (--engine ort): the FP16 graph is an export")
    if engine != "torch":  # an ONNX engine: the shipped graph, else a checked export
        from edgesr.weights import shipped_onnx

        path = shipped_onnx(name) if weights is None and not fp16 else None
        if path is None:
            try:
                from edgesr.export.cache import cached_onnx_for
            except ModuleNotFoundError as exc:
                raise MissingExtraError(command="edgesr-eval", extra="export", module=exc.name or "onnx") from None
            path = cached_onnx_for(name, weights=weights, fp16=fp16)
        return _onnx_engine(engine, path, f"{name}{' fp16' if fp16 else ''}")
    module = load_weights(create_model(name), weights_path)
    return ScoredModel(name, int(name.rsplit("_x", 1)[1]), module)
