"""Saving and loading model weights: safetensors (preferred) and PyTorch .pth files.

Loading is strict: a mismatch names the missing, unexpected and mis-shaped tensors.
``load_weights(..., skip_prefixes=("upsampler.",))`` loads a x2 checkpoint into a x3/x4
model except the upsampler, the way the OSFFNet paper fine-tunes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from edgesr.errors import WeightsError
from edgesr.fileio import write_atomically
from edgesr.official_weights import convert_official

log = logging.getLogger(__name__)

UPSAMPLER_PREFIX = "upsampler."
_MAX_LISTED = 6


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" (+{len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def save_weights(model_or_state: nn.Module | Mapping[str, torch.Tensor], path: str | Path,
                 *, metadata: Mapping[str, str] | None = None) -> Path:
    """Write a safetensors file atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"weights are saved as .safetensors, got {path.name!r}; rename it")
    if not path.parent.is_dir():
        raise WeightsError(f"folder {str(path.parent)!r} does not exist; create it first")
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    # replaces: weights.safetensors of a run is rewritten at every checkpoint
    return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=dict(metadata or {})),
                            overwrite=True)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a .safetensors or .pth/.pt file into a flat state dict on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist; check the path")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"cannot read {path.name!r} as safetensors ({exc}); is it truncated?") from None
    if path.suffix in (".pth", ".pt"):
        try:
            # weights_only: a .pth is a pickle, and pickles from the internet are code.
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad pickle
            raise WeightsError(f"cannot read {path.name!r} as a PyTorch checkpoint: {exc}") from None
        return _unwrap_checkpoint(obj, path)
    raise WeightsError(f"unknown weights format {path.suffix!r}; expected .safetensors, .pth or .pt")


def _unwrap_checkpoint(obj: object, path: Path) -> dict[str, torch.Tensor]:
    # Common layouts: a bare state dict, {"params": ...} (BasicSR), {"params_ema": ...},
    # {"state_dict": ...}, {"model": ...}; DataParallel "module." prefixes are stripped.
    if isinstance(obj, dict):
        for key in ("params_ema", "params", "state_dict", "model", "weights"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path.name!r} holds no state dict of tensors; save model.state_dict()")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def in_edgesr_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our names for a state dict: official BSRN/LKDN checkpoints are renamed by their key
    maps (edgesr.official_weights); anything else is returned as it is."""
    conversion = convert_official(state)
    if conversion is not None:
        log.info("read an official %s x%d checkpoint (%d tensors renamed)",
                 conversion.family, conversion.scale, len(conversion.renames))
        return conversion.state
    return dict(state)


def load_weights(model: nn.Module, path_or_state: str | Path | Mapping[str, torch.Tensor], *,
                 skip_prefixes: tuple[str, ...] = ()) -> nn.Module:
    """Strictly load weights; tensors under ``skip_prefixes`` keep the model's own values."""
    state = (dict(path_or_state) if isinstance(path_or_state, Mapping)
             else read_state_dict(path_or_state))
    state = in_edgesr_layout(state)
    expected = model.state_dict()

    def kept(name: str) -> bool:
        return not name.startswith(skip_prefixes) if skip_prefixes else True

    missing = [k for k in expected if kept(k) and k not in state]
    unexpected = [k for k in state if kept(k) and k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected if kept(k) and k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listing(unexpected)}")
    if misshaped:
        problems.append(f"mis-shaped (file vs model) {_listing(misshaped)}")
    if problems:
        raise WeightsError(
            "weights do not fit the model: " + "; ".join(problems)
            + ". Check --model/--scale match the checkpoint"
            + ("" if skip_prefixes else f", or load a x2 checkpoint with skip_prefixes=({UPSAMPLER_PREFIX!r},)")
        )
    merged = {k: (state[k] if kept(k) else v) for k, v in expected.items()}
    model.load_state_dict(merged, strict=True)
    return model


def load_for_finetune(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a checkpoint of another scale: everything but the upsampler (paper's x2 -> x3/x4)."""
    return load_weights(model, path, skip_prefixes=(UPSAMPLER_PREFIX,))


def weights_sha256(model: nn.Module) -> str:
    """A hash of the model's tensors (names, shapes, bytes), recorded in exported ONNX files."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
