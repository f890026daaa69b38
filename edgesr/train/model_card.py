"""Model cards for shipped weights: data, recipe, iterations, wall time, machine, scores.

    python -m edgesr.train.model_card --model osffnet_x4 --run runs/osffnet_x4_skimage \
        --recipe osffnet_x4_skimage --val-dir corpus/val --wall-time-s 3600 -o edgesr/weights/osffnet_x4.md

The scores are recomputed here with ``edgesr.train.evaluate`` (what ``edgesr-eval`` prints),
so ``edgesr-eval --model NAME --data <val photos>`` reproduces the card's numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from edgesr.data.folder import SKIMAGE_TRAIN, SKIMAGE_VAL
from edgesr.models import create_model, model_entry
from edgesr.train.config import load_config
from edgesr.train.evaluate import evaluate, load_pairs, mean_scores, scores_markdown
from edgesr.weights_io import load_weights


def _machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.machine()} CPU, {cpus} cores (shared with other jobs), torch {torch.__version__}, no GPU"


def card_text(*, model: str, weights: Path, recipe: str, log_path: Path, val_dir: Path,
              wall_time_s: float | None) -> str:
    entry = model_entry(model)
    config = load_config(recipe)
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    iterations = max(r["iteration"] for r in records)
    scores = evaluate(load_weights(create_model(model), weights), load_pairs(val_dir, scale=entry.scale),
                      scale=entry.scale, method=model)
    means = mean_scores(scores)
    gain = means[model][0] - means["bicubic"][0]
    recipe_lines = "\n".join(f"| {k} | {v} |" for k, v in config.as_dict().items()
                             if k not in ("train_dir", "val_dir", "out_dir", "cache_dir"))
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

## Recipe (`edgesr-train --config {recipe}`)
| key | value |
|---|---|
{recipe_lines}

## Run
- Iterations: {iterations:,}; wall time: {wall}
- Machine: {_machine()}

## Validation (Y channel, {entry.scale}-pixel border cropped, SR rounded to 8 bits)
{scores_markdown(scores)}

Gain over bicubic: **{gain:+.2f} dB** PSNR-Y (mean over the validation photos).
Reproduce: `edgesr-eval --model {model} --data <folder with the validation photos>`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesr.train.model_card", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--run", required=True, help="training out_dir (weights.safetensors, log.jsonl)")
    p.add_argument("--recipe", required=True)
    p.add_argument("--val-dir", required=True)
    p.add_argument("--wall-time-s", type=float)
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args(argv)
    run = Path(args.run)
    text = card_text(model=args.model, weights=run / "weights.safetensors", recipe=args.recipe,
                     log_path=run / "log.jsonl", val_dir=Path(args.val_dir), wall_time_s=args.wall_time_s)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
