"""What ``edgesr-export`` wrote and measured: :class:`ExportReport`, returned by
:func:`edgesr.export.onnx_export.export_model` and printed by ``export/cli.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgesr.export.fp16 import node_labels, sorted_counts
from edgesr.export.parity import ParityResult
from edgesr.spec import ModelSpec

__all__ = ["ExportReport"]


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
