"""``edgesr-bench latency``: time engines round-robin on one model and write versioned JSON.

Runs with the runtime alone for an .onnx file (no torch import anywhere on that path). Each
engine is opened once (its build time measured), warmed up, then all engines are timed in
turn, call by call, on the same input, so a slow spell of a shared machine hits them alike.
On a Jetson, tegrastats is sampled during the timed calls and each sample is charged to the
engine whose call it fell in (energy per frame = mean power in those calls x p50 latency).

``E@int8`` times the INT8 QDQ graph of the same model beside the FP32 one, in the same run:
``<stem>_int8.onnx`` next to an .onnx model, or ``<name>_int8.onnx`` in the current folder for
a model name (what ``edgesr-export --model NAME --int8`` writes by default). INT8 is a graph,
not an engine setting: the engine runs that graph as it is (ONNX Runtime fuses its Q/DQ pairs
into integer kernels, OpenVINO's low-precision transformations do the same).
"""

from __future__ import annotations

import datetime as dt
import logging
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesr.benchmarks.machine import gpu_info, machine_info
from edgesr.benchmarks.onnx_cost import model_cost
from edgesr.benchmarks.tegrastats import TegrastatsSampler, energy_per_frame_mj
from edgesr.errors import ConfigError
from edgesr.fileio import file_sha256
from edgesr.runtime.engines import ENGINES, check_engine_name, open_engine, options_class
from edgesr.spec import PRECISIONS

logger = logging.getLogger(__name__)

LATENCY_SCHEMA = "edgesr.latency/1"
INT8 = "int8"  # the @int8 suffix: the model's INT8 QDQ graph (module notes)


@dataclass(frozen=True, kw_only=True)
class EngineRequest:
    """``ort``, ``ort:cuda`` (engine:execution provider), ``openvino:GPU`` (engine:device),
    ``trt``, ``torch``; ``@fp16`` asks that one engine for a precision (``openvino@fp16``: the
    device's half type), so fp32 and half-type runs are timed in turn in one run; ``@int8``
    runs the model's INT8 QDQ graph (:func:`int8_graph_for`)."""

    engine: str
    provider: str | None = None  # ort's execution provider, or the device of an engine with devices
    precision: str | None = None  # None = the command's --precision

    @property
    def label(self) -> str:
        name = f"{self.engine}:{self.provider}" if self.provider else self.engine
        return f"{name}@{self.precision}" if self.precision else name

    @classmethod
    def parse(cls, text: str) -> EngineRequest:
        name, _, precision = text.partition("@")
        engine, _, provider = name.partition(":")
        check_engine_name(engine)
        if engine == "auto":
            raise ConfigError("--engine auto is not timed (it names no one engine); pass ort, trt, ... or ort:cuda")
        if precision and precision not in (*PRECISIONS, INT8):
            raise ConfigError(f"--engine {text}: unknown precision {precision!r}; use "
                              f"@{' or @'.join((*PRECISIONS, INT8))}")
        if precision == INT8 and ENGINES[engine].runs == "model":
            raise ConfigError(f"--engine {text}: @int8 runs the INT8 ONNX graph; {engine} runs the "
                              "PyTorch model (use ort@int8 or openvino@int8)")
        if provider and engine != "ort":
            if not ENGINES[engine].devices:
                raise ConfigError(f"--engine {text}: only ort takes an execution provider (ort:cuda, "
                                  "ort:xnnpack, ...) and only openvino a device (openvino:GPU)")
            check_engine_name(name)  # a device the engine has
        return cls(engine=engine, provider=provider or None, precision=precision or None)


