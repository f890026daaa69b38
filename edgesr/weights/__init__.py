"""Weights shipped inside the package (trained on the scikit-image photos; see the model cards).

Standard library only: the runtime reads the shipped default ONNX file from here without torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


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
