"""Loads NVIDIA's real ``tensorrt.plugin`` sources (``tensorrt-cu12-bindings`` wheel,
installed with ``--no-deps``) over the stand-in core, fresh for each test (fixture ``trtp``).
Under CI a missing wheel fails the test; elsewhere it skips with the install command."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import trt_core_standin as core
from edgesr.runtime.engines.trt import plugin, plugin_launch

NVIDIA_VERSION = "10.13.0.35"


def _nvidia_plugin_dir() -> Path | None:
    spec = importlib.util.find_spec("tensorrt_bindings")  # finds the folder, runs nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "plugin"
    return folder if (folder / "_validate.py").is_file() else None


@pytest.fixture
def trtp(monkeypatch: pytest.MonkeyPatch) -> Any:
    """NVIDIA's tensorrt.plugin, freshly loaded over a fresh stand-in core."""
    folder = _nvidia_plugin_dir()
    if folder is None:
        message = f"pip install --no-deps tensorrt-cu12-bindings=={NVIDIA_VERSION} (see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(f"NVIDIA's tensorrt.plugin sources are missing in CI: {message}")
        pytest.skip(f"NVIDIA's tensorrt.plugin sources are not installed: {message}")
    for name in [m for m in sys.modules if m == "tensorrt" or m.startswith("tensorrt.")]:
        monkeypatch.delitem(sys.modules, name)
    trt = core.as_module()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    spec = importlib.util.spec_from_file_location(
        "tensorrt.plugin", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "tensorrt.plugin", module)
    spec.loader.exec_module(module)
    trt.plugin = module
    plugin._reset_for_tests()
    plugin_launch.set_build_target(plugin_launch.BuildTarget((8, 7)))
    yield module
    for name in [m for m in sys.modules if m == "tensorrt" or m.startswith("tensorrt.")]:
        sys.modules.pop(name, None)  # monkeypatch restores whatever was there before
    plugin._reset_for_tests()
    plugin_launch.set_build_target(None)
