"""Checkpoints that resume exactly and cannot run code: weights and state as safetensors + JSON.

A checkpoint ``<out>/checkpoints/iter_000123/`` holds ``model.safetensors``,
``ema.safetensors`` (when EMA is on), ``state.safetensors`` and ``state.json`` (optimizer,
scheduler, iteration and RNG states, split by :mod:`edgesr.train.state_codec`: no pickle). It
is written to a temporary folder and renamed into place, so a crash never leaves a
half-written checkpoint; ``latest`` (``{"checkpoint": "iter_0000123"}``) names the newest
complete one, and may name nothing else: a checkpoint outside ``checkpoints/`` is never read.

Resuming loads state from ``--out-dir``, so the folder follows edgesr's trust rule
(:mod:`edgesr.trust`): owned by this user, not group/world-writable, no symbolic links on the
way to the files read. Anything malformed is one :class:`WeightsError` line. Checkpoints of
earlier versions (``state.pt``, a pickle) are read with ``torch.load(weights_only=True)``
and numpy's array types allowed, which builds tensors and containers but calls nothing else.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.optim.swa_utils import AveragedModel

from edgesr import trust
from edgesr.errors import TrustError, WeightsError, condensed, printable
from edgesr.fileio import ensure_folder
from edgesr.train.state_codec import decode, encode
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
    block_stage_val_psnr_db: float | None = None  # validation PSNR right after distillation's block stage


STATE_JSON, STATE_TENSORS, LEGACY_STATE = "state.json", "state.safetensors", "state.pt"
STATE_FORMAT = "edgesr-train-state/1"
_CHECKPOINT_NAME = re.compile(r"iter_\d{7}")
_MAX_POINTER_BYTES = 4096
_MAX_STATE_JSON_BYTES = 64 << 20  # the JSON holds numbers and names; tensors are elsewhere
_RESTART = "rerun with --restart to start over, or point --out-dir elsewhere"


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def restore_rng(state: dict[str, Any]) -> None:
    """Restore the three generators; a state of the wrong shape is one WeightsError line."""
    try:
        torch.set_rng_state(state["torch"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"the checkpoint's RNG state does not fit ({condensed(exc)}); {_RESTART}") from None


def check_out_dir(out_dir: Path) -> Path:
    """Refuse an ``--out-dir`` someone else could write (edgesr.trust): resuming loads it."""
    return trust.require_own_folder(Path(out_dir), what="--out-dir",
                                    why="training resumes from the checkpoints kept there")


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``--out-dir`` (not group/world-writable, whatever the umask) and check it: the
    call for the start of a run, before any work."""
    folder = Path(out_dir)
    try:  # made 0o755 (the umask can only take bits away), never chmod-ed afterwards: another
        # rank of the same torchrun job may check the folder at any moment after it exists
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o755)
    except OSError:
        pass  # it exists already, or cannot be made: ensure_folder says which, in one line
    ensure_folder(folder, what="--out-dir")
    return check_out_dir(folder)


def _checkpoint_root(out_dir: Path, *, create: bool) -> Path:
    check_out_dir(out_dir)
    root = Path(out_dir) / "checkpoints"
    problem = trust.make_private_folder(root, what="checkpoint folder") if create else trust.problem_with(root, kind="folder")
    if problem:
        raise TrustError(f"refusing the checkpoint folder {printable(root)}: it {problem}; only you "
                         f"may write where training resumes from (chmod go-w it, or {_RESTART})")
    return root


def save_checkpoint(out_dir: Path, *, model: nn.Module, ema: AveragedModel | None, state: TrainState) -> Path:
    root = _checkpoint_root(Path(out_dir), create=True)
    final = root / f"iter_{state.iteration:07d}"
    tmp = root / f".tmp_{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o755)
    save_weights(model, tmp / "model.safetensors", metadata={"iteration": str(state.iteration)})
    if ema is not None:
        save_weights(ema.module, tmp / "ema.safetensors", metadata={"iteration": str(state.iteration)})
    tensors: dict[str, torch.Tensor] = {}
    document = {"format": STATE_FORMAT, "state": encode(state.__dict__, tensors)}
    save_file(tensors, str(tmp / STATE_TENSORS))
    (tmp / STATE_JSON).write_text(json.dumps(document))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(json.dumps({"checkpoint": final.name}))
    os.replace(pointer, root / LATEST)
    return final


