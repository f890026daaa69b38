"""ONNX Runtime's mobile format (.ort) and its reduced-operator config, from an exported ONNX.

``onnxruntime.tools.convert_onnx_models_to_ort`` writes, for ``model.onnx``:

- ``model.ort`` (optimization style Fixed: graph optimizations applied now, for the CPU/XNNPACK
  providers) and ``model.required_operators.config``;
- ``model.with_runtime_opt.ort`` (style Runtime: optimizations left to load time, after
  NNAPI/CoreML have taken their nodes; what ONNX Runtime recommends with those providers) and
  ``model.required_operators.with_runtime_opt.config``.

The config lists the operators (domain; opset; ops) a reduced-size ONNX Runtime build for
Android/iOS needs (``build.sh --include_ops_by_config``). The ``edgesr::DynamicSnakeConv``
node of LMFN carries an ONNX local function; the converter inlines model-local functions when
it loads the model, so the .ort graph holds the function's standard-op body (GridSample ...) and
the configs name no ``edgesr`` domain op; checked here by running the .ort files in ONNX
Runtime against the ONNX file.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesr.errors import ExportError
from edgesr.fileio import write_atomically

logger = logging.getLogger(__name__)

#: Largest |ORT format - ONNX| output difference accepted (same kernels, fused differently).
ORT_FORMAT_TOLERANCE = 1e-4


@dataclass(frozen=True, kw_only=True)
class OrtFormatReport:
    files: list[Path]
    max_abs_error: dict[str, float]  # .ort file name -> max |ORT format - ONNX| on a random input
    custom_domain_ops: list[str]  # ops of non-standard domains left in the config (none expected)


def _run(path: Path, lr: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: lr})[0]


def _custom_domain_ops(config: Path) -> list[str]:
    standard = ("ai.onnx", "com.microsoft", "ai.onnx.ml")
    rows = [line.split(";") for line in config.read_text().splitlines() if line and not line.startswith("#")]
    return [f"{domain}::{ops}" for domain, _opset, ops in rows if domain not in standard]


def ort_from_onnx(onnx_path: Path, *, overwrite: bool = True) -> OrtFormatReport:
    """Convert ``onnx_path`` to .ort files + configs beside it, then check them (see notes)."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    onnx_path = Path(onnx_path)
    with tempfile.TemporaryDirectory(prefix="edgesr-ort-") as folder:
        work = Path(folder)
        shutil.copyfile(onnx_path, work / onnx_path.name)
        try:
            convert_onnx_models_to_ort(work / onnx_path.name, output_dir=work / "out",
                                       optimization_styles=[OptimizationStyle.Fixed, OptimizationStyle.Runtime])
        except Exception as exc:  # the converter raises bare RuntimeErrors
            raise ExportError(f"ONNX Runtime could not convert {onnx_path.name} to the ORT format: {exc}") from None
        produced = sorted((work / "out").glob(f"{onnx_path.stem}*"))
        if not any(p.suffix == ".ort" for p in produced):
            raise ExportError(f"the ORT converter wrote no .ort file for {onnx_path.name}; run it with -v to see why")
        targets = [onnx_path.with_name(p.name) for p in produced]
        existing = [t for t in targets if t.exists()]
        if existing and not overwrite:
            raise ExportError(f"{existing[0]} already exists; pass --overwrite to replace it")
        for source, target in zip(produced, targets):
            write_atomically(target, lambda tmp, source=source: shutil.copyfile(source, tmp), overwrite=overwrite)
    lr = np.random.default_rng(0).random((1, 3, 37, 29), dtype=np.float32)  # odd size, not a trace size
    reference = _run(onnx_path, lr)
    errors = {t.name: float(np.abs(_run(t, lr) - reference).max()) for t in targets if t.suffix == ".ort"}
    bad = {name: err for name, err in errors.items() if not err <= ORT_FORMAT_TOLERANCE}
    if bad:
        raise ExportError(f"the ORT format model differs from the ONNX file: max abs error {bad} > "
                          f"{ORT_FORMAT_TOLERANCE}; report this with the ONNX Runtime version")
    custom = [op for t in targets if t.suffix == ".config" for op in _custom_domain_ops(t)]
    return OrtFormatReport(files=targets, max_abs_error=errors, custom_domain_ops=custom)
