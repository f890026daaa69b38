"""``edgesr-bench --model NAME``: params, Multi-Adds and ORT (whole, tiled) vs torch latency.

Needs torch (the torch engines and the complexity count); edgesr-bench checks that first. ONNX
Runtime runs the ONNX edgesr ships for the model when there is one (the fp32 deployment form
that edgesr-run uses; only its weights' values differ if training has replaced the
safetensors since, and latency does not depend on them), so nothing is exported; other models
are exported once into the export cache, which the first line says. The work is said up front,
the warm-up round's time gives an estimate of the rest, and a bar counts the runs on a terminal.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

logger = logging.getLogger(__name__)


def _onnx_for(name: str, *, allow_untrained: bool) -> tuple[Path, str]:
    """(the ONNX file to time, how it was found): the shipped one, else a cached export."""
    from edgesr.weights import shipped_onnx

    shipped = shipped_onnx(name)
    if shipped is not None:
        return shipped, "the shipped ONNX"
    from edgesr.export.cache import cached_onnx_for

    logger.info("edgesr ships no ONNX for %s: exporting it first, with its self-check (minutes on a CPU; "
                "once: the export cache keeps it)", name)
    return cached_onnx_for(name, allow_untrained=allow_untrained), "an export"


def _counted(runs: dict[str, Callable[[], object]], bar) -> dict[str, Callable[[], object]]:  # noqa: ANN001
    """Each run, then one tick of ``bar`` (microseconds inside a timed call of a second or more)."""
    def tick(run: Callable[[], object]) -> Callable[[], None]:
        def counted() -> None:
            run()
            bar.update(1)
        return counted

    return {label: tick(run) for label, run in runs.items()}


def _warm_up(runs: dict[str, Callable[[], object]], *, repeats: int) -> None:
    """One untimed call of each run, and from its time what the timed rounds will take."""
    start = time.perf_counter()
    for run in runs.values():
        run()
    round_s = time.perf_counter() - start
    logger.info("warm-up round: %.0f s; the %d timed round(s) take about %.0f s more", round_s, repeats,
                round_s * repeats)


def run_model_report(args: argparse.Namespace) -> str:
    """Params and Multi-Adds of one model, and ORT (whole, tiled) vs torch latency at 1280x720."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from edgesr.benchmarks.complexity_table import complexity_rows, format_table
    from edgesr.benchmarks.latency import format_timings, random_lr, tiled, time_round_robin
    from edgesr.complexity import lr_size_for_hr
    from edgesr.models import model_name
    from edgesr.runtime.engines import open_engine
    from edgesr.runtime.engines.ort import short_provider_name
    from edgesr.errors import ConfigError
    from edgesr.torch_engine import TorchOptions

    if args.repeats < 1:
        raise ConfigError(f"--repeats {args.repeats}: expected at least 1 timed call per engine")
    name = model_name(args.model, scale=args.scale)
    from edgesr.export.model_loading import refuse_untrained

    refuse_untrained(name, allow_untrained=args.allow_untrained)  # before any notice: one line
    height, width = lr_size_for_hr(scale=args.scale)
    compile_asked = getattr(args, "torch_compile", False)
    engines = 4 + compile_asked
    logger.info("%s on a %dx%d input: %d engines (ONNX Runtime whole and tiled, torch channels_last and NCHW%s) "
                "x (1 warm-up + %d timed calls), round-robin; the torch calls are the slow part on a CPU "
                "(--repeats N sets the count)", name, width, height, engines,
                ", torch.compile: its first call compiles, minutes on a CPU" if compile_asked else "", args.repeats)
    table = format_table(complexity_rows([name]))
    lr = random_lr(height=height, width=width)
    # untrained weights only when asked: a model without weights is refused in one line
    torch_options = TorchOptions(allow_untrained=args.allow_untrained)
    with ExitStack() as stack:
        onnx_path, onnx_source = _onnx_for(name, allow_untrained=args.allow_untrained)
        ort = stack.enter_context(open_engine("ort", model_path=onnx_path))
        torch_engines = {  # channels_last (the default) against the plain NCHW layout
            "": stack.enter_context(open_engine("torch", model_name=name, options=torch_options)),
            " NCHW": stack.enter_context(open_engine("torch", model_name=name, options=replace(
                torch_options, channels_last=False))),
        }
        compile_note = ""
        if compile_asked:
            compiled = stack.enter_context(open_engine("torch", model_name=name, options=replace(
                torch_options, compile=True)))
            logger.info("compiling with torch.compile (the first call of a size compiles)...")
            start = time.perf_counter()
            compiled.run(lr)
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
        with logging_redirect_tqdm(), tqdm(total=len(runs) * (1 + args.repeats), unit="call", disable=None,
                                           file=sys.stderr, leave=False, desc=name) as bar:
            counted = _counted(runs, bar)
            _warm_up(counted, repeats=args.repeats)
            timings = time_round_robin(counted, warmup=0, repeats=args.repeats)
        heading = (f"latency of {name} on a {width}x{height} input ({ort.info().describe()}: {onnx_source}), "
                   f"{args.repeats} round-robin repeats{compile_note}:")
    return f"{table}\n\n{heading}\n{format_timings(timings, baseline=ort_label)}"
