"""edgesr-export: a PyTorch SR model to a simplified, self-checked ONNX file.

    edgesr-export --model osffnet --scale 4            # -> osffnet_x4.onnx
    edgesr-export --model lmfn_x4 --fp16 -o lmfn.onnx  # FP16 graph, float32 I/O
    edgesr-export --model osffnet_x4 --format ort       # + osffnet_x4.ort for Android/iOS
    edgesr-export --model osffnet_x4 --format openvino  # + osffnet_x4.xml/.bin (OpenVINO IR)
    edgesr-export --model lkdn_x4 --int8 --calib photos/  # QDQ INT8, lkdn_x4_int8.onnx
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgesr.cli_util import EXIT_OK, run_cli, setup_logging
from edgesr.spec import DEFAULT_OPSET

PROG = "edgesr-export"
_TOP_OPS = 8

_EPILOG = """\
self-check (unless --no-check), on ONNX Runtime's CPU provider, at inputs of a size other
than the trace size: a random 1x3x37x29 input and the centre 96x96 of scikit-image's
astronaut photo (skipped when scikit-image is missing):
  FP32: torch vs ONNX, max abs error <= 1e-3 and PSNR >= 60 dB (data range 1)
  FP16: the FP16 graph vs the FP32 graph, PSNR >= 45 dB and no NaN/Inf
  and the output must be scale x the input size. A failed check exits 2 and writes nothing.

