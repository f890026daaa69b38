"""The engine table, ``auto`` selection and opening engines by name (never imports torch).

One :class:`EngineDescriptor` row per engine says everything the tools need without importing
the engine: where its class and options class live (``"module:Name"`` strings, imported only
when asked for, so a missing TensorRT or PyTorch costs nothing until that engine is
requested), how to tell cheaply whether it can run here and the one-line install hint when it
cannot, the kinds of device it runs on, the precisions it runs, whether it runs an ONNX file
or a registered PyTorch model, and its place in ``auto``'s preference order.

Adding an engine = one module (a :class:`edgesr.runtime.engines.base.BaseEngine` subclass with
an options dataclass) and one :func:`register_engine` call, or one row in :data:`_BUILTIN`.
``edgesr-run --engine``, ``edgesr-eval --engine`` and ``edgesr-bench latency --engine`` read
their choices from :func:`engine_choices`.

Constructor contract (keyword-only):

- engines that run an ONNX file (``runs="onnx"``): ``Engine(*, model_path, spec, options)``;
- engines that run a registered PyTorch model (``runs="model"``, i.e. ``torch``):
  ``Engine(*, model_name, weights, spec, options)``.

``auto`` tries the rows with an ``auto_rank`` (lowest first) whose availability check passes:
``trt`` (TensorRT + GPU), then ``openvino`` (only where ONNX Runtime has no GPU provider, and
only for jobs of at least :data:`OPENVINO_AUTO_MIN_LR_PX` LR pixels: the measured rule), then
``ort`` (which itself prefers the TensorRT, then CUDA, then CPU execution provider). ``torch``
is the reference, never picked by ``auto``.

An engine with ``devices`` is also named ``engine:DEVICE`` (``openvino:GPU``); the device
goes to its options' ``device`` field.

The package holds every engine: the protocol (:mod:`.protocol`), the base class (:mod:`.base`),
the input/output checks every engine shares (:mod:`.checks`), this table, one module per engine
(:mod:`.ort`, :mod:`.openvino`) and the TensorRT package (:mod:`.trt`). The torch engine stays in
``edgesr/torch_engine.py`` because the runtime never imports torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgesr.errors import ConfigError, EngineUnavailableError, UnknownNameError
from edgesr.runtime.engines.availability import missing_dependency
from edgesr.runtime.engines.choice import EngineChoice, _without_advice, choose_engine
from edgesr.runtime.engines.protocol import Engine
from edgesr.runtime.engines.table import (
    ENGINE_CHOICES,
    ENGINE_TABLE,
    ENGINES,
    KINDS,
    MODEL_ENGINES,
    OPENVINO_AUTO_MIN_LR_PX,
    EngineDescriptor,
    check_engine_name,
    descriptor,
    engine_available,
    engine_choices,
    model_engines,
    register_engine,
    split_engine_name,
    unregister_engine,
)
from edgesr.spec import ModelSpec

logger = logging.getLogger(__name__)


def _import_ref(row: EngineDescriptor, ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineUnavailableError(
            f"engine {row.name!r} is not available here: {missing_dependency(exc, module_name)}; "
            f"{row.install_hint}"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise EngineUnavailableError(
            f"engine {row.name!r}: {module_name} defines no {attr}; this install is "
            "incomplete, reinstall edgesr or use --engine ort"
        ) from None


def engine_class(name: str) -> type:
    """Import and return the engine class registered as ``name`` (EngineUnavailableError with
    the row's install hint when its module or a dependency cannot be imported)."""
    row = descriptor(name)
    return _import_ref(row, row.engine)


def options_class(name: str) -> type:
    """Import and return the options dataclass of engine ``name``."""
    row = descriptor(name)
    return _import_ref(row, row.options)


def _options_for(options: Any, engine: str, device: str | None = None) -> Any:
    if isinstance(options, Mapping):
        unknown = [k for k in options if k not in ENGINES]
        if unknown:
            raise UnknownNameError("engine", str(unknown[0]), ENGINES)
        options = options.get(engine)
    if device is not None:  # ``name:DEVICE`` sets the options' device
        options = dataclasses.replace(options or options_class(engine)(), device=device)
    return options


def open_engine(
    name: str,
    *,
    model_path: str | os.PathLike[str] | None = None,
    spec: ModelSpec | None = None,
    options: Any = None,
    model_name: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    lr_px: int | None = None,
) -> Engine:
    """Open engine ``name`` (``auto`` or a registered engine); close it when done.

    ONNX engines need ``model_path`` (``spec`` is read from its metadata when None); model
    engines (``torch``) need ``model_name`` (+ optional ``weights``; shipped by default).
    ``options`` is the engine's own options dataclass, or a mapping engine name -> options
    (what ``auto`` needs, since it may pick any engine), or None for the defaults. ``lr_px``:
    the job's LR pixels, for ``auto``'s rule (None = unknown). When
    ``auto`` picks an engine that then fails to open, ``ort`` is used instead (a warning).
    """
    choice = choose_engine(name, lr_px=lr_px)
    if name == "auto" and options is not None and not isinstance(options, Mapping):
        raise ConfigError(
            f"options {type(options).__name__} were given with engine 'auto', which may pick "
            "any engine; pass a mapping such as {'ort': OrtOptions(...)} or name the engine"
        )
    row = ENGINES[choice.name]
    if row.runs == "model":
        if model_name is None:
            raise ConfigError(
                f"engine {row.name!r} runs a registered PyTorch model: pass model_name "
                "(e.g. --model osffnet_x4), not an ONNX file"
            )
        cls = engine_class(row.name)
        return cls(model_name=model_name, weights=weights, spec=spec, options=_options_for(options, row.name))
    if model_path is None:
        raise ConfigError(f"engine {row.name!r} runs an ONNX file: pass model_path (e.g. --model model.onnx)")
    if weights is not None:
        raise ConfigError(
            f"weights={str(weights)!r} only apply to registered models (engine 'torch'); the "
            "weights of an ONNX file are inside it"
        )
    if name != "auto":
        ok, why = row.available()
        if not ok:
            raise EngineUnavailableError(
                f"engine {row.name!r} is not available here: {_without_advice(why)}; {row.install_hint}")
    try:
        engine = engine_class(row.name)(model_path=Path(model_path), spec=spec,
                                        options=_options_for(options, row.name, choice.device))
    except EngineUnavailableError as exc:
        if name != "auto" or row.name == "ort":
            raise
        logger.warning("engine auto: %s; falling back to ort", exc)
        return engine_class("ort")(model_path=Path(model_path), spec=spec, options=_options_for(options, "ort"))
    if name == "auto":  # debug: the CLI prints the engine it got; trt is mentioned only when asked for
        logger.debug("engine auto -> %s: %s", row.name, choice.reason)
    return engine


__all__ = [
    "ENGINES",
    "ENGINE_CHOICES",
    "ENGINE_TABLE",
    "KINDS",
    "MODEL_ENGINES",
    "OPENVINO_AUTO_MIN_LR_PX",
    "EngineChoice",
    "EngineDescriptor",
    "check_engine_name",
    "choose_engine",
    "descriptor",
    "engine_available",
    "engine_choices",
    "engine_class",
    "model_engines",
    "open_engine",
    "options_class",
    "register_engine",
    "split_engine_name",
    "unregister_engine",
]
