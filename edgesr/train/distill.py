"""Distillation from a trained donor: a block-wise stage, then the donor's SR as a second target.

Why: a warm start (``edgesr.warm_start``) copies the donor's shared layers, but OSFFNet's AEFD
(eq. 7) and LMFN's MSM/IFM cells do not compute the donor's block function, so the warm model
starts far below the donor (Set5 x4: 22.6 dB for OSFFNet where BSRN scores 32.35). End-to-end
training on a few photos wins back only part of that on a CPU.

Block stage: every student block that differs from the donor's learns, with an L1 loss, to
map the donor's own input features of that block to the donor block's output (donor frozen).
Widths match, the blocks are independent (each reads the donor's features, not its
predecessor's), and no HR image is needed: the donor labels any photo. Afterwards the student
computes nearly the donor's function, block by block.

End-to-end stage (``Trainer``): ``hr_weight`` x L1 to HR plus ``distill_weight`` x L1 to the
donor's SR, plus ``feature_weight`` x the mean L1 from each student block's output to the
donor's (``feature_loss``). Unlike the block stage, each block then reads its student
predecessor's features, so a later block can make up for an earlier one's error instead of
inheriting it, and every block gets a target of its own rather than only the SR's gradient.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from edgesr.errors import ConfigError
from edgesr.models import create_model, model_entry
from edgesr.warm_start import DONORS, warm_start
from edgesr.weights import shipped_weights
from edgesr.weights_io import in_edgesr_layout, load_weights, read_state_dict

log = logging.getLogger(__name__)


def load_donor(name_or_path: str, *, student: str, device: torch.device) -> nn.Module:
    """The donor model, frozen in eval mode: a model name whose weights ship (``bsrn_x4``) or
    a weights file of the student's donor family at the student's scale."""
    entry = model_entry(student)
    family = DONORS.get(entry.family)
    if family is None:
        raise ConfigError(f"distill_from: {student} has no donor family; distillation exists for "
                          + ", ".join(f"{k} (from {v})" for k, v in DONORS.items()))
    expected = student.replace(entry.family, family, 1)  # osffnet_x4 -> bsrn_x4
    if shipped_weights(name_or_path) is not None:
        donor_name, weights = name_or_path, str(shipped_weights(name_or_path))
    else:
        donor_name, weights = expected, name_or_path  # a weights file of the expected donor
    if donor_name != expected:
        raise ConfigError(f"distill_from {name_or_path!r}: {student}'s donor is {expected}")
    donor = create_model(donor_name, eval_mode=True)
    load_weights(donor, in_edgesr_layout(read_state_dict(weights)))
    donor.requires_grad_(False)
    return donor.to(device)


def distilled_block_indices(student: nn.Module) -> list[int]:
    """The student blocks that differ from the donor's: every OSFFNet AEFD; LMFN's blocks
    whose cell is not an LKA (LKA blocks are the donor's own, copied by the warm start)."""
    return [k for k, block in enumerate(student.blocks)
            if type(getattr(block, "cell", None)).__name__ != "LKA"]


@torch.no_grad()
def reseat_donor_layers(student: nn.Module, family: str, donor: dict[str, torch.Tensor]) -> list[str]:
    """Copy the donor's tensors back into every layer a warm start takes from it, keeping the
    student's distilled blocks; returns the names copied.

    Why: end-to-end training also moves the layers the student shares with the donor (LMFN's
    LKA blocks, the shallow conv, the fusion and the upsampler), away from the features the
    distilled blocks were fitted to. Put back, LMFN x4's shipped stage-3 weights scored 37.0194
    on validation instead of 37.0134, but Set5 fell 31.71 -> 31.50: the end-to-end layers had
    adapted to the student's blocks (its card has the runs that followed)."""
    fresh = copy.deepcopy(student)
    copied = warm_start(fresh, family, donor)
    kept_blocks = distilled_block_indices(student)
    distilled = tuple(f"blocks.{k}." for k in kept_blocks)
    names = [name for name in copied if not name.startswith(distilled)]
    own, donors = student.state_dict(), fresh.state_dict()
    for name in names:
        own[name].copy_(donors[name])
    log.info("re-seated %d of the donor's tensors outside the distilled blocks %s", len(names), kept_blocks)
    return names


@contextmanager
def captured_blocks(model: nn.Module, *, enabled: bool = True) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """While open, each forward of ``model`` appends (input, output) of every block, in order.

    ``enabled=False`` captures nothing (the list stays empty), so block outputs are not kept
    alive past their use when no loss reads them."""
    captured: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [block.register_forward_hook(lambda _m, args, out: captured.append((args[0], out)))
             for block in model.blocks] if enabled else []
    try:
        yield captured
    finally:
        for hook in hooks:
            hook.remove()


@torch.no_grad()
def block_features(model: nn.Module, lr: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input, output) of each block of ``model`` on ``lr``, captured by forward hooks."""
    with captured_blocks(model) as captured:
        model(lr)
    return captured


def feature_loss(student: list[tuple[torch.Tensor, torch.Tensor]],
                 donor: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mean over blocks of the L1 from the student's block output to the donor's."""
    if len(student) != len(donor) or any(s[1].shape != d[1].shape for s, d in zip(student, donor)):
        raise ConfigError(f"feature_weight needs blocks of the donor's number and widths; the student has "
                          f"{len(student)} blocks, the donor {len(donor)}, or their outputs differ in shape")
    return sum(F.l1_loss(s[1], d[1]) for s, d in zip(student, donor)) / len(student)


def _freeze_batchnorm(module: nn.Module) -> None:
    # A warm start's BatchNorm is the identity only with its initial running statistics.
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.eval()


def distill_blocks(student: nn.Module, donor: nn.Module, lr_batches: Iterator[torch.Tensor], *,
                   steps: int, lr: float, device: torch.device,
                   on_log: Callable[[dict[str, float | int]], None] | None = None,
                   log_every: int = 25) -> float:
    """Train the differing student blocks on the donor's block inputs and outputs (L1, Adam,
    cosine decay to lr/100). Returns the last logged mean block loss."""
    indices = distilled_block_indices(student)
    blocks = [student.blocks[k] for k in indices]
    params = [p for block in blocks for p in block.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr / 100)
    for block in blocks:
        block.train()
        _freeze_batchnorm(block)
    started, mean_loss, running = time.time(), math.nan, []
    for step in range(1, steps + 1):
        features = block_features(donor, next(lr_batches).to(device))
        loss = sum(F.l1_loss(student.blocks[k](features[k][0]), features[k][1]) for k in indices) / len(indices)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running.append(float(loss.detach()))
        if step % log_every == 0 or step == steps:
            mean_loss = sum(running) / len(running)
            running = []
            log.info("block stage %d/%d: mean block L1 %.5f", step, steps, mean_loss)
            if on_log is not None:
                on_log({"block_step": step, "block_loss": mean_loss, "elapsed_s": round(time.time() - started, 1)})
    student.eval()
    return mean_loss


def distillation_loss(sr: torch.Tensor, hr: torch.Tensor, donor_sr: torch.Tensor | None, *,
                      weight: float, hr_weight: float = 1.0) -> torch.Tensor:
    """``hr_weight`` x L1 to HR, plus ``weight`` x L1 to the donor's SR of the same LR patch."""
    loss = hr_weight * F.l1_loss(sr, hr)
    return loss if donor_sr is None else loss + weight * F.l1_loss(sr, donor_sr)
