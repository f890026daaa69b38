"""``edgesr-run``: upscale an image or a folder of images with an exported SR model.

    edgesr-run [-i] INPUT [-o OUTPUT] [-s F] [--suffix S] [--ext E] [--model NAME|PATH.onnx] [--scale S]
               [--engine auto|ort|openvino[:GPU|:NPU]|trt|torch] [--tile PX] [--overlap PX] [--fp16]
               [--overwrite] [--memory-budget-mb N] [--weights FILE] [--threads N] [--compile] [-v]

Real-ESRGAN's flags work too (``runtime/cli_args.py`` lists the mapping, shown by --help); a
video INPUT streams through PyAV (``runtime/video.py``).

Never imports torch itself: ``--model NAME`` (a registered model name, exported on demand into
the cache by ``edgesr.export.cache.cached_onnx_for``) and ``--engine torch`` reach the torch
side through ``importlib`` and fail with one line when PyTorch is not installed.

Exit codes: 0 success; 2 an error (one line on stderr, nothing written; the default results/
folder is not left behind); 1 a folder run in which some files failed (one line on stderr
names them, -v gives each one's reason; the others written); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgesr.cli_util import EXIT_OK, check_threads, run_cli, setup_logging
from edgesr.errors import ConfigError, ImageError
from edgesr.runtime.cli_args import DEFAULT_OUTPUT_FOLDER, DEFAULT_SUFFIX
from edgesr.runtime.cli_args import build_parser as build_args_parser
from edgesr.runtime.image_folders import output_extension, output_folder
from edgesr.runtime.image_write import check_output_path
from edgesr.runtime.imageio import read_image
from edgesr.runtime.output_budget import check_output_budget
from edgesr.runtime.tiling import ProgressCallback
from edgesr.runtime.tile_plan import MIB, plan_tiling
from edgesr.runtime.upscale import TILE_PROGRESS_MIN_TILES, UpscaleResult, upscale_file
from edgesr.runtime.upscale_folder import FolderItem, folder_jobs, upscale_folder
from edgesr.runtime.run_model import ResolvedModel, open_resolved, resolve_model
from edgesr.runtime.video_cli import is_video_path, run_video_cli

PROG = "edgesr-run"
#: Exit code of a folder run in which some files failed (the others were written).
EXIT_SOME_FAILED = 1

logger = logging.getLogger(__name__)

def build_parser() -> argparse.ArgumentParser:
    return build_args_parser(PROG)


# ------------------------------------------------------------------------ models


# ------------------------------------------------------------------------ output


class _TileBars:
    """A tqdm bar per large image (enough tiles), closed when its last tile is done."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, total: int) -> ProgressCallback | None:
        self.close()
        if total < TILE_PROGRESS_MIN_TILES:
            return None
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="tile", leave=False, disable=None, file=sys.stderr)

        def progress(done: int, total: int) -> None:
            if self._bar is not None:
                self._bar.n = done
                self._bar.refresh()
                if done >= total:
                    self.close()

        return progress

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _say(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)


def _describe(r: UpscaleResult) -> str:
    tiles_text = "whole image" if r.plan.tiles == 1 else f"{r.plan.tiles} tiles"
    return (f"{r.input_path} -> {r.output_path}: {r.width}x{r.height} -> {r.out_width}x{r.out_height}, "
            f"{tiles_text}, {r.total_ms:.0f} ms (inference {r.inference_ms:.0f} ms)")


def _check_numbers(args: argparse.Namespace) -> None:
    if args.outscale is not None and not args.outscale > 0:
        raise ConfigError(f"-s/--outscale {args.outscale:g}: expected a factor above 0, e.g. 2 or 3.5")
    if args.crf is not None and args.crf < 0:
        raise ConfigError(f"--crf {args.crf}: expected an integer >= 0")
    for flag, value, low in (("--tile", args.tile, 0), ("--overlap", args.overlap, 0),
                             ("--scale", args.scale, 1), ("--memory-budget-mb", args.memory_budget_mb, 1),
                             ("--threads", args.threads, 0), ("--max-pixels", args.max_pixels, 1),
                             ("--max-output-mb", args.max_output_mb, 1)):
        if value is not None and value < low:
            raise ConfigError(f"{flag} {value}: expected an integer >= {low}")
    check_threads(args.threads)  # more than the usable cores only adds contention (and memory)
    if args.tile and args.overlap is not None and 2 * args.overlap >= args.tile:
        raise ConfigError(f"--overlap {args.overlap}: expected less than half of --tile {args.tile}, "
                          "or every tile would be all overlap")


def folder_lr_px(jobs: list[tuple[Path, Path]], *, overwrite: bool) -> int:
    """LR pixels of the images a folder run will upscale (headers only), for auto's rule."""
    from PIL import Image

    total = 0
    for src, dst in jobs:
        if dst.exists() and not overwrite:
            continue  # skipped: already done
        try:
            with Image.open(src) as im:
                total += im.width * im.height
        except Exception:  # noqa: BLE001  (this file fails later with its own message)
            continue
    return total


def _say_engine(args: argparse.Namespace, model: ResolvedModel, engine: Any) -> None:
    print(f"engine: {engine.info().describe()}")
    if args.engine == "auto":
        print(f"auto chose {engine.info().name}: {model.why}")


