"""``edgesr-serve``: an edgesr model behind a real Triton Inference Server (PyTriton).

    edgesr-serve [--model NAME|PATH.onnx] [--engine E] [--host ADDR] [--http-port P]
                 [--grpc-port P] [--metrics-port P] [--tile PX] [--overlap PX]
                 [--max-pixels N] [--name NAME] [-v]

Clients send one uint8 RGB image (height x width x 3, any size) as input ``image`` and get
``upscaled`` back (tritonclient, HTTP or gRPC; docs/serving.md). Every endpoint listens on
127.0.0.1 unless --host says otherwise. Health: GET /v2/health/ready. SIGTERM or Ctrl-C stops
the server; exit 0. Needs the ``serve`` extra; without it, one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from edgesr.cli_util import EXIT_OK, check_threads, command_parser, run_cli, setup_logging
from edgesr.errors import ConfigError
from edgesr.runtime.engines import ENGINE_CHOICES
from edgesr.runtime.run_model import open_resolved, resolve_model
from edgesr.runtime.serve import (
    DEFAULT_MAX_PIXELS,
    INPUT_NAME,
    LOCALHOST,
    OUTPUT_NAME,
    PROG,
    Endpoints,
    ImageUpscaler,
    check_serve_extra,
    serve,
    triton_model_name,
)
from edgesr.runtime.tile_plan import DEFAULT_MEMORY_BUDGET_MB, MIB
from edgesr.spec import DEFAULT_MODEL


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, __doc__)
    p.add_argument("-n", "--model", metavar="NAME|PATH.onnx", default=None,
                   help=f"an exported .onnx file or a registered model name (default: the shipped {DEFAULT_MODEL})")
    p.add_argument("--engine", default="auto", metavar="|".join(ENGINE_CHOICES),
                   help="inference engine, as edgesr-run's (default: auto)")
    p.add_argument("--fp16", action="store_true", help="half precision, as edgesr-run's --fp16")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="CPU threads per operator (0: the engine's default)")
    p.add_argument("--host", default=LOCALHOST, metavar="ADDR",
                   help=f"address every endpoint binds to (default {LOCALHOST}; 0.0.0.0 exposes the server)")
    p.add_argument("--http-port", type=int, default=8000, metavar="P", help="HTTP port (default 8000)")
    p.add_argument("--grpc-port", type=int, default=8001, metavar="P", help="gRPC port (default 8001)")
    p.add_argument("--metrics-port", type=int, default=8002, metavar="P", help="Prometheus metrics port (default 8002)")
    p.add_argument("--name", default=None, help="the served model's name (default: the model's, e.g. lkdn_x4)")
    p.add_argument("-t", "--tile", type=int, default=None, metavar="PX",
                   help="tile side in input pixels (default: auto, as edgesr-run)")
    p.add_argument("--overlap", type=int, default=None, metavar="PX", help="tile context (default: the model's advice)")
    p.add_argument("--memory-budget-mb", type=int, default=DEFAULT_MEMORY_BUDGET_MB, metavar="N",
                   help=f"engine memory per call, sets the auto tile (default {DEFAULT_MEMORY_BUDGET_MB})")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse requests with more pixels (default {DEFAULT_MAX_PIXELS:,})")
    # what edgesr-run's model resolution reads, fixed here
    p.set_defaults(scale=None, weights=None, allow_untrained=False, compile=False)
    return p


def _check(args: argparse.Namespace) -> None:
    for flag, value, low, high in (("--http-port", args.http_port, 1, 65535),
                                   ("--grpc-port", args.grpc_port, 1, 65535),
                                   ("--metrics-port", args.metrics_port, 1, 65535),
                                   ("--tile", args.tile, 0, None), ("--overlap", args.overlap, 0, None),
                                   ("--memory-budget-mb", args.memory_budget_mb, 1, None),
                                   ("--max-pixels", args.max_pixels, 1, None)):
        if value is not None and (value < low or (high is not None and value > high)):
            raise ConfigError(f"{flag} {value}: expected an integer from {low}" + (f" to {high}" if high else " up"))
    if len({args.http_port, args.grpc_port, args.metrics_port}) != 3:
        raise ConfigError("--http-port, --grpc-port and --metrics-port must differ")
    check_threads(args.threads)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    if not args.verbose:  # PyTriton's own INFO lines (endpoints, workspace) are noise here
        logging.getLogger("pytriton").setLevel(logging.WARNING)
    _check(args)
    check_serve_extra()  # before the model: a runtime-only install stops here
    model = resolve_model(args)
    endpoints = Endpoints(host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
                          metrics_port=args.metrics_port)
    name = args.name or triton_model_name(model.model_path, model.model_name)
    with open_resolved(args, model) as engine:
        upscaler = ImageUpscaler(engine=engine, tile_px=args.tile or None, overlap_px=args.overlap,
                                 memory_budget_bytes=args.memory_budget_mb * MIB, max_pixels=args.max_pixels)

        def ready() -> None:
            print(f"engine: {engine.info().describe()}")
            print(f"serving {name} (x{engine.spec.scale}: {INPUT_NAME} uint8 HxWx3 -> {OUTPUT_NAME}) "
                  f"at http://{endpoints.http_url}, gRPC {endpoints.host}:{endpoints.grpc_port}; "
                  f"health: /v2/health/ready; SIGTERM or Ctrl-C stops", flush=True)

        serve(upscaler, model_name=name, endpoints=endpoints, on_ready=ready)
    print(f"{PROG}: stopped")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="serve")


if __name__ == "__main__":
    sys.exit(main())
