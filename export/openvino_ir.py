"""OpenVINO IR (``.xml`` + ``.bin``) from an exported ONNX file (``edgesr-export --format openvino``).

Why IR beside the ONNX file: it is OpenVINO's own format, read without the ONNX frontend (by
OpenVINO's C++ and Python runtimes, OpenVINO Model Server, and ``edgesr-run --model x.xml``),
and an FP16 export stores its weights in half the bytes, for Intel GPUs and NPUs, which run
f16 anyway.

- **Conversion**: the ONNX file as the ``openvino`` engine reads it (model-local functions such
  as LMFN's ``edgesr::DynamicSnakeConv`` inlined: ``runtime.engines.openvino.load_onnx``), read
  by OpenVINO's ONNX frontend and saved with ``openvino.save_model``. The weights keep the
  graph's precision (``compress_to_fp16=False``): FP32 for an FP32 export, FP16 for
  ``--fp16``, whose FP32 islands (grid math, statistics) stay FP32 as in the ONNX file.
- **Metadata**: the frontend copies the ONNX ``metadata_props`` (``edgesr.scale`` ...) into the
  IR's ``rt_info`` under ``framework``; ``runtime.engines.openvino_ir`` reads them back, and the check
  below refuses an IR without ``edgesr.scale``.
- **Check**: the IR, compiled on OpenVINO's CPU plugin at exact f32, against the ONNX file on
  ONNX Runtime's CPU provider (an independent implementation), on the export self-check's
  inputs, under the export's tolerances (FP32: max abs <= 1e-3 and PSNR >= 60 dB; FP16:
  PSNR >= 45 dB). A failed check writes nothing.
- **Writes**: both files go through ``fileio.write_atomically``; existing ones are refused
  without ``--overwrite`` (``edgesr-export`` asks :func:`ir_paths` before it exports the ONNX).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesr.errors import ExportError
from edgesr.export.parity import ParityResult, check_inputs, compare_outputs, onnx_session, run_onnx
from edgesr.fileio import check_output_file, write_atomically
from edgesr.runtime.engines.openvino import import_openvino, load_onnx
from edgesr.runtime.engines.openvino_ir import ir_metadata
from edgesr.runtime.model_file import first_line
from edgesr.spec import META_SCALE, ModelSpec


@dataclass(frozen=True, kw_only=True)
class OpenVinoIrReport:
    files: list[Path]  # the .xml, then the .bin
    weights_type: str  # "f32" or "f16": how the .bin stores the weights
    parity: list[ParityResult]


def ir_paths(onnx_path: str | Path, *, overwrite: bool) -> list[Path]:
    """The .xml and .bin written beside ``onnx_path``; a one-line OutputError when one exists
    and ``overwrite`` is off, or the folder cannot take them (called before the ONNX export)."""
    targets = [Path(onnx_path).with_suffix(".xml"), Path(onnx_path).with_suffix(".bin")]
    for target in targets:
        check_output_file(target, inputs=[], overwrite=overwrite, what="OpenVINO IR output")
    return targets


def _check(core: Any, xml: Path, onnx_path: Path, spec: ModelSpec) -> list[ParityResult]:
    """The saved IR (OpenVINO CPU, f32) vs the ONNX file (ONNX Runtime CPU); see the notes."""
    compiled = core.compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    session = onnx_session(onnx_path)
    results = []
    for label, lr in check_inputs(spec):
        reference = run_onnx(session, lr)
        candidate = np.asarray(compiled(lr)[0], dtype=np.float32)
        if candidate.shape != reference.shape:
            raise ExportError(f"the OpenVINO IR maps {tuple(lr.shape)} to {candidate.shape}; the ONNX file to "
                              f"{reference.shape}; report this with the OpenVINO version")
        results.append(compare_outputs(reference, candidate, label=label, lr=lr, reference_name="onnx (ORT)",
                                       candidate_name="openvino ir", fp16=spec.precision == "fp16"))
    return results


def ir_from_onnx(onnx_path: Path, *, overwrite: bool = False, check: bool = True) -> OpenVinoIrReport:
    """Write ``<stem>.xml``/``<stem>.bin`` beside ``onnx_path`` and check them (module notes)."""
    onnx_path = Path(onnx_path)
    targets = ir_paths(onnx_path, overwrite=overwrite)
    ov = import_openvino()
    core = ov.Core()
    onnx_bytes, spec = load_onnx(onnx_path, spec=None)
    try:
        model = core.read_model(onnx_bytes, ov.Tensor(np.empty(0, np.uint8)))
    except Exception as exc:  # noqa: BLE001  (OpenVINO raises RuntimeError subclasses)
        raise ExportError(f"OpenVINO cannot convert {onnx_path.name}: {first_line(exc)}") from None
    if META_SCALE not in ir_metadata(model):
        raise ExportError(f"OpenVINO dropped the edgesr metadata of {onnx_path.name}; report this with the "
                          "OpenVINO version")
    with tempfile.TemporaryDirectory(prefix="edgesr-ir-", dir=onnx_path.parent) as folder:
        staged = Path(folder) / targets[0].name
        ov.save_model(model, str(staged), compress_to_fp16=False)
        parity = _check(core, staged, onnx_path, spec) if check else []
        failed = [r.line() for r in parity if not r.passed]
        if failed:
            raise ExportError(f"the OpenVINO IR does not match {onnx_path.name}: {'; '.join(failed)}. Nothing "
                              "was written; report this with the OpenVINO version")
        for target in targets:
            source = staged.with_suffix(target.suffix)
            write_atomically(target, lambda tmp, source=source: shutil.copyfile(source, tmp), overwrite=overwrite)
    # compress_to_fp16=False: the .bin holds the graph's own weights, f16 exactly for an FP16 export
    weights_type = "f16" if spec.precision == "fp16" else "f32"
    return OpenVinoIrReport(files=targets, weights_type=weights_type, parity=parity)
