"""edgesr-eval: Y-channel PSNR/SSIM of a model on a benchmark folder, with a bicubic row.

    edgesr-eval --model osffnet_x4 --data data/Set5            (shipped weights)
    edgesr-eval --model lmfn_x4 --weights runs/lmfn/weights.safetensors --data data/Urban100 --csv u.csv
    edgesr-eval --weights net_g_BSRN_x4.pth --data data/Set5   (official checkpoint: model detected)
    edgesr-eval --model bsrn_x4 --weights net_g_BSRN_x4.pth --engine ort --data data/Set5
    edgesr-eval --model model.onnx --engine ort --data data/Set5

--engine torch (default for model names) runs the PyTorch model; --engine ort scores the ONNX
edgesr ships for the model (lkdn_x4, osffnet_x4), else exports it first (the export cache,
checked against torch), through ONNX Runtime as edgesr-run would run it (--fp16 for the FP16
graph). An .onnx --model is scored through ONNX Runtime. An .onnx file, or a shipped ONNX with
--engine ort, needs no torch: a runtime-only install (pip install -e '.[cpu]') scores it.

PSNR/SSIM follow the papers: Y channel (BT.601, 16-235), `scale` pixels cropped at each
border, SR rounded to 8 bits first, SSIM with an 11x11 Gaussian (sigma 1.5).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edgesr.cli_util import EXIT_OK, run_cli, setup_logging
from edgesr.fileio import check_output_file, files_under, write_text_atomically
from edgesr.runtime.engines import engine_choices

PROG = "edgesr-eval"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model name (osffnet_x4), family with --scale (osffnet), or an .onnx "
                   "file; may be omitted with --weights (the architecture and scale are detected)")
    p.add_argument("--scale", type=int, help="upscaling factor when --model is a family name")
    p.add_argument("--weights", help="weights file: edgesr .safetensors, or the BSRN/LKDN authors' .pth "
                   "(renamed by explicit key maps); default: the shipped weights")
    p.add_argument("--fp16", action="store_true", help="with --engine ort: score the FP16 graph")
    p.add_argument("--data", required=True, help="benchmark folder: HR images, or HR/ + LR_bicubic/X<s>/")
    p.add_argument("--engine", default=None, choices=engine_choices(),
                   help="engine that runs the model (default: torch for names, ort for .onnx files); "
                   "ONNX engines run the shipped .onnx, or an export of --weights")
    p.add_argument("--csv", help="also write per-image scores as CSV to this file")
    p.add_argument("--markdown", help="also write the Markdown table to this file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing --csv/--markdown files (never an input: a data image "
                        "or the weights)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    from edgesr.errors import ConfigError
    from edgesr.train.evaluate import evaluate, load_pairs, scores_csv, scores_markdown
    from edgesr.train.eval_models import model_to_score

    if args.csv and args.markdown and Path(args.csv).resolve() == Path(args.markdown).resolve():
        raise ConfigError(f"--csv and --markdown both name {args.csv}; give two different files")
    onnx_model = [args.model] if args.model and args.model.endswith(".onnx") else []
    inputs = [*files_under(args.data), *filter(None, [args.weights]), *onnx_model]
    for flag, report in (("--csv", args.csv), ("--markdown", args.markdown)):
        if report:  # fail before the long evaluation: not an input, folder writable, new file
            check_output_file(report, inputs=inputs, overwrite=args.overwrite, what=flag)
    scored = model_to_score(model=args.model, scale=args.scale, weights=args.weights,
                            engine=args.engine, fp16=args.fp16)
    try:
        pairs = load_pairs(args.data, scale=scored.scale)
        scores = evaluate(scored.runner, pairs, scale=scored.scale, method=scored.label, progress=True)
    finally:
        scored.close()
    table = scores_markdown(scores)
    print(table)
    if args.csv:
        write_text_atomically(args.csv, scores_csv(scores), overwrite=args.overwrite)
    if args.markdown:
        write_text_atomically(args.markdown, table + "\n", overwrite=args.overwrite)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="train")


if __name__ == "__main__":
    sys.exit(main())