def int8_graph_for(model_path: Path, model_name: str | None) -> Path:
    """The INT8 QDQ graph an ``@int8`` engine times (module notes), checked to be one."""
    from edgesr.runtime.model_file import spec_from_onnx

    if model_name is not None:
        path, made_by = Path(f"{model_name}_int8.onnx"), f"edgesr-export --model {model_name} --int8"
    else:
        path = model_path.with_name(f"{model_path.stem}_int8.onnx")
        made_by = f"edgesr-export --model <name> --int8 -o {path}"
    if not path.is_file():
        raise ConfigError(f"@int8 times {path}, the model's INT8 graph, which does not exist; make it "
                          f"with `{made_by}` (or name the FP32 model so that <stem>_int8.onnx is beside it)")
    graph, base = spec_from_onnx(path), spec_from_onnx(model_path)
    if graph.precision != INT8 or (graph.arch, graph.scale) != (base.arch, base.scale):
        raise ConfigError(f"@int8: {path} is a {graph.precision} {graph.arch} x{graph.scale} graph, not the "
                          f"INT8 graph of {base.arch} x{base.scale}; re-make it with `{made_by}`")
    return path


def latency_stats(latency_ms: list[float]) -> dict[str, float]:
    values = np.asarray(latency_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"min": float(values.min()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "mean": float(values.mean())}


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def _gpu_memory_used_mb() -> float | None:
    from edgesr.benchmarks.machine import _run

    out = _run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"])
    try:
        return float(out.splitlines()[0]) if out else None
    except ValueError:
        return None


def _options(request: EngineRequest, precision: str | None) -> object:
    """The engine's options; ``precision`` None = whatever the graph is (ONNX engines)."""
    cls = options_class(request.engine)
    precision = None if request.precision == INT8 else request.precision or precision
    if request.engine == "ort":
        return cls(providers=(request.provider,) if request.provider else (), precision=precision)
    if ENGINES[request.engine].devices and request.provider:
        return cls(precision=precision, device=request.provider)
    if ENGINES[request.engine].runs == "model":  # a PyTorch model has no graph precision: fp32 default
        return cls(precision=precision or "fp32")
    return cls(precision=precision)


def _open(request: EngineRequest, *, model_path: Path, model_name: str | None, precision: str | None):  # noqa: ANN202
    row = ENGINES[request.engine]
    if row.runs == "model":
        if model_name is None:
            raise ConfigError(f"--engine {request.engine} runs a registered model: pass a model name, not an .onnx file")
        return open_engine(request.engine, model_name=model_name, options=_options(request, precision))
    return open_engine(request.engine, model_path=model_path, options=_options(request, precision))


def _describe(request: EngineRequest, engine: object) -> dict:
    info = engine.info()
    described = {"engine": request.engine, "label": request.label, "device": info.device,
                 "precision": info.precision, "details": dict(info.details)}
    if hasattr(engine, "provider_ran"):
        described["provider_ran"] = engine.provider_ran
        described["providers"] = engine.providers
    return described


def _time_size(engines: dict[str, object], lr: np.ndarray, *, warmup: int, repeats: int,
               sampler: TegrastatsSampler) -> tuple[dict[str, list[float]], dict[str, float | None]]:
    """Round-robin timing; per engine its latencies and its mean power (tegrastats) or None."""
    for engine in engines.values():
        for _ in range(warmup):
            engine.run(lr)
    latency_ms: dict[str, list[float]] = {label: [] for label in engines}
    windows: dict[str, list[tuple[float, float]]] = {label: [] for label in engines}
    for _ in range(repeats):
        for label, engine in engines.items():
            start = time.perf_counter()
            engine.run(lr)
            end = time.perf_counter()
            latency_ms[label].append((end - start) * 1e3)
            windows[label].append((start, end))
    power = {}
    for label, spans in windows.items():
        inside = [s.total_mw for t, s in sampler.samples if any(a <= t <= b for a, b in spans)]
        power[label] = sum(inside) / len(inside) if inside else None
    return latency_ms, power


def run_latency(*, model_path: Path, model_name: str | None, requests: list[EngineRequest],
                sizes: list[tuple[int, int]], precision: str | None, warmup: int, repeats: int,
                argv: list[str]) -> dict:
    """Open, time and describe every requested engine; the result is the JSON document."""
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"--repeats {repeats} / --warmup {warmup}: expected repeats >= 1 and warmup >= 0")
    engines: dict[str, object] = {}
    described: dict[str, dict] = {}
    int8_path = int8_graph_for(model_path, model_name) if any(r.precision == INT8 for r in requests) else None
    try:
        for request in requests:
            graph = int8_path if request.precision == INT8 else model_path
            started = time.perf_counter()
            engine = _open(request, model_path=graph, model_name=model_name, precision=precision)
            engines[request.label] = engine
            described[request.label] = _describe(request, engine) | {
                "build_s": time.perf_counter() - started, "rss_after_build_mb": peak_rss_mb()}
            if request.precision == INT8:  # the graph it ran, and its precision (the engine's hint is f32)
                described[request.label] |= {"precision": INT8, "graph": {
                    "file": graph.name, "sha256": file_sha256(graph)}}
        spec = next(iter(engines.values())).spec
        results = []
        with TegrastatsSampler() as sampler:
            for width, height in sizes:
                lr = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
                latency_ms, power_mw = _time_size(engines, lr, warmup=warmup, repeats=repeats, sampler=sampler)
                for label, samples in latency_ms.items():
                    stats = latency_stats(samples)
                    results.append(described[label] | {
                        "width": width, "height": height, "latency_ms": stats, "samples_ms": samples,
                        "fps": 1000.0 / stats["p50"], "peak_rss_mb": peak_rss_mb(),
                        "gpu_memory_used_mb": _gpu_memory_used_mb() if gpu_info() else None,
                        "mean_power_mw": power_mw[label],
                        "energy_mj_per_frame": energy_per_frame_mj(power_mw[label], stats["p50"]),
                    })
    finally:
        for engine in engines.values():
            engine.close()
    return {
        "schema": LATENCY_SCHEMA,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(argv) | {"tegrastats": sampler.available},
        "model": {"name": model_name or spec.arch, "file": model_path.name, "sha256": file_sha256(model_path),
                  "arch": spec.arch, "scale": spec.scale, "precision": precision or spec.precision},
        "settings": {"warmup": warmup, "repeats": repeats},
        "cost": [model_cost(model_path, height=h, width=w).as_json() for w, h in sizes],
        "results": results,
    }


