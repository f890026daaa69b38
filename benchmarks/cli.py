"""edgesr-bench: model complexity (params, Multi-Adds) and latency.

    edgesr-bench complexity [--models NAME ...] [--scales 2 3 4] [--json]
    edgesr-bench --model osffnet --scale 4       (one model: params, Multi-Adds, latency)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgesr.cli_util import EXIT_OK, run_cli, setup_logging

PROG = "edgesr-bench"


def _complexity_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "complexity",
        help="params and Multi-Adds (paper and full conventions) of every model at 1280x720",
        description="Print params and Multi-Adds at a 1280x720 HR output for every model and "
                    "scale, next to the published figures (✓/✗ where a paper gives one).",
    )
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="model names (e.g. osffnet_x4 bsrn_x3); default: every family and scale "
                        "plus the OSFFNet ablations")
    p.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4], choices=[2, 3, 4],
                   help="scales for the default model list (default: 2 3 4)")
    p.add_argument("--no-ablations", dest="ablations", action="store_false",
                   help="leave the OSFFNet ablation variants out of the default list")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_run_complexity)


def _run_complexity(args: argparse.Namespace) -> int:
    from edgesr.benchmarks.complexity_table import (
        complexity_rows, default_names, format_table, rows_as_json,
    )

    names = args.models or default_names(scales=tuple(args.scales), ablations=args.ablations)
    rows = complexity_rows(names)
    print(rows_as_json(rows) if args.json else format_table(rows))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _complexity_parser(sub)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.command is None:
        build_parser().print_help()
        return EXIT_OK
    return args.handler(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
