"""What the training loop is built from: the resumable data order and the optimizer/schedule
a recipe names."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from edgesr.errors import ConfigError
from edgesr.train.config import TrainConfig


class ResumableSampler(Sampler[int]):
    """A seeded permutation per epoch, sharded over DDP ranks, that can start mid-epoch."""

    def __init__(self, *, length: int, seed: int, rank: int, world_size: int) -> None:
        self.length, self.seed, self.rank, self.world_size = length, seed, rank, world_size
        self.epoch = 0
        self.start = 0  # position (in this rank's samples) to start the epoch from

    def set_epoch(self, epoch: int, *, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def samples_per_rank(self) -> int:
        return self.length // self.world_size  # drop the remainder so ranks stay in step

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        mine = order[self.rank::self.world_size][: self.samples_per_rank()]
        return iter(mine[self.start:])

    def __len__(self) -> int:
        return self.samples_per_rank() - self.start


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=tuple(config.betas[:2]), eps=config.eps,
                                weight_decay=config.weight_decay)
    try:
        from adan_pytorch import Adan
    except ImportError:
        raise ConfigError("optimizer 'adan' needs the adan-pytorch package: pip install -e '.[train]'") from None
    if len(config.betas) != 3:
        raise ConfigError(f"Adan takes 3 betas (e.g. [0.98, 0.92, 0.99]), got {list(config.betas)}")
    # The Adan paper's betas are momentum coefficients; adan-pytorch takes 1 - beta.
    return Adan(params, lr=config.lr, betas=tuple(1.0 - b for b in config.betas), eps=config.eps,
                weight_decay=config.weight_decay)


def lr_factor(step: int, config: TrainConfig) -> float:
    """The multiple of ``config.lr`` at ``step``: linear warmup over ``warmup_iterations``, times
    the cosine (to ``lr_min`` at ``iterations``) or constant schedule."""
    warm = min(1.0, (step + 1) / config.warmup_iterations) if config.warmup_iterations else 1.0
    if config.scheduler != "cosine":
        return warm
    progress = min(step, config.iterations) / config.iterations
    cosine_lr = config.lr_min + (config.lr - config.lr_min) * (1.0 + math.cos(math.pi * progress)) / 2.0
    return warm * cosine_lr / config.lr


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    if config.warmup_iterations:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(lr_factor, config=config))
    # Without warmup: the schedulers earlier checkpoints hold, so their runs resume unchanged.
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.iterations, eta_min=config.lr_min)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
