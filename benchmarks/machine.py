"""What machine a benchmark ran on: recorded in the latency JSON (no torch here)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: The board's name on Arm boards (Jetson, Raspberry Pi): "NVIDIA Jetson Orin NX ...".
BOARD_MODEL_FILE = Path("/proc/device-tree/model")


def _run(command: list[str]) -> str | None:
    """stdout of a short query command, or None when it is absent or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info() -> dict[str, str] | None:
    """Name and driver of the first NVIDIA GPU (from nvidia-smi), or None."""
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if not out:
        return None
    name, driver, memory = (part.strip() for part in out.splitlines()[0].split(",", 2))
    return {"name": name, "driver": driver, "memory": memory}


def board_info() -> dict[str, str] | None:
    """Board model (device tree: Jetson, Raspberry Pi) and Jetson power mode (``nvpmodel -q``)."""
    try:
        info = {"model": BOARD_MODEL_FILE.read_text(errors="replace").strip("\x00 \n")}
    except OSError:
        return None
    mode = _run(["nvpmodel", "-q"])
    if mode:
        info["power_mode"] = " ".join(mode.split())
    return info


def _version(*distributions: str) -> str | None:
    """Installed version of the first distribution found (read from metadata: no import)."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def library_versions() -> dict[str, str | None]:
    versions = {"python": platform.python_version(), "numpy": _version("numpy"),
                "onnxruntime": _version("onnxruntime", "onnxruntime-gpu"),
                "tensorrt": _version("tensorrt", "tensorrt-cu12", "tensorrt_cu12")}
    if "torch" in sys.modules:  # only when this run used the torch engine
        versions["torch"] = _version("torch")
    cuda = _run(["nvcc", "--version"])
    versions["cuda"] = cuda.splitlines()[-1] if cuda else None
    return versions


def machine_info(argv: list[str]) -> dict:
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "gpu": gpu_info(),
        "board": board_info(),
        "versions": library_versions(),
        "command": " ".join(argv),
    }
