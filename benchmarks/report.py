"""``edgesr-bench report``: merge latency JSON from many machines with roofline floors.

Markdown first (always), PNG plots next to it when matplotlib is installed (the ``report``
extra); the Markdown says when plots were skipped and why.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from edgesr.benchmarks.latency_run import LATENCY_SCHEMA
from edgesr.benchmarks.onnx_cost import ModelCost
from edgesr.benchmarks.roofline import Floor, Target, load_targets, roofline_floor
from edgesr.errors import ConfigError, printable
from edgesr.spec import PRECISIONS

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One (machine, engine, model, size) row of a latency JSON, with its model's cost."""

    source: str  # the JSON file
    machine: str
    own_target: str | None  # the target profile of the machine it ran on, if there is one
    engine: str  # label, e.g. "ort" or "ort:cuda"
    ran_on: str
    model: str
    precision: str
    width: int
    height: int
    p50_ms: float
    fps: float
    energy_mj: float | None
    cost: ModelCost | None


#: How a machine's names (board, GPU, CPU) map to a target profile: measured/floor on the
#: machine's own target is the engine's efficiency there.
_OWN_TARGET = (
    (r"orin nano", "jetson-orin-nano"), (r"orin nx", "jetson-orin-nx"), (r"agx orin", "jetson-agx-orin"),
    (r"raspberry pi 5", "raspberry-pi-5"), (r"rtx 4090", "rtx-4090"), (r"\bl4\b", "l4"), (r"\bh100\b", "h100"),
    (r"apple m2\b", "apple-m2"),
)


def _board(machine: dict) -> dict | None:
    return machine.get("board") or machine.get("jetson")  # "jetson": the key's first name


def own_target(machine: dict) -> str | None:
    names = " ".join(filter(None, [(_board(machine) or {}).get("model"), (machine.get("gpu") or {}).get("name"),
                                   machine.get("cpu_model")])).lower()
    return next((key for pattern, key in _OWN_TARGET if re.search(pattern, names)), None)


def _machine_label(machine: dict) -> str:
    if _board(machine):
        return _board(machine)["model"]
    if machine.get("gpu"):
        return f"{machine['gpu']['name']} ({machine['hostname']})"
    return f"{machine['cpu_model']} x{machine['cpu_cores']} ({machine['hostname']})"


def load_measurements(path: Path) -> list[Measurement]:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {str(path)!r} as latency JSON ({exc}); pass files written by "
                          "edgesr-bench latency --json") from None
    if not isinstance(document, dict) or document.get("schema") != LATENCY_SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise ConfigError(f"{path} has schema {found!r}, expected {LATENCY_SCHEMA!r} (edgesr-bench latency --json)")
    try:
        return _measurements(document, source=Path(path).name)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        what = f"no {exc.args[0]!r} entry" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        raise ConfigError(f"{path} says {LATENCY_SCHEMA} but does not hold its fields ({what}); pass files "
                          "written by edgesr-bench latency --json, unedited") from None


def _measurements(document: dict, *, source: str) -> list[Measurement]:
    """The rows of a document whose schema is checked; a field it lacks raises KeyError/TypeError."""
    costs = {(c["width"], c["height"]): ModelCost.from_json(c) for c in document.get("cost", [])}
    machine = _machine_label(document["machine"])
    return [
        Measurement(source=source, machine=machine, own_target=own_target(document["machine"]),
                    engine=str(r["label"]), ran_on=str(r["device"]),
                    model=str(document["model"]["name"]), precision=str(r["precision"]), width=int(r["width"]),
                    height=int(r["height"]), p50_ms=float(r["latency_ms"]["p50"]), fps=float(r["fps"]),
                    energy_mj=r.get("energy_mj_per_frame"), cost=costs.get((r["width"], r["height"])))
        for r in document["results"]
    ]


def load_existing(paths: list[str]) -> list[Measurement]:
    """The measurements of every file given that exists; a missing one is one warning line
    (a report over the machines measured so far is still a report), none at all an error."""
    present = []
    for name in paths:
        if Path(name).exists():
            present.append(Path(name))
        else:
            logger.warning("%s: no such file; the report goes on without it", printable(name))
    if not present:
        raise ConfigError(f"none of the {len(paths)} latency JSON file(s) given exists; run edgesr-bench "
                          "latency --json FILE first")
    return [m for path in present for m in load_measurements(path)]


