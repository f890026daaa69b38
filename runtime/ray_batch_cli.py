"""``edgesr-batch`` on the command line: the parser, the one-line errors and the summary;
the work is :func:`edgesr.runtime.ray_batch.upscale_folder_ray`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edgesr.cli_util import EXIT_OK, run_cli, setup_logging
from edgesr.errors import ConfigError
from edgesr.runtime.ray_batch import EXIT_SOME_FAILED, PROG, upscale_folder_ray
from edgesr.spec import DEFAULT_MODEL
from edgesr.weights import shipped_onnx


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Upscale a folder of images on a Ray "
                                "cluster (Ray Data), with the same names, resume and bytes as "
                                "edgesr-run's folder mode.")
    p.add_argument("input", metavar="IN_DIR", help="a folder of images (searched recursively)")
    p.add_argument("-o", "--output", metavar="OUT_DIR", required=True, help="the output folder")
    p.add_argument("--model", metavar="PATH.onnx", default=None,
                   help=f"an exported .onnx file (default: the shipped {DEFAULT_MODEL})")
    p.add_argument("--engine", default="ort", help="engine in each actor (default: ort)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="a running cluster (`ray start --head` prints it; 'auto' finds a local "
                        "one); default: a local cluster for this run")
    p.add_argument("--concurrency", type=int, default=1, metavar="N", help="actors, one engine each")
    p.add_argument("--num-gpus", type=float, default=0, metavar="G", help="GPUs per actor (1 on GPU nodes)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that exist (never inputs)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.concurrency < 1 or args.num_gpus < 0:
        raise ConfigError("--concurrency must be >= 1 and --num-gpus >= 0")
    model = Path(args.model) if args.model else shipped_onnx(DEFAULT_MODEL)
    if model is None or not model.is_file():
        raise ConfigError(f"model {args.model or DEFAULT_MODEL!r} is not an .onnx file; pass one "
                          "made with edgesr-export")
    report = upscale_folder_ray(args.input, args.output, model_path=model, engine=args.engine,
                                address=args.address, concurrency=args.concurrency,
                                num_gpus=args.num_gpus, overwrite=args.overwrite)
    for item in report.items:
        if item.status == "failed":
            print(f"{PROG}: error: {item.input_path}: {item.error}", file=sys.stderr)
    print(f"{report.done} upscaled, {report.skipped} skipped (output exists), {report.failed} failed")
    return EXIT_SOME_FAILED if report.failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="serve")


if __name__ == "__main__":
    sys.exit(main())
