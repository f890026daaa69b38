"""Power from NVIDIA's ``tegrastats`` on a Jetson: parse its lines, sample it during a run.

Line format (NVIDIA Jetson Linux Developer Guide, "tegrastats Utility": each power rail is
printed as ``NAME current_mW/average_mW``), e.g. on a Jetson AGX Orin:

    ... GR3D_FREQ 0% cpu@43.343C ... VDD_GPU_SOC 1995mW/1995mW VDD_CPU_CV 0mW/0mW VIN_SYS_5V0 2524mW/2524mW

Module input power: ``VDD_IN`` where the module reports it (Orin Nano and Orin NX); otherwise
(AGX Orin, whose rails are GPU+SoC, CPU+CV and the 5 V system rail) the sum of the rails.
Newer releases print ``current/average/max``; the first figure is the current one.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*)\s+(\d+)mW/(\d+)mW(?:/\d+mW)?")
_GPU_LOAD = re.compile(r"\bGR3D_FREQ\s+(\d+)%")
TOTAL_RAIL = "VDD_IN"


@dataclass(frozen=True, kw_only=True)
class PowerSample:
    rails_mw: dict[str, int]  # rail -> current power in mW
    gpu_load_pct: int | None

    @property
    def total_mw(self) -> int:
        """Module input power: VDD_IN when present, else the sum of the rails."""
        if TOTAL_RAIL in self.rails_mw:
            return self.rails_mw[TOTAL_RAIL]
        return sum(self.rails_mw.values())


def parse_tegrastats_line(line: str) -> PowerSample | None:
    """One tegrastats line -> its power rails (None when the line carries no rail)."""
    rails = {name: int(current) for name, current, _average in _RAIL.findall(line)}
    if not rails:
        return None
    load = _GPU_LOAD.search(line)
    return PowerSample(rails_mw=rails, gpu_load_pct=int(load.group(1)) if load else None)


class TegrastatsSampler:
    """Run ``tegrastats --interval MS`` in the background while a benchmark runs.

    ``with TegrastatsSampler() as sampler: ...``; then ``sampler.samples``. Does nothing (and
    ``available`` is False) where there is no tegrastats binary.
    """

    def __init__(self, *, interval_ms: int = 100) -> None:
        self.interval_ms = interval_ms
        self.binary = shutil.which("tegrastats")
        self.samples: list[tuple[float, PowerSample]] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self.binary is not None

    def __enter__(self) -> TegrastatsSampler:
        if self.binary is None:
            return self
        self._process = subprocess.Popen([self.binary, "--interval", str(self.interval_ms)],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            sample = parse_tegrastats_line(line)
            if sample is not None:
                self.samples.append((time.perf_counter(), sample))

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def mean_power_mw(self, start: float, end: float) -> float | None:
        """Mean module power over [start, end] (perf_counter seconds); None without samples."""
        inside = [s.total_mw for t, s in self.samples if start <= t <= end]
        return sum(inside) / len(inside) if inside else None


def energy_per_frame_mj(mean_power_mw: float | None, latency_ms: float) -> float | None:
    """mW x ms = µJ; / 1000 -> mJ per frame."""
    if mean_power_mw is None:
        return None
    return mean_power_mw * latency_ms / 1000.0
