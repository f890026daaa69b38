"""The campaign's command line (``edgesr.train.campaign`` holds what it runs).

    python -m edgesr.train.campaign_cli --out runs/campaign --minutes 9 \\
        --train-dir corpus/train --val-dir corpus/val-small
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgesr.cli_util import EXIT_OK, command_parser, run_cli, setup_logging
from edgesr.train import campaign
from edgesr.train.campaign import MODELS, run_campaign

PROG = "python -m edgesr.train.campaign_cli"


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, campaign.__doc__)
    p.add_argument("--out", required=True, help="campaign folder: one run folder per model, and the weights")
    p.add_argument("--minutes", type=float, required=True, help="wall-time budget for all models together")
    p.add_argument("--train-dir", required=True, help="folder of training photos (edgesr-data photos .../train)")
    p.add_argument("--val-dir", required=True, help="validation photos that choose the checkpoint (never Set5/Set14)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="models, in this order")
    p.add_argument("--batch-size", type=int, help="override every recipe's batch size")
    p.add_argument("--iterations", type=int, help="override every recipe's end-to-end iterations")
    p.add_argument("--block-iterations", type=int, help="override every recipe's block-stage steps")
    p.add_argument("--lr-patch-px", type=int, help="override every recipe's LR patch size")
    p.add_argument("--hr-weight", type=float,
                   help="override every recipe's weight of the L1 to HR; 0 trains on the donor's SR alone")
    p.add_argument("--feature-weight", type=float,
                   help="override every recipe's weight of the block-output L1 to the donor's, end to end (0: off)")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    print("\n".join(run_campaign(args)))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv, extra="train")


if __name__ == "__main__":
    sys.exit(main())