def format_results(document: dict) -> str:
    lines = [f"{document['model']['name']} ({document['model']['file']}), {document['settings']['repeats']} "
             f"round-robin repeats after {document['settings']['warmup']} warm-up:",
             f"{'engine':<14} {'ran on':<28} {'prec':<5} {'size':>9} {'build s':>8} {'min':>8} {'p50':>8} {'p90':>8} "
             f"{'p99':>8} {'mean':>8} {'FPS':>7} {'RSS MB':>7} {'mJ/frame':>9}"]
    for r in document["results"]:
        ms = r["latency_ms"]
        energy = f"{r['energy_mj_per_frame']:.1f}" if r["energy_mj_per_frame"] is not None else "-"
        lines.append(f"{r['label']:<14} {r['device'][:28]:<28} {r['precision']:<5} {r['width']}x{r['height']:<5} {r['build_s']:8.2f} "
                     f"{ms['min']:8.1f} {ms['p50']:8.1f} {ms['p90']:8.1f} {ms['p99']:8.1f} {ms['mean']:8.1f} "
                     f"{r['fps']:7.1f} {r['peak_rss_mb'] or 0:7.0f} {energy:>9}")
    return "\n".join(lines + precision_ratios(document["results"]))


def precision_ratios(results: list[dict]) -> list[str]:
    """``p50 ort@int8 / ort at 80x60: 0.81`` for every E@P timed beside plain E at that size."""
    plain = {(r["label"], r["width"], r["height"]): r["latency_ms"]["p50"] for r in results}
    lines = []
    for r in results:
        base_label, _, precision = r["label"].partition("@")
        base = plain.get((base_label, r["width"], r["height"]))
        if precision and base:
            lines.append(f"p50 {r['label']} / {base_label} at {r['width']}x{r['height']}: "
                         f"{r['latency_ms']['p50'] / base:.2f}")
    return lines
