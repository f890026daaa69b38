"""``edgesr-run``'s flags: its own, and Real-ESRGAN's (``inference_realesrgan.py`` and
realesrgan-ncnn-vulkan) where they mean the same thing, so their users' habits work here."""

from __future__ import annotations

import argparse

from edgesr.image_guard import DEFAULT_MAX_PIXELS
from edgesr.runtime.engines import ENGINE_CHOICES
from edgesr.runtime.image_folders import EXT_CHOICES
from edgesr.runtime.imageio import SUPPORTED_EXTENSIONS
from edgesr.runtime.output_budget import DEFAULT_MAX_OUTPUT_MB
from edgesr.runtime.tile_plan import DEFAULT_MEMORY_BUDGET_MB
from edgesr.spec import DEFAULT_MODEL

#: Where outputs go when -o is omitted (Real-ESRGAN's default output folder).
DEFAULT_OUTPUT_FOLDER = "results"
#: Name part added when the output name is made from the input's (Real-ESRGAN's default).
DEFAULT_SUFFIX = "out"

_EXAMPLES = """\
examples:
  edgesr-run -i photo.jpg                                    -> results/photo_out.jpg, x4 (lkdn_x4)
  edgesr-run -i photo.jpg -s 2                               -> results/photo_out.jpg at twice the size
  edgesr-run photo.png -o photo_x4.png                       an output file of your choosing
  edgesr-run photos/ -o photos_x4/                           a folder: mirrored tree, resumable
  edgesr-run photos/ -o photos_x4/ --ray                     the same on a local Ray cluster (serve extra)
  edgesr-run photos/ -o photos_x4/ --ray HEAD:6379          ... on a running cluster (`ray start --head`)
  edgesr-run clip.mp4 -o clip_x4.mp4 --crf 18                a video (needs the `video` extra)
  edgesr-run photo.jpg -o out.png --model osffnet_x4.onnx    an exported model (edgesr-export)
  edgesr-run photo.png -o out.png --model other.onnx --scale 2   an ONNX without edgesr metadata
  edgesr-run photo.jpg -o out.png --model osffnet_x4.xml     an OpenVINO IR (--format openvino)
  edgesr-run photo.png -o out.png --model lmfn_x4 --engine torch   the PyTorch reference

Real-ESRGAN's flags (inference_realesrgan.py / realesrgan-ncnn-vulkan) -> edgesr-run:
  -i INPUT, -o OUTPUT       the same (-o may also be a file; omitted: results/)
  -n MODEL                  -n / --model: an edgesr model name or an .onnx file
  -s/--outscale F           the same: network scale, then a LANCZOS4 resize to F x the input
  --suffix out              the same: {name}_{suffix}.{ext} (empty: {name}.{ext})
  --ext auto|jpg|png        the same, plus webp; a transparent input stays PNG
  -t/--tile N (0 = auto)    the same; auto = the largest tile the memory budget allows
  --tile_pad N              --tile-pad / --overlap (default: the model's advice, not 10)
  --fp32                    the default here; --fp16 asks for half precision
  -g/--gpu-id N             --engine trt, or ort:cuda / openvino:GPU (device 0)
  --face_enhance, -dn, --pre_pad, --alpha_upsampler   not offered (alpha: bicubic)

exit codes: 0 ok, 2 error (nothing written), 1 some files of a folder failed, 130 interrupted
"""


