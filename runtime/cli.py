"""``edgesr-run``: upscale an image or a folder of images with an exported SR model.

    edgesr-run INPUT -o OUTPUT [--model NAME|PATH.onnx] [--scale S]
               [--engine auto|ort|openvino[:GPU|:NPU]|trt|torch] [--tile PX] [--overlap PX] [--fp16]
               [--overwrite] [--memory-budget-mb N] [--weights FILE] [--threads N] [--compile] [-v]

Never imports torch itself: ``--model NAME`` (a registered model name, exported on demand into
the cache by ``edgesr.export.cache.cached_onnx_for``) and ``--engine torch`` reach the torch
side through ``importlib`` and fail with one line when PyTorch is not installed.

Exit codes: 0 success; 2 an error (one line on stderr, nothing written); 1 a folder run in
which some files failed (each reported on stderr, the others written); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgesr.cli_util import EXIT_OK, run_cli, setup_logging
from edgesr.errors import ConfigError, ImageError
from edgesr.fileio import ensure_folder
from edgesr.image_guard import DEFAULT_MAX_PIXELS
from edgesr.runtime.engines import ENGINE_CHOICES
from edgesr.runtime.image_write import check_output_path
from edgesr.runtime.imageio import SUPPORTED_EXTENSIONS, read_image
from edgesr.runtime.tiling import ProgressCallback
from edgesr.runtime.tile_plan import DEFAULT_MEMORY_BUDGET_MB, MIB, plan_tiling
from edgesr.runtime.upscale import (
    TILE_PROGRESS_MIN_TILES,
    FolderItem,
    UpscaleResult,
    folder_jobs,
    upscale_file,
    upscale_folder,
)
from edgesr.runtime.run_model import ResolvedModel, open_resolved, resolve_model
from edgesr.spec import DEFAULT_MODEL

PROG = "edgesr-run"
#: Exit code of a folder run in which some files failed (the others were written).
EXIT_SOME_FAILED = 1

logger = logging.getLogger(__name__)

_EXAMPLES = """\
examples:
  edgesr-run photo.png -o photo_x4.png                       shipped default model (lkdn_x4)
  edgesr-run photos/ -o photos_x4/                           a folder: mirrored tree, resumable
  edgesr-run photo.jpg -o out.png --model osffnet_x4.onnx    an exported model (edgesr-export)
  edgesr-run photo.png -o out.png --model other.onnx --scale 2   an ONNX without edgesr metadata
  edgesr-run photo.png -o out.png --model lmfn_x4 --engine torch   the PyTorch reference

