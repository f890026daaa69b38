"""A runtime-only install (``pip install -e '.[cpu]'``, what a Jetson gets), simulated.

A subprocess gets a ``sitecustomize`` that makes every package outside the runtime's
dependencies (torch, onnx, scikit-image, ...) raise ModuleNotFoundError, exactly as when it is
not installed. There ``edgesr-run`` upscales end to end with no TensorRT notice, and the four
torch-side commands answer with one line naming the extra to install, not a traceback.

That the runtime never *imports* torch is checked once, statically, in tests/test_layers.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from battery_util import assert_ok, assert_refused, script
from conftest import TOY_SCALE

#: What ``.[cpu]`` does not install (top-level import names).
NOT_IN_A_RUNTIME_INSTALL = ("torch", "safetensors", "onnx", "onnxsim", "onnxslim",
                            "onnxconverter_common", "skimage", "adan_pytorch", "triton", "tensorrt")


@pytest.fixture(scope="module")
def runtime_only_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("runtime_only")
    (folder / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import sys
        BLOCKED = {NOT_IN_A_RUNTIME_INSTALL!r}

        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{top!r}}", name=top)
                return None

        sys.meta_path.insert(0, NotInstalled())
    """))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), *filter(None, [env.get("PYTHONPATH")])])
    env["EDGESR_CACHE_DIR"] = str(folder / "cache")
    return env


def _run(name: str, *args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*script(name), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_the_blocker_really_hides_the_extras(runtime_only_env) -> None:
    for module in NOT_IN_A_RUNTIME_INSTALL:
        result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                                text=True, env=runtime_only_env, timeout=60)
        assert result.returncode != 0 and f"No module named '{module}'" in result.stderr, module


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    photo = Image.open(Path(__file__).resolve().parents[1] / "runtime" / "examples" / "chelsea_160x120.png")
    path = tmp_path / "cat.png"
    photo.crop((40, 30, 104, 78)).save(path)
    return path


def test_edgesr_run_works_without_the_extras_and_says_nothing_of_tensorrt(
        runtime_only_env, toy_onnx: Path, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "cat_x2.png"
    result = _run("edgesr-run", photo, "-o", out, "--model", toy_onnx, "--threads", "1", env=runtime_only_env)
    assert_ok(result)  # includes: no TensorRT notice on stderr for a default (auto) run
    assert "engine: ort on CPUExecutionProvider" in result.stdout and "tensorrt" not in result.stdout.lower()
    with Image.open(out) as im:
        assert im.size == (64 * TOY_SCALE, 48 * TOY_SCALE)


def test_engine_trt_gives_its_advice_once(runtime_only_env, toy_onnx: Path, photo: Path, tmp_path: Path) -> None:
    result = _run("edgesr-run", photo, "-o", tmp_path / "o.png", "--model", toy_onnx, "--engine", "trt",
                  env=runtime_only_env)
    line = assert_refused(result, "edgesr-run", "engine 'trt' is not available")
    assert line.count("pip install") == 1, line


@pytest.mark.parametrize(("extra", "needles"), [
    (["--model", "lmfn_x4"], ["needs the `export` extra", "pip install -e '.[export]'", ".onnx"]),
    (["--model", "osffnet_x4", "--engine", "torch"], ["engine 'torch' is not available", "--engine ort"]),
])
def test_torch_paths_of_edgesr_run_are_one_line(runtime_only_env, photo: Path, tmp_path: Path,
                                                 extra: list[str], needles: list[str]) -> None:
    result = _run("edgesr-run", photo, "-o", tmp_path / "o.png", *extra, env=runtime_only_env)
    assert_refused(result, "edgesr-run", *needles)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(("command", "args", "extra"), [
    ("edgesr-export", ["--model", "osffnet_x4"], "export"),
    ("edgesr-bench", ["--model", "osffnet", "--scale", "4"], "export"),
    ("edgesr-bench", ["complexity", "--models", "osffnet_x4"], "export"),
    ("edgesr-train", ["--config", "osffnet_x4", "--train-dir", "."], "train"),
    ("edgesr-eval", ["--model", "osffnet_x4", "--data", "."], "train"),
])
def test_torch_commands_name_the_extra_to_install(runtime_only_env, command: str, args: list[str],
                                                   extra: str, tmp_path: Path) -> None:
    result = _run(command, *args, env={**runtime_only_env, "PWD": str(tmp_path)})
    assert_refused(result, command, f"needs the `{extra}` extra", f"pip install -e '.[{extra}]'")