def floor_for(m: Measurement, profile: Target) -> Floor | None:
    """The roofline floor of ``m`` on ``profile``; None without a cost, or for a precision the
    targets' datasheet figures do not give (OpenVINO's bf16 on a CPU)."""
    if not m.cost or m.precision not in PRECISIONS:
        return None
    return roofline_floor(m.cost, profile, precision=m.precision)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def measurements_table(rows: list[Measurement], targets: list[Target]) -> str:
    profiles = load_targets()
    head = ["machine", "engine (ran on)", "model", "input", "p50 ms", "FPS", "mJ/frame", "measured/floor on its own target"]
    for t in targets:
        head += [f"floor ms on {t.key}", f"measured/floor ({t.key})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in rows:
        cells = [m.machine, f"{m.engine} ({m.ran_on})", f"{m.model} {m.precision}", f"{m.width}x{m.height}",
                 f"{m.p50_ms:.2f}", f"{m.fps:.1f}", "-" if m.energy_mj is None else f"{m.energy_mj:.1f}"]
        own = floor_for(m, profiles[m.own_target]) if m.own_target else None
        cells.append(f"{m.p50_ms / 1e3 / own.floor_s:.1f}x ({m.own_target})" if own else "- (no profile)")
        for t in targets:
            floor = floor_for(m, t)
            cells += [_ms(floor.floor_s) if floor else "-",
                      f"{m.p50_ms / 1e3 / floor.floor_s:.1f}x" if floor else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def floors_table(rows: list[Measurement], targets: list[Target]) -> str:
    head = ["target", "model", "input", "precision", "GMACs", "MB moved", "compute ms", "memory ms",
            "floor ms", "bound", "FPS bound"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    seen = set()
    for m in rows:
        for t in targets:
            key = (t.key, m.model, m.width, m.height, m.precision)
            floor = floor_for(m, t)
            if key in seen or floor is None:
                continue
            seen.add(key)
            lines.append("| " + " | ".join([
                t.key, m.model, f"{m.width}x{m.height}", m.precision, f"{m.cost.multi_adds / 1e9:.3f}",
                f"{m.cost.bytes_at(m.precision) / 1e6:.1f}", _ms(floor.compute_s), _ms(floor.memory_s),
                _ms(floor.floor_s), floor.bound, f"{floor.fps_bound:.0f}"]) + " |")
    return "\n".join(lines)


def targets_section(targets: list[Target]) -> str:
    lines = []
    for t in targets:
        peaks = ", ".join(f"{k} {v:g} {'TOPS' if k == 'int8' else 'TFLOPS'}" if v else f"{k} not published"
                          for k, v in t.peak_tflops.items())
        lines.append(f"- **{t.key}**: {t.name}; {peaks}; {t.memory_bandwidth_gbs:g} GB/s. Sources: "
                     + "; ".join(t.sources))
    return "\n".join(lines)


def report_markdown(rows: list[Measurement], targets: list[Target], *, plots: list[str], plots_note: str | None) -> str:
    parts = [
        "# edgesr latency report", "",
        f"{len(rows)} measurements from {len({m.source for m in rows})} file(s) "
        f"({', '.join(sorted({m.machine for m in rows}))}).", "",
        "## Measured latency against roofline floors", "",
        "The floor is max(compute, memory) on the target: compute = 2 x Multi-Adds / peak FLOPS at the "
        "precision, memory = bytes each node of the unfused graph reads and writes / memory bandwidth. "
        "measured/floor is how far above that floor the run is; a measurement on another machine than "
        "the target compares the two machines, not an engine's efficiency.", "",
        measurements_table(rows, targets), "", "## Floors", "", floors_table(rows, targets), "",
    ]
    if targets:
        parts += ["## Targets", "", targets_section(targets), ""]
    parts += ["## Plots", ""]
    parts += [f"![{name}]({name})" for name in plots] or []
    if plots_note:
        parts.append(plots_note)
    return "\n".join(parts) + "\n"