exit codes: 0 ok, 2 error (nothing written), 1 some files of a folder failed, 130 interrupted
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Upscale an image, or every image in a folder, with a super-resolution model "
        "through ONNX Runtime, TensorRT or PyTorch.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="INPUT", help="an image file, or a folder of images (searched recursively)")
    parser.add_argument(
        "-o", "--output", metavar="OUTPUT", required=True,
        help="output image (its extension picks the format: "
        f"{' '.join(SUPPORTED_EXTENSIONS)}); for a folder INPUT, an output folder (created if missing)",
    )
    parser.add_argument(
        "--model", metavar="NAME|PATH.onnx", default=None,
        help=f"an exported .onnx file, or a registered model name (exported on first use; needs "
        f"PyTorch); default: the shipped {DEFAULT_MODEL}",
    )
    parser.add_argument("--scale", type=int, default=None, metavar="S",
                        help="upscaling factor; needed only for an .onnx without edgesr metadata "
                        "(otherwise it must agree with the model)")
    parser.add_argument("--engine", default="auto", metavar="|".join(ENGINE_CHOICES),
                        help="inference engine; auto = the fastest available here (default: auto)")
    parser.add_argument("--tile", type=int, default=None, metavar="PX",
                        help="tile side in input pixels; 0 = whole image at once (refused above the "
                        "memory budget); default: ONNX Runtime on a CPU/CUDA and torch take the largest "
                        "tile the memory budget allows (the whole image when it fits: tiles only add "
                        "overlap work); TensorRT takes the model's advice, smaller if the budget needs")
    parser.add_argument("--overlap", type=int, default=None, metavar="PX",
                        help="context pixels around each tile (default: the model's advice)")
    parser.add_argument("--fp16", action="store_true",
                        help="run in FP16 (needs an FP16 .onnx from `edgesr-export --fp16`, or a model name); "
                        "--engine openvino runs the fp32 graph in the device's half type (bf16 on a BF16 CPU)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (never an input); folder runs otherwise skip "
                        "outputs that exist, so an interrupted run resumes")
    parser.add_argument("--memory-budget-mb", type=int, default=DEFAULT_MEMORY_BUDGET_MB, metavar="N",
                        help=f"engine memory per call, sets the default tile size (default: {DEFAULT_MEMORY_BUDGET_MB})")
    parser.add_argument("--weights", metavar="FILE", default=None,
                        help="weights (.safetensors/.pth) for a registered --model NAME (default: shipped)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse inputs with more pixels than this, read from the file header "
                        f"before decoding (default: {DEFAULT_MAX_PIXELS:,}). Only regular files "
                        "are read; multi-frame inputs (animated PNG/WebP, multi-page TIFF) are "
                        "refused, not cut to their first frame")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads per operator (default: ONNX Runtime uses the physical "
                             "cores this process may use; torch keeps its own setting)")
    parser.add_argument("--compile", action="store_true",
                        help="--engine torch: torch.compile the model (about a minute per new tile "
                             "size on a CPU, then 1.45x faster per tile; for long runs)")
    parser.add_argument("--allow-untrained", action="store_true",
                        help="run a model edgesr ships no weights for, untrained (timing only)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


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
    for flag, value, low in (("--tile", args.tile, 0), ("--overlap", args.overlap, 0),
                             ("--scale", args.scale, 1), ("--memory-budget-mb", args.memory_budget_mb, 1),
                             ("--threads", args.threads, 0), ("--max-pixels", args.max_pixels, 1)):
        if value is not None and value < low:
            raise ConfigError(f"{flag} {value}: expected an integer >= {low}")


def _folder_lr_px(jobs: list[tuple[Path, Path]], *, overwrite: bool) -> int:
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


def _run_file(args: argparse.Namespace, src: Path) -> int:
    # Cheap refusals first (output path, image, model, tiling), then the engine is loaded.
    out = check_output_path(args.output, inputs=[src], overwrite=args.overwrite)
    image = read_image(src, max_pixels=args.max_pixels)
    model = resolve_model(args, lr_px=image.height * image.width)
    budget = args.memory_budget_mb * MIB
    if model.spec is not None:  # ONNX: refuse an impossible plan before loading the engine
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
                                  max_pixels=args.max_pixels)
        finally:
            bars.close()
    print(_describe(result))
    return EXIT_OK


def _run_folder(args: argparse.Namespace, src: Path) -> int:
    from tqdm import tqdm

    dst = Path(args.output)
    jobs = folder_jobs(src, dst)
    ensure_folder(dst, what="output folder")  # a read-only place fails here, before the model
    model = resolve_model(args, lr_px=_folder_lr_px(jobs, overwrite=args.overwrite))
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
                if item.status == "failed":
                    tqdm.write(f"{PROG}: error: {item.input_path}: {item.error}", file=sys.stderr)
                elif item.status == "done" and item.result is not None:
                    _say(_describe(item.result))
                else:
                    logger.debug("skipping %s: %s exists", item.input_path, item.output_path)

            try:
                report = upscale_folder(
                    src, dst, engine=engine, tile_px=args.tile, overlap_px=args.overlap,
                    memory_budget_bytes=args.memory_budget_mb * MIB, overwrite=args.overwrite,
                    jobs=jobs, on_item=on_item, tile_progress=bars, max_pixels=args.max_pixels,
                )
            finally:
                bars.close()
    summary = f"{report.done} upscaled, {report.skipped} skipped (output exists"
    summary += ", --overwrite redoes them)" if report.skipped else ")"
    summary += f", {report.failed} failed"
    print(summary)
    if report.failed:
        print(f"{PROG}: {report.failed} of {len(report.items)} files failed (see above)", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    _check_numbers(args)
    src = Path(args.input)
    if not src.exists():
        raise ImageError(
            f"input {args.input!r} does not exist; check the path (working folder is {os.getcwd()})"
        )
    if src.is_dir():
        return _run_folder(args, src)
    return _run_file(args, src)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``edgesr-run``; returns the exit code (see the module notes)."""
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
