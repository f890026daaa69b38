"""Multiply-adds and memory traffic of an ONNX model at one input size, with ONNX Runtime only.

The per-node tensor shapes come from ONNX Runtime itself: the model is run once on the CPU
at the requested size with graph optimizations off (so every node of the file runs as it is
written, none fused) and with the profiler on; ORT's profile records each node's input and
output shapes (``input_type_shape`` / ``output_type_shape``). That works on a runtime-only
install (no torch, no onnx package), and it is the shape inference the runtime really does.

Multiply-adds follow ``edgesr.complexity``'s ``full`` convention (DESIGN section 5):
- Conv: output elements x (C_in / groups) x k_h x k_w (the weight's shape [C_out, C_in/g, kh, kw]);
  ConvTranspose: input elements x weight elements / C_in; bias adds not counted;
- Gemm / MatMul: output elements x the reduced dimension K;
- Resize: 4 per output element (linear), 16 (cubic), 0 (nearest): the mode is read from the
  file with the onnx package where it is installed; without it Resize is assumed linear;
- GridSample: 4 per output element; BatchNormalization, LayerNormalization,
  InstanceNormalization, GroupNormalization: 2 per element;
- everything else (elementwise ops, activations, reductions): 0.

Memory traffic per node (shape-only ops such as Shape and Reshape move none) = the bytes of every tensor it reads (activations and weights) plus
every tensor it writes, at the requested precision (float tensors at 4 or 2 bytes, integer
tensors at their own width). This is the traffic of an unfused graph: an upper bound on what a
fusing engine (TensorRT) moves, which is why the roofline floor built on it is called a floor
of the unfused graph in the reports.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesr.errors import ModelFileError
from edgesr.runtime.model_file import first_line, import_onnxruntime

logger = logging.getLogger(__name__)

FLOAT_TYPES = ("float", "float16", "double", "bfloat16")
_INT_BYTES = {"int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "uint16": 2}
_PER_ELEMENT_OUT = {"GridSample": 4}
_PER_ELEMENT_NORM = ("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization")
_RESIZE_MACS = {"linear": 4, "cubic": 16, "nearest": 0}
#: Ops that only read or rewrite shape metadata: ORT moves no tensor data for them.
_METADATA_ONLY = ("Shape", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")


@dataclass(frozen=True, kw_only=True)
class NodeCost:
    name: str
    op_type: str
    multi_adds: int
    elements_read: dict[str, int]  # element type -> elements read (inputs and weights)
    elements_written: dict[str, int]

    def bytes_moved(self, precision: str) -> int:
        """Bytes read + written with float tensors stored at ``precision``."""
        float_bytes = 2 if precision == "fp16" else 4
        total = 0
        for counts in (self.elements_read, self.elements_written):
            for dtype, n in counts.items():
                total += n * (float_bytes if dtype in FLOAT_TYPES else _INT_BYTES.get(dtype, 4))
        return total


def _tensors(entries: list[dict]) -> list[tuple[str, tuple[int, ...]]]:
    """ORT profile ``[{"float": [1, 3, 60, 80]}, ...]`` -> [("float", (1, 3, 60, 80)), ...]."""
    return [(dtype, tuple(int(d) for d in dims)) for entry in entries for dtype, dims in entry.items()]


def _count(tensors: list[tuple[str, tuple[int, ...]]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for dtype, shape in tensors:
        counts[dtype] += int(np.prod(shape, dtype=np.int64))
    return dict(counts)


def node_multi_adds(op_type: str, inputs: list[tuple[int, ...]], outputs: list[tuple[int, ...]],
                    *, resize_mode: str = "linear") -> int:
    """Multiply-adds of one node from its input and output shapes (module notes)."""
    out_elements = int(np.prod(outputs[0], dtype=np.int64)) if outputs else 0
    if op_type == "Conv":
        return out_elements * int(np.prod(inputs[1][1:], dtype=np.int64))
    if op_type == "ConvTranspose":
        weight = inputs[1]
        return int(np.prod(inputs[0], dtype=np.int64)) * int(np.prod(weight[1:], dtype=np.int64))
    if op_type == "MatMul":
        return out_elements * int(inputs[0][-1])
    if op_type == "Gemm":  # out [M, N]; A holds M x K elements whichever way it is transposed
        rows = int(outputs[0][0])
        return out_elements * (int(np.prod(inputs[0], dtype=np.int64)) // max(rows, 1))
    if op_type == "Resize":
        return out_elements * _RESIZE_MACS.get(resize_mode, 4)
    if op_type in _PER_ELEMENT_NORM:
        return 2 * out_elements
    return out_elements * _PER_ELEMENT_OUT.get(op_type, 0)


def _resize_modes(model_path: Path) -> dict[str, str]:
    """Node name -> Resize mode, from the file via the onnx package where it is installed."""
    try:
        import onnx
    except ImportError:  # said by model_cost, and only where Resize weighs in the total
        return {}
    graph = onnx.load(str(model_path), load_external_data=False).graph
    modes = {}
    for node in graph.node:
        if node.op_type == "Resize":
            mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "nearest")
            modes[node.name] = mode
    return modes


def profile_events(model_path: str | os.PathLike[str], *, height: int, width: int) -> list[dict]:
    """Run the model once at (1, C, height, width) (C = 3 unless the file fixes it) on ORT's CPU provider, unoptimized, and
    return the profiler's per-node events (one per node)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.enable_profiling = True
    # prepacked weights (MatMul, Gemm) vanish from the profile's input shapes: keep them as inputs
    options.add_session_config_entry("session.disable_prepacking", "1")
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="edgesr-cost-") as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        try:
            session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
            inp = session.get_inputs()[0]
            dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
            channels = inp.shape[1] if isinstance(inp.shape[1], int) else 3  # SR models: RGB
            session.run(None, {inp.name: np.full((1, channels, height, width), 0.5, dtype=dtype)})
            events = json.loads(Path(session.end_profiling()).read_text())
        except Exception as exc:
            raise ModelFileError(
                f"ONNX Runtime could not run {Path(model_path).name} at {width}x{height} to measure its "
                f"cost: {first_line(exc)}; check the file with edgesr-run first") from None
    return [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]


