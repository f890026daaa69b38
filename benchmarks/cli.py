"""edgesr-bench: latency on any engine, roofline floors for targets, reports; complexity, tiling.

    edgesr-bench latency MODEL [--engine E ...] [--size WxH ...] [--json FILE]   time engines (runtime only)
    edgesr-bench predict MODEL --target T ... [--size WxH]                      roofline floors
    edgesr-bench floor MODEL [--size WxH] [--profile]                           measured / floor on this CPU
    edgesr-bench report RESULTS.json ... [--target T ...] -o report.md          merge machines
    edgesr-bench complexity [--models NAME ...] [--json]                       params, Multi-Adds (torch)
    edgesr-bench tiling [--models osffnet_x4 lmfn_x4]                          tiled vs whole (torch)
    edgesr-bench serve [--url HOST:PORT --name N] [--requests 200] [--concurrency 8]  load test of edgesr-serve
    edgesr-bench --model osffnet --scale 4                                     one-model report (torch; minutes)

MODEL is an .onnx file or a model name (the ONNX edgesr ships when there is one). latency,
predict, floor and report run with the runtime alone (pip install -e '.[cpu]'); the others need torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgesr.benchmarks.bench_commands import (
    HR_HEIGHT,
    HR_WIDTH,
    needs_torch,
    parse_size,
    run_latency_command,
    run_predict_command,
    run_report_command,
)
from edgesr.benchmarks.floor_command import add_floor_parser
from edgesr.benchmarks.serve_load import add_serve_parser
from edgesr.cli_util import EXIT_OK, run_cli, setup_logging
from edgesr.runtime.engines import engine_choices
from edgesr.spec import PRECISIONS

PROG = "edgesr-bench"
SCALES = (2, 3, 4)  # the registry's scales, without importing the (torch) registry


def _engine_argument(text: str) -> str:
    """An engine from the table, optionally with an ORT execution provider (ort:cuda), a device
    (openvino:GPU) or a precision of its own (openvino@fp16)."""
    engine = text.partition("@")[0].partition(":")[0]
    if engine not in engine_choices():  # read at parse time: engines registered later count
        raise argparse.ArgumentTypeError(f"unknown engine {text!r}; choose from {', '.join(engine_choices()[1:])} "
                                         "(ort takes a provider: ort:cpu, ort:cuda, ort:tensorrt, ort:xnnpack, ...)")
    return text


def _latency_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="time engines round-robin on one model; versioned JSON",
                       description="Time one model on one or more engines, round-robin, on random inputs of "
                                   "the given sizes; report min/p50/p90/p99/mean, FPS, build time, peak RSS "
                                   "(and GPU memory, and energy per frame from tegrastats on a Jetson).")
    p.add_argument("model", help="an .onnx file or a model name (osffnet_x4: the shipped ONNX)")
    p.add_argument("--engine", dest="engines", nargs="+", default=["ort"], type=_engine_argument, metavar="E",
                   help=f"engines from the table ({', '.join(engine_choices()[1:])}); ort:PROVIDER picks an "
                        "execution provider (cpu, cuda, tensorrt, xnnpack, coreml, nnapi, qnn), openvino:GPU|NPU a "
                        "device, E@fp16 that engine's precision (openvino@fp16: bf16 on a BF16 CPU); default: ort")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="require this graph precision (default: whatever the file is)")
    p.add_argument("--size", dest="sizes", nargs="+", type=parse_size, metavar="WxH",
                   help="LR input sizes, width x height (default: 80x60)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs per engine and size (default 2)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per engine and size (default 10)")
    p.add_argument("--json", metavar="FILE", help="write the results (schema edgesr.latency/1) to FILE")
    p.add_argument("--allow-untrained", action="store_true",
                   help="a model name without shipped weights is exported untrained (timing only)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(handler=run_latency_command)


def _predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="roofline floor (FPS bound) of a model on target devices",
                       description="Floor = max(compute, memory): compute = 2 x Multi-Adds / peak FLOPS, memory "
                                   "= bytes each node reads and writes / bandwidth, from ONNX Runtime's shapes.")
    p.add_argument("model", help="an .onnx file or a model name")
    p.add_argument("--target", dest="targets", nargs="+", required=True, metavar="T",
                   help="target keys from the packaged targets.json (jetson-orin-nx, rtx-4090, ...)")
    p.add_argument("--size", type=parse_size, default=(HR_WIDTH, HR_HEIGHT), metavar="WxH",
                   help=f"HR output size (default {HR_WIDTH}x{HR_HEIGHT})")
    p.add_argument("--precision", choices=(*PRECISIONS, "int8"), default="fp32",
                   help="tensor and math precision (default fp32; int8: the target's published INT8 rate "
                        "and 1 byte per float element, from the model's FP32 graph)")
    p.set_defaults(handler=run_predict_command)


def _report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="merge latency JSON from many machines into Markdown + PNG plots")
    p.add_argument("results", nargs="+", metavar="RESULTS.json",
                   help="edgesr-bench latency --json files; one that does not exist is skipped with a warning")
    p.add_argument("--target", dest="targets", nargs="*", default=[], metavar="T",
                   help="targets whose roofline floors the measurements are compared with")
    p.add_argument("-o", "--output", required=True, metavar="report.md")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report and its plots")
    p.set_defaults(handler=run_report_command)


def _torch_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("complexity", help="params and Multi-Adds of every model at 1280x720 (needs torch)")
    p.add_argument("--models", nargs="+", metavar="NAME", help="model names; default: every family and scale")
    p.add_argument("--scales", nargs="+", type=int, default=list(SCALES), choices=SCALES)
    p.add_argument("--no-ablations", dest="ablations", action="store_false")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_torch_handler("complexity", "run_complexity"))
    p = sub.add_parser("tiling", help="tiled vs whole-image output on real photos (needs torch)")
    p.add_argument("--models", nargs="+", default=["osffnet_x4", "lmfn_x4"], metavar="NAME")
    p.add_argument("--tile", type=int, help="tile size in LR pixels (default: the model's advice)")
    p.add_argument("--overlap", type=int, help="overlap in LR pixels (default: the model's advice)")
    p.set_defaults(handler=_torch_handler("tiling", "run_tiling"))


def _torch_handler(command: str, function: str, module: str = "torch_commands"):  # noqa: ANN202
    def handler(args: argparse.Namespace) -> str:
        try:
            import torch  # noqa: F401  (probe only: the commands below import models)
        except ImportError:
            raise needs_torch(f"edgesr-bench {command}") from None
        import importlib

        return getattr(importlib.import_module(f"edgesr.benchmarks.{module}"), function)(args)

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--model", help="one-model report (torch): a family with --scale, or a name")
    parser.add_argument("--scale", type=int, default=4, choices=SCALES, help="upscaling factor (default 4)")
    parser.add_argument("--allow-untrained", action="store_true",
                        help="time a model edgesr ships no weights for, untrained (timing only)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per engine after one warm-up (default 5; each round runs four engines)")
    parser.add_argument("--tile", type=int, default=128, help="tile size of the tiled latency run (default 128)")
    parser.add_argument("--overlap", type=int, default=16, help="overlap of the tiled latency run (default 16)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="also time torch.compile'd torch (reports the compile time; minutes on a CPU)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _latency_parser(sub)
    _predict_parser(sub)
    add_floor_parser(sub, parse_size)
    add_serve_parser(sub, parse_size)
    _report_parser(sub)
    _torch_commands(sub)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.command is None:
        if args.model is None:
            parser.print_help()
            return EXIT_OK
        text = _torch_handler("--model", "run_model_report", module="model_report")(args)
    else:
        text = args.handler(args)
    print(text)  # every command returns its text; only the CLI prints
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="export")


if __name__ == "__main__":
    sys.exit(main())
