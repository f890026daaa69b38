"""PNG plots of a latency report (matplotlib, the optional ``report`` extra)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from edgesr.benchmarks.report import Measurement, floor_for
from edgesr.benchmarks.roofline import Target
from edgesr.fileio import write_atomically


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


#: Marketing words in CPU names that say nothing a reader of the plot needs; the model number
#: and the core count stay ("Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz" -> "Intel Xeon Platinum 8480+").
_CPU_NOISE = re.compile(r"\((?:R|TM|tm)\)|\b(?:CPU|Processor|\d+-Core)\b|@\s*[\d.]+\s*GHz|(?:\bwith|\bw/) Radeon[\w\s]*?Graphics")
_LABEL_CHARS = 22  # characters per label line: about the width of one bar at fontsize 7


def short_machine(machine: str) -> str:
    """``machine`` without trademark marks, clock speed and filler words, spaces collapsed."""
    return " ".join(_CPU_NOISE.sub(" ", machine).split())


def wrapped(text: str, width: int = _LABEL_CHARS) -> str:
    """``text`` on lines of at most ``width`` characters, broken at spaces (long words kept whole)."""
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)) or text


def latency_bars_figure(rows: list[Measurement], targets: list[Target]):  # noqa: ANN201 (a matplotlib Figure)
    """p50 latency per machine/engine/input (bars, log scale), each target's floor as a tick."""
    plt = _pyplot()
    labels = [f"{wrapped(short_machine(m.machine))}\n{m.model} {m.engine}\n{m.width}x{m.height}" for m in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows) + 2), 4.8))
    ax.bar(range(len(rows)), [m.p50_ms for m in rows], color="lightsteelblue", edgecolor="black", label="measured p50")
    markers = "v^<>sdo*"
    for i, t in enumerate(targets):
        floors = [floor_for(m, t) for m in rows]
        xs = [x for x, f in enumerate(floors) if f]
        ax.scatter(xs, [f.floor_s * 1e3 for f in floors if f], marker=markers[i % len(markers)], s=80,
                   zorder=3, edgecolors="black", color=f"C{i + 1}", label=f"floor on {t.key}")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("latency per frame (ms, log)")
    return _finish(fig, ax, title="Measured p50 latency and roofline floors", legend_size=8)


def latency_bars(rows: list[Measurement], targets: list[Target], path: Path, *, overwrite: bool = False) -> Path:
    return _save(latency_bars_figure(rows, targets), path, overwrite=overwrite)


def latency_vs_multi_adds_figure(rows: list[Measurement], targets: list[Target]):  # noqa: ANN201
    """p50 latency against Multi-Adds (log-log), one series per machine/engine, with each
    target's compute floor line (2 x MACs / peak) and each model's full floor (marker)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 5.0))
    costed = [m for m in rows if m.cost]
    series = sorted({(m.machine, m.engine) for m in costed})
    for machine, engine in series:
        pts = [m for m in costed if (m.machine, m.engine) == (machine, engine)]
        ax.plot([m.cost.multi_adds for m in pts], [m.p50_ms for m in pts], "o",
                label=wrapped(f"{engine} on {short_machine(machine)}", width=2 * _LABEL_CHARS))
        for m in pts:
            ax.annotate(f"{m.model} {m.width}x{m.height}", (m.cost.multi_adds, m.p50_ms), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    if costed:
        lo = min(m.cost.multi_adds for m in costed) / 3
        hi = max(m.cost.multi_adds for m in costed) * 3
        for t in targets:
            peak = t.peak_tflops.get(costed[0].precision)
            if peak:
                ax.plot([lo, hi], [2 * lo / (peak * 1e12) * 1e3, 2 * hi / (peak * 1e12) * 1e3], "--",
                        label=f"compute floor {t.key} ({peak:g} TFLOPS)")
            floors = [(m.cost.multi_adds, f) for m in costed if (f := floor_for(m, t)) is not None]
            ax.plot([x for x, _ in floors], [f.floor_s * 1e3 for _, f in floors], "x", ms=9,
                    label=f"roofline floor {t.key} (max of compute, memory)")
        ax.set_xlim(lo, hi)  # room on both sides for the annotations right of each point
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(y=0.15)  # and above the highest point
    ax.set_xlabel("Multi-Adds per frame (full convention)")
    ax.set_ylabel("latency per frame (ms)")
    return _finish(fig, ax, title="Latency against Multi-Adds, with roofline floors", legend_size=7)


def latency_vs_multi_adds(rows: list[Measurement], targets: list[Target], path: Path, *,
                          overwrite: bool = False) -> Path:
    return _save(latency_vs_multi_adds_figure(rows, targets), path, overwrite=overwrite)


def _finish(fig, ax, *, title: str, legend_size: int):  # noqa: ANN001, ANN202
    """Title, legend and a tight layout, so every label lies inside the figure."""
    ax.set_title(title)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    return fig


def _save(fig, path: Path, *, overwrite: bool) -> Path:  # noqa: ANN001
    """The one atomic PNG write every plot ends with."""
    import matplotlib.pyplot as plt

    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110), overwrite=overwrite)
    finally:
        plt.close(fig)
    return path
