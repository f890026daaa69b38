"""Checkpoints that resume exactly: weights as safetensors, the rest as a torch state file.

A checkpoint ``<out>/checkpoints/iter_000123/`` holds ``model.safetensors``,
``ema.safetensors`` (when EMA is on) and ``state.pt`` (optimizer, scheduler, iteration and
RNG states). It is written to a temporary folder and renamed into place, so a crash never
leaves a half-written checkpoint; ``latest`` names the newest complete one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from edgesr.errors import WeightsError
from edgesr.fileio import ensure_folder
from edgesr.weights_io import load_weights, save_weights

LATEST = "latest"


@dataclass(frozen=True, kw_only=True)
class TrainState:
    iteration: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]
    best_val_psnr_db: float | None
    ema_updates: int | None = None  # AveragedModel.n_averaged: its first update copies, later ones average


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(out_dir: Path, *, model: nn.Module, ema: AveragedModel | None, state: TrainState) -> Path:
    root = ensure_folder(out_dir / "checkpoints", what="checkpoint folder")
    final = root / f"iter_{state.iteration:07d}"
    tmp = root / f".tmp_{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_weights(model, tmp / "model.safetensors", metadata={"iteration": str(state.iteration)})
    if ema is not None:
        save_weights(ema.module, tmp / "ema.safetensors", metadata={"iteration": str(state.iteration)})
    torch.save(state.__dict__, tmp / "state.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(json.dumps({"checkpoint": final.name}))
    os.replace(pointer, root / LATEST)
    return final


def latest_checkpoint(out_dir: Path) -> Path | None:
    pointer = out_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = out_dir / "checkpoints" / json.loads(pointer.read_text())["checkpoint"]
    return path if path.is_dir() else None


def load_checkpoint(path: Path, *, model: nn.Module, ema: AveragedModel | None) -> TrainState:
    if not (path / "state.pt").is_file():
        raise WeightsError(f"{str(path)!r} is not a complete checkpoint (no state.pt); pick another")
    load_weights(model, path / "model.safetensors")
    if ema is not None:
        if not (path / "ema.safetensors").is_file():
            raise WeightsError(f"{str(path)!r} has no EMA weights but the recipe uses EMA; resume with the same recipe")
        load_weights(ema.module, path / "ema.safetensors")
    # weights_only=False: numpy's RNG state is a tuple with an ndarray; this file is our own.
    state = TrainState(**torch.load(path / "state.pt", map_location="cpu", weights_only=False))
    if ema is not None and state.ema_updates is not None:
        ema.n_averaged.fill_(state.ema_updates)
    return state
