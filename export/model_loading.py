"""The PyTorch model behind an export: the named model with its weights, or a refusal.

Shared by ``edgesr-export`` (:mod:`edgesr.export.onnx_export`), the export cache and
``edgesr-bench floor``'s training-form export.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from edgesr.errors import WeightsError
from edgesr.models.registry import create_model, is_test_variant
from edgesr.weights import shipped_weights
from edgesr.weights_io import load_weights

__all__ = ["model_with_weights", "refuse_untrained", "untrained_error"]

logger = logging.getLogger(__name__)


def untrained_error(name: str) -> WeightsError:
    """The one refusal of a model without weights (export, the export cache, run, bench)."""
    return WeightsError(
        f"edgesr ships no trained weights for {name} (`edgesr-weights list` shows which "
        "models have them); pass --weights FILE, or --allow-untrained to export the seeded "
        "random initialization for timing only"
    )


def refuse_untrained(name: str, *, allow_untrained: bool) -> None:
    """Raise :func:`untrained_error` when ``name`` has no shipped weights and untrained use was
    not asked for (test variants are always allowed): the one rule, checked before any notice."""
    if shipped_weights(name) is None and not (allow_untrained or is_test_variant(name)):
        raise untrained_error(name)


def model_with_weights(name: str, weights: str | Path | None, *,
                       allow_untrained: bool = False) -> tuple[nn.Module, str]:
    """The named model with ``weights`` (a file), else edgesr's shipped weights, else the seeded
    untrained initialization when allowed; and a line saying which."""
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
    refuse_untrained(name, allow_untrained=allow_untrained)
    logger.warning("%s: exporting the UNTRAINED initialization (timing only; its output is "
                   "not a useful upscale)", name)
    return model, "untrained initialization"
