"""Weights shipped inside the package, where each came from, and the default model's ONNX.

Standard library only: the runtime reads the shipped default ONNX file from here without torch.

Every shipped file has a model card (``<name>.md``: donor, data, iterations, Set5/Set14 rows
measured by ``edgesr-eval`` next to the paper's). BSRN and LKDN files are the authors'
published checkpoints converted by ``edgesr-weights convert`` (MIT: ``LICENSE-BSRN``,
``LICENSE-LKDN`` beside them); OSFFNet and LMFN files are distilled here from them (``edgesr.train.distill``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_OFFICIAL = {
    "bsrn": "BSRN authors' checkpoint net_g_BSRN_x{s}.pth, converted (MIT, LICENSE-BSRN)",
    "lkdn": "LKDN authors' checkpoint LKDN_x{s}.pth (params_ema), converted (MIT, LICENSE-LKDN)",
}
_FINE_TUNED = {
    "osffnet": "distilled from bsrn_x{s} (block-wise, then end to end) on real photos (see the model card)",
    "lmfn": "distilled from lkdn_x{s} (block-wise, then end to end) on real photos (see the model card)",
}


def _packaged(filename: str) -> Path | None:
    path = Path(str(resources.files(__name__) / filename))
    return path if path.is_file() else None


def shipped_weights(model_name: str) -> Path | None:
    """``<model_name>.safetensors`` shipped with edgesr, or None when there is none."""
    return _packaged(f"{model_name}.safetensors")


def shipped_onnx(model_name: str) -> Path | None:
    """The exported fp32 ONNX of the shipped weights (``<model_name>.onnx``), or None."""
    return _packaged(f"{model_name}.onnx")


def model_card(model_name: str) -> Path | None:
    return _packaged(f"{model_name}.md")


def weights_source(model_name: str) -> str:
    """One line saying where the weights edgesr ships for ``model_name`` come from, or that
    none ship (such a model runs only with --weights, or --allow-untrained for timing)."""
    if shipped_weights(model_name) is None:
        if "-tiny_x" in model_name:
            return "test variant: never trained, runs on its seeded initialization"
        return "no weights shipped (refused unless --weights FILE, or --allow-untrained for timing)"
    family, _, scale = model_name.partition("_x")
    template = _OFFICIAL.get(family) or _FINE_TUNED.get(family) or "shipped (see the model card)"
    return template.format(s=scale)
