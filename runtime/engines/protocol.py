"""The engine protocol every inference backend implements (no torch here).

An engine turns a float32 NCHW RGB batch in [0, 1] (``lr``) into the upscaled batch
(``sr``). Engines are context managers so device memory is released on every path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from edgesr.spec import ModelSpec


@dataclass(frozen=True, kw_only=True)
class EngineInfo:
    """What an engine tells the user about itself (printed by ``edgesr-run``)."""

    name: str  # "ort", "openvino", "trt", "torch"
    device: str  # e.g. "CPUExecutionProvider", "NVIDIA Jetson Orin (sm_87)"
    precision: str  # what ran: "fp32" | "fp16" | "bf16" (OpenVINO's half type on a BF16 CPU)
    details: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.details.items())
        return f"{self.name} on {self.device} ({self.precision}{', ' + extra if extra else ''})"


@runtime_checkable
class Engine(Protocol):
    """run(lr) -> sr over NCHW float32 arrays; ``spec`` says the scale and tiling advice."""

    spec: ModelSpec

    def run(self, lr: np.ndarray) -> np.ndarray: ...

    def info(self) -> EngineInfo: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Engine": ...

    def __exit__(self, *exc: object) -> None: ...
