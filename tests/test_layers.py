"""The layer rules of DESIGN section 1, checked statically (every import reachable through
edgesr code): the runtime never imports torch, the shared core stays standard-library only.
This is the one "never imports torch" check; tests/test_runtime_no_torch.py runs the runtime
where the extras are missing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# Which folder holds which import package (pyproject's package-dir mapping).
PACKAGE_DIRS = {"edgesr.export": "export", "edgesr.runtime": "runtime",
                "edgesr.benchmarks": "benchmarks", "edgesr": "edgesr"}

# DESIGN section 1: what each layer must never reach, directly or through edgesr modules.
FORBIDDEN = {
    "edgesr.runtime": ("torch", "edgesr.models", "edgesr.ops", "edgesr.train",
                       "edgesr.export", "edgesr.benchmarks", "edgesr.complexity",
                       "edgesr.weights_io"),
    "edgesr.spec": ("torch", "numpy", "onnx", "onnxruntime", "cv2"),
    "edgesr.errors": ("torch", "numpy", "onnx", "onnxruntime", "cv2"),
    "edgesr.cli_util": ("torch", "numpy", "onnx", "onnxruntime", "cv2"),
    "edgesr.fileio": ("torch", "numpy", "onnx", "onnxruntime", "cv2", "PIL"),
    "edgesr.trust": ("torch", "numpy", "onnx", "onnxruntime", "cv2", "PIL"),
    "edgesr.image_guard": ("torch", "numpy", "onnx", "onnxruntime", "cv2"),
    "edgesr.models": ("edgesr.export", "edgesr.runtime", "edgesr.benchmarks", "onnxruntime"),
    "edgesr.ops": ("edgesr.export", "edgesr.runtime", "edgesr.benchmarks", "onnxruntime"),
}


def _module_file(module: str) -> Path | None:
    for package, folder in PACKAGE_DIRS.items():
        if module == package or module.startswith(package + "."):
            rest = module[len(package):].lstrip(".").split(".") if module != package else []
            base = REPO / folder / Path(*rest) if rest else REPO / folder
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    return candidate
            return None
    return None


def _imports_of(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _reachable_imports(start: str) -> dict[str, str]:
    """Every module reachable from ``start`` through edgesr code -> the module importing it."""
    seen: dict[str, str] = {}
    stack = [start]
    start_file = _module_file(start)
    if start_file is not None and start_file.name == "__init__.py":  # a package: all its modules,
        # subpackages too (engines are named in the table as strings, so no import reaches them)
        root = start_file.parent
        stack += [".".join((start, *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
                  for p in root.rglob("*.py")]
    while stack:
        module = stack.pop()
        path = _module_file(module)
        if path is None:
            continue
        for imported in _imports_of(path, module):
            if imported not in seen:
                seen[imported] = module
                if imported.startswith("edgesr"):
                    stack.append(imported)
    return seen


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_never_reaches_forbidden_modules(layer: str) -> None:
    reached = _reachable_imports(layer)
    bad = {m: by for m, by in reached.items() for f in FORBIDDEN[layer] if _is_under(m, f)}
    assert not bad, f"{layer} reaches forbidden modules: " + ", ".join(f"{m} (via {by})" for m, by in bad.items())


def test_checker_sees_through_the_package_dir_mapping() -> None:
    # Guards the checker itself: the runtime's engine module must be found and parsed.
    reached = _reachable_imports("edgesr.runtime")
    assert "numpy" in reached and "edgesr.spec" in reached
    assert _is_under("torch.nn", "torch") and not _is_under("torchvision", "torch")
