"""ONNX Runtime session defaults (edgesr.runtime.engines.ort_session) and the optimised-graph cache.

Oracles: util-linux ``lscpu`` for the core count, and an uncached ONNX Runtime session of the
same file for the cached graph's output.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgesr.errors import ConfigError
from edgesr.runtime.engines.ort import OrtEngine, OrtOptions
from edgesr.runtime.engines.ort_session import ORT_CACHE_SUBDIR, physical_cores, usable_cpus


@pytest.mark.skipif(shutil.which("lscpu") is None, reason="lscpu (util-linux) is not installed")
def test_physical_cores_agrees_with_lscpu() -> None:
    rows = subprocess.run(["lscpu", "-p=CPU,CORE,SOCKET"], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    usable = set(usable_cpus())
    cores = {tuple(r.split(",")[1:]) for r in rows if r and not r.startswith("#")
             and int(r.split(",")[0]) in usable}
    assert physical_cores() == len(cores)


def _run(engine: OrtEngine) -> np.ndarray:
    lr = np.random.default_rng(3).random((1, 3, 40, 36), dtype=np.float32)
    return engine.run(lr)


def test_the_cached_graph_gives_the_uncached_output(toy_onnx: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path))
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",), graph_cache=False)) as plain:
        expected = _run(plain)
    assert not (tmp_path / ORT_CACHE_SUBDIR).exists()
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",))) as first:
        np.testing.assert_array_equal(_run(first), expected)
    (entry,) = (tmp_path / ORT_CACHE_SUBDIR).glob("*.onnx")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    stamp = entry.stat().st_mtime_ns
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",))) as second:
        np.testing.assert_array_equal(_run(second), expected)
        assert second.info().details["threads"] == str(physical_cores())
    assert entry.stat().st_mtime_ns == stamp  # loaded, not rebuilt


def test_a_cache_entry_others_could_write_is_not_loaded(toy_onnx: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path))
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",))) as engine:
        expected = _run(engine)
    (entry,) = (tmp_path / ORT_CACHE_SUBDIR).glob("*.onnx")
    entry.write_bytes(b"tampered")
    os.chmod(entry, 0o666)
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",))) as engine:
        np.testing.assert_array_equal(_run(engine), expected)
    assert "writable by group or others" in caplog.text


def test_a_damaged_cache_entry_is_rebuilt(toy_onnx: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path))
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",))) as engine:
        expected = _run(engine)
    (entry,) = (tmp_path / ORT_CACHE_SUBDIR).glob("*.onnx")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, still private
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",))) as engine:
        np.testing.assert_array_equal(_run(engine), expected)
    assert entry.stat().st_size > 100


@pytest.mark.parametrize("field", ["spinning", "graph_cache"])
def test_switches_must_be_booleans(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        OrtOptions(**{field: "no"})
