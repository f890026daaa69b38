"""A toy engine for tests/test_engine_table.py: the "one file" of adding an engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesr.runtime.engines.base import BaseEngine
from edgesr.runtime.engines.protocol import EngineInfo
from edgesr.spec import ModelSpec


@dataclass(frozen=True, kw_only=True)
class ToyOptions:
    pass


class ToyEngine(BaseEngine):
    """Nearest-neighbour upscaling; records what reached ``_infer``."""

    name = "toy"

    def __init__(self, *, model_path: Path, spec: ModelSpec | None, options: ToyOptions | None) -> None:
        self.spec = spec or ModelSpec(arch="toy", scale=2)
        self.source = Path(model_path).name
        self.infer_shapes: list[tuple[int, ...]] = []
        self.released = 0
        self._mark_open()

    def _infer(self, padded: np.ndarray) -> np.ndarray:
        self.infer_shapes.append(padded.shape)
        s = self.spec.scale
        return padded.repeat(s, axis=2).repeat(s, axis=3)

    def _release(self) -> None:
        self.released += 1

    def info(self) -> EngineInfo:
        return EngineInfo(name="toy", device="numpy", precision="fp32")
