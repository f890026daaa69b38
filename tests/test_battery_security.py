"""Planted cache files through the real ``edgesr-run`` (issue 16's battery, part 2).

Another user plants an export with the right name and metadata but other weights: in a shared
(1777) cache root, or behind an ``EDGESR_CACHE_DIR`` symlink to their folder. edgesr must not
run it: one warning line, a fresh export in a private folder, and the output of the real
model. The oracle: the same command on the legitimate export file, and on the planted file
(which gives a visibly different image, so the comparison can fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from battery_util import assert_refused, run
from trust_util import own_folder_of, run_as, second_user, shared_scratch

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

MODEL = "osffnet-tiny_x4"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    yield from shared_scratch()


@pytest.fixture(scope="module")
def legit(scratch: Path) -> Path:
    """The export edgesr makes for MODEL, and (beside it) the cache file name it goes by."""
    from edgesr.export.cache import cached_onnx_for

    cache = scratch / "own-cache"
    cache.mkdir(mode=0o700)
    return cached_onnx_for(MODEL, cache_dir=cache)


@pytest.fixture(scope="module")
def photo(scratch: Path) -> Path:
    from skimage import data

    path = scratch / "in.png"
    Image.fromarray(data.astronaut()[100:132, 180:212]).save(path)
    path.chmod(0o644)
    return path


def _upscale(model: str | Path, photo: Path, out: Path, env: dict[str, str] | None = None) -> np.ndarray:
    result = run("edgesr-run", "--model", model, photo, "-o", out, env=env)
    assert result.returncode == 0, result.stderr
    return np.asarray(Image.open(out), dtype=np.int16)


@pytest.fixture(scope="module")
def planted(legit: Path, scratch: Path) -> Path:
    """The legitimate graph with every weight halved: same name, same metadata."""
    model = onnx.load(str(legit))
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            array = onnx.numpy_helper.to_array(tensor) * 0.5
            tensor.CopyFrom(onnx.numpy_helper.from_array(array.astype(np.float32), tensor.name))
    path = scratch / "planted" / legit.name
    path.parent.mkdir()
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def expected(legit: Path, planted: Path, photo: Path, scratch: Path) -> np.ndarray:
    real = _upscale(legit, photo, scratch / "real.png")
    fake = _upscale(planted, photo, scratch / "fake.png")
    assert np.abs(real - fake).max() > 16  # the plant is visible in the output
    return real


def _plant_in(cache_root: Path, planted: Path, *, owner: int) -> Path:
    """The planted file (and a matching digest) under ``cache_root``/onnx, mode 0666."""
    from edgesr.trust import digest_path, record_digest

    folder = cache_root / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / planted.name
    shutil.copyfile(planted, target)
    record_digest(target)
    for path in (folder, target, digest_path(target)):
        path.chmod(0o777 if path.is_dir() else 0o666)
        os.chown(path, owner, owner)
    return target


def _assert_warned_once_and_exported(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "not using the ONNX export cache" in line]
    assert len(warnings) == 1, result.stderr
    for needle in needles:
        assert needle in warnings[0], (needle, warnings[0])
    assert "exported osffnet-tiny_x4 into the cache" in result.stderr


def test_a_shared_1777_cache_root_with_a_plant_is_not_used(expected: np.ndarray, planted: Path,
                                                            photo: Path, tmp_path: Path) -> None:
    other = second_user()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    plant = _plant_in(shared, planted, owner=other.pw_uid)
    before = plant.read_bytes()
    out = tmp_path / "out.png"
    result = run("edgesr-run", "--model", MODEL, photo, "-o", out, env={"EDGESR_CACHE_DIR": str(shared)})
    _assert_warned_once_and_exported(result, "writable by group or others (mode 1777)")
    assert np.abs(np.asarray(Image.open(out), dtype=np.int16) - expected).max() <= 1
    assert plant.read_bytes() == before  # their file is left alone


def test_a_cache_dir_symlinked_to_someone_elses_folder_is_not_used(expected: np.ndarray, planted: Path,
                                                                   photo: Path, tmp_path: Path) -> None:
    other = second_user()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    _plant_in(theirs, planted, owner=other.pw_uid)
    os.chown(theirs, other.pw_uid, other.pw_gid)
    (tmp_path / "link").symlink_to(theirs)
    out = tmp_path / "out.png"
    result = run("edgesr-run", "--model", MODEL, photo, "-o", out,
                 env={"EDGESR_CACHE_DIR": str(tmp_path / "link")})
    _assert_warned_once_and_exported(result, "is a symbolic link")
    assert np.abs(np.asarray(Image.open(out), dtype=np.int16) - expected).max() <= 1


def test_as_a_second_user_a_plant_in_a_shared_cache_is_not_used(expected: np.ndarray, planted: Path,
                                                               photo: Path, scratch: Path) -> None:
    other = second_user()
    shared = scratch / "shared-as-root"
    shared.mkdir()
    shared.chmod(0o1777)
    _plant_in(shared, planted, owner=0)
    home = own_folder_of(other, scratch / "home-run")
    out = home / "out.png"
    result = run_as(other, "edgesr-run", "--model", MODEL, photo, "-o", out,
                    env={"HOME": str(home), "EDGESR_CACHE_DIR": str(shared)}, view=scratch / "view")
    _assert_warned_once_and_exported(result, "owned by uid 0")
    assert np.abs(np.asarray(Image.open(out), dtype=np.int16) - expected).max() <= 1


def test_a_same_user_ort_graph_entry_with_other_weights_is_rebuilt(toy_onnx: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    # Private mode and owner, valid ONNX, other weights: only the recorded digest can tell.
    import onnxruntime as ort

    from edgesr.runtime.engines.ort import OrtEngine, OrtOptions

    lr = np.random.default_rng(3).random((1, 3, 40, 36), dtype=np.float32)
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path))
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",), graph_cache=False)) as plain:
        expected = plain.run(lr)
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",))) as first:
        first.run(lr)
    (entry,) = (tmp_path / "ort").glob("*.onnx")
    graph = onnx.load(str(entry))
    for tensor in graph.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            halved = (onnx.numpy_helper.to_array(tensor) * 0.5).astype(np.float32)
            tensor.CopyFrom(onnx.numpy_helper.from_array(halved, tensor.name))
    onnx.save(graph, str(entry))
    entry.chmod(0o600)
    altered = ort.InferenceSession(str(entry), providers=["CPUExecutionProvider"])
    assert np.abs(altered.run(None, {altered.get_inputs()[0].name: lr})[0] - expected).max() > 0.1
    with OrtEngine(model_path=toy_onnx, options=OrtOptions(providers=("cpu",))) as again:
        np.testing.assert_array_equal(again.run(lr), expected)
    assert "does not match its recorded SHA-256" in caplog.text


@pytest.mark.parametrize("command", [["edgesr-export", "-o", "x.onnx"], ["edgesr-eval", "--data", "."]])
def test_a_weights_pickle_that_runs_code_is_refused_in_one_line(command: list[str], tmp_path: Path) -> None:
    import torch

    from trust_util import MarkerPickle

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pth"
    torch.save({"params": MarkerPickle(marker)}, evil)
    name, *rest = command
    result = run(name, "--model", "bsrn_x4", "--weights", evil, *rest, cwd=tmp_path)
    assert_refused(result, name, "evil.pth", "Unsupported global", "never runs code")
    assert not marker.exists()
