"""mypy over the TensorRT runtime modules, against the ``tensorrt-stubs`` package (no GPU).

TensorRT cannot run here, so its API use is checked statically: every ``tensorrt`` call in
``runtime/engines/trt/`` (and what it imports) must exist with that signature in the
stubs (TensorRT 10.13). Members that only newer releases have are looked up with getattr,
so they need no ``type: ignore``.

Both confined to a temporary folder:

- ``tensorrt-stubs`` installs ``tensorrt/__init__.pyi`` with no ``py.typed`` beside it, so
  mypy ignores it in site-packages; the stubs are copied to a folder on ``mypy_path``.
  A handful of its generated signatures are not valid Python (a parameter named ``in``,
  a default before a non-default); those few ``def`` lines are rewritten to ``*args``.
- The repository maps ``runtime/`` to ``edgesr.runtime`` (setuptools ``package-dir``), which
  mypy cannot follow through the editable install's import hook; the package is installed
  into the folder (``pip install --no-deps --target``, the real installed layout) instead.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = [
    f"edgesr.runtime.engines.trt.{name}"
    for name in ("build", "cache", "cuda_memory", "engine_bytes", "kernel", "kernel_compile", "onnx_bytes",
                 "options", "plugin", "plugin_launch", "profile", "runner")
]  # fmt: skip
STUB_FILES = ("tensorrt/__init__.pyi", "tensorrt_bindings/__init__.pyi", "tensorrt_bindings/tensorrt.pyi")


def _stub_root() -> Path | None:
    try:
        dist = importlib.metadata.distribution("tensorrt-stubs")
    except importlib.metadata.PackageNotFoundError:
        return None
    root = Path(str(dist.locate_file("")))
    return root if all((root / f).is_file() for f in STUB_FILES) else None


HAS_MYPY = importlib.util.find_spec("mypy") is not None
STUBS = _stub_root()
pytestmark = [
    pytest.mark.skipif(not HAS_MYPY, reason="mypy is not installed (pip install mypy)"),
    pytest.mark.skipif(
        STUBS is None, reason="tensorrt-stubs is not installed (pip install --no-deps tensorrt-stubs)"
    ),
]


def _sanitize_stub(text: str) -> str:
    """Rewrite the signature of each ``def`` line that is not valid Python to ``*args``."""
    out = []
    for line in text.splitlines():
        match = re.match(r"^(\s*)def (\w+)\((.*)\)(\s*->\s*.*)?:\s*$", line)
        if match:
            try:
                ast.parse(line.strip() + " ...")
            except SyntaxError:
                indent, name, params, ret = match.groups()
                first = params.split(",")[0].split(":")[0].strip()
                lead = "self, " if first in ("self", "cls", "this") else ""
                line = f"{indent}def {name}({lead}*args: typing.Any, **kwargs: typing.Any){ret or ''}:"
        out.append(line)
    fixed = "\n".join(out) + "\n"
    if "import typing" not in fixed:
        fixed = "import typing\n" + fixed
    ast.parse(fixed)  # the copy must now be valid
    return fixed


@pytest.fixture(scope="module")
def mypy_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert STUBS is not None
    root = tmp_path_factory.mktemp("mypy")
    for rel in STUB_FILES:
        target = root / "stubs" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_sanitize_stub((STUBS / rel).read_text(encoding="utf-8")), encoding="utf-8")
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
               "--target", str(root / "src"), str(REPO)]  # fmt: skip
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    (root / "mypy.ini").write_text(
        textwrap.dedent(
            f"""
            [mypy]
            mypy_path = {root / 'stubs'}{os.pathsep}{root / 'src'}
            cache_dir = {root / 'cache'}
            check_untyped_defs = True
            disallow_incomplete_defs = True
            warn_unused_ignores = True
            warn_redundant_casts = True
            strict_equality = True

            [mypy-tensorrt,tensorrt.*,tensorrt_bindings,tensorrt_bindings.*]
            ignore_errors = True

            [mypy-tensorrt_libs]
            ignore_missing_imports = True
            """
        ),
        encoding="utf-8",
    )
    return root


def _mypy(root: Path, *modules: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "mypy", "--config-file", str(root / "mypy.ini"), "--no-error-summary"]
    for module in modules:
        args += ["-m", module]
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    return subprocess.run(args, capture_output=True, text=True, cwd=str(root), timeout=240, env=env)


def test_trt_runtime_modules_typecheck_against_tensorrt_stubs(mypy_tree: Path) -> None:
    proc = _mypy(mypy_tree, *MODULES)
    assert proc.returncode == 0, f"mypy found problems:\n{proc.stdout}\n{proc.stderr}"


def test_the_check_is_not_vacuous(mypy_tree: Path) -> None:
    """A misspelt TensorRT member and a wrong argument type must be caught."""
    probe = mypy_tree / "src" / "edgesr_trt_probe.py"
    probe.write_text(
        textwrap.dedent(
            """
            import tensorrt as trt

            def build(config: trt.IBuilderConfig, parser: trt.OnnxParser) -> None:
                config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPAC, 1 << 30)
                parser.parse(b"", 3)
            """
        ),
        encoding="utf-8",
    )
    proc = _mypy(mypy_tree, "edgesr_trt_probe")
    assert proc.returncode != 0
    assert 'has no attribute "WORKSPAC"' in proc.stdout
    assert 'Argument 2 to "parse" of "OnnxParser"' in proc.stdout
