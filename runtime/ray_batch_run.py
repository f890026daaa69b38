"""``edgesr-run IN_DIR -o OUT_DIR --ray [ADDRESS]``: folder mode on a Ray cluster.

The same jobs as folder mode (names from -o, --suffix and --ext; outputs that exist skipped,
so an interrupted run resumes), the same engine (--model, --engine, --fp16, --threads, opened
in each actor as folder mode opens it) and the same per-file options (--tile, --overlap,
--memory-budget-mb, --max-pixels, --max-output-mb, -s), run by
:func:`~edgesr.runtime.ray_batch.upscale_folder_ray`: each output file is folder mode's, byte
for byte. Without ADDRESS a local cluster runs for the command and stops with it (Ctrl-C
included); with one (``auto``, ``HOST:6379`` from ``ray start --head``, ``ray://HOST:10001``)
it joins that cluster. Files that fail are listed at the end in one line, as in folder mode
(exit 1); the others are written.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from edgesr.cli_util import EXIT_OK
from edgesr.errors import ConfigError
from edgesr.runtime.cli_args import DEFAULT_OUTPUT_FOLDER, DEFAULT_SUFFIX
from edgesr.runtime.engines.protocol import Engine
from edgesr.runtime.image_folders import output_folder
from edgesr.runtime.ray_batch import EXIT_SOME_FAILED, require_ray, upscale_folder_ray
from edgesr.runtime.run_model import ResolvedModel, open_resolved, resolve_model
from edgesr.runtime.tile_plan import MIB, plan_tiling
from edgesr.runtime.upscale_folder import FolderItem, folder_jobs

PROG = "edgesr-run"

logger = logging.getLogger(__name__)


def open_for_actor(args: argparse.Namespace, model: ResolvedModel) -> Engine:
    """Folder mode's engine, opened inside a Ray actor (module-level: Ray pickles it)."""
    return open_resolved(args, model)


def _check(args: argparse.Namespace, src: Path) -> None:
    if not src.is_dir():
        raise ConfigError(f"--ray runs a folder of images; {str(src)!r} is not a folder (drop --ray "
                          "for one image or a video)")
    if args.ray_actors < 1 or args.ray_gpus < 0:
        raise ConfigError("--ray-actors must be >= 1 and --ray-gpus >= 0")


def _reporter(say: Callable[[str], None]) -> Callable[[FolderItem], None]:
    def report(item: FolderItem) -> None:
        if item.status == "done":
            say(f"{item.input_path} -> {item.output_path}")
        elif item.status == "failed":  # one line for all of them at the end, as folder mode
            logger.debug("failed: %s: %s", item.input_path, item.error)
    return report


def run_folder_ray(args: argparse.Namespace, src: Path, *, say: Callable[[str], None]) -> int:
    """``edgesr-run``'s folder mode over Ray (module notes); the exit code."""
    from edgesr.runtime.cli import folder_lr_px  # --engine auto's rule counts what folder mode counts

    _check(args, src)
    dst = Path(args.output or DEFAULT_OUTPUT_FOLDER)
    suffix = args.suffix if args.suffix is not None else ("" if args.output else DEFAULT_SUFFIX)
    jobs = folder_jobs(src, dst, suffix=suffix, ext=args.ext)
    require_ray()  # before a model is exported or anything written
    if not args.verbose:  # Ray Data's progress lines (one per stage and second) drown the summary
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    with output_folder(dst):  # made for the run, removed again when nothing was written
        model = resolve_model(args, lr_px=folder_lr_px(jobs, overwrite=args.overwrite))
        if model.spec is not None and args.tile is not None:  # flag problems once, before any file
            plan_tiling(height=64, width=64, spec=model.spec, tile_px=args.tile or None,
                        overlap_px=args.overlap, memory_budget_bytes=args.memory_budget_mb * MIB)
        folder_options = {"tile_px": args.tile, "overlap_px": args.overlap, "outscale": args.outscale,
                          "memory_budget_bytes": args.memory_budget_mb * MIB,
                          "max_pixels": args.max_pixels, "max_output_mb": args.max_output_mb}
        report = upscale_folder_ray(
            src, dst, opener=functools.partial(open_for_actor, args, model), jobs=jobs,
            address=args.ray or None, concurrency=args.ray_actors, num_gpus=args.ray_gpus,
            overwrite=args.overwrite, folder_options=folder_options, on_item=_reporter(say))
    summary = f"{report.done} upscaled, {report.skipped} skipped (output exists"
    summary += ", --overwrite redoes them)" if report.skipped else ")"
    print(f"{summary}, {report.failed} failed")
    if report.failed:
        print(f"{PROG}: error: {report.failed_summary(src)}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK
