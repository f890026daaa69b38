"""edgesr-weights: convert the authors' published checkpoints into edgesr weights files.

    edgesr-weights convert net_g_BSRN_x4.pth -o bsrn_x4.safetensors
    edgesr-weights convert LKDN_x4.pth -o lkdn_x4.safetensors --model lkdn_x4
    edgesr-weights list                         every model name: weights and ONNX shipped or not, their source

convert reads a BasicSR-layout .pth (``params`` / ``params_ema``, ``module.`` prefixes
stripped), recognises the architecture and scale from its keys (BSRN and LKDN: explicit
per-architecture key maps, never by position), checks every tensor against our model, and
writes a .safetensors file. It prints each rename. LKDN's ``params_ema`` (the published
weights) is preferred over ``params``. convert needs torch (the `torch` extra); list works on a
runtime-only install, where it lists the shipped files (the ONNX ones run in edgesr-run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edgesr.cli_util import EXIT_OK, command_parser, run_cli, setup_logging

PROG = "edgesr-weights"


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, __doc__)
    sub = p.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert", help="official checkpoint -> edgesr .safetensors")
    convert.add_argument("checkpoint", help="the authors' .pth (BSRN or LKDN)")
    convert.add_argument("-o", "--output", required=True, help="output .safetensors file (must not exist)")
    convert.add_argument("--model", help="expected model name (e.g. bsrn_x4); default: detected")
    convert.add_argument("-q", "--quiet", action="store_true", help="do not list the renames")
    sub.add_parser("list", help="every model of the table: whether weights ship for it, and their source")
    return p


def _convert(args: argparse.Namespace) -> int:
    import os

    from edgesr.errors import OutputError, WeightsError, printable
    from edgesr.fileio import check_output_file
    from edgesr.models import create_model
    from edgesr.official_weights import convert_official, unknown_layout_error
    from edgesr.weights_io import load_weights, read_state_dict, save_weights

    # Before any work: not the checkpoint itself, nothing at -o (a dangling symlink counts:
    # writing would replace it), a writable folder.
    output = Path(args.output)
    if os.path.lexists(output):
        link = " (a symbolic link)" if output.is_symlink() else ""
        raise OutputError(f"{printable(output)} exists{link}; edgesr-weights never replaces a file: remove it "
                          "or pick another name")
    check_output_file(output, inputs=[args.checkpoint], what="-o")
    state = read_state_dict(args.checkpoint)
    conversion = convert_official(state)
    if conversion is None:
        raise unknown_layout_error(state)
    if args.model and args.model != conversion.model_name:
        raise WeightsError(f"{args.checkpoint} is a {conversion.model_name} checkpoint, not {args.model}")
    model = load_weights(create_model(conversion.model_name), conversion.state)  # strict shape check
    if not args.quiet:
        for official, ours in conversion.renames.items():
            print(f"  {official} -> {ours}")
    save_weights(model, output, metadata={"model": conversion.model_name, "source": Path(args.checkpoint).name})
    print(f"wrote {output}: {conversion.model_name}, {len(conversion.renames)} tensors renamed, "
          f"{sum(t.numel() for t in model.state_dict().values()):,} values")
    return EXIT_OK


def _list() -> int:
    """Every model of the table with its weights and ONNX; without torch (a runtime-only
    install) the table cannot be built, so the shipped files alone, and one line saying so."""
    from edgesr.weights import shipped_onnx, shipped_weights, weights_source

    try:
        from edgesr.models.registry import MODEL_TABLE
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "torch":
            raise
        names = _shipped_names()
        print("the full model table needs torch (pip install -e '.[torch]'); listing the shipped files",
              file=sys.stderr)
    else:
        names = list(MODEL_TABLE)  # every name, so no model's lack of weights is a surprise
    width = max(map(len, names))
    for name in names:
        weights = "shipped" if shipped_weights(name) is not None else "none"
        onnx = "onnx" if shipped_onnx(name) is not None else "-"  # what a runtime-only install runs
        print(f"{name:{width}s}  {weights:7s}  {onnx:4s}  {weights_source(name)}")
    return EXIT_OK


def _shipped_names() -> list[str]:
    """The model names edgesr ships a weights or ONNX file for (package data, no torch)."""
    from importlib import resources

    files = resources.files("edgesr.weights").iterdir()
    return sorted({Path(f.name).stem for f in files if f.name.endswith((".safetensors", ".onnx"))})


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    return _convert(args) if args.command == "convert" else _list()


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="torch")  # convert reads and builds torch models


if __name__ == "__main__":
    sys.exit(main())
