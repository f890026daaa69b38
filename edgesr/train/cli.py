"""edgesr-train: train a model from a recipe file, resumable, on one or many processes.

    edgesr-train --config osffnet_x4 --train-dir data/DF2K_HR --val-dir data/Set5/HR
    torchrun --nproc_per_node 4 -m edgesr.train.cli --config lmfn_x4 --train-dir ...

A recipe is a TOML file (or the name of a packaged one: osffnet_x2/x3/x4, lmfn_x4,
lkdn_x4); flags override its fields. Training resumes from the newest checkpoint in
--out-dir unless --restart is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import fields

from edgesr.cli_util import EXIT_OK, run_cli, setup_logging

PROG = "edgesr-train"


def build_parser() -> argparse.ArgumentParser:
    from edgesr.train.config import packaged_recipes

    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True,
                   help=f"recipe TOML file, or a packaged recipe: {', '.join(packaged_recipes())}")
    p.add_argument("--model", help="model-table name, e.g. osffnet_x4 (overrides the recipe)")
    p.add_argument("--train-dir", help="folder of HR training images (any layout, searched recursively)")
    p.add_argument("--val-dir", help="folder of HR validation images (PSNR-Y every --val-every iterations)")
    p.add_argument("--out-dir", help="where checkpoints, weights.safetensors and log.jsonl go")
    p.add_argument("--iterations", type=int, help="total iterations (the lr schedule spans them)")
    p.add_argument("--batch-size", type=int, help="global batch size (split over processes)")
    p.add_argument("--lr-patch-px", type=int, help="LR patch size in pixels")
    p.add_argument("--lr", type=float, help="initial learning rate")
    p.add_argument("--warmup-iterations", type=int, help="linear lr warmup over the first N iterations (0: none)")
    p.add_argument("--val-every", type=int, help="validate every N iterations")
    p.add_argument("--checkpoint-every", type=int, help="checkpoint every N iterations")
    p.add_argument("--log-every", type=int, help="write a log.jsonl line every N iterations")
    p.add_argument("--num-workers", type=int, help="data loader worker processes")
    p.add_argument("--seed", type=int, help="random seed (data order, init)")
    p.add_argument("--finetune-from", help="x2 checkpoint: load everything but the upsampler")
    p.add_argument("--init-from", help="weights of the same model to start from (e.g. an earlier stage)")
    p.add_argument("--distill-from", help="donor to distill from: a shipped model (bsrn_x4, lkdn_x4) or its weights file")
    p.add_argument("--block-iterations", type=int, help="block-wise distillation steps before end-to-end training")
    p.add_argument("--block-lr", type=float, help="initial learning rate of the block stage (Adam, cosine decay to lr/100)")
    p.add_argument("--hr-weight", type=float,
                   help="weight of the L1 to HR in the end-to-end loss; 0 trains on the donor's SR alone")
    p.add_argument("--distill-weight", type=float, help="weight of the L1 to the donor's SR in the end-to-end loss")
    p.add_argument("--reseat-donor-layers", action="store_true", default=None,
                   help="with --init-from: copy the donor's tensors back into every layer the student "
                        "shares with it (all but the distilled blocks) before training")
    p.add_argument("--feature-weight", type=float,
                   help="weight of the mean L1 from each block's output to the donor's, end to end (0: off)")
    p.add_argument("--time-limit", type=float, metavar="MIN",
                   help="stop after MIN minutes of wall time, with a checkpoint (run again to resume)")
    p.add_argument("--restart", action="store_true", help="ignore existing checkpoints in --out-dir")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    from edgesr.errors import ConfigError
    from edgesr.train.config import TrainConfig, load_config

    # Every flag named after a TrainConfig field overrides the recipe's value (None: not given).
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    config = load_config(args.config, **overrides)
    if args.time_limit is not None and not args.time_limit > 0:
        raise ConfigError(f"--time-limit {args.time_limit:g}: expected minutes > 0")
    deadline = time.time() + 60 * args.time_limit if args.time_limit else None
    # torch is imported only now, after the recipe and flags are checked: a bad value is
    # refused at once rather than after torch's 2-3 s import.
    from edgesr.train.trainer import Trainer

    trainer = Trainer(config=config, resume=not args.restart)
    trainer.train(deadline=deadline)
    if trainer.dist.is_main:
        print(f"{PROG}: weights written to {trainer.out_dir / 'weights.safetensors'}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="train")


if __name__ == "__main__":
    sys.exit(main())
