"""Target profiles (``targets.json``) and roofline floors (no torch, no onnx package).

A floor is the least time a target can take for one forward pass, given only its peak
throughput and memory bandwidth:

    compute_s = 2 x multi_adds / peak FLOPS at the precision     (1 multiply-add = 2 FLOP)
    memory_s  = bytes each node reads and writes / bandwidth     (unfused graph, see onnx_cost)
    floor_s   = max(compute_s, memory_s)

Real engines sit above it (kernels reach a fraction of peak; fusion moves fewer bytes than the
unfused count, so a fused engine can beat the memory term: the report says so when
measured/floor < 1). Where a vendor publishes no compute figure the floor is the memory term
alone and ``compute_s`` is None.

At ``int8`` the compute term uses the target's published INT8 rate (TOPS, dense; the
sources are in ``targets.json``) and the memory term one byte per float element (the least an
INT8 engine moves; integer tensors keep their width). The cost rows store bytes at fp32 (4 per
float element + integer bytes I) and fp16 (2 per float element + I), so the float elements F
and I follow exactly: F = (b32 - b16) / 2, I = 2 b16 - b32, and the int8 bytes F + I =
(3 b16 - b32) / 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from edgesr.benchmarks.onnx_cost import ModelCost
from edgesr.errors import ConfigError, UnknownNameError
from edgesr.spec import PRECISIONS

TARGETS_SCHEMA = "edgesr.targets/1"
ROOFLINE_PRECISIONS = (*PRECISIONS, "int8")


@dataclass(frozen=True, kw_only=True)
class Target:
    key: str
    name: str
    device: str
    peak_tflops: dict[str, float | None]  # "fp32" / "fp16" / "int8" -> TFLOPS or TOPS
    memory_bandwidth_gbs: float
    sources: tuple[str, ...]


def load_targets() -> dict[str, Target]:
    """Every target of the packaged ``targets.json``, by key (``jetson-orin-nx``)."""
    text = resources.files("edgesr.benchmarks").joinpath("targets.json").read_text()
    data = json.loads(text)
    if data.get("schema") != TARGETS_SCHEMA:
        raise ConfigError(f"targets.json has schema {data.get('schema')!r}, expected {TARGETS_SCHEMA!r}; reinstall edgesr")
    return {
        key: Target(key=key, name=row["name"], device=row["device"],
                    peak_tflops={"fp32": row["peak_fp32_tflops"], "fp16": row["peak_fp16_tflops"],
                                 "int8": row["peak_int8_tops"]},
                    memory_bandwidth_gbs=float(row["memory_bandwidth_gbs"]), sources=tuple(row["sources"]))
        for key, row in data["targets"].items()
    }


def target(key: str) -> Target:
    targets = load_targets()
    if key not in targets:
        raise UnknownNameError("target", key, targets)
    return targets[key]


@dataclass(frozen=True, kw_only=True)
class Floor:
    target: str
    precision: str
    compute_s: float | None
    memory_s: float

    @property
    def floor_s(self) -> float:
        return max(self.compute_s or 0.0, self.memory_s)

    @property
    def bound(self) -> str:
        return "compute" if (self.compute_s or 0.0) > self.memory_s else "memory"

    @property
    def fps_bound(self) -> float:
        return 1.0 / self.floor_s


def bytes_moved(bytes_fp32: int, bytes_fp16: int, precision: str) -> int:
    """Bytes read and written at ``precision`` from the fp32 and fp16 counts (module notes)."""
    if precision not in ROOFLINE_PRECISIONS:
        raise UnknownNameError("precision", precision, ROOFLINE_PRECISIONS)
    return {"fp32": bytes_fp32, "fp16": bytes_fp16, "int8": (3 * bytes_fp16 - bytes_fp32) // 2}[precision]


def roofline_floor(cost: ModelCost, profile: Target, *, precision: str) -> Floor:
    moved = bytes_moved(cost.bytes_fp32, cost.bytes_fp16, precision)
    peak = profile.peak_tflops.get(precision)
    compute_s = 2.0 * cost.multi_adds / (peak * 1e12) if peak else None
    memory_s = moved / (profile.memory_bandwidth_gbs * 1e9)
    return Floor(target=profile.key, precision=precision, compute_s=compute_s, memory_s=memory_s)


def dominant_ops(cost: ModelCost, *, bound: str, precision: str, top: int = 3) -> list[tuple[str, float]]:
    """The op types that carry the bounding term: (op type, share of it), largest first."""
    def weight(row: dict[str, int]) -> int:
        if bound == "compute":
            return row["multi_adds"]
        return bytes_moved(row["bytes_fp32"], row["bytes_fp16"], precision)

    total = sum(weight(row) for row in cost.by_op.values()) or 1
    shares = sorted(((op, weight(row) / total) for op, row in cost.by_op.items()), key=lambda kv: -kv[1])
    return shares[:top]
