"""Model cards for shipped weights: where they come from and what they score.

    python -m edgesr.train.model_card --model lkdn_x4 --official LKDN_x4.pth \
        --bench shared/data/benchmarks -o edgesr/weights/lkdn_x4.md
    python -m edgesr.train.model_card --model osffnet_x4 --weights runs/osffnet_x4_distill/best.safetensors \
        --run runs/osffnet_x4_distill --recipe osffnet_x4_distill --corpus corpus \
        --bench shared/data/benchmarks -o edgesr/weights/osffnet_x4.md

Every score is computed here with ``edgesr.train.evaluate`` (what ``edgesr-eval`` prints), so
``edgesr-eval --model NAME --data <Set5 folder>`` reproduces the card's rows; tests check it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from edgesr.cli_util import setup_logging
from edgesr.fileio import write_text_atomically
from edgesr.published import published_row

BENCHMARKS = ("Set5", "Set14")


def _machine() -> str:
    import torch

    return f"{platform.machine()} CPU, {os.cpu_count()} cores (shared with other jobs), torch {torch.__version__}, no GPU"


def benchmark_rows(model: str, weights: Path, bench_root: Path, *, donor: str | None = None) -> str:
    """Markdown rows: ours, the paper's, the donor's (shipped weights) and bicubic, per set."""
    from edgesr.models import create_model, model_entry
    from edgesr.train.evaluate import evaluate, load_pairs, mean_scores
    from edgesr.weights import shipped_weights
    from edgesr.weights_io import load_weights

    scale = model_entry(model).scale
    ours_model = load_weights(create_model(model), weights)
    donor_model = load_weights(create_model(donor), shipped_weights(donor)) if donor else None
    lines = ["| set | edgesr (these weights) | paper | donor | bicubic |", "|---|---|---|---|---|"]
    for bench in BENCHMARKS:
        pairs = load_pairs(bench_root / bench, scale=scale)
        means = mean_scores(evaluate(ours_model, pairs, scale=scale, method=model))
        paper = published_row(model, bench)
        donor_cell = "-"
        if donor_model is not None:
            d = mean_scores(evaluate(donor_model, pairs, scale=scale, method=donor))[donor]
            donor_cell = f"{d[0]:.2f} / {d[1]:.4f} ({donor})"
        paper_cell = f"{paper[0]:.2f} / {paper[1]:.4f} ({paper[2]})" if paper else "not published"
        ours, bicubic = means[model], means["bicubic"]
        lines.append(f"| {bench} | **{ours[0]:.2f} / {ours[1]:.4f}** | {paper_cell} | {donor_cell} | "
                     f"{bicubic[0]:.2f} / {bicubic[1]:.4f} |")
    return "\n".join(lines)


def official_card(model: str, source: str, bench_root: Path) -> str:
    from edgesr.weights import shipped_weights, weights_source

    return f"""# {model}: the authors' published weights

- Source: {weights_source(model)}; original file `{source}`.
- Converted with `edgesr-weights convert {source} -o {model}.safetensors` (explicit key map,
  `edgesr/official_weights.py`; every tensor renamed by rule and checked against our model).
- Licence: MIT, notice in `LICENSE-{model.split('_')[0].upper()}` beside this file.

