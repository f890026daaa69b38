"""Latency benchmarks measured as ratios in one run (these machines are noisy).

Engines are timed round-robin (A, B, A, B, ...) on the same input, so a slow spell of the
machine hits both; the report gives medians and the ratio of medians.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from edgesr.runtime.tiling import upscale_tiled


@dataclass(frozen=True, kw_only=True)
class Timing:
    label: str
    latency_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latency_ms)


def time_round_robin(runs: dict[str, Callable[[], object]], *, warmup: int = 1, repeats: int = 5) -> dict[str, Timing]:
    """Time each callable ``repeats`` times, interleaved, after ``warmup`` untimed calls each."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(repeats):
        for label, run in runs.items():
            start = time.perf_counter()
            run()
            samples[label].append((time.perf_counter() - start) * 1e3)
    return {label: Timing(label=label, latency_ms=values) for label, values in samples.items()}


def random_lr(*, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, 3, height, width), dtype=np.float32)


def tiled(engine, *, tile_px: int, overlap_px: int) -> Callable[[np.ndarray], np.ndarray]:  # noqa: ANN001
    return lambda lr: upscale_tiled(lr, engine.run, scale=engine.spec.scale, tile_px=tile_px, overlap_px=overlap_px)


def format_timings(timings: dict[str, Timing], *, baseline: str) -> str:
    base = timings[baseline].median_ms
    width = max(len(label) for label in timings)
    lines = [f"{'engine'.ljust(width)}  median ms   min ms   vs {baseline}"]
    for label, t in timings.items():
        lines.append(f"{label.ljust(width)}  {t.median_ms:9.1f}  {min(t.latency_ms):7.1f}   {t.median_ms / base:5.2f}x")
    return "\n".join(lines)
