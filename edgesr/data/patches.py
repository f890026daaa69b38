"""Datasets over prepared HR/LR pairs (``edgesr.data.folder.prepare_pairs``).

* ``TrainPatchDataset`` yields random aligned ``{"lr", "hr"}`` patches with random flips
  and 90-degree rotations, as float32 CHW tensors in [0, 1]. Each sample is a pure function
  of ``(seed, epoch, index)``, so results do not depend on the number of DataLoader workers
  or on which worker draws which index. Call ``set_epoch`` before each epoch (like
  ``DistributedSampler``) to draw new patches; with ``persistent_workers=True`` the workers
  keep the epoch they were started with.
* ``ValImageDataset`` yields whole images ``{"lr", "hr", "name"}`` (HR cropped to a
  multiple of the scale); use ``batch_size=1`` since sizes differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from edgesr.data.folder import check_scale, integer_option, prepare_pairs


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> float32 3xHxW in [0, 1]."""
    chw = image.transpose(2, 0, 1).copy()  # a writable, C-contiguous copy (never the mmap)
    return torch.from_numpy(chw).to(torch.float32).div_(255.0)


@dataclass(frozen=True, kw_only=True)
class PatchParams:
    """Where a training patch comes from and how it is transformed (applied in this order:
    crop, horizontal flip, vertical flip, 90-degree counter-clockwise rotation)."""

    image_index: int
    top: int  # LR pixels
    left: int  # LR pixels
    hflip: bool
    vflip: bool
    rot90: bool


def _augment(image: np.ndarray, params: PatchParams) -> np.ndarray:
    if params.hflip:
        image = image[:, ::-1]
    if params.vflip:
        image = image[::-1]
    if params.rot90:
        image = np.rot90(image, k=1, axes=(0, 1))
    return image


class TrainPatchDataset(Dataset):
    """Random aligned LR/HR patch pairs from a folder of HR images.

    ``dataset[i]`` is ``{"lr": 3 x p x p, "hr": 3 x (p*scale) x (p*scale)}``, float32 in
    [0, 1], ``p = lr_patch_px``. Image ``i % n_images`` is used, so each epoch visits every
    image ``repeat`` times; shuffle with the DataLoader. Picklable (it holds file names only),
    so ``DataLoader(num_workers=...)`` works.
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike[str],
        scale: int,
        lr_patch_px: int = 64,
        cache_dir: str | os.PathLike[str] | None = None,
        seed: int = 0,
        augment: bool = True,
        repeat: int = 1,
    ) -> None:
        self.scale = check_scale(scale)
        self.lr_patch_px = integer_option(lr_patch_px, "lr_patch_px", minimum=1, example="64")
        self.seed = integer_option(seed, "seed", minimum=0, example="0")
        repeat = integer_option(repeat, "repeat", minimum=1, example="100")
        self.augment = bool(augment)
        self.repeat = repeat
        self.epoch = 0
        self.records, self.report = prepare_pairs(
            root, scale=self.scale, cache_dir=cache_dir, min_lr_px=lr_patch_px
        )

    def __len__(self) -> int:
        return len(self.records) * self.repeat

    def _arrays(self, image_index: int) -> tuple[np.ndarray, np.ndarray]:
        """The image's cached LR and HR, memory-mapped once per process (not per sample)."""
        cache = self.__dict__.setdefault("_mapped", {})
        if image_index not in cache:
            record = self.records[image_index]
            cache[image_index] = (np.load(record.lr_path, mmap_mode="r"), np.load(record.hr_path, mmap_mode="r"))
        return cache[image_index]

    def __getstate__(self) -> dict:
        # Worker processes map the files themselves; memory maps are not sent along.
        return {k: v for k, v in self.__dict__.items() if k != "_mapped"}

    def set_epoch(self, epoch: int) -> None:
        """Draw different patches in each epoch (call before creating the epoch's iterator)."""
        self.epoch = integer_option(epoch, "epoch", minimum=0, example="0")

    def patch_params(self, index: int) -> PatchParams:
        """The crop and transforms of sample ``index`` (a function of seed, epoch, index)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        record = self.records[index % len(self.records)]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        p = self.lr_patch_px
        top = int(rng.integers(0, record.hr_height // self.scale - p + 1))
        left = int(rng.integers(0, record.hr_width // self.scale - p + 1))
        flips = rng.integers(0, 2, size=3) if self.augment else np.zeros(3, dtype=np.int64)
        return PatchParams(
            image_index=index % len(self.records), top=top, left=left,
            hflip=bool(flips[0]), vflip=bool(flips[1]), rot90=bool(flips[2]),
        )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        params = self.patch_params(index)
        p, s = self.lr_patch_px, self.scale
        lr_full, hr_full = self._arrays(params.image_index)
        lr = lr_full[params.top : params.top + p, params.left : params.left + p]
        hr = hr_full[params.top * s : (params.top + p) * s, params.left * s : (params.left + p) * s]
        return {"lr": _to_tensor(_augment(lr, params)), "hr": _to_tensor(_augment(hr, params))}


class ValImageDataset(Dataset):
    """Whole validation images: ``{"lr", "hr", "name"}``, HR cropped to a multiple of scale.

    Tensors are float32 3xHxW in [0, 1]; use ``batch_size=1`` (sizes differ).
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike[str],
        scale: int,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.scale = check_scale(scale)
        self.records, self.report = prepare_pairs(root, scale=self.scale, cache_dir=cache_dir)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        record = self.records[index]
        return {
            "lr": _to_tensor(np.load(record.lr_path)),
            "hr": _to_tensor(np.load(record.hr_path)),
            "name": record.name,
        }
