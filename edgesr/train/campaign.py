"""A resumable distillation campaign: the seeds' models in turn, each within its share of a
wall-time budget, on the GPU when there is one.

    python -m edgesr.train.campaign_cli --out runs/campaign --minutes 9 \\
        --train-dir corpus/train --val-dir corpus/val-small

Each model trains from its packaged ``<model>_distill`` recipe into ``OUT/<model>/`` (block
stage, then end to end; see ``edgesr.train.distill``), stops at its share of ``--minutes``
with a checkpoint, and resumes from there when the same command runs again. What a run
reached is copied to ``OUT/<model>.safetensors`` (the best validation checkpoint so far).
Flags override every recipe alike: a GPU takes larger batches and more iterations than the
CPU recipes (e.g. ``--batch-size 64 --iterations 20000 --block-iterations 2000``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

MODELS = ("osffnet_x4", "lmfn_x4", "osffnet_x2", "osffnet_x3")


def run_campaign(args: argparse.Namespace) -> list[str]:
    """Train each model in its share of the budget; returns one summary line per model."""
    from edgesr.errors import ConfigError
    from edgesr.train.config import load_config
    from edgesr.train.trainer import Trainer

    if not 0 < args.minutes <= 24 * 60:
        raise ConfigError(f"--minutes {args.minutes:g}: expected more than 0 and at most a day (1440)")
    out = Path(args.out)
    started, summaries = time.time(), []
    for k, model in enumerate(args.models):
        # Each model gets an equal share of what is left, so an early stop leaves time to the rest.
        share_s = (started + 60 * args.minutes - time.time()) / (len(args.models) - k)
        config = load_config(f"{model}_distill", train_dir=args.train_dir, val_dir=args.val_dir,
                             out_dir=str(out / model), batch_size=args.batch_size, iterations=args.iterations,
                             block_iterations=args.block_iterations, lr_patch_px=args.lr_patch_px,
                             hr_weight=args.hr_weight, feature_weight=args.feature_weight)
        trainer = Trainer(config=config)
        trainer.train(deadline=time.time() + share_s)
        best, copied = out / model / "best.safetensors", out / f"{model}.safetensors"
        if best.is_file():
            shutil.copyfile(best, copied)
        summary = (f"{model}: iteration {trainer.iteration} of {config.iterations}, best validation "
                   f"{trainer.best_val_psnr_db or float('nan'):.2f} dB, weights "
                   f"{copied if best.is_file() else 'none yet'}")
        logging.getLogger(__name__).info("%s", summary)  # as each model ends, not only at the end
        summaries.append(summary)
    return summaries
