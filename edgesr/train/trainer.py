"""The training loop: L1 loss, Adam/Adan, cosine/constant lr, EMA, validation, DDP.

Resumable to the bit: data order is a pure function of (seed, epoch, position) (see
``ResumableSampler`` and ``TrainPatchDataset``), and the checkpoint holds every other state.
Multi-process training runs on PyTorch's own engine: start it with ``torchrun``; each process
takes ``batch_size / world_size`` samples and gradients are averaged by DDP.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from edgesr.data.patches import TrainPatchDataset
from edgesr.errors import ConfigError
from edgesr.metrics import psnr_y
from edgesr.models import create_model, model_entry
from edgesr.train.checkpoint import (
    TrainState,
    latest_checkpoint,
    load_checkpoint,
    prepare_out_dir,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from edgesr.train.config import TrainConfig
from edgesr.train.loop_parts import ResumableSampler, make_optimizer, make_scheduler
from edgesr.train.distill import (captured_blocks, distill_blocks, distillation_loss, feature_loss, load_donor,
                                  reseat_donor_layers)
from edgesr.train.evaluate import EvalPair, load_pairs, sr_from_model
from edgesr.warm_start import warm_start
from edgesr.weights import shipped_weights
from edgesr.weights_io import in_edgesr_layout, load_for_finetune, load_weights, read_state_dict, save_weights

log = logging.getLogger(__name__)
_MIN_BATCHES_PER_EPOCH = 20


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    raw = os.environ.get("WORLD_SIZE", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"WORLD_SIZE={raw!r}: expected a process count >= 1 (torchrun sets it)")
    world_size = int(raw)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return DistInfo(rank=dist.get_rank() if world_size > 1 else 0, world_size=world_size)


@contextmanager
def main_rank_first(info: DistInfo) -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it: work whose results the others
    can then read back (a cache) is done once, and no rank meets an entry half made."""
    if info.world_size > 1 and not info.is_main:
        dist.barrier()
    yield
    if info.world_size > 1 and info.is_main:
        dist.barrier()


def validate(model: nn.Module, pairs: list[EvalPair], *, scale: int) -> float:
    """Mean Y-channel PSNR over whole images, exactly as ``edgesr-eval`` scores them."""
    # Restore each module's own mode afterwards: frozen BatchNorm layers stay in eval mode.
    modes = {module: module.training for module in model.modules()}
    model.eval()
    scores = [psnr_y(sr_from_model(model, pair.lr), pair.hr, crop_border=scale) for pair in pairs]
    for module, training in modes.items():
        module.training = training
    return float(sum(scores) / len(scores))


