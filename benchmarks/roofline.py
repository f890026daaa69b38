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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from edgesr.benchmarks.onnx_cost import ModelCost
from edgesr.errors import ConfigError, UnknownNameError
from edgesr.spec import PRECISIONS

TARGETS_SCHEMA = "edgesr.targets/1"


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


def roofline_floor(cost: ModelCost, profile: Target, *, precision: str) -> Floor:
    if precision not in PRECISIONS:
        raise UnknownNameError("precision", precision, PRECISIONS)
    peak = profile.peak_tflops.get(precision)
    compute_s = 2.0 * cost.multi_adds / (peak * 1e12) if peak else None
    memory_s = cost.bytes_at(precision) / (profile.memory_bandwidth_gbs * 1e9)
    return Floor(target=profile.key, precision=precision, compute_s=compute_s, memory_s=memory_s)


def dominant_ops(cost: ModelCost, *, bound: str, precision: str, top: int = 3) -> list[tuple[str, float]]:
    """The op types that carry the bounding term: (op type, share of it), largest first."""
    key = "multi_adds" if bound == "compute" else ("bytes_fp16" if precision == "fp16" else "bytes_fp32")
    total = sum(row[key] for row in cost.by_op.values()) or 1
    shares = sorted(((op, row[key] / total) for op, row in cost.by_op.items()), key=lambda kv: -kv[1])
    return shares[:top]
