"""Models for the export tests: a registry model with a seeded initialization, and one with
distinct values in every tensor. Imported after ``pytest.importorskip("torch")``."""

from __future__ import annotations

import torch

from edgesr.models.registry import create_model


def seeded_model(name: str, *, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name)


def perturbed(model: torch.nn.Module, *, seed: int) -> torch.nn.Module:
    """Distinct values in every tensor (the exporter merges identical initializers, e.g. the
    all-ones BatchNorm weights of an untrained model), close to the initialization."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = 1e-3 * torch.randn(tensor.shape, generator=g)
                tensor.add_(noise.abs() if "running_var" in key else noise)
    return model