def training_device() -> torch.device:
    """This process's GPU (``LOCAL_RANK`` under torchrun) when CUDA is there, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


class Trainer:
    def __init__(self, *, config: TrainConfig, resume: bool = True) -> None:
        self.config = config
        self.dist = init_distributed()
        self.out_dir = prepare_out_dir(config.out_dir)  # before any work: the user's own, private
        entry = model_entry(config.model)
        self.scale = entry.scale
        if config.batch_size % self.dist.world_size:
            raise ConfigError(f"batch_size {config.batch_size} must divide by the {self.dist.world_size} processes")
        if config.lr_patch_px < entry.min_input_px:
            raise ConfigError(f"lr_patch_px {config.lr_patch_px} is below {config.model}'s minimum input "
                              f"of {entry.min_input_px} px (its ESA pooling needs it); use >= {entry.min_input_px}")
        torch.manual_seed(config.seed)
        self.model = create_model(config.model, eval_mode=False)
        if config.finetune_from:
            load_for_finetune(self.model, config.finetune_from)
        if config.init_from:
            load_weights(self.model, config.init_from)
        warm_from = config.warm_start_from or (config.distill_from if not config.init_from else None)
        if warm_from:
            donor = shipped_weights(warm_from) or warm_from  # a name or a file
            warm_start(self.model, entry.family, in_edgesr_layout(read_state_dict(donor)))
        self.device = training_device()
        self.donor = (load_donor(config.distill_from, student=config.model, device=self.device)
                      if config.distill_from else None)
        if config.reseat_donor_layers:  # TrainConfig holds it to init_from and distill_from
            reseat_donor_layers(self.model, entry.family, self.donor.state_dict())
        self.block_stage_val_psnr_db: float | None = None
        self.model.to(self.device)  # before EMA and DDP, which copy / wrap the parameters
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
                    if config.ema_decay else None)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp_model: nn.Module = (nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
                                     if self.dist.world_size > 1 else self.model)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.scheduler = make_scheduler(config, self.optimizer)
        with main_rank_first(self.dist):  # one rank fills the LR-pairs cache, the others read it
            self.dataset = TrainPatchDataset(root=config.train_dir, scale=self.scale, lr_patch_px=config.lr_patch_px,
                                             cache_dir=config.cache_dir, seed=config.seed)
        # Small corpora: visit each image often per epoch, so an epoch is >= 20 batches.
        self.dataset.repeat = max(1, math.ceil(config.batch_size * _MIN_BATCHES_PER_EPOCH / len(self.dataset.records)))
        # What this run trains on, for its model card (the corpus folder may grow later).
        self._log({"train_files": [record.name for record in self.dataset.records]})
        # Validation reads folders as edgesr-eval does (HR only, or HR/ + LR_bicubic/X<s>/),
        # so its numbers are the ones edgesr-eval reproduces.
        self.val = (load_pairs(config.val_dir, scale=self.scale)
                    if config.val_dir and self.dist.is_main else None)
        self.sampler = ResumableSampler(length=len(self.dataset), seed=config.seed, rank=self.dist.rank,
                                        world_size=self.dist.world_size)
        self.iteration = 0
        self.best_val_psnr_db: float | None = None
        self.resumed = False  # a checkpoint exists only after the block stage
        checkpoint = latest_checkpoint(self.out_dir) if resume else None
        if checkpoint is not None:
            state = load_checkpoint(checkpoint, model=self.model, ema=self.ema)
            self.optimizer.load_state_dict(state.optimizer)
            self.scheduler.load_state_dict(state.scheduler)
            restore_rng(state.rng)
            self.iteration, self.best_val_psnr_db = state.iteration, state.best_val_psnr_db
            self.block_stage_val_psnr_db = state.block_stage_val_psnr_db
            self.resumed = True
            log.info("resumed from %s (iteration %d)", checkpoint, self.iteration)

    @property
    def per_rank_batch(self) -> int:
        return self.config.batch_size // self.dist.world_size

    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Batches from the current iteration on, epoch after epoch, same order as uninterrupted."""
        per_epoch = self.sampler.samples_per_rank() // self.per_rank_batch
        epoch, step = divmod(self.iteration, per_epoch)
        while True:
            self.dataset.set_epoch(epoch)
            self.sampler.set_epoch(epoch, start=step * self.per_rank_batch)
            loader = DataLoader(self.dataset, batch_size=self.per_rank_batch, sampler=self.sampler,
                                num_workers=self.config.num_workers, drop_last=True)
            yield from loader
            epoch, step = epoch + 1, 0

    def _log(self, record: dict[str, object]) -> None:
        if self.dist.is_main:
            with open(self.out_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _save(self) -> None:
        if not self.dist.is_main:
            return
        state = TrainState(iteration=self.iteration, optimizer=self.optimizer.state_dict(),
                           scheduler=self.scheduler.state_dict(), rng=rng_state(),
                           best_val_psnr_db=self.best_val_psnr_db,
                           block_stage_val_psnr_db=self.block_stage_val_psnr_db,
                           ema_updates=int(self.ema.n_averaged) if self.ema is not None else None)
        save_checkpoint(self.out_dir, model=self.model, ema=self.ema, state=state)
        save_weights(self.eval_model(), self.out_dir / "weights.safetensors",
                     metadata={"model": self.config.model, "iteration": str(self.iteration)})

    def _save_best(self) -> None:
        """The weights with the best validation PSNR so far (what a later stage starts from)."""
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_weights(self.eval_model(), self.out_dir / "best.safetensors",
                         metadata={"model": self.config.model, "iteration": str(self.iteration),
                                   "val_psnr_db": f"{self.best_val_psnr_db:.4f}"})

    def eval_model(self) -> nn.Module:
        """The weights to ship and validate: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def _block_stage(self) -> None:
        """The block-wise distillation stage (edgesr.train.distill), then a checkpoint at
        iteration 0 so a resumed run never repeats it; its weights stay as block_stage.safetensors."""
        lr_batches = (batch["lr"] for batch in self._batches())
        distill_blocks(self.model, self.donor, lr_batches, steps=self.config.block_iterations,
                       lr=self.config.block_lr, device=self.device, log_every=self.config.log_every,
                       on_log=lambda record: self._log({"stage": "block", **record}))
        if self.ema is not None:  # the EMA starts from the block stage's result
            self.ema.module.load_state_dict(self.model.state_dict())
        if self.val is not None:
            self.block_stage_val_psnr_db = validate(self.eval_model(), self.val, scale=self.scale)
            self._log({"stage": "block", "val_psnr_db": self.block_stage_val_psnr_db})
            log.info("block stage done: validation PSNR-Y %.2f dB", self.block_stage_val_psnr_db)
        if self.dist.is_main:
            save_weights(self.eval_model(), self.out_dir / "block_stage.safetensors",
                         metadata={"model": self.config.model, "stage": "block",
                                   "block_iterations": str(self.config.block_iterations)})
        self._save()

    def _loss(self, lr_batch: torch.Tensor, hr_batch: torch.Tensor) -> torch.Tensor:
        if self.donor is None:
            return F.l1_loss(self.ddp_model(lr_batch), hr_batch)
        # Block outputs are kept only for the feature term: otherwise the donor's are freed as it goes.
        keep_blocks = bool(self.config.feature_weight)
        with captured_blocks(self.model, enabled=keep_blocks) as student_blocks:
            sr = self.ddp_model(lr_batch)
        with torch.no_grad(), captured_blocks(self.donor, enabled=keep_blocks) as donor_blocks:
            donor_sr = self.donor(lr_batch)
        loss = distillation_loss(sr, hr_batch, donor_sr, weight=self.config.distill_weight,
                                 hr_weight=self.config.hr_weight)
        if self.config.feature_weight:
            loss = loss + self.config.feature_weight * feature_loss(student_blocks, donor_blocks)
        return loss

    def train(self, *, stop_at: int | None = None, deadline: float | None = None) -> nn.Module:
        """Train to ``config.iterations`` (or stop early at ``stop_at``, as an interruption would,
        or at the ``time.time()`` deadline, after a checkpoint)."""
        config = self.config
        end = min(config.iterations, stop_at) if stop_at is not None else config.iterations
        if self.donor is not None and config.block_iterations and not self.resumed and self.iteration == 0:
            self._block_stage()
        self.model.train()
        if config.freeze_batchnorm:
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        # disable=None: the bar only on a terminal (a nohup log gets the log lines, not redraws)
        bar = tqdm(total=config.iterations, initial=self.iteration, disable=None if self.dist.is_main else True,
                   desc=config.model, dynamic_ncols=True)
        started, started_iter = time.time(), self.iteration
        batches = self._batches()
        while self.iteration < end:
            batch = next(batches)
            lr_batch = batch["lr"].to(self.device, non_blocking=True)
            hr_batch = batch["hr"].to(self.device, non_blocking=True)
            loss = self._loss(lr_batch, hr_batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            self.iteration += 1
            rate = (self.iteration - started_iter) / max(time.time() - started, 1e-9)
            lr = self.optimizer.param_groups[0]["lr"]
            bar.update(1)
            record: dict[str, float | int | None] = {}
            if self.iteration % config.log_every == 0 or self.iteration == end:
                # loss.item() waits for the GPU: read it on logging steps only.
                loss_value = loss.item()
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", it_s=f"{rate:.2f}")
                record = {"iteration": self.iteration, "loss": loss_value, "lr": lr, "it_per_s": rate,
                          "elapsed_s": round(time.time() - started, 1)}
            if self.val is not None and (self.iteration % config.val_every == 0 or self.iteration == config.iterations):
                psnr_db = validate(self.eval_model(), self.val, scale=self.scale)
                if psnr_db > (self.best_val_psnr_db or -math.inf):
                    self.best_val_psnr_db = psnr_db
                    self._save_best()
                record.update({"iteration": self.iteration, "val_psnr_db": psnr_db})
                bar.write(f"iteration {self.iteration}: validation PSNR-Y {psnr_db:.2f} dB")
            if record:
                self._log(record)
            out_of_time = deadline is not None and time.time() >= deadline
            if self.iteration % config.checkpoint_every == 0 or self.iteration == config.iterations or out_of_time:
                self._save()
            if out_of_time:
                log.info("time limit reached at iteration %d; resume with the same command", self.iteration)
                break
        bar.close()
        return self.eval_model()
