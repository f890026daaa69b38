"""One-shot GPU check (``benchmarks/gpu_check.sh``): what a person with an NVIDIA GPU runs
once and pastes into an issue. Two parts, each printing one Markdown table:

- ``kernel`` (GPU + torch + triton, no TensorRT): the fused DSConv Triton kernel on the GPU
  against the numpy oracle (``edgesr.ops.dsconv_reference``), fp32 and fp16, both morphs;
  then the shipped OSFFNet x4 and LMFN x4 in torch on CUDA against torch on the CPU, on a
  real photo (PSNR).
- ``trt`` (TensorRT too): both models exported to ONNX (FP32, FP16), TensorRT engines built
  (LMFN with the DSConv plugin and with its local function), each compared with ONNX
  Runtime on the same photo (PSNR) and timed (median of runs after a warm-up); then an INT8
  table: LKDN x4 and OSFFNet x4 as QDQ graphs (every Conv INT8, calibrated on the bundled
  photo: this checks TensorRT's explicit quantization of the graph, not the graph's
  quality, which ``edgesr-export --int8`` measures), checked against the Q/DQ placement
  contract, built as strongly typed INT8 engines, compared with ONNX Runtime running the same
  QDQ graph, and timed beside the FP32 engine of the same model.

Every import of torch/TensorRT is inside the part that needs it. Nothing here was run on a
GPU when it was written (there was none); the numbers come from whoever runs it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgesr.metrics import psnr

PHOTO = Path(__file__).resolve().parents[1] / "runtime" / "examples" / "chelsea_160x120.png"
MODELS = ("osffnet_x4", "lmfn_x4")
# (K, morph, N, C, H, W, O, extend_scope, dtype)
KERNEL_CASES = [
    (3, 0, 1, 16, 48, 64, 16, 1.0, "float32"),
    (3, 1, 2, 8, 33, 47, 24, 1.0, "float32"),
    (5, 1, 1, 32, 40, 40, 40, 0.7, "float32"),
    (3, 0, 1, 16, 48, 64, 16, 1.0, "float16"),
    (5, 1, 1, 32, 40, 40, 40, 1.0, "float16"),
]


def photo_batch() -> np.ndarray:
    """The example photo as a (1, 3, H, W) float32 batch in [0, 1]."""
    from edgesr.runtime.imageio import read_image

    rgb = read_image(PHOTO).rgb
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)


def median_ms(run: Callable[[], object], *, repeats: int = 20) -> float:
    run()  # warm-up (first-call allocations, lazy loading)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- part 1


def kernel_rows(cases: Sequence[tuple] = tuple(KERNEL_CASES), device: str = "cuda") -> list[list[object]]:
    """The Triton kernel vs the numpy oracle, one row per case (``device`` "cpu" only under
    ``TRITON_INTERPRET=1``, which is how the tests run this function)."""
    import torch

    from edgesr.ops.dsconv_reference import dynamic_snake_conv_reference
    from edgesr.runtime.engines.trt import kernel

    rng = np.random.default_rng(0)
    rows: list[list[object]] = []
    for k, morph, n, c, h, w, o, scope, dtype in cases:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        off = (np.tanh(rng.standard_normal((n, 2 * k, h, w)) * 2.0) * 2.5).astype(np.float32)
        wshape = (o, c, k, 1) if morph == 0 else (o, c, 1, k)
        wt = rng.standard_normal(wshape).astype(np.float32) / np.sqrt(c * k)
        b = rng.standard_normal(o).astype(np.float32)
        as64 = [a.astype(dtype).astype(np.float64) for a in (x, off, wt, b)]
        ref = dynamic_snake_conv_reference(*as64, kernel_size=k, morph=morph, extend_scope=scope)
        tdt = getattr(torch, dtype)
        xt, ot, bt = (torch.from_numpy(a).to(device, tdt) for a in (x, off, b))
        w2 = torch.from_numpy(wt.reshape(o, -1).copy()).to(device, tdt)
        yt = torch.empty((n, o, h, w), device=device, dtype=tdt)
        launch = kernel.choose_launch(out_channels=o)
        scalars = kernel.scalar_args(x_shape=(n, c, h, w), out_channels=o, kernel_size=k)
        grid = launch.grid(npix=n * h * w, out_channels=o)
        kernel.dsconv_kernel()[grid](
            xt, ot, w2, bt, *scalars, yt, K=k, MORPH=morph, EXTEND_SCOPE=scope,
            BLOCK_P=launch.block_p, BLOCK_O=launch.block_o, num_warps=launch.num_warps,
        )  # fmt: skip
        if device == "cuda":
            torch.cuda.synchronize()
        got = yt.float().cpu().numpy().astype(np.float64)
        err = float(np.abs(got - ref).max())
        ok = err < (1e-4 if dtype == "float32" else 2e-2) * max(1.0, float(np.abs(ref).max()))
        rows.append([f"K{k} morph{morph} {n}x{c}x{h}x{w}->{o}", dtype, f"{err:.2e}", "ok" if ok else "FAIL"])
    return rows


def torch_parity_rows(lr: np.ndarray) -> list[list[object]]:
    from edgesr.torch_engine import TorchEngine, TorchOptions

    rows: list[list[object]] = []
    for name in MODELS:
        cpu = TorchEngine(model_name=name, options=TorchOptions(device="cpu")).run(lr)
        gpu_engine = TorchEngine(model_name=name, options=TorchOptions(device="cuda"))
        gpu = gpu_engine.run(lr)
        ms = median_ms(lambda e=gpu_engine: e.run(lr), repeats=10)
        rows.append([name, "torch cuda vs cpu", f"{psnr(gpu, cpu, data_range=1.0):.2f}", f"{ms:.2f}"])
    return rows


# --------------------------------------------------------------------------- part 2


def _ort(model: Path) -> Any:
    from edgesr.runtime.engines.ort import OrtEngine, OrtOptions

    try:
        return OrtEngine(model_path=model, options=OrtOptions(providers=("cuda",)))
    except Exception:  # onnxruntime without the CUDA provider: the CPU one is the reference
        return OrtEngine(model_path=model, options=OrtOptions(providers=("cpu",)))


def trt_rows(lr: np.ndarray, work: Path) -> list[list[object]]:
    from edgesr.export.onnx_export import export_model
    from edgesr.runtime.engines.trt.options import TrtOptions
    from edgesr.runtime.engines.trt.runner import TrtEngine

    rows: list[list[object]] = []
    for name in MODELS:
        for fp16 in (False, True):
            onnx_path = work / f"{name}{'_fp16' if fp16 else ''}.onnx"
            export_model(name, fp16=fp16, output=onnx_path, check=False)
            ort = _ort(onnx_path)
            ref = ort.run(lr)
            ort_ms = median_ms(lambda: ort.run(lr))
            variants = [("plugin", TrtOptions(cache_dir=work / "cache"))]
            if name.startswith("lmfn"):
                variants.append(("local fn", TrtOptions(cache_dir=work / "cache", plugin=False)))
            for label, options in variants:
                started = time.perf_counter()
                with TrtEngine(model_path=onnx_path, options=options) as engine:
                    build_s = time.perf_counter() - started
                    sr = engine.run(lr)
                    trt_ms = median_ms(lambda e=engine: e.run(lr))
                    path = engine.info().details["plugin"] or "off"
                precision = "fp16" if fp16 else "fp32"
                rows.append([name, precision, f"{label} ({path})", f"{build_s:.1f}", f"{trt_ms:.2f}",
                             f"{ort_ms:.2f}", f"{psnr(sr, ref, data_range=1.0):.2f}"])  # fmt: skip
    return rows


INT8_MODELS = ("lkdn_x4", "osffnet_x4")


def int8_rows(lr: np.ndarray, work: Path) -> list[list[object]]:
    import onnx

    from edgesr.export.int8 import with_int8_metadata
    from edgesr.export.int8_calib import calibration_and_scoring_tiles, calibration_photos
    from edgesr.export.int8_quantize import quantize_qdq
    from edgesr.export.int8_trt_contract import qdq_violations
    from edgesr.export.onnx_export import export_model
    from edgesr.runtime.engines.trt.options import TrtOptions
    from edgesr.runtime.engines.trt.runner import TrtEngine

    rows: list[list[object]] = []
    for name in INT8_MODELS:
        fp32_path, int8_path = work / f"{name}_fp32_inlined.onnx", work / f"{name}_int8.onnx"
        report = export_model(name, output=fp32_path, check=False, inline_functions=True)
        fp32 = onnx.load(str(fp32_path))
        tiles, _ = calibration_and_scoring_tiles(calibration_photos(None), min_px=report.spec.min_size_px)
        qdq = quantize_qdq(fp32, tiles, cache=work / f"{name}_calibration.json")
        violations = qdq_violations(qdq)
        with_int8_metadata(qdq, report.spec, fp32, kept=[], reached=float("nan"), target=float("nan"),
                            calibration="bundled example photo (gpu_check)")
        onnx.save(qdq, str(int8_path))
        ort = _ort(int8_path)
        ref = ort.run(lr)
        ort_ms = median_ms(lambda: ort.run(lr))
        timed = {}
        for label, path in (("fp32", fp32_path), ("int8", int8_path)):
            started = time.perf_counter()
            with TrtEngine(model_path=path, options=TrtOptions(cache_dir=work / "cache")) as engine:
                build_s = time.perf_counter() - started
                sr = engine.run(lr)
                timed[label] = (build_s, median_ms(lambda e=engine: e.run(lr)), sr)
        build_s, trt_ms, sr = timed["int8"]
        rows.append([name, len(violations), f"{build_s:.1f}", f"{trt_ms:.2f}", f"{timed['fp32'][1]:.2f}",
                     f"{trt_ms / timed['fp32'][1]:.2f}", f"{ort_ms:.2f}", f"{psnr(sr, ref, data_range=1.0):.2f}"])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("kernel", "trt"))
    args = parser.parse_args(argv)
    lr = photo_batch()
    if args.part == "kernel":
        out = table(["DSConv case", "dtype", "max |triton - numpy|", "result"], kernel_rows())
        out += "\n\n" + table(["model", "check", "PSNR dB", "torch cuda ms"], torch_parity_rows(lr))
    else:
        with tempfile.TemporaryDirectory(prefix="edgesr-gpu-check-") as work:
            rows = trt_rows(lr, Path(work))
            out = table(["model", "precision", "DSConv", "build s", "TRT ms", "ORT ms", "PSNR vs ORT dB"], rows)
            sys.stdout.write(out + "\n\n")  # the FP32/FP16 table even if an INT8 build fails
            out = table(["model (INT8 QDQ)", "Q/DQ contract violations", "build s", "TRT int8 ms", "TRT fp32 ms",
                         "int8/fp32", "ORT int8 ms", "PSNR TRT vs ORT (same graph) dB"],
                        int8_rows(lr, Path(work)))
    sys.stdout.write(out + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
