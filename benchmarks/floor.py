"""``edgesr-bench floor``: a model's ONNX Runtime latency over this machine's floor for its work.

The floor of a graph is its Multi-Adds x 2 divided by the FLOP/s ONNX Runtime reaches, on this
machine and in the same run, on one large dense conv: 64 -> 64 channels, 3x3, on a
64 x H x W input of the model's input size (``dense_conv_64.onnx``; its weights come from a
ConstantOfShape that ONNX Runtime folds, so the file is 259 bytes). A ratio of 1 means the
model runs every multiply-add as fast as the best-suited kernel ONNX Runtime has; what it
spends above that goes to memory-bound work (activations, elementwise ops, layout changes)
and to small or depthwise convs that cannot reach the dense rate.

Every session uses edgesr's shipped ONNX Runtime defaults (:mod:`edgesr.runtime.engines.ort_session`),
except the settings variants (``--settings``), which time the same graph with one default
changed: the ``ORT_ENABLE_EXTENDED`` optimisation level, or spinning off.
The conv and the graphs are timed in turn, round after round, so a slow spell of a shared
machine hits them alike; a short pause between sessions lets a spinning one go idle. Runs on
the runtime alone (no torch) for .onnx files.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesr.benchmarks.onnx_cost import model_cost
from edgesr.runtime.engines.ort_session import physical_cores, session_options
from edgesr.runtime.model_file import import_onnxruntime

DENSE_CONV = Path(__file__).with_name("dense_conv_64.onnx")
DENSE_CONV_CHANNELS, DENSE_CONV_KERNEL = 64, 3
_PAUSE_S = 0.05  # between sessions: ORT workers stop spinning within milliseconds


@dataclass(frozen=True, kw_only=True)
class GraphFloor:
    label: str
    path: Path
    multi_adds: int
    median_s: float
    floor_s: float
    top_ops: tuple[tuple[str, float], ...] = ()  # (op type, share of kernel time)

    @property
    def ratio(self) -> float:
        return self.median_s / self.floor_s


@dataclass(frozen=True, kw_only=True)
class FloorReport:
    height: int
    width: int
    threads: int
    conv_flops_per_s: float
    graphs: tuple[GraphFloor, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": "edgesr.floor/1", "input": [self.height, self.width], "threads": self.threads,
            "dense_conv_gflops": self.conv_flops_per_s / 1e9,
            "graphs": [{"label": g.label, "path": str(g.path), "multi_adds": g.multi_adds,
                        "median_ms": g.median_s * 1e3, "floor_ms": g.floor_s * 1e3,
                        "ratio": g.ratio, "top_ops": [list(t) for t in g.top_ops]}
                       for g in self.graphs],
        }


#: Session settings a graph can be timed with: edgesr's defaults, and one default changed.
SETTINGS = ("defaults", "extended", "no-spinning")


def _session(ort: Any, path: Path, *, threads: int, profile_prefix: str | None = None,
             settings: str = "defaults") -> Any:
    options = session_options(ort, threads=threads, spinning=settings != "no-spinning", log_severity=3)
    if settings == "extended":
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _time_calls(session: Any, feed: dict[str, np.ndarray], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        session.run(None, feed)
        out.append(time.perf_counter() - start)
    time.sleep(_PAUSE_S)
    return out


def top_op_shares(ort: Any, path: Path, feed: dict[str, np.ndarray], *, threads: int,
                  top: int = 6) -> tuple[tuple[str, float], ...]:
    """The op types taking the most kernel time in one profiled run (after optimisation)."""
    with tempfile.TemporaryDirectory(prefix="edgesr-floor-") as folder:
        session = _session(ort, path, threads=threads, profile_prefix=str(Path(folder) / "p"))
        session.run(None, feed)  # warm-up, then the profiled call
        session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values()) or 1
    return tuple((op, dur / total) for op, dur in per_op.most_common(top))


def measure_floor(graphs: dict[str, Path], *, height: int, width: int, rounds: int = 5,
                  calls: int = 3, threads: int = 0, profile: bool = False,
                  settings: dict[str, str] | None = None) -> FloorReport:
    """Time the dense conv and each graph in turn, ``rounds`` x ``calls`` each (module notes).
    ``settings``: label -> one of :data:`SETTINGS` (default "defaults")."""
    settings = settings or {}
    ort = import_onnxruntime()
    rng = np.random.default_rng(0)
    conv = _session(ort, DENSE_CONV, threads=threads)
    conv_feed = {"x": rng.random((1, DENSE_CONV_CHANNELS, height, width), dtype=np.float32)}
    lr = rng.random((1, 3, height, width), dtype=np.float32)
    sessions = {label: _session(ort, path, threads=threads, settings=settings.get(label, "defaults"))
                for label, path in graphs.items()}
    feeds = {label: {s.get_inputs()[0].name: lr} for label, s in sessions.items()}
    conv.run(None, conv_feed)
    for label, session in sessions.items():
        session.run(None, feeds[label])
    conv_times: list[float] = []
    times: dict[str, list[float]] = {label: [] for label in graphs}
    for _ in range(rounds):
        conv_times += _time_calls(conv, conv_feed, calls)
        for label, session in sessions.items():
            times[label] += _time_calls(session, feeds[label], calls)
    conv_flops = 2 * DENSE_CONV_CHANNELS**2 * DENSE_CONV_KERNEL**2 * height * width
    rate = conv_flops / statistics.median(conv_times)
    rows = []
    for label, path in graphs.items():
        macs = model_cost(path, height=height, width=width).multi_adds
        profiled = profile and settings.get(label, "defaults") == "defaults"
        shares = top_op_shares(ort, path, feeds[label], threads=threads) if profiled else ()
        rows.append(GraphFloor(label=label, path=path, multi_adds=macs,
                               median_s=statistics.median(times[label]),
                               floor_s=2 * macs / rate, top_ops=shares))
    return FloorReport(height=height, width=width, threads=threads or physical_cores(), conv_flops_per_s=rate,
                       graphs=tuple(rows))


def format_floor(report: FloorReport) -> str:
    width = max(28, *(len(g.label) + 1 for g in report.graphs))
    lines = [
        f"input 1x3x{report.height}x{report.width}, ONNX Runtime CPU, {report.threads} threads; "
        f"dense 3x3 conv 64->64: {report.conv_flops_per_s / 1e9:.1f} GFLOP/s",
        f"{'graph':<{width}} {'Multi-Adds':>11} {'measured':>10} {'floor':>9} {'measured/floor':>15}",
    ]
    for g in report.graphs:
        lines.append(f"{g.label:<{width}} {g.multi_adds / 1e9:>10.2f}G {g.median_s * 1e3:>8.0f}ms "
                     f"{g.floor_s * 1e3:>7.0f}ms {g.ratio:>15.2f}")
    for g in report.graphs:
        if g.top_ops:
            shares = ", ".join(f"{op} {share:.0%}" for op, share in g.top_ops)
            lines.append(f"top ops, {g.label}: {shares}")
    if len(report.graphs) > 1:  # time of each graph over the shipped one's (or the first's)
        ref = next((g for g in report.graphs if g.label == "deployment form"), report.graphs[0])
        others = [f"{g.label} {g.median_s / ref.median_s:.2f}x" for g in report.graphs if g is not ref]
        lines.append(f"time over {ref.label}'s: " + ", ".join(others))
    return "\n".join(lines)


def measure_tiles(path: Path, *, tiles: list[int], height: int, width: int, rounds: int = 3,
                  threads: int = 0) -> list[tuple[int, float]]:
    """(tile, median seconds) of ``edgesr-run``'s tiled path at each LR tile size (0 = the whole
    image in one call), the model's advised overlap, timed in turn in one session."""
    from edgesr.runtime.engines.ort import OrtEngine, OrtOptions
    from edgesr.runtime.tiling import upscale_tiled

    lr = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    with OrtEngine(model_path=path, options=OrtOptions(providers=("cpu",), intra_op_threads=threads)) as engine:
        overlap = engine.spec.overlap_px

        def once(tile: int) -> float:
            start = time.perf_counter()
            if tile == 0:
                engine.run(lr)
            else:
                upscale_tiled(lr, engine.run, scale=engine.spec.scale, tile_px=tile, overlap_px=overlap)
            return time.perf_counter() - start

        sizes = [0, *[t for t in tiles if t > 0]]
        for tile in sizes:  # warm-up: ORT allocates per input shape on the first call
            once(tile)
        times: dict[int, list[float]] = {tile: [] for tile in sizes}
        for _ in range(rounds):
            for tile in sizes:
                times[tile].append(once(tile))
    return [(tile, statistics.median(times[tile])) for tile in sizes]


def format_tiles(rows: list[tuple[int, float]], *, overlap_px: int) -> str:
    whole = dict(rows)[0]
    lines = [f"tiles ({overlap_px} px overlap) against the whole image in one call:"]
    for tile, seconds in rows:
        label = "whole image" if tile == 0 else f"tile {tile}"
        lines.append(f"  {label:<12} {seconds * 1e3:8.0f} ms  {seconds / whole:5.2f}x")
    return "\n".join(lines)
