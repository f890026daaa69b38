"""``auto``: which engine runs a job here, and why (see the package notes in
``edgesr.runtime.engines``). Imports no engine: availability checks are cheap."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from edgesr.errors import EngineUnavailableError
from edgesr.runtime.engines.availability import ort_gpu_provider
from edgesr.runtime.engines.table import ENGINES, EngineDescriptor, check_engine_name, split_engine_name


def _installed(package: str) -> bool:
    """Whether ``package`` can be found, without importing it (an import hook may refuse it
    with ImportError; a half-imported module has no spec, ValueError)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True, kw_only=True)
class EngineChoice:
    """Which engine ``auto`` (or an explicit name) resolved to, and why."""

    name: str
    reason: str  # everything: the rule, and every engine that cannot run here
    device: str | None = None  # from ``name:DEVICE``; None = the engine's default device
    #: what ``edgesr-run`` prints: the engine and any engine the rule passed over, but not
    #: the engines that are not installed (TensorRT is mentioned only when asked for)
    summary: str = ""


def _auto_passes_over(row: EngineDescriptor, lr_px: int | None) -> str:
    """Why ``auto`` does not try ``row`` for this job ("" when it does)."""
    if row.auto_cpu_only and ort_gpu_provider():
        return "passed over: ONNX Runtime has a GPU provider here, which is faster"
    if row.auto_min_lr_px and (lr_px is None or lr_px < row.auto_min_lr_px):
        size = "of unknown size" if lr_px is None else f"of {lr_px:,} LR px"
        return f"passed over: a job {size} is below {row.auto_min_lr_px:,}, where its start-up costs more than its faster calls save"
    return ""


def choose_engine(name: str = "auto", *, lr_px: int | None = None) -> EngineChoice:
    """Resolve ``auto`` to the first available engine by ``auto_rank`` whose job rules
    (``auto_cpu_only``, ``auto_min_lr_px``; ``lr_px``: the job's LR pixels, None = unknown)
    let it be tried (explicit names pass through). Raises EngineUnavailableError when nothing
    can run ONNX models here."""
    name = check_engine_name(name)
    if name != "auto":
        engine, device = split_engine_name(name)
        return EngineChoice(name=engine, device=device, reason="requested", summary="requested")
    ranked = sorted((row for row in ENGINES.values() if row.auto_rank is not None),
                    key=lambda row: row.auto_rank or 0)
    refusals: list[str] = []  # engines that cannot run here
    rules: list[str] = []  # engines auto's rule passed over for this job
    for row in ranked:
        if row.package and not _installed(row.package):
            refusals.append(f"{row.name}: {row.package} is not installed")
            continue
        passed_over = _auto_passes_over(row, lr_px)
        if passed_over:
            rules.append(f"{row.name} {passed_over}")
            continue
        ok, why = row.available()
        if ok:
            summary = "; ".join([why, *rules])
            passed = f"; not usable: {'; '.join(refusals)}" if refusals else ""
            return EngineChoice(name=row.name, reason=f"{summary}{passed}", summary=summary)
        refusals.append(f"{row.name}: {_without_advice(why)}")
    raise EngineUnavailableError(
        f"no engine can run ONNX models here ({'; '.join(refusals + rules)}); {ENGINES['ort'].install_hint}")


def _without_advice(why: str) -> str:
    """The reason part of an availability answer ("X is missing; do Y" -> "X is missing"), so a
    message gives one piece of advice, its own."""
    return why.split("; ")[0]