weights: --weights FILE if given (edgesr .safetensors, or the BSRN/LKDN authors' .pth); else
the weights edgesr ships for the model (`edgesr-weights list`); else an error, unless
--allow-untrained (the seeded initialization, for timing only).

examples:
  edgesr-export --model osffnet --scale 4
  edgesr-export --model lmfn_x4 --fp16 --overwrite
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Export an edgesr super-resolution model to ONNX: input 'lr' [N,3,H,W],\n"
                    "output 'sr' [N,3,sH,sW], N/H/W dynamic; every DSConv is one\n"
                    "edgesr::DynamicSnakeConv node with a standard-op local function. The graph\n"
                    "is simplified, checked, and carries edgesr metadata (scale, tiling advice,\n"
                    "weights hash). Progress goes to stderr, the summary to stdout.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="NAME",
                   help="model name such as osffnet_x4 or lmfn-tiny_x2, or a family such as "
                        "osffnet together with --scale (edgesr-bench complexity lists them)")
    p.add_argument("--scale", type=int, choices=(2, 3, 4), metavar="S",
                   help="upscaling factor 2, 3 or 4, with a family name; with a full name it "
                        "must agree (osffnet_x4 --scale 2 is an error)")
    p.add_argument("--weights", metavar="FILE",
                   help=".safetensors or .pth/.pt state dict to export (default: the weights "
                        "edgesr ships for the model, else the untrained initialization)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX opset, 16 to 20 (default {DEFAULT_OPSET}; TensorRT "
                        "mis-executes GridSample at opset 20)")
    p.add_argument("--fp16", action="store_true",
                   help="write an FP16 graph with float32 input/output; grid math, "
                        "GridSample/DynamicSnakeConv, normalization statistics, reductions "
                        "and Resize stay float32 (listed in the summary)")
    p.add_argument("--int8", action="store_true",
                   help="write a calibrated INT8 QDQ graph (S8S8, per-channel symmetric weights, "
                        "TensorRT's explicit-quantization form) as <name>_int8.onnx; the conv "
                        "roles that cost most stay float until it reaches 48 dB vs FP32 on held-out photo tiles (listed)")
    p.add_argument("--calib", metavar="DIR",
                   help="with --int8: a folder of photos to calibrate on (default: the bundled "
                        "example photo; Set5/Set14 are refused)")
    p.add_argument("--no-simplify", dest="simplify", action="store_false",
                   help="skip graph simplification (default: onnxsim, onnxslim if it fails)")
    p.add_argument("--inline-functions", action="store_true",
                   help="replace each DynamicSnakeConv node by its standard-op body, for "
                        "tools that cannot read ONNX local functions (TensorRT then cannot "
                        "use the fused DSConv plugin)")
    p.add_argument("--training-form", dest="deployment", action="store_false",
                   help="export the model as trained, without the deployment rewrite (default: "
                        "the deployment form: channel MLPs as 1x1 convs, folded norms and input "
                        "stacking, fusable GELUs; same outputs, faster; see docs/performance.md)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the torch-vs-ONNX Runtime self-check (see below)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="output .onnx file (default: <name>.onnx, or <name>_fp16.onnx with "
                        "--fp16, in the current folder)")
    p.add_argument("--format", choices=("onnx", "ort", "openvino", "triton"), default="onnx",
                   help="ort: also write ONNX Runtime's mobile format beside the .onnx (<name>.ort, "
                        "<name>.with_runtime_opt.ort for NNAPI/CoreML) with the reduced-operator "
                        "configs for a minimal Android/iOS build, checked against the ONNX file; "
                        "openvino: also write OpenVINO IR beside it (<name>.xml + <name>.bin, with the "
                        "edgesr metadata; FP16 weights with --fp16, for Intel GPUs and NPUs), checked "
                        "on OpenVINO's CPU against the ONNX file on ONNX Runtime; "
                        "triton: -o REPO is a Triton model repository, written as "
                        "REPO/<name>/config.pbtxt and REPO/<name>/1/model.onnx")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file (default: refuse)")
    p.add_argument("--allow-untrained", action="store_true",
                   help="export the untrained initialization when no weights exist (timing only)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _mb(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.2f} MB"


def _counts(counts: dict[str, int], top: int = _TOP_OPS) -> str:
    items = list(counts.items())
    shown = ", ".join(f"{op} {n}" for op, n in items[:top])
    rest = len(items) - top
    return shown + (f", ... (+{rest} more types)" if rest > 0 else "")


def format_summary(report) -> str:  # noqa: ANN001 (ExportReport, imported lazily)
    """The lines edgesr-export prints for an :class:`ExportReport`."""
    lines = [
        f"wrote {report.path} ({_mb(report.size_bytes)}, opset {report.opset}, "
        f"{report.precision}, x{report.spec.scale})",
        f"  model       {report.model}; weights: {report.weights_source}",
        f"  nodes       {report.node_total}: {_counts(report.node_counts)}",
        f"  params      {report.params:,} float values in initializers "
        f"(torch model: {report.torch_params:,} trainable)",
        f"  simplifier  {report.simplifier}",
        f"  tiling      {report.spec.tile_px} px tiles, {report.spec.overlap_px} px overlap; "
        f"min input side {report.spec.min_size_px} px",
    ]
    if report.parity:
        lines.append("  parity")
        lines += [f"    {r.line()}" for r in report.parity]
    else:
        lines.append("  parity      not checked (--no-check)")
    if report.precision == "fp16":
        lines.append(f"  kept FP32   {len(report.fp32_nodes)} nodes: "
                     f"{_counts(report.fp32_op_counts, top=12)}")
    return "\n".join(lines)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    from edgesr.progress import step_status

    with step_status(f"{PROG} {args.model}"):  # on a terminal: the last step and the time so far
        return _export(args)


def _export(args: argparse.Namespace) -> int:
    if args.int8 or args.calib is not None:
        return _export_int8(args)
    from edgesr.export.onnx_export import export_model  # torch import: after argument parsing

    def export(output: str | None):  # noqa: ANN202 (ExportReport)
        return export_model(
            args.model, scale=args.scale, weights=args.weights, opset=args.opset, fp16=args.fp16,
            output=output, check=args.check, simplify=args.simplify,
            inline_functions=args.inline_functions, overwrite=args.overwrite,
            allow_untrained=args.allow_untrained, deployment=args.deployment,
        )

    if args.format == "openvino":  # no OpenVINO, or an existing IR: refused before the ONNX is written
        from edgesr.export.onnx_export import default_output_name
        from edgesr.export.openvino_ir import ir_paths
        from edgesr.models.registry import model_name
        from edgesr.runtime.engines.openvino import import_openvino

        import_openvino()
        ir_paths(args.output or default_output_name(model_name(args.model, scale=args.scale), fp16=args.fp16),
                 overwrite=args.overwrite)
    if args.format == "triton":  # -o names the model repository; the ONNX file goes into it
        from edgesr.export.triton_repo import export_into_repo

        report, triton = export_into_repo(args.output, fp16=args.fp16, overwrite=args.overwrite,
                                          export=export)
        print(format_summary(report))
        print(f"wrote {triton.config} (Triton model {triton.folder.name!r}, {triton.backend} backend)")
        return EXIT_OK
    report = export(args.output)
    print(format_summary(report))
    if args.format == "ort":
        from edgesr.export.ort_format import ort_from_onnx

        ort_report = ort_from_onnx(report.path, overwrite=args.overwrite)
        for path in ort_report.files:
            error = ort_report.max_abs_error.get(path.name)
            print(f"wrote {path}" + (f" (max abs error vs the ONNX file {error:.2e})" if error is not None else ""))
    if args.format == "openvino":
        from edgesr.export.openvino_ir import ir_from_onnx

        ir = ir_from_onnx(report.path, overwrite=args.overwrite, check=args.check)
        print(f"wrote {ir.files[0]} and {ir.files[1].name} (OpenVINO IR, {ir.weights_type} weights)")
        print("\n".join(f"    {r.line()}" for r in ir.parity) or "    not checked (--no-check)")
    return EXIT_OK


def _export_int8(args: argparse.Namespace) -> int:
    from edgesr.errors import ConfigError

    if not args.int8:
        raise ConfigError("--calib names the photos for --int8; add --int8 or drop --calib")
    clash = [flag for flag, on in (("--fp16", args.fp16),
                                   ("--format " + args.format, args.format != "onnx"),
                                   ("--no-check", not args.check)) if on]
    if clash:
        raise ConfigError(f"--int8 cannot be combined with {clash[0]} (the INT8 export is one ONNX "
                          "file, always measured); drop it")
    from edgesr.export.int8 import export_int8  # torch and the quantizer: after the checks

    report = export_int8(args.model, calib=args.calib, scale=args.scale, weights=args.weights,
                         output=args.output, overwrite=args.overwrite,
                         allow_untrained=args.allow_untrained, opset=args.opset,
                         simplify=args.simplify, deployment=args.deployment)
    print("\n".join(report.lines()))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="export")


if __name__ == "__main__":
    sys.exit(main())
