"""``edgesr-bench floor``'s per-engine part: every installed CPU engine's dense-conv rate and its
measured/floor on the model, in fp32 and in the engine's half type (runtime only, no torch).

Why: the dense-conv rate depends on the engine (issue 17 measured a one-conv graph at 68
GFLOP/s in OpenVINO f32 and 206 in ONNX Runtime), so a floor from an engine's own conv would
let an engine with a slow conv look close to its floor. Here the floor of each precision is
2 x Multi-Adds over the *best* conv rate any engine reached in that precision, in this run.

ONNX Runtime runs fp32 only here: its CPU provider has no half type for an fp32 graph (an FP16
export runs most ops in float32 on a CPU). OpenVINO runs fp32 (``INFERENCE_PRECISION_HINT=f32``)
and its half type (bf16 on a BF16 CPU), compiled as the ``openvino`` engine compiles them.
Engines, precisions and the conv are timed in turn, round after round, as in floor.py.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesr.benchmarks.floor import DENSE_CONV, DENSE_CONV_CHANNELS, DENSE_CONV_KERNEL, _PAUSE_S, _session
from edgesr.errors import ConfigError
from edgesr.runtime.engines import engine_available
from edgesr.runtime.engines.ort_session import physical_cores
from edgesr.runtime.model_file import import_onnxruntime

#: The CPU engines this measures, in the order they are printed.
CPU_ENGINES = ("ort", "openvino")


@dataclass(frozen=True, kw_only=True)
class EngineFloor:
    engine: str
    precision: str  # "fp32", "bf16", "fp16": what ran
    conv_flops_per_s: float  # this engine's own dense-conv rate
    median_s: float  # the model
    floor_s: float  # 2 x Multi-Adds / the best conv rate of this precision class

    @property
    def ratio(self) -> float:
        return self.median_s / self.floor_s

    def as_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "precision": self.precision, "dense_conv_gflops": self.conv_flops_per_s / 1e9,
                "median_ms": self.median_s * 1e3, "floor_ms": self.floor_s * 1e3, "ratio": self.ratio}


Runner = Callable[[np.ndarray], object]


def installed_cpu_engines() -> list[str]:
    return [name for name in CPU_ENGINES if engine_available(name)[0]]


def _ort_runners(path: Path, *, threads: int) -> dict[str, tuple[Runner, Runner]]:
    ort = import_onnxruntime()
    pair = []
    for graph in (DENSE_CONV, path):
        session = _session(ort, graph, threads=threads)
        name = session.get_inputs()[0].name
        pair.append(lambda x, s=session, n=name: s.run(None, {n: x}))
    return {"fp32": (pair[0], pair[1])}


def _openvino_runners(path: Path, *, threads: int) -> dict[str, tuple[Runner, Runner]]:
    from edgesr.runtime.engines.openvino import half_type, import_openvino, load_onnx

    ov = import_openvino()
    core = ov.Core()
    hints = ["f32"]
    try:
        hints.append(half_type(core, "CPU"))
    except ConfigError:
        pass  # this CPU has no half type: fp32 only
    graphs = [core.read_model(str(DENSE_CONV))]
    model_bytes, _ = load_onnx(path, spec=None)  # local functions inlined, as the engine does
    graphs.append(core.read_model(model_bytes, ov.Tensor(np.empty(0, np.uint8))))
    runners: dict[str, tuple[Runner, Runner]] = {}
    for hint in hints:
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": threads or physical_cores()}
        requests = [core.compile_model(g, "CPU", config).create_infer_request() for g in graphs]
        ran = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}[hint]
        runners[ran] = tuple(lambda x, r=r: r.infer({0: x}) for r in requests)  # type: ignore[assignment]
    return runners


def _time(run: Runner, x: np.ndarray, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        run(x)
        out.append(time.perf_counter() - start)
    time.sleep(_PAUSE_S)
    return out


def measure_engine_floors(path: Path, *, multi_adds: int, height: int, width: int, engines: list[str],
                          rounds: int = 5, calls: int = 3, threads: int = 0) -> list[EngineFloor]:
    """Time each engine's dense conv and ``path`` in each precision, in turn (module notes)."""
    makers = {"ort": _ort_runners, "openvino": _openvino_runners}
    variants: dict[tuple[str, str], tuple[Runner, Runner]] = {}
    for engine in engines:
        for precision, pair in makers[engine](path, threads=threads).items():
            variants[(engine, precision)] = pair
    rng = np.random.default_rng(0)
    conv_x = rng.random((1, DENSE_CONV_CHANNELS, height, width), dtype=np.float32)
    lr = rng.random((1, 3, height, width), dtype=np.float32)
    for conv, model in variants.values():  # warm-up
        conv(conv_x)
        model(lr)
    conv_times: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
    model_times: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
    for _ in range(rounds):
        for key, (conv, model) in variants.items():
            conv_times[key] += _time(conv, conv_x, calls)
            model_times[key] += _time(model, lr, calls)
    conv_flops = 2 * DENSE_CONV_CHANNELS**2 * DENSE_CONV_KERNEL**2 * height * width
    rates = {key: conv_flops / statistics.median(t) for key, t in conv_times.items()}
    best: dict[bool, float] = {}  # half type or not -> the best rate of that class
    for (_, precision), rate in rates.items():
        half = precision != "fp32"
        best[half] = max(best.get(half, 0.0), rate)
    return [EngineFloor(engine=engine, precision=precision, conv_flops_per_s=rates[(engine, precision)],
                        median_s=statistics.median(model_times[(engine, precision)]),
                        floor_s=2 * multi_adds / best[precision != "fp32"])
            for engine, precision in variants]


def format_engine_floors(rows: list[EngineFloor], *, label: str) -> str:
    lines = [f"per engine, {label} (floor = 2 x Multi-Adds / the best dense-conv rate of that precision "
             "class in this run):",
             f"{'engine':<10} {'precision':<9} {'conv GFLOP/s':>12} {'measured':>10} {'floor':>9} {'measured/floor':>15}"]
    for r in rows:
        lines.append(f"{r.engine:<10} {r.precision:<9} {r.conv_flops_per_s / 1e9:>12.1f} {r.median_s * 1e3:>8.0f}ms "
                     f"{r.floor_s * 1e3:>7.0f}ms {r.ratio:>15.2f}")
    return "\n".join(lines)