def _file_output(args: argparse.Namespace, src: Path) -> tuple[Path, Path | None]:
    """(-o itself, None), or (Real-ESRGAN's {name}_{suffix}.{ext} in -o's folder (results/
    without -o), that folder: made for the run, removed again if nothing lands in it)."""
    named = args.output is not None and not (Path(args.output).is_dir() or args.output.endswith(("/", os.sep)))
    if named:
        if args.suffix is not None or args.ext != "auto":
            raise ConfigError(f"--suffix and --ext name outputs inside a folder, but -o {args.output} "
                              "is a file name (its extension picks the format); drop them, or make -o a folder")
        return Path(args.output), None
    folder = Path(args.output or DEFAULT_OUTPUT_FOLDER)
    suffix = DEFAULT_SUFFIX if args.suffix is None else args.suffix
    ext = output_extension(src, args.ext) or src.suffix
    name = f"{src.stem}_{suffix}{ext}" if suffix else f"{src.stem}{ext}"
    return folder / name, folder


def _run_file(args: argparse.Namespace, src: Path) -> int:
    out, folder = _file_output(args, src)
    with output_folder(folder) if folder is not None else contextlib.nullcontext():
        return _upscale_file(args, src, out)


def _upscale_file(args: argparse.Namespace, src: Path, out: Path) -> int:
    # Cheap refusals first (output path, image, model, tiling), then the engine is loaded.
    out = check_output_path(out, inputs=[src], overwrite=args.overwrite)
    image = read_image(src, max_pixels=args.max_pixels)
    model = resolve_model(args, lr_px=image.height * image.width)
    budget = args.memory_budget_mb * MIB
    if model.spec is not None:  # ONNX: refuse an impossible output or plan before loading the engine
        check_output_budget(source=src, width=image.width, height=image.height, scale=model.spec.scale,
                            outscale=args.outscale, alpha=image.has_alpha, max_output_mb=args.max_output_mb)
        plan_tiling(height=image.height, width=image.width, spec=model.spec, tile_px=args.tile,
                    overlap_px=args.overlap, memory_budget_bytes=budget)
    bars = _TileBars()
    with open_resolved(args, model) as engine:
        _say_engine(args, model, engine)
        try:
            # planned again with the engine: ONNX Runtime on a CPU takes bigger tiles than TensorRT
            result = upscale_file(src, out, engine=engine, image=image, tile_px=args.tile,
                                  overlap_px=args.overlap, memory_budget_bytes=budget,
                                  overwrite=args.overwrite, tile_progress=bars,
                                  max_pixels=args.max_pixels, outscale=args.outscale,
                                  max_output_mb=args.max_output_mb)
        finally:
            bars.close()
    print(_describe(result))
    return EXIT_OK


def _run_folder(args: argparse.Namespace, src: Path) -> int:
    dst = Path(args.output or DEFAULT_OUTPUT_FOLDER)
    suffix = args.suffix if args.suffix is not None else ("" if args.output else DEFAULT_SUFFIX)
    jobs = folder_jobs(src, dst, suffix=suffix, ext=args.ext)
    with output_folder(dst):  # a read-only place fails here, before the model
        return _upscale_folder(args, src, dst, jobs)


def _upscale_folder(args: argparse.Namespace, src: Path, dst: Path, jobs: list[tuple[Path, Path]]) -> int:
    from tqdm import tqdm

    model = resolve_model(args, lr_px=folder_lr_px(jobs, overwrite=args.overwrite))
    if model.spec is not None and args.tile is not None:
        # flag problems (e.g. --tile not above 2 * --overlap) fail once, before any file
        plan_tiling(height=64, width=64, spec=model.spec, tile_px=args.tile or None,
                    overlap_px=args.overlap, memory_budget_bytes=args.memory_budget_mb * MIB)
    bars = _TileBars()
    with open_resolved(args, model) as engine:
        _say_engine(args, model, engine)
        with tqdm(total=len(jobs), unit="img", disable=None, file=sys.stderr) as bar:

            def on_item(item: FolderItem) -> None:
                bar.update(1)
                if item.status == "failed":  # one line for all of them at the end
                    logger.debug("failed: %s: %s", item.input_path, item.error)
                elif item.status == "done" and item.result is not None:
                    _say(_describe(item.result))
                else:
                    logger.debug("skipping %s: %s exists", item.input_path, item.output_path)

            try:
                report = upscale_folder(
                    src, dst, engine=engine, tile_px=args.tile, overlap_px=args.overlap,
                    memory_budget_bytes=args.memory_budget_mb * MIB, overwrite=args.overwrite,
                    jobs=jobs, on_item=on_item, tile_progress=bars, max_pixels=args.max_pixels,
                    outscale=args.outscale, max_output_mb=args.max_output_mb,
                )
            finally:
                bars.close()
    summary = f"{report.done} upscaled, {report.skipped} skipped (output exists"
    summary += ", --overwrite redoes them)" if report.skipped else ")"
    summary += f", {report.failed} failed"
    print(summary)
    if report.failed:
        print(f"{PROG}: error: {report.failed_summary(src)}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    _check_numbers(args)
    if (args.input is None) == (args.input_flag is None):
        raise ConfigError("give one input: INPUT or -i INPUT (an image, a folder or a video)")
    args.input = args.input or args.input_flag
    if args.tile == 0:
        args.tile = None  # 0 = auto, as in realesrgan-ncnn-vulkan
    src = Path(args.input)
    if not src.exists():
        raise ImageError(
            f"input {args.input!r} does not exist; check the path (working folder is {os.getcwd()})"
        )
    if args.ray is not None:  # folder mode on a Ray cluster (runtime/ray_batch_run.py)
        from edgesr.runtime.ray_batch_run import run_folder_ray

        return run_folder_ray(args, src, say=_say)  # the CLI prints; the library reports
    if src.is_dir():
        return _run_folder(args, src)
    if is_video_path(src):
        return run_video_cli(args, src)
    return _run_file(args, src)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``edgesr-run``; returns the exit code (see the module notes)."""
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