## Set5 / Set14 (PSNR-Y dB / SSIM-Y, border = scale, `edgesr-eval --model {model} --data <set>`)
{benchmark_rows(model, shipped_weights(model), bench_root)}
"""


def _set5_psnr(model: str, weights: Path, bench_root: Path) -> float:
    from edgesr.models import create_model, model_entry
    from edgesr.train.evaluate import evaluate, load_pairs, mean_scores
    from edgesr.weights_io import load_weights

    scale = model_entry(model).scale
    scores = evaluate(load_weights(create_model(model), weights), load_pairs(bench_root / "Set5", scale=scale),
                      scale=scale, method=model)
    return mean_scores(scores)[model][0]


def _block_stage_lines(model: str, run_dir: Path, records: list[dict], bench_root: Path) -> str:
    """What the block-wise distillation stage reached (absent for runs without one)."""
    weights = run_dir / "block_stage.safetensors"
    steps = [r for r in records if r.get("stage") == "block" and "block_step" in r]
    if not weights.is_file() or not steps:
        return ""
    val = [r["val_psnr_db"] for r in records if r.get("stage") == "block" and "val_psnr_db" in r]
    val_text = f"validation {val[-1]:.2f} dB, " if val else ""
    return (f"- Block stage (`edgesr.train.distill`): {steps[-1]['block_step']:,} steps in "
            f"{steps[-1]['elapsed_s'] / 60:.0f} min, last mean block L1 {steps[-1]['block_loss']:.4f}; "
            f"right after it: {val_text}Set5 {_set5_psnr(model, weights, bench_root):.2f} dB.\n")


def _data_line(corpus: Path, records: list[dict]) -> str:
    """The run's own list of training files (its log's first record) when it has one."""
    logged = [r["train_files"] for r in records if "train_files" in r]
    names = logged[-1] if logged else sorted(p.name for p in (corpus / "train").glob("*.png"))
    plasma = sum(n.startswith("plasma-") for n in names)
    plasma_text = (f", {plasma} photographs of plasma-workspace-wallpapers (GPL-2+/LGPLv3, downscaled x2)"
                   if plasma else "")
    return (f"- Data: `edgesr-data photos` ({len(names)} training photos: mate-backgrounds nature photographs "
            f"(GPL-2+, downscaled x2){plasma_text} and the scikit-image photos; `{corpus.name}/LICENSES.md` lists "
            "every file). Validation and the choice of checkpoint use its own val split (never Set5/Set14).\n")


def fine_tuned_card(model: str, weights: Path, run_dir: Path, recipe: str, corpus: Path, bench_root: Path,
                    donor: str) -> str:
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        meta = f.metadata() or {}
    end_to_end = [r for r in records if "iteration" in r]
    last = max((r["iteration"] for r in end_to_end), default=0)
    iteration = int(meta.get("iteration", last))
    wall_s = sum(max((r.get("elapsed_s", 0) for r in group), default=0)
                 for group in ([r for r in records if r.get("stage") == "block"], end_to_end))
    val_line = ", ".join(f"{r['iteration']}: {r['val_psnr_db']:.2f}" for r in end_to_end if "val_psnr_db" in r)
    recipe_text = (Path(__file__).resolve().parents[1] / "recipes" / f"{recipe}.toml").read_text()
    distilled = "distill_from" in recipe_text
    how = ("warm start by `edgesr.warm_start`, then distillation (`edgesr.train.distill`): each new "
           "block learns its donor block's output, then end to end against HR and the donor's SR."
           if distilled else "warm start by `edgesr.warm_start`: shared layers copied, new modules "
           "started as identities.")
    return f"""# {model}: weights trained by edgesr

- Donor: `{donor}` (the authors' published weights, MIT); {how}
{_data_line(corpus, records)}{_block_stage_lines(model, run_dir, records, bench_root)}- Iterations: {iteration:,} end to end (the checkpoint with the best validation PSNR) of {last:,};
  {wall_s / 60:.0f} min of wall time in all since the run's last resume (CPU cores shared with other work).
- Machine: {_machine()}.
- Validation PSNR-Y (dB) by iteration: {val_line}.

## Set5 / Set14 (PSNR-Y dB / SSIM-Y, border = scale, `edgesr-eval --model {model} --data <set>`)
{benchmark_rows(model, weights, bench_root, donor=donor)}

## Recipe (`edgesr-train --config {recipe}`)
```toml
{recipe_text.strip()}
```
"""


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesr.train.model_card", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--official", help="the authors' checkpoint the shipped file was converted from")
    p.add_argument("--weights", help="fine-tuned weights (best.safetensors of a run)")
    p.add_argument("--run", help="the run folder (log.jsonl)")
    p.add_argument("--recipe", help="packaged recipe name of the run")
    p.add_argument("--corpus", default="corpus", help="the corpus folder (for its LICENSES.md)")
    p.add_argument("--donor", help="donor model name (default: from edgesr.warm_start.DONORS)")
    p.add_argument("--bench", required=True, help="folder holding Set5/ and Set14/")
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args(argv)
    setup_logging(verbose=False)
    if args.official:
        text = official_card(args.model, Path(args.official).name, Path(args.bench))
    else:
        from edgesr.warm_start import DONORS

        family, _, scale = args.model.partition("_x")
        donor = args.donor or f"{DONORS[family]}_x{scale}"
        text = fine_tuned_card(args.model, Path(args.weights), Path(args.run), args.recipe, Path(args.corpus),
                               Path(args.bench), donor)
    write_text_atomically(args.output, text, overwrite=True)  # a card is regenerated in place
    logging.getLogger(__name__).info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
