"""PyTorch reference models and the model table."""

from edgesr.models.registry import (
    DEFAULT_MODEL,
    MODEL_TABLE,
    ModelEntry,
    count_params,
    create_model,
    model_entry,
    model_name,
    model_spec,
)

__all__ = [
    "DEFAULT_MODEL", "MODEL_TABLE", "ModelEntry", "count_params", "create_model",
    "model_entry", "model_name", "model_spec",
]
