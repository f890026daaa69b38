"""The edgesr-bench subcommands that need torch: complexity, tiling, the one-model report.

Imported only after edgesr-bench has checked that torch is importable, so a runtime-only
install gets one line ("needs the `export` extra: pip install ...") instead of a traceback.
Each returns the text to show; the CLI prints it.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from dataclasses import replace


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


def run_model_report(args: argparse.Namespace) -> str:
    """Params and Multi-Adds of one model, and ORT (whole, tiled) vs torch latency at 1280x720."""
    from edgesr.benchmarks.complexity_table import complexity_rows, format_table
    from edgesr.benchmarks.latency import format_timings, random_lr, tiled, time_round_robin
    from edgesr.complexity import lr_size_for_hr
    from edgesr.export.cache import cached_onnx_for
    from edgesr.models import model_name
    from edgesr.runtime.engines import open_engine
    from edgesr.runtime.engines.ort import short_provider_name
    from edgesr.torch_engine import TorchOptions

    name = model_name(args.model, scale=args.scale)
    table = format_table(complexity_rows([name]))
    height, width = lr_size_for_hr(scale=args.scale)
    lr = random_lr(height=height, width=width)
    # untrained weights only when asked: a model without weights is refused in one line
    torch_options = TorchOptions(allow_untrained=args.allow_untrained)
    with ExitStack() as stack:
        ort = stack.enter_context(open_engine(
            "ort", model_path=cached_onnx_for(name, allow_untrained=args.allow_untrained)))
        torch_engines = {  # channels_last (the default) against the plain NCHW layout
            "": stack.enter_context(open_engine("torch", model_name=name, options=torch_options)),
            " NCHW": stack.enter_context(open_engine("torch", model_name=name, options=replace(
                torch_options, channels_last=False))),
        }
        compile_note = ""
        if getattr(args, "torch_compile", False):
            compiled = stack.enter_context(open_engine("torch", model_name=name, options=replace(
                torch_options, compile=True)))
            start = time.perf_counter()
            compiled.run(lr)  # the first call of a size compiles
            compile_note = f"; torch.compile took {time.perf_counter() - start:.0f} s"
            torch_engines[" compiled"] = compiled
        ort_label = f"ort-{short_provider_name(ort.provider_ran)}"  # the provider that really ran
        device = torch_engines[""].info().device.split()[0]
        runs = {
            ort_label: lambda: ort.run(lr),
            f"{ort_label} tiled {args.tile}/{args.overlap}": lambda: tiled(ort, tile_px=args.tile, overlap_px=args.overlap)(lr),
            **{f"torch-{device}{suffix}": (lambda engine=engine: engine.run(lr))
               for suffix, engine in torch_engines.items()},
        }
        timings = time_round_robin(runs, repeats=args.repeats)
        heading = (f"latency of {name} on a {width}x{height} input ({ort.info().describe()}), "
                   f"{args.repeats} round-robin repeats{compile_note}:")
    return f"{table}\n\n{heading}\n{format_timings(timings, baseline=ort_label)}"
