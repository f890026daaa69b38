"""edgesr-export --int8: a calibrated, self-checked QDQ INT8 graph (S8S8, TensorRT's form).

Steps: the checked FP32 export (torch vs ONNX, as every export) into a private temporary
folder; ONNX Runtime's static quantization calibrated on tiles of real photos, with other
tiles of the same photos held out for scoring (``int8_calib``, ``int8_quantize``); the
measured sensitivity pass keeping the costliest convolution roles float until the graph
reaches ``target_db`` against FP32 on the held-out tiles (``int8_sensitivity``); the TensorRT
Q/DQ placement contract (``int8_trt_contract``); the self-check against the FP32 graph on
photo inputs of two sizes (one odd) it never saw; the kept roles and their measured cost in
the metadata; an atomic write.

The target, 48 dB against FP32 on the held-out tiles: the done-criterion is at most 0.3 dB
lost on Set5 against the FP32 graph, whose error to HR is about 32.4 dB (Y). Quantization
noise independent of that error adds its mean square, 10*log10(1 + 10**((32.4 - q) / 10))
<= 0.3 dB, so the INT8 noise on Set5 must stay at q >= 43.9 dB. Set5's fine textures carry
more of it than photo tiles do: measured on lkdn_x4 (edgesr-eval, Set5, Y), INT8 graphs at
44.3 dB against FP32 on photo crops no calibration saw lost 0.48 dB, graphs at 52 dB lost
0.03 dB, and the export's own graph (49.6 dB on its held-out tiles) lost 0.12 dB.

The self-check gates on photos only: a static INT8 graph's ranges are calibrated for photos,
and uniform random noise (the FP32 self-check's odd-size input) drives every range past
them, so its PSNR measures saturation by design (about 24 dB on lkdn_x4). That input is
still run and must give finite values of the right shape; its PSNR is printed.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from edgesr.errors import ConfigError, ExportError
from edgesr.export.graph_tidy import node_counts, set_metadata
from edgesr.export.int8_calib import calibration_and_scoring_tiles, calibration_photos
from edgesr.export.int8_quantize import quantize_qdq
from edgesr.export.int8_sensitivity import KeptGroup, choose_float_groups
from edgesr.export.int8_trt_contract import qdq_violations
from edgesr.export.export_report import ExportReport
from edgesr.export.onnx_export import export_model
from edgesr.export.parity import (ODD_HEIGHT_PX, ODD_WIDTH_PX, ParityResult, check_inputs, fail_if_any,
                                  onnx_session, photo_crop, run_onnx)
from edgesr.fileio import check_output_file, write_atomically
from edgesr.metrics import psnr
from edgesr.models.registry import model_name
from edgesr.spec import METADATA_PREFIX, ModelSpec

log = logging.getLogger(__name__)

INT8_TARGET_DB = 48.0  # vs FP32 on the held-out tiles (module docstring)
INT8_MIN_PSNR_DB = 40.0  # self-check floor on photo inputs the pass never saw
META_INT8_KEPT = METADATA_PREFIX + "int8_kept_float"
META_INT8_TARGET = METADATA_PREFIX + "int8_target_db"
META_INT8_REACHED = METADATA_PREFIX + "int8_calibration_db"
META_INT8_CALIB = METADATA_PREFIX + "int8_calibration"


@dataclass(frozen=True, kw_only=True)
class Int8Report:
    """What :func:`export_int8` wrote and measured."""

    path: Path
    fp32: ExportReport  # the FP32 export it started from (in a temporary folder, gone)
    kept: tuple[KeptGroup, ...]
    reached_db: float  # vs FP32 on the held-out scoring tiles
    target_db: float
    calibration: str  # "bundled example photo, 4 tiles (4 held out for scoring)"
    parity: tuple[ParityResult, ...]
    conv_int8: int
    conv_total: int

    def lines(self) -> list[str]:
        out = [f"wrote {self.path} (INT8 QDQ, S8S8 per-channel symmetric; "
               f"{self.conv_int8} of {self.conv_total} Conv INT8)",
               f"  calibration {self.calibration}; {self.reached_db:.2f} dB vs FP32 on the held-out "
               f"tiles (target {self.target_db:g} dB)"]
        out += [f"  kept float  {k.line()}" for k in self.kept] or ["  kept float  none"]
        out += [f"  parity      {r.line()}" for r in self.parity]
        return out


def default_int8_name(name: str) -> str:
    return f"{name}_int8.onnx"


def _int8_check_inputs(spec: ModelSpec) -> list[tuple[str, np.ndarray, bool]]:
    """(label, input, gated on PSNR): the FP32 self-check's inputs, the random one not gated
    (module docstring), plus an odd-size crop of the same photo at another place."""
    inputs = [(label, lr, label != "odd-size random") for label, lr in check_inputs(spec)]
    whole = photo_crop(size_px=256)  # scikit-image's astronaut, centre; None without it
    if whole is not None:
        h, w = max(ODD_HEIGHT_PX, spec.min_size_px), max(ODD_WIDTH_PX, spec.min_size_px)
        inputs.append(("odd-size photo", np.ascontiguousarray(whole[:, :, 10:10 + h, 200:200 + w]), True))
    return inputs


def _int8_parity(fp32: onnx.ModelProto, int8: onnx.ModelProto, spec: ModelSpec) -> list[ParityResult]:
    """The INT8 graph vs the clipped FP32 graph on the self-check inputs."""
    full, quant = onnx_session(fp32), onnx_session(int8)
    results = []
    for label, lr, gated in _int8_check_inputs(spec):
        reference = np.clip(run_onnx(full, lr), 0.0, 1.0)
        candidate = run_onnx(quant, lr)
        finite = bool(np.isfinite(candidate).all()) and candidate.shape == reference.shape
        db = psnr(candidate, reference, data_range=1.0) if finite else float("-inf")
        max_abs = float(np.max(np.abs(candidate - reference))) if finite else float("inf")
        results.append(ParityResult(
            label=label, input_shape=tuple(lr.shape), reference="onnx fp32 (clipped)",
            candidate="onnx int8", max_abs_error=max_abs, psnr_db=db,
            tolerance=f"PSNR >= {INT8_MIN_PSNR_DB:g} dB" if gated else "finite (not gated: noise)",
            passed=finite and (db >= INT8_MIN_PSNR_DB or not gated)))
    return results


def with_int8_metadata(model: onnx.ModelProto, spec: ModelSpec, fp32: onnx.ModelProto, *,
                        kept: list[KeptGroup], reached: float, target: float, calibration: str) -> None:
    props = {p.key: p.value for p in fp32.metadata_props}
    set_metadata(model, replace(spec, precision="int8"), simplifier=props.get("edgesr.simplifier", ""),
                 graph_form=props.get("edgesr.graph_form", "deployment"))
    onnx.helper.set_model_props(model, {
        **{p.key: p.value for p in model.metadata_props},
        META_INT8_KEPT: json.dumps([{"scope": k.scope, "convs": list(k.nodes),
                                     "alone_int8_db": round(k.alone_db, 2)} for k in kept]),
        META_INT8_TARGET: f"{target:g}", META_INT8_REACHED: f"{reached:.2f}",
        META_INT8_CALIB: calibration,
    })


def export_int8(name_or_family: str, *, calib: str | Path | None, scale: int | None = None,
                weights: str | Path | None = None, output: str | Path | None = None,
                overwrite: bool = False, allow_untrained: bool = False,
                target_db: float = INT8_TARGET_DB, **fp32_options) -> Int8Report:
    """Write the INT8 QDQ graph of a named model (module docstring); ``fp32_options`` go to
    :func:`export_model` (opset, simplify, deployment)."""
    name = model_name(name_or_family, scale=scale)
    path = Path(output) if output is not None else Path(default_int8_name(name))
    if path.suffix != ".onnx":
        raise ConfigError(f"output {str(path)!r} should end in .onnx; rename it")
    check_output_file(path, inputs=[weights] if weights is not None else [], overwrite=overwrite,
                      what="ONNX output")
    photos = calibration_photos(calib)  # refusals before the minutes of work
    calibration = f"{calib} ({len(photos)} photos)" if calib is not None else "bundled example photo"
    with tempfile.TemporaryDirectory(prefix="edgesr-int8-") as folder:
        fp32_report = export_model(name, weights=weights, output=Path(folder) / "fp32.onnx",
                                   check=True, inline_functions=True, allow_untrained=allow_untrained,
                                   **fp32_options)
        fp32 = onnx.load(str(fp32_report.path))
        spec = fp32_report.spec
        tiles, scoring = calibration_and_scoring_tiles(photos, min_px=spec.min_size_px)
        cache = Path(folder) / "calibration.json"  # private folder: one calibration, reused

        def quantize(keep_float: list[str]) -> onnx.ModelProto:
            return quantize_qdq(fp32, tiles, cache=cache, keep_float=keep_float)

        log.info("INT8: calibrating on %d tiles, scoring each conv role on %d others...",
                 len(tiles), len(scoring))
        batch = np.concatenate(scoring) if len({t.shape for t in scoring}) == 1 else scoring[0]
        int8, kept, reached = choose_float_groups(fp32, quantize([]), batch, target_db=target_db,
                                                  requantize=quantize)
    violations = qdq_violations(int8)
    if violations:
        raise ExportError(f"{name}: the INT8 graph breaks TensorRT's Q/DQ placement: "
                          + "; ".join(violations[:3]) + ". Nothing was written; report the model name.")
    if reached < target_db:
        log.warning("INT8: %.2f dB vs FP32 on the held-out tiles, below the %.1f dB target",
                    reached, target_db)
    parity = _int8_parity(fp32, int8, spec)
    fail_if_any(parity, name)
    calibration = f"{calibration}, {len(tiles)} tiles ({len(scoring)} held out for scoring)"
    with_int8_metadata(int8, spec, fp32, kept=kept, reached=reached, target=target_db,
                        calibration=calibration)
    write_atomically(path, lambda tmp: onnx.save(int8, tmp), overwrite=overwrite)
    convs = node_counts(fp32).get("Conv", 0)
    return Int8Report(path=path, fp32=fp32_report, kept=tuple(kept), reached_db=reached,
                      target_db=target_db, calibration=calibration,
                      parity=tuple(parity), conv_int8=convs - sum(len(k.nodes) for k in kept),
                      conv_total=convs)
