"""The runtime-only subcommands of edgesr-bench: latency, predict, report (no torch imports).

Each ``run_*_command`` returns the text to show; the CLI prints it.

A model argument is an .onnx file or a registered model name; a name uses the ONNX file edgesr
ships for it when there is one, and otherwise exports it (which needs the `export` extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from pathlib import Path

from edgesr.errors import ConfigError, EngineUnavailableError
from edgesr.fileio import check_output_file, write_text_atomically
from edgesr.progress import step_status

logger = logging.getLogger(__name__)

HR_WIDTH, HR_HEIGHT = 1280, 720  # DESIGN section 5: complexity is reported at a 1280x720 output
TORCH_HINT = "pip install -e '.[export]' (PyTorch and the exporter)"


def needs_torch(what: str) -> EngineUnavailableError:
    return EngineUnavailableError(f"{what} needs the `export` extra: {TORCH_HINT}")


def parse_size(text: str) -> tuple[int, int]:
    """'80x60' -> (width=80, height=60)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}, expected WIDTHxHEIGHT such as 80x60") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size {text!r}, expected positive width and height")
    return width, height


def resolve_model(model: str, *, precision: str | None, allow_untrained: bool = False) -> tuple[Path, str | None]:
    """(ONNX path, registered name or None) for an .onnx path or a model name."""
    path = Path(model)
    if path.suffix == ".onnx" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"model file {model!r} does not exist; pass an .onnx file or a model name such as osffnet_x4")
        return path, None
    from edgesr.weights import shipped_onnx

    shipped = shipped_onnx(model)
    if shipped is not None and precision in (None, "fp32"):
        return shipped, model
    try:
        from edgesr.export.cache import cached_onnx_for
        from edgesr.models import model_name
    except ImportError:
        raise needs_torch(f"model {model!r} (no shipped {precision or 'fp32'} ONNX; exporting it)") from None
    name = model_name(model)
    return cached_onnx_for(name, fp16=precision == "fp16", allow_untrained=allow_untrained), name


def run_latency_command(args: argparse.Namespace) -> str:
    from edgesr.benchmarks.latency_run import EngineRequest, format_results, run_latency

    if args.json:  # before the timing: not an input, folder writable, no silent replacement
        check_output_file(args.json, inputs=[args.model] if Path(args.model).exists() else [],
                          overwrite=args.overwrite, what="--json")
    requests = [EngineRequest.parse(e) for e in args.engines]
    sizes = args.sizes or [(80, 60)]
    # on a terminal: the work and the time so far (a large size on a slow engine takes minutes)
    work = (f"edgesr-bench latency: {len(requests)} engine(s) x {len(sizes)} size(s) x "
            f"({args.warmup} warm-up + {args.repeats} timed) calls")
    with step_status(work):
        model_path, name = resolve_model(args.model, precision=args.precision, allow_untrained=args.allow_untrained)
        document = run_latency(model_path=model_path, model_name=name, requests=requests, sizes=sizes,
                               precision=args.precision, warmup=args.warmup, repeats=args.repeats,
                               argv=["edgesr-bench", *sys.argv[1:]])
    text = format_results(document)
    if args.json:
        write_text_atomically(args.json, json.dumps(document, indent=1) + "\n", overwrite=args.overwrite)
        text += f"\nwrote {args.json}"
    return text


def run_predict_command(args: argparse.Namespace) -> str:
    from edgesr.benchmarks.onnx_cost import model_cost
    from edgesr.benchmarks.roofline import bytes_moved, dominant_ops, roofline_floor, target
    from edgesr.runtime.model_file import spec_from_onnx

    profiles = [target(t) for t in args.targets]
    # int8: the FP32 graph's shapes and Multi-Adds (the INT8 graph adds only Q/DQ nodes)
    model_path, _ = resolve_model(args.model, precision=None if args.precision == "int8" else args.precision)
    spec = spec_from_onnx(model_path)
    width, height = args.size
    if width % spec.scale or height % spec.scale:
        raise ConfigError(f"--size {width}x{height} is not a multiple of the model's scale {spec.scale}")
    lr_w, lr_h = width // spec.scale, height // spec.scale
    with step_status(f"edgesr-bench predict: profiling {model_path.name} at {lr_w}x{lr_h}"):
        cost = model_cost(model_path, height=lr_h, width=lr_w)
    moved = bytes_moved(cost.bytes_fp32, cost.bytes_fp16, args.precision)
    lines = [f"{model_path.name}: x{spec.scale}, input {lr_w}x{lr_h} -> output {width}x{height}, "
             f"{cost.multi_adds / 1e9:.3f} G Multi-Adds, {moved / 1e6:.1f} MB read+written "
             f"by the unfused graph at {args.precision}",
             f"{'target':<20} {'compute ms':>10} {'memory ms':>10} {'floor ms':>9} {'bound':>8} {'FPS bound':>10}  "
             "dominant node types"]
    for profile in profiles:
        floor = roofline_floor(cost, profile, precision=args.precision)
        shares = dominant_ops(cost, bound=floor.bound, precision=args.precision)
        compute = f"{floor.compute_s * 1e3:10.2f}" if floor.compute_s is not None else f"{'n/p':>10}"
        lines.append(f"{profile.key:<20} {compute} {floor.memory_s * 1e3:10.2f} {floor.floor_s * 1e3:9.2f} "
                     f"{floor.bound:>8} {floor.fps_bound:10.1f}  "
                     + ", ".join(f"{op} {share:.0%}" for op, share in shares))
    return "\n".join(lines)


def run_report_command(args: argparse.Namespace) -> str:
    from edgesr.benchmarks.report import load_existing, report_markdown
    from edgesr.benchmarks.roofline import target

    out = Path(args.output)
    stem = out.with_suffix("")
    for path in (out, Path(f"{stem}_latency.png"), Path(f"{stem}_latency_vs_multi_adds.png")):
        check_output_file(path, inputs=args.results, overwrite=args.overwrite, what="report output")
    profiles = [target(t) for t in args.targets]
    rows = load_existing(args.results)  # missing files: a warning each; none, or no rows: an error
    if not rows:
        raise ConfigError("the latency JSON given holds no measurements (its results are empty); nothing to report")
    plots, note = [], None
    if importlib.util.find_spec("matplotlib") is None:
        note = "Plots skipped: matplotlib is not installed (pip install -e '.[report]')."
    else:
        from edgesr.benchmarks.plots import latency_bars, latency_vs_multi_adds

        plots = [latency_bars(rows, profiles, Path(f"{stem}_latency.png"), overwrite=args.overwrite).name,
                 latency_vs_multi_adds(rows, profiles, Path(f"{stem}_latency_vs_multi_adds.png"),
                                       overwrite=args.overwrite).name]
    write_text_atomically(out, report_markdown(rows, profiles, plots=plots, plots_note=note), overwrite=args.overwrite)
    return f"wrote {out}" + (f" and {', '.join(plots)}" if plots else f" ({note})")
