"""edgesr-bench: model complexity (params, Multi-Adds), latency and tiling quality.

    edgesr-bench --model osffnet --scale 4       params, Multi-Adds and latency of one model
    edgesr-bench complexity [--models NAME ...] [--scales 2 3 4] [--json]
    edgesr-bench tiling [--models osffnet_x4 lmfn_x4]

Latency is measured round-robin in one run (ONNX Runtime whole image, ONNX Runtime tiled,
PyTorch), so the ratios are meaningful on a noisy machine; absolute numbers are this
machine's. Models run with edgesr's shipped weights where it ships them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgesr.cli_util import EXIT_OK, run_cli, setup_logging

PROG = "edgesr-bench"


def _complexity_parser(sub: argparse._SubParsersAction) -> None:
    from edgesr.models.registry import SCALES  # torch: imported inside run_cli's error path

    p = sub.add_parser(
        "complexity",
        help="params and Multi-Adds (paper and full conventions) of every model at 1280x720",
        description="Print params and Multi-Adds at a 1280x720 HR output for every model and "
                    "scale, next to the published figures (✓/✗ where a paper gives one).",
    )
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="model names (e.g. osffnet_x4 bsrn_x3); default: every family and scale "
                        "plus the OSFFNet ablations")
    p.add_argument("--scales", nargs="+", type=int, default=list(SCALES), choices=SCALES,
                   help="scales for the default model list (default: 2 3 4)")
    p.add_argument("--no-ablations", dest="ablations", action="store_false",
                   help="leave the OSFFNet ablation variants out of the default list")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_run_complexity)


def _run_complexity(args: argparse.Namespace) -> int:
    from edgesr.benchmarks.complexity_table import (
        complexity_rows,
        default_names,
        format_table,
        rows_as_json,
    )

    names = args.models or default_names(scales=tuple(args.scales), ablations=args.ablations)
    rows = complexity_rows(names)
    print(rows_as_json(rows) if args.json else format_table(rows))
    return EXIT_OK


def _tiling_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tiling", help="tiled vs whole-image output on real photos: PSNR and seam score",
        description="Upscale the scikit-image validation photos whole and tiled (ONNX Runtime, "
                    "the model's advised tile and overlap unless given) and report the PSNR of "
                    "tiled vs whole and the seam score (1.0 = no seam).",
    )
    p.add_argument("--models", nargs="+", default=["osffnet_x4", "lmfn_x4"], metavar="NAME")
    p.add_argument("--tile", type=int, help="tile size in LR pixels (default: the model's advice)")
    p.add_argument("--overlap", type=int, help="overlap in LR pixels (default: the model's advice)")
    p.set_defaults(handler=_run_tiling)


def _run_tiling(args: argparse.Namespace) -> int:
    from edgesr.benchmarks.tiling_report import format_rows, tiling_rows
    from edgesr.export.cache import cached_onnx_for
    from edgesr.runtime.engines import open_engine

    from edgesr.data.folder import SKIMAGE_VAL, skimage_photos

    photos = [(name, image) for name, image in skimage_photos() if name in SKIMAGE_VAL]
    rows = []
    for name in args.models:
        with open_engine("ort", model_path=cached_onnx_for(name)) as engine:
            rows += tiling_rows(engine, model=name, photos=photos,
                                tile_px=args.tile or engine.spec.tile_px,
                                overlap_px=args.overlap if args.overlap is not None else engine.spec.overlap_px)
    print(format_rows(rows))
    return EXIT_OK


def _run_model_report(args: argparse.Namespace) -> int:
    from edgesr.benchmarks.complexity_table import complexity_rows, format_table
    from edgesr.benchmarks.latency import (
        format_timings,
        random_lr,
        tiled,
        time_round_robin,
    )
    from edgesr.export.cache import cached_onnx_for
    from edgesr.runtime.engines import open_engine

    from edgesr.complexity import lr_size_for_hr
    from edgesr.models import model_name
    from edgesr.torch_engine import TorchOptions

    name = model_name(args.model, scale=args.scale)
    print(format_table(complexity_rows([name])))
    height, width = lr_size_for_hr(scale=args.scale)
    lr = random_lr(height=height, width=width)
    with open_engine("ort", model_path=cached_onnx_for(name)) as ort, open_engine(
        "torch", model_name=name, options=TorchOptions(allow_untrained=True),  # timing needs no training
    ) as torch_engine:
        runs = {
            "ort-cpu": lambda: ort.run(lr),
            f"ort-cpu tiled {args.tile}/{args.overlap}": lambda: tiled(ort, tile_px=args.tile, overlap_px=args.overlap)(lr),
            "torch-cpu": lambda: torch_engine.run(lr),
        }
        timings = time_round_robin(runs, repeats=args.repeats)
        print(f"\nlatency of {name} on a {width}x{height} input ({ort.info().describe()}), "
              f"{args.repeats} round-robin repeats:")
    print(format_timings(timings, baseline="ort-cpu"))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from edgesr.models.registry import SCALES  # torch: imported inside run_cli's error path

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--model", help="model to report on: a family with --scale (osffnet) or a name (osffnet_x4)")
    parser.add_argument("--scale", type=int, default=4, choices=SCALES, help="upscaling factor (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per engine (default 5)")
    parser.add_argument("--tile", type=int, default=128, help="tile size of the tiled latency run (default 128)")
    parser.add_argument("--overlap", type=int, default=16, help="overlap of the tiled latency run (default 16)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _complexity_parser(sub)
    _tiling_parser(sub)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.command is None:
        if args.model is None:
            parser.print_help()
            return EXIT_OK
        return _run_model_report(args)
    return args.handler(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="export")


if __name__ == "__main__":
    sys.exit(main())
