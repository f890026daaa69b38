"""``edgesr-run in.mp4 -o out.mp4``: the engine, the tiling plan and progress around
:func:`edgesr.runtime.video.upscale_video`.

Each frame goes through the same steps as an image file (``upscale_tiled`` with the plan of
its size, then the -s resize, then 8-bit rounding as the image writer rounds), so a frame of a
losslessly encoded output equals ``edgesr-run`` on that decoded frame saved as a PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from edgesr.cli_util import EXIT_OK
from edgesr.errors import ConfigError
from edgesr.fileio import check_output_file, ensure_folder
from edgesr.runtime.cli_args import DEFAULT_OUTPUT_FOLDER, DEFAULT_SUFFIX
from edgesr.runtime.image_resize import outscale_size, resize_to_outscale
from edgesr.runtime.image_write import quantize
from edgesr.runtime.imageio import nchw_from_rgb, rgb_from_nchw
from edgesr.runtime.output_budget import check_output_budget
from edgesr.runtime.run_model import open_resolved, resolve_model
from edgesr.runtime.tile_plan import MIB, plan_tiling
from edgesr.runtime.tiling import upscale_tiled
from edgesr.runtime.video import VIDEO_EXTENSIONS, check_encoder, default_codec, probe_video, upscale_video

__all__ = ["is_video_path", "run_video_cli"]


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def _video_output(args: argparse.Namespace, src: Path) -> Path:
    """-o, or {name}_{suffix}{input's extension} in -o's folder (results/ without -o)."""
    if args.ext != "auto":
        raise ConfigError("--ext picks image formats; a video keeps its container, or takes -o's extension")
    if args.output is not None and not (Path(args.output).is_dir() or args.output.endswith(("/", os.sep))):
        if args.suffix is not None:
            raise ConfigError(f"--suffix names outputs inside a folder, but -o {args.output} is a file name; drop --suffix")
        dst = Path(args.output)
    else:
        folder = Path(args.output or DEFAULT_OUTPUT_FOLDER)
        suffix = DEFAULT_SUFFIX if args.suffix is None else args.suffix
        ensure_folder(folder, what="output folder")
        dst = folder / (f"{src.stem}_{suffix}{src.suffix}" if suffix else src.name)
    if not is_video_path(dst):
        raise ConfigError(f"-o {dst}: a video input needs a video output ({' '.join(VIDEO_EXTENSIONS)})")
    return dst


def run_video_cli(args: argparse.Namespace, src: Path) -> int:
    from tqdm import tqdm

    dst = _video_output(args, src)
    info = probe_video(src)  # a file that is not a readable video fails here, in one line
    check_output_file(dst, inputs=[src], overwrite=args.overwrite, what="output video")
    check_encoder(args.codec or default_codec(dst), args.crf)
    model = resolve_model(args, lr_px=info.width * info.height * max(info.frames, 1))
    with open_resolved(args, model) as engine:
        scale = engine.spec.scale
        # Frames are upscaled one at a time, so the budget bounds one frame's output; checked
        # before the first frame, so a refused run writes nothing.
        check_output_budget(source=src, width=info.width, height=info.height, scale=scale,
                            outscale=args.outscale, max_output_mb=args.max_output_mb)
        out_size = outscale_size(height=info.height, width=info.width,
                                 outscale=scale if args.outscale is None else args.outscale)
        plan = plan_tiling(height=info.height, width=info.width, spec=engine.spec, tile_px=args.tile,
                           overlap_px=args.overlap, memory_budget_bytes=args.memory_budget_mb * MIB,
                           limit_to_advice=getattr(engine, "tiles_limited_to_advice", True))
        print(f"engine: {engine.info().describe()}")
        frames_text = f"{info.frames} frames" if info.frames else "frame count unknown"
        print(f"{src}: {info.width}x{info.height}, {frames_text} at {info.rate:.3g} fps -> "
              f"{out_size[1]}x{out_size[0]}, {args.codec or default_codec(dst)}")

        def sr_frame(rgb: np.ndarray) -> np.ndarray:
            lr = nchw_from_rgb(rgb.astype(np.float32) / np.float32(255.0))  # as read_image
            sr = rgb_from_nchw(upscale_tiled(lr, engine.run, scale=scale, tile_px=plan.tile_px,
                                             overlap_px=plan.overlap_px))
            if args.outscale is not None:
                sr, _ = resize_to_outscale(sr, None, height=info.height, width=info.width,
                                           outscale=args.outscale, bit_depth=8, extension=".png")
            return quantize(sr, 8)  # the image writer's rounding

        start = time.perf_counter()
        with tqdm(total=info.frames or None, unit="frame", disable=None, file=sys.stderr) as bar:
            frames = upscale_video(src, dst, sr_frame=sr_frame, out_size=out_size, codec=args.codec,
                                   crf=args.crf, overwrite=args.overwrite, on_frame=lambda: bar.update(1))
    seconds = time.perf_counter() - start
    print(f"{src} -> {dst}: {frames} frames, {seconds:.1f} s ({frames / max(seconds, 1e-9):.2f} frames/s)")
    return EXIT_OK