def _bounded_json(path: Path, limit: int) -> object:
    """JSON from ``path``, read no further than ``limit`` bytes (a planted huge file is
    refused, not loaded); ValueError when larger or not JSON."""
    with open(path, "rb") as handle:
        text = handle.read(limit + 1)
    if len(text) > limit:
        raise ValueError(f"larger than {limit:,} bytes")
    return json.loads(text)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The checkpoint ``latest`` names (always a folder ``checkpoints/iter_NNNNNNN``), None
    when there is no pointer yet; a pointer that is malformed or names a missing folder is one
    WeightsError line."""
    out_dir = Path(out_dir)
    if not os.path.lexists(out_dir / "checkpoints"):
        check_out_dir(out_dir)
        return None
    root = _checkpoint_root(out_dir, create=False)
    pointer = root / LATEST
    if not os.path.lexists(pointer):
        return None
    name = _pointer_target(pointer)
    path = root / name
    problem = trust.problem_with(path, kind="folder") if os.path.lexists(path) else "does not exist"
    if problem:
        raise WeightsError(f"{printable(pointer)} names the checkpoint {name}, which {problem}; {_RESTART}")
    return path


def _pointer_target(pointer: Path) -> str:
    malformed = (f"{printable(pointer)} is not a checkpoint pointer edgesr wrote (expected "
                 '{"checkpoint": "iter_0000123"}')
    problem = trust.problem_with(pointer, kind="file")
    if problem:
        raise WeightsError(f"{malformed}: it {problem}); {_RESTART}")
    try:
        data = _bounded_json(pointer, _MAX_POINTER_BYTES)
    except (OSError, ValueError, RecursionError) as exc:
        raise WeightsError(f"{malformed}: {condensed(exc)}); {_RESTART}") from None
    name = data.get("checkpoint") if isinstance(data, dict) and len(data) == 1 else None
    if not isinstance(name, str) or not _CHECKPOINT_NAME.fullmatch(name):
        raise WeightsError(f"{malformed}, got {_short(data)}); {_RESTART}")
    return name


def load_checkpoint(path: Path, *, model: nn.Module, ema: AveragedModel | None) -> TrainState:
    path = Path(path)
    for name in ("model.safetensors", *(("ema.safetensors",) if ema is not None else ())):
        problem = trust.problem_with(path / name, kind="file")
        if problem:
            what = "no EMA weights but the recipe uses EMA; resume with the same recipe" \
                if name == "ema.safetensors" and not os.path.lexists(path / name) else f"{name} that {problem}"
            raise WeightsError(f"{printable(path)} is not a complete checkpoint: it has {what}; {_RESTART}")
    state = _read_state(path)
    load_weights(model, path / "model.safetensors")
    if ema is not None:
        load_weights(ema.module, path / "ema.safetensors")
    if ema is not None and state.ema_updates is not None:
        ema.n_averaged.fill_(state.ema_updates)
    return state


def _read_state(path: Path) -> TrainState:
    """The TrainState in ``path``: state.json + state.safetensors, else a legacy state.pt."""
    if os.path.lexists(path / STATE_JSON) or not os.path.lexists(path / LEGACY_STATE):
        for name in (STATE_JSON, STATE_TENSORS):
            problem = trust.problem_with(path / name, kind="file")
            if problem:
                raise WeightsError(f"{printable(path)} is not a complete checkpoint: its {name} {problem}; {_RESTART}")
        raw = _decoded_state(path)
    else:
        raw = _legacy_state(path / LEGACY_STATE)
    return _train_state(raw, where=printable(path))


def _decoded_state(path: Path) -> Any:
    where = printable(path / STATE_JSON)
    try:
        tensors = load_file(str(path / STATE_TENSORS), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read {printable(path / STATE_TENSORS)} ({condensed(exc)}); is it "
                           f"truncated? {_RESTART}") from None
    try:
        document = _bounded_json(path / STATE_JSON, _MAX_STATE_JSON_BYTES)
    except (OSError, ValueError, RecursionError) as exc:
        raise WeightsError(f"cannot read {where} ({condensed(exc)}); is it truncated? {_RESTART}") from None
    if not isinstance(document, dict) or set(document) != {"format", "state"} \
            or document["format"] != STATE_FORMAT:
        raise WeightsError(f"{where} is not a training state edgesr wrote (expected format "
                           f"{STATE_FORMAT!r}); {_RESTART}")
    return decode(document["state"], tensors, where=where)


def _legacy_state(file: Path) -> Any:
    """A ``state.pt`` of an earlier edgesr: torch's restricted unpickler, numpy arrays allowed."""
    problem = trust.problem_with(file, kind="file")
    if problem:
        raise WeightsError(f"refusing {printable(file)}: it {problem}; {_RESTART}")
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy's array rebuilder, whatever module holds it
    allowed = [reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (UnpicklingError, EOFError, RuntimeError...: all "unreadable")
        raise WeightsError(f"cannot read {printable(file)} as a training state ({condensed(exc)}); "
                           f"{_RESTART}") from None


def _train_state(raw: Any, *, where: str) -> TrainState:
    """Check every field's type before any of it reaches the optimizer or the RNGs."""
    names = {f.name for f in fields(TrainState)}
    required = {f.name for f in fields(TrainState) if f.default is not None}
    if not isinstance(raw, dict) or not required <= set(raw) <= names:
        keys = sorted(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__
        raise WeightsError(f"{where} holds {keys}, expected the fields {sorted(names)}; {_RESTART}")
    problems = [name for name, ok in _field_checks(raw).items() if not ok]
    if problems:
        raise WeightsError(f"{where} has a malformed {', '.join(problems)}; {_RESTART}")
    return TrainState(**raw)


def _field_checks(raw: dict[str, Any]) -> dict[str, bool]:
    optimizer, rng = raw["optimizer"], raw["rng"]
    return {
        "iteration": _is_int(raw["iteration"]) and raw["iteration"] >= 0,
        "optimizer": isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
        and isinstance(optimizer.get("param_groups"), list)
        and all(isinstance(g, dict) for g in optimizer["param_groups"]),
        "scheduler": isinstance(raw["scheduler"], dict),
        "rng": isinstance(rng, dict) and set(rng) == {"torch", "numpy", "python"}
        and isinstance(rng["torch"], torch.Tensor) and rng["torch"].dtype == torch.uint8
        and isinstance(rng["numpy"], tuple) and isinstance(rng["python"], tuple),
        "best_val_psnr_db": _is_number_or_none(raw["best_val_psnr_db"]),
        "ema_updates": raw.get("ema_updates") is None or (_is_int(raw["ema_updates"]) and raw["ema_updates"] >= 0),
        "block_stage_val_psnr_db": _is_number_or_none(raw.get("block_stage_val_psnr_db")),
    }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number_or_none(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and not math.isnan(value))


def _short(value: object) -> str:
    text = repr(value)
    return printable(text if len(text) <= 60 else text[:57] + "...")
