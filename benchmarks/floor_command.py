"""``edgesr-bench floor MODEL``: resolve the graphs to compare, measure, and return the text
the CLI prints (the measurement is in floor.py)."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from edgesr.cli_util import check_threads
from edgesr.benchmarks.bench_commands import resolve_model
from edgesr.benchmarks.floor_engines import CPU_ENGINES, format_engine_floors, installed_cpu_engines, measure_engine_floors
from edgesr.errors import ConfigError
from edgesr.fileio import check_output_file, write_text_atomically

logger = logging.getLogger(__name__)


def _training_form(name: str, folder: Path) -> Path | None:
    """The training-form export of ``name`` in ``folder``; None (logged) without torch."""
    try:
        from edgesr.export.model_loading import model_with_weights
        from edgesr.export.onnx_export import onnx_from_model
        from edgesr.models.registry import model_spec
    except ImportError:
        logger.warning("the training-form graph needs torch and onnx (pip install -e '.[export]'); "
                       "measuring the deployment form only")
        return None
    logger.info("exporting %s in training form for the comparison (no check; seconds to minutes)...", name)
    model, _ = model_with_weights(name, None)
    path = folder / f"{name}_training_form.onnx"
    onnx_from_model(model, spec=model_spec(name), path=path, deployment=False)
    return path


def run_floor_command(args: argparse.Namespace) -> str:
    from edgesr.benchmarks.floor import format_floor, measure_floor

    check_threads(args.threads)
    if args.json:
        check_output_file(args.json, inputs=[], overwrite=args.overwrite, what="--json")
    width, height = args.size
    if min(width, height) < 16 or args.rounds < 1 or any(t < 1 for t in args.tiles or []):
        raise ConfigError("--size needs both sides >= 16, --rounds >= 1 and --tiles sizes >= 1")
    deployment, name = resolve_model(args.model, precision="fp32")
    with tempfile.TemporaryDirectory(prefix="edgesr-floor-") as folder:
        shipped_label = "deployment form" if name else deployment.name
        graphs = {shipped_label: deployment}
        training = _training_form(name, Path(folder)) if name and args.training_form else None
        if training is not None:
            graphs = {"training form": training, **graphs}
        for extra in args.compare or []:
            graphs[Path(extra).name] = resolve_model(extra, precision="fp32")[0]
        settings = {}
        for variant in args.settings or []:  # the shipped graph again, one default changed
            graphs[f"{shipped_label}, {variant}"] = deployment
            settings[f"{shipped_label}, {variant}"] = variant
        logger.info("timing %s and the dense conv, %d rounds...", ", ".join(graphs), args.rounds)
        report = measure_floor(graphs, height=height, width=width, rounds=args.rounds,
                               threads=args.threads, profile=args.profile, settings=settings)
    text = format_floor(report)
    document = report.as_json()
    engines = args.engines if args.engines is not None else installed_cpu_engines()
    if engines:  # every installed CPU engine on the shipped graph, in fp32 and its half type
        macs = next(g.multi_adds for g in report.graphs if g.path == deployment)
        logger.info("timing %s on %s and their dense convs, %d rounds...", ", ".join(engines), deployment.name,
                    args.rounds)
        rows = measure_engine_floors(deployment, multi_adds=macs, height=height, width=width, engines=engines,
                                     rounds=args.rounds, threads=args.threads)
        text += "\n" + format_engine_floors(rows, label=shipped_label)
        document["engines"] = [r.as_json() for r in rows]
    if args.tiles:
        from edgesr.benchmarks.floor import format_tiles, measure_tiles
        from edgesr.runtime.model_file import spec_from_onnx

        logger.info("timing tiles %s of %s...", args.tiles, deployment.name)
        rows = measure_tiles(deployment, tiles=args.tiles, height=height, width=width,
                             rounds=args.rounds, threads=args.threads)
        text += "\n" + format_tiles(rows, overlap_px=spec_from_onnx(deployment).overlap_px)
    if args.json:
        write_text_atomically(args.json, json.dumps(document, indent=1) + "\n", overwrite=args.overwrite)
        text += f"\nwrote {args.json}"
    return text


def add_floor_parser(sub: argparse._SubParsersAction, parse_size) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "floor", help="measured latency over this machine's floor (every installed CPU engine)",
        description="Times, in one run, ONNX Runtime's dense 3x3 conv (64->64) rate and the model's "
                    "latency at one input size; floor = 2 x Multi-Adds / that rate. For a model name "
                    "it compares the training-form export (needs torch) with the shipped deployment form.")
    p.add_argument("model", help="a model name (osffnet_x4, lmfn_x4, ...) or an .onnx file")
    p.add_argument("--size", type=parse_size, default=(320, 180), metavar="WxH",
                   help="LR input size (default 320x180: a 1280x720 output at x4)")
    p.add_argument("--rounds", type=int, default=5, help="rounds of 3 timed calls per graph (default 5)")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (default: physical cores)")
    p.add_argument("--compare", nargs="+", metavar="FILE", help="more .onnx files to time in the same run")
    p.add_argument("--no-training-form", dest="training_form", action="store_false",
                   help="skip the training-form export")
    p.add_argument("--tiles", nargs="+", type=int, metavar="PX",
                   help="also time edgesr-run's tiled path at these LR tile sizes against the whole image")
    p.add_argument("--settings", nargs="+", choices=("extended", "no-spinning"), metavar="S",
                   help="also time the model with one ONNX Runtime default changed: 'extended' "
                        "(ORT_ENABLE_EXTENDED instead of ORT_ENABLE_ALL), 'no-spinning'")
    p.add_argument("--profile", action="store_true", help="also print each graph's top op types by kernel time")
    p.add_argument("--engines", nargs="*", choices=CPU_ENGINES, metavar="E",
                   help="CPU engines whose dense-conv rate and measured/floor are reported, in fp32 and "
                        "their half type (default: every installed one of ort, openvino; none: skip)")
    p.add_argument("--json", metavar="FILE", help="write the results (schema edgesr.floor/1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(handler=run_floor_command)