def _add_io(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", nargs="?", default=None,
                        help="an image file, a folder of images (searched recursively), or a "
                        "video (.mp4 .mkv .mov .webm .avi)")
    parser.add_argument("-i", "--input", dest="input_flag", metavar="INPUT", default=None,
                        help="the same as the positional INPUT (Real-ESRGAN's spelling)")
    parser.add_argument(
        "-o", "--output", metavar="OUTPUT", default=None,
        help="output image (its extension picks the format: "
        f"{' '.join(SUPPORTED_EXTENSIONS)}), or a folder to put {{name}}_{{suffix}}.{{ext}} in; "
        "for a folder INPUT, an output folder (created if missing); for a video, the output "
        f"video; default: {DEFAULT_OUTPUT_FOLDER}/",
    )
    parser.add_argument("--suffix", default=None, metavar="TEXT",
                        help=f"output name {{name}}_{{suffix}}.{{ext}} when -o is a folder or "
                        f"omitted (default: {DEFAULT_SUFFIX}; a folder run with -o: none)")
    parser.add_argument("--ext", default="auto", choices=EXT_CHOICES,
                        help="output format when the name is made from the input's; auto keeps "
                        "the input's; a transparent input stays PNG (default: auto)")
    parser.add_argument("-s", "--outscale", type=float, default=None, metavar="F",
                        help="final scale: the model's output resized with Lanczos to F x the "
                        "input (default: the model's scale)")


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--model", metavar="NAME|PATH.onnx", default=None,
        help=f"an exported .onnx file, an OpenVINO IR .xml (engine openvino), or a registered model "
        f"name (exported on first use; needs PyTorch); default: the shipped {DEFAULT_MODEL}",
    )
    parser.add_argument("--scale", type=int, default=None, metavar="S",
                        help="the model's upscaling factor; needed only for an .onnx without edgesr "
                        "metadata (otherwise it must agree with the model); see -s for the output's")
    parser.add_argument("--engine", default="auto", metavar="|".join(ENGINE_CHOICES),
                        help="inference engine; auto = the fastest available here (default: auto)")
    parser.add_argument("-t", "--tile", type=int, default=None, metavar="PX",
                        help="tile side in input pixels; 0 or omitted = auto: ONNX Runtime on a "
                        "CPU/CUDA and torch take the largest tile the memory budget allows (the "
                        "whole image when it fits: tiles only add overlap work); TensorRT takes "
                        "the model's advice, smaller if the budget needs")
    parser.add_argument("--overlap", "--tile-pad", "--tile_pad", dest="overlap", type=int,
                        default=None, metavar="PX",
                        help="context pixels around each tile (default: the model's advice)")
    parser.add_argument("--fp16", action="store_true",
                        help="run in FP16 (needs an FP16 .onnx from `edgesr-export --fp16`, or a model name); "
                        "--engine openvino runs the fp32 graph in the device's half type (bf16 on a BF16 CPU)")
    parser.add_argument("--weights", metavar="FILE", default=None,
                        help="weights (.safetensors/.pth) for a registered --model NAME (default: shipped)")
    parser.add_argument("--allow-untrained", action="store_true",
                        help="run a model edgesr ships no weights for, untrained (timing only)")


def _add_video(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", default=None, metavar="NAME",
                        help="video encoder (FFmpeg's name: libx264, libx265, ffv1, ...; default: "
                        "libx264 for .mp4/.mov/.mkv/.avi, libvpx-vp9 for .webm)")
    parser.add_argument("--crf", type=int, default=None, metavar="N",
                        help="video quality for x264/x265/VP9 (lower is better; default: the "
                        "encoder's; 0 = lossless with libx264rgb)")


def _add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (never an input); folder runs otherwise skip "
                        "outputs that exist, so an interrupted run resumes")
    parser.add_argument("--memory-budget-mb", type=int, default=DEFAULT_MEMORY_BUDGET_MB, metavar="N",
                        help=f"engine memory per call, sets the default tile size (default: {DEFAULT_MEMORY_BUDGET_MB})")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse inputs with more pixels than this, read from the file header "
                        f"before decoding (default: {DEFAULT_MAX_PIXELS:,}). Only regular files "
                        "are read; multi-frame inputs (animated PNG/WebP, multi-page TIFF) are "
                        "refused, not cut to their first frame")
    parser.add_argument("--max-output-mb", type=int, default=DEFAULT_MAX_OUTPUT_MB, metavar="N",
                        help="refuse, before any work, an output larger than this as float32 "
                        f"(width x height x scale² x channels x 4 bytes; default: {DEFAULT_MAX_OUTPUT_MB})")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads per operator (default: ONNX Runtime uses the physical "
                             "cores this process may use; torch keeps its own setting)")
    parser.add_argument("--compile", action="store_true",
                        help="--engine torch: torch.compile the model (about a minute per new tile "
                             "size on a CPU, then 1.45x faster per tile; for long runs)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _add_ray(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="a folder INPUT through Ray Data (the serve extra): the same names, "
                        "resume and bytes as folder mode; ADDRESS joins a running cluster (auto, "
                        "HOST:6379, ray://HOST:10001), none starts a local one. Put it after INPUT")
    parser.add_argument("--ray-actors", type=int, default=1, metavar="N",
                        help="with --ray: actors, one engine each (default 1)")
    parser.add_argument("--ray-gpus", type=float, default=0, metavar="G",
                        help="with --ray: GPUs per actor (1 on GPU nodes; default 0)")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Upscale an image, every image in a folder, or a video with a "
        "super-resolution model through ONNX Runtime, OpenVINO, TensorRT or PyTorch.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_io(parser)
    _add_model(parser)
    _add_video(parser)
    _add_run(parser)
    _add_ray(parser)
    return parser
