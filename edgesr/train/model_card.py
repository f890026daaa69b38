"""Model cards for shipped weights: data, recipe, iterations, wall time, machine, scores.

    python -m edgesr.train.model_card --model osffnet_x4 --val-dir corpus/val \
        --stage osffnet_x4_skimage runs/osffnet_x4_skimage 3100 \
        --stage osffnet_x4_skimage_stage2 runs/osffnet_x4_skimage_stage2 - \
        -o edgesr/weights/osffnet_x4.md

Each ``--stage RECIPE RUN_DIR WALL_TIME_S`` is one training run (``-`` takes the wall time
from the run's log); the last stage's ``weights.safetensors`` are the ones described.

The scores are recomputed here with ``edgesr.train.evaluate`` (what ``edgesr-eval`` prints),
so ``edgesr-eval --model NAME --data <val photos>`` reproduces the card's numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from edgesr.cli_util import setup_logging
from edgesr.data.folder import SKIMAGE_TRAIN, SKIMAGE_VAL
from edgesr.fileio import write_text_atomically
from edgesr.models import create_model, model_entry
from edgesr.train.config import load_config
from edgesr.train.evaluate import evaluate, load_pairs, mean_scores, scores_markdown
from edgesr.weights_io import load_weights


def _machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.machine()} CPU, {cpus} cores (shared with other jobs), torch {torch.__version__}, no GPU"


@dataclass(frozen=True, kw_only=True)
class Stage:
    recipe: str
    run_dir: Path
    wall_time_s: float | None  # None: read the last elapsed_s of the run's log

    @functools.cached_property
    def records(self) -> list[dict]:
        return [json.loads(line) for line in (self.run_dir / "log.jsonl").read_text().splitlines()]

    def iterations(self) -> int:
        return max(r["iteration"] for r in self.records)

    def wall_s(self) -> float | None:
        if self.wall_time_s is not None:
            return self.wall_time_s
        elapsed = [r["elapsed_s"] for r in self.records if "elapsed_s" in r]
        return elapsed[-1] if elapsed else None


def _recipe_table(recipe: str) -> str:
    config = load_config(recipe)
    rows = "\n".join(f"| {k} | {v} |" for k, v in config.as_dict().items()
                     if k not in ("train_dir", "val_dir", "out_dir", "cache_dir") and v is not None)
    return f"### `edgesr-train --config {recipe}`\n| key | value |\n|---|---|\n{rows}"


def card_text(*, model: str, stages: list[Stage], val_dir: Path) -> str:
    entry = model_entry(model)
    weights = stages[-1].run_dir / "weights.safetensors"
    iterations = sum(stage.iterations() for stage in stages)
    walls = [stage.wall_s() for stage in stages]
    wall_time_s = sum(walls) if all(w is not None for w in walls) else None
    scores = evaluate(load_weights(create_model(model), weights), load_pairs(val_dir, scale=entry.scale),
                      scale=entry.scale, method=model)
    means = mean_scores(scores)
    gain = means[model][0] - means["bicubic"][0]
    recipes = "\n\n".join(_recipe_table(stage.recipe) for stage in stages)
    stage_lines = "; ".join(f"{stage.recipe}: {stage.iterations():,} iterations" for stage in stages)
    wall = f"{wall_time_s / 60:.0f} min" if wall_time_s else "not recorded"
    return f"""# {model}: weights shipped with edgesr

**Small-corpus weights.** Trained for {iterations:,} iterations on {len(SKIMAGE_TRAIN)} photos
bundled with scikit-image, on a CPU. They beat bicubic, but they are far from the paper's
quality, which needs the paper's recipe on DF2K (DIV2K + Flickr2K, 3,450 HR images):

    edgesr-train --config {model} --train-dir data/DF2K_HR --val-dir data/Set5/HR

## Data
- Training photos (scikit-image): {", ".join(SKIMAGE_TRAIN)}
- Validation photos: {", ".join(SKIMAGE_VAL)}
- Written by `edgesr.data.folder.write_skimage_corpus(root, split="all")`; LR made with
  MATLAB-compatible bicubic (antialiased, a = -0.5), HR cropped to a multiple of {entry.scale}.

## Recipes (one per stage, each starting from the previous stage's weights)
{recipes}

## Run
- Iterations: {iterations:,} ({stage_lines}); wall time: {wall}
- Machine: {_machine()}

## Validation (Y channel, {entry.scale}-pixel border cropped, SR rounded to 8 bits)
{scores_markdown(scores)}

Gain over bicubic: **{gain:+.2f} dB** PSNR-Y (mean over the validation photos).
Reproduce: `edgesr-eval --model {model} --data <folder with the validation photos>`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesr.train.model_card", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--stage", nargs=3, action="append", required=True, metavar=("RECIPE", "RUN_DIR", "WALL_TIME_S"),
                   help="one training stage, in order; WALL_TIME_S '-' reads it from the run's log")
    p.add_argument("--val-dir", required=True)
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args(argv)
    setup_logging(verbose=False)
    stages = [Stage(recipe=r, run_dir=Path(d), wall_time_s=None if w == "-" else float(w)) for r, d, w in args.stage]
    text = card_text(model=args.model, stages=stages, val_dir=Path(args.val_dir))
    write_text_atomically(args.output, text, overwrite=True)  # a card is regenerated in place
    logging.getLogger(__name__).info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