def node_costs(model_path: str | os.PathLike[str], *, height: int, width: int) -> list[NodeCost]:
    """Per-node multiply-adds and traffic of ``model_path`` on a (1, 3, height, width) input."""
    modes = _resize_modes(Path(model_path))
    costs = []
    for event in profile_events(model_path, height=height, width=width):
        args = event["args"]
        name = event["name"].removesuffix("_kernel_time")
        inputs, outputs = _tensors(args.get("input_type_shape", [])), _tensors(args.get("output_type_shape", []))
        costs.append(NodeCost(
            name=name, op_type=args["op_name"],
            multi_adds=node_multi_adds(args["op_name"], [s for _, s in inputs], [s for _, s in outputs],
                                       resize_mode=modes.get(name, "linear")),
            elements_read={} if args["op_name"] in _METADATA_ONLY else _count(inputs),
            elements_written={} if args["op_name"] in _METADATA_ONLY else _count(outputs),
        ))
    return costs


@dataclass(frozen=True, kw_only=True)
class ModelCost:
    """What the roofline needs from a model at one size (stored in the latency JSON)."""

    height: int
    width: int
    multi_adds: int
    bytes_fp32: int
    bytes_fp16: int
    by_op: dict[str, dict[str, int]]  # op type -> {"multi_adds", "bytes_fp32", "bytes_fp16", "nodes"}

    def bytes_at(self, precision: str) -> int:
        return self.bytes_fp16 if precision == "fp16" else self.bytes_fp32

    def as_json(self) -> dict:
        return {"height": self.height, "width": self.width, "multi_adds": self.multi_adds,
                "bytes_fp32": self.bytes_fp32, "bytes_fp16": self.bytes_fp16, "by_op": self.by_op}

    @classmethod
    def from_json(cls, data: dict) -> ModelCost:
        return cls(height=int(data["height"]), width=int(data["width"]), multi_adds=int(data["multi_adds"]),
                   bytes_fp32=int(data["bytes_fp32"]), bytes_fp16=int(data["bytes_fp16"]),
                   by_op={k: dict(v) for k, v in data["by_op"].items()})


def model_cost(model_path: str | os.PathLike[str], *, height: int, width: int) -> ModelCost:
    """Totals and per-op-type sums of :func:`node_costs`."""
    by_op: dict[str, dict[str, int]] = defaultdict(lambda: {"multi_adds": 0, "bytes_fp32": 0, "bytes_fp16": 0, "nodes": 0})
    for node in node_costs(model_path, height=height, width=width):
        row = by_op[node.op_type]
        row["multi_adds"] += node.multi_adds
        row["bytes_fp32"] += node.bytes_moved("fp32")
        row["bytes_fp16"] += node.bytes_moved("fp16")
        row["nodes"] += 1
    _note_resize_guess(by_op)
    return ModelCost(height=height, width=width,
                     multi_adds=sum(r["multi_adds"] for r in by_op.values()),
                     bytes_fp32=sum(r["bytes_fp32"] for r in by_op.values()),
                     bytes_fp16=sum(r["bytes_fp16"] for r in by_op.values()),
                     by_op=dict(by_op))


def _note_resize_guess(by_op: dict[str, dict[str, int]]) -> None:
    """Without the onnx package Resize counts as linear (4 per output); cubic (16) or nearest (0)
    would move the total by up to 3x that. Said where that exceeds 1 % of the total, else only
    with -v: the shipped models' bilinear ESA upsampling is about 0.1 %."""
    resize = by_op.get("Resize", {}).get("multi_adds", 0)
    if not resize or _has_onnx():
        return
    share = 3 * resize / max(1, sum(r["multi_adds"] for r in by_op.values()))
    (logger.info if share > 0.01 else logger.debug)(
        "the onnx package is not installed: Resize nodes are counted as linear (4 multiply-adds per output), "
        "which may be off by up to %.1f %% of the Multi-Adds", 100 * share)


def _has_onnx() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True
