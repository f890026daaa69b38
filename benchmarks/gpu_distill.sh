#!/usr/bin/env bash
# The distillation campaign on a lent GPU, within 9 minutes (issue 15's GPU recipe):
#   bash benchmarks/gpu_distill.sh OUT_DIR [CORPUS_DIR]
# CORPUS_DIR (default corpus/) is what `edgesr-data photos CORPUS --mate ... --plasma ...`
# (add `--lomiri ...16.04.deb --lomiri ...20.04.deb` for 14 sharper photos; docs/weights.md)
# wrote, plus CORPUS/val-small/ (skimage-chelsea.png, skimage-coffee.png copied from val/):
# the device machine has no network, so make the corpus here inside the checkout (corpus/ is
# git-ignored) and carry it. Needs torch with CUDA and edgesr's train extra (safetensors, tqdm,
# scikit-image). Resumes from OUT_DIR's checkpoints when run again; writes
# OUT_DIR/<model>.safetensors (best validation checkpoint) for each model, which
# `python -m edgesr.train.model_card` turns into a card and edgesr/weights/ ships.
# MODELS (default lmfn_x4, the one model still short of issue 15's target: the others meet
# theirs) and HR_WEIGHT (default 0: end to end on the donor's SR alone, which beat HR + donor
# on every CPU stage that compared them; docs/training.md) choose what the minutes go to.
# TRAIN_DIR (default CORPUS/train) trains on another folder, e.g. the corpus's detail tiles
# (`edgesr-data tiles corpus/train corpus/train-edges`, then TRAIN_DIR=corpus/train-edges),
# on which LMFN x4's CPU stage 4 kept rising where the whole photos had flattened.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: gpu_distill.sh OUT_DIR [CORPUS_DIR]}
CORPUS=${2:-corpus}
python3 -c "import torch, safetensors, tqdm, skimage; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# A GPU takes 8x the CPU recipes' batch and patch area; 8.5 minutes leaves time for the copy.
timeout 560 python3 -m edgesr.train.campaign_cli --out "$OUT" --minutes 8.5 \
    --train-dir "${TRAIN_DIR:-$CORPUS/train}" --val-dir "$CORPUS/val-small" \
    --batch-size 32 --lr-patch-px 64 --block-iterations 1500 --iterations 6000 \
    --models ${MODELS:-lmfn_x4} --hr-weight "${HR_WEIGHT:-0}"
