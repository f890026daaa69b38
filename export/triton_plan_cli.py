"""The command line of :mod:`edgesr.export.triton_plan` (its notes say what it writes).

    python -m edgesr.export.triton_plan_cli ENGINE --onnx MODEL.onnx -o REPO [--name NAME] [--overwrite]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgesr.export.triton_plan import write_triton_plan

PROG = "python -m edgesr.export.triton_plan_cli"


def _main(argv: Sequence[str] | None) -> int:
    from edgesr.cli_util import EXIT_OK, setup_logging

    p = argparse.ArgumentParser(prog=PROG, description="A Triton tensorrt_plan model from an "
                                "engine in edgesr's TensorRT cache (see the module notes).")
    p.add_argument("engine", metavar="ENGINE", help="<cache>/trt/engines/<digest>.engine")
    p.add_argument("--onnx", required=True, metavar="MODEL.onnx", help="the ONNX file the engine was built from")
    p.add_argument("-o", "--output", required=True, metavar="REPO", help="the model repository folder")
    p.add_argument("--name", default=None, help="the model's name (default: <onnx stem>_plan)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    setup_logging(verbose=args.verbose)
    model = write_triton_plan(args.engine, args.onnx, args.output, name=args.name, overwrite=args.overwrite)
    print(f"wrote {model.config} (Triton model {model.folder.name!r}, tensorrt_plan)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from edgesr.cli_util import run_cli

    return run_cli(PROG, _main, argv, extra="export")


if __name__ == "__main__":
    sys.exit(main())
