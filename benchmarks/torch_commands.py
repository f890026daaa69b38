"""The edgesr-bench subcommands that need torch: complexity and tiling (the one-model report
is benchmarks/model_report.py).

Imported only after edgesr-bench has checked that torch is importable, so a runtime-only
install gets one line ("needs the `export` extra: pip install ...") instead of a traceback.
Each returns the text to show; the CLI prints it.
"""

from __future__ import annotations

import argparse


def run_complexity(args: argparse.Namespace) -> str:
    from edgesr.benchmarks.complexity_table import complexity_rows, default_names, format_table, rows_as_json

    names = args.models or default_names(scales=tuple(args.scales), ablations=args.ablations)
    rows = complexity_rows(names)
    return rows_as_json(rows) if args.json else format_table(rows)


def run_tiling(args: argparse.Namespace) -> str:
    from edgesr.benchmarks.tiling_report import format_rows, tiling_rows
    from edgesr.data.skimage_photos import SKIMAGE_VAL, skimage_photos
    from edgesr.export.cache import cached_onnx_for
    from edgesr.runtime.engines import open_engine

    photos = [(name, image) for name, image in skimage_photos() if name in SKIMAGE_VAL]
    rows = []
    for name in args.models:
        with open_engine("ort", model_path=cached_onnx_for(name)) as engine:
            rows += tiling_rows(engine, model=name, photos=photos,
                                tile_px=args.tile or engine.spec.tile_px,
                                overlap_px=args.overlap if args.overlap is not None else engine.spec.overlap_px)
    return format_rows(rows)
