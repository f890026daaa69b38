"""Benchmark evaluation: Y-channel PSNR/SSIM per image and mean, with a bicubic row.

Folder layouts: HR only (LR made here with MATLAB-compatible bicubic, HR cropped to a
multiple of the scale), or HR/LR pairs as the benchmark packs ship them
(``<set>/HR/*.png`` with ``<set>/LR_bicubic/X4/*x4.png``, or ``<set>/LR/``), matched by name.

numpy only at import: an ONNX graph is scored through an edgesr engine on a runtime-only
install; torch is imported only to run a PyTorch model.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesr.data.degrade import imresize, lr_from_hr
from edgesr.data.folder import find_images, read_rgb8
from edgesr.errors import DataError, printable
from edgesr.metrics import psnr_y, ssim_y

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ImageScore:
    name: str
    method: str  # model name or "bicubic"
    psnr_db: float
    ssim: float


@dataclass(frozen=True, kw_only=True)
class EvalPair:
    name: str
    hr: np.ndarray  # HxWx3 uint8, cropped to a multiple of scale
    lr: np.ndarray  # (H/s)x(W/s)x3 uint8


def _lr_folder(root: Path, scale: int) -> Path | None:
    for candidate in (root / "LR_bicubic" / f"X{scale}", root / f"LR_bicubic_X{scale}", root / "LR"):
        if candidate.is_dir():
            return candidate
    return None


def _pair_key(path: Path, scale: int) -> str:
    return re.sub(rf"x{scale}$", "", path.stem, flags=re.IGNORECASE)


def check_pair_sizes(hr_path: Path, hr_shape: tuple[int, ...], lr_path: Path, lr_shape: tuple[int, ...],
                     *, scale: int) -> None:
    """An LR must be its HR shrunk ``scale`` times after the HR is cropped to a multiple of
    ``scale`` (how the benchmark packs were made); anything else would score a corner."""
    (hr_h, hr_w), (lr_h, lr_w) = hr_shape[:2], lr_shape[:2]
    if (hr_h // scale, hr_w // scale) != (lr_h, lr_w):
        raise DataError(
            f"{printable(hr_path.name)} ({hr_w}x{hr_h}) and its LR {printable(lr_path.name)} ({lr_w}x{lr_h}) "
            f"do not match x{scale}: expected an LR of {hr_w // scale}x{hr_h // scale}; check --scale "
            "or the pair")


def _refuse_unreadable_folders(root: Path) -> None:
    """A sub-folder that cannot be listed would silently drop its images from the mean."""
    unreadable: list[OSError] = []
    for _ in os.walk(root, onerror=unreadable.append):
        if unreadable:
            break
    if unreadable:
        exc = unreadable[0]
        raise DataError(f"cannot read the folder {printable(exc.filename)} under {printable(root)} "
                        f"({exc.strerror}); fix its permissions or move it out, a score without its "
                        "images would not be the set's")


def load_pairs(root: str | Path, *, scale: int) -> list[EvalPair]:
    """HR/LR pairs from a benchmark folder (pairs when an LR folder exists, else HR only)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"evaluation folder {str(root)!r} does not exist; pass a folder of HR images")
    hr_root = root / "HR" if (root / "HR").is_dir() else root
    _refuse_unreadable_folders(root)
    lr_root = _lr_folder(root, scale)
    hr_paths = [p for p in find_images(hr_root) if lr_root is None or lr_root not in p.parents]
    if not hr_paths:
        raise DataError(f"no images in {str(hr_root)!r}; expected PNG/JPEG/... HR images")
    lr_by_key = {_pair_key(p, scale): p for p in find_images(lr_root)} if lr_root else {}
    pairs = []
    for hr_path in hr_paths:
        hr = read_rgb8(hr_path)
        if lr_root is not None and hr_path.stem in lr_by_key:
            lr_path = lr_by_key[hr_path.stem]
            lr = read_rgb8(lr_path)
            check_pair_sizes(hr_path, hr.shape, lr_path, lr.shape, scale=scale)
            hr = hr[: lr.shape[0] * scale, : lr.shape[1] * scale]  # the benchmark packs' mod-crop
        else:
            hr, lr = lr_from_hr(hr, scale=scale)
        pairs.append(EvalPair(name=hr_path.stem, hr=np.ascontiguousarray(hr), lr=lr))
    log.info("%d images from %s (%s)", len(pairs), root, "HR/LR pairs" if lr_root else "LR made by bicubic")
    return pairs


def sr_from_model(model, lr: np.ndarray) -> np.ndarray:  # noqa: ANN001 (a torch nn.Module)
    """Upscale an HxWx3 uint8 image with ``model`` (on whatever device it lives) -> float [0, 1]."""
    import torch

    device = next(model.parameters()).device
    tensor = torch.from_numpy(lr.astype(np.float32) / 255.0).permute(2, 0, 1)[None].to(device)
    with torch.no_grad():
        return model(tensor).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()


def sr_from_engine(engine, lr: np.ndarray) -> np.ndarray:  # noqa: ANN001 (any edgesr engine)
    """Upscale an HxWx3 uint8 image with an edgesr engine (``run(lr) -> sr``) -> float [0, 1]."""
    nchw = (lr.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    return np.clip(engine.run(np.ascontiguousarray(nchw))[0].transpose(1, 2, 0), 0, 1)


def _is_engine(model: object) -> bool:
    """An edgesr engine (``run(lr) -> sr``); anything else is a PyTorch module. Checked by the
    engine's method, so telling the two apart never imports torch."""
    return callable(getattr(model, "run", None)) and callable(getattr(model, "info", None))


def evaluate(model, pairs: list[EvalPair], *, scale: int, method: str, progress: bool = False) -> list[ImageScore]:  # noqa: ANN001
    """Per-image scores of ``model`` (an nn.Module, or an edgesr engine with ``run``) and of
    bicubic upscaling (border ``scale`` cropped); ``progress``: a bar on a terminal's stderr."""
    if _is_engine(model):
        upscale = lambda lr: sr_from_engine(model, lr)  # noqa: E731
    else:
        model = model.eval()
        upscale = lambda lr: sr_from_model(model, lr)  # noqa: E731
    from tqdm import tqdm

    scores = []
    for pair in tqdm(pairs, unit="img", desc=method, disable=None if progress else True, leave=False):
        for name, sr in ((method, upscale(pair.lr)),
                         ("bicubic", imresize(pair.lr.astype(np.float64) / 255.0, scale=scale))):
            scores.append(ImageScore(name=pair.name, method=name,
                                     psnr_db=psnr_y(np.clip(sr, 0, 1), pair.hr, crop_border=scale),
                                     ssim=ssim_y(np.clip(sr, 0, 1), pair.hr, crop_border=scale)))
    return scores


def mean_scores(scores: list[ImageScore]) -> dict[str, tuple[float, float]]:
    methods = dict.fromkeys(s.method for s in scores)
    return {m: (float(np.mean([s.psnr_db for s in scores if s.method == m])),
                float(np.mean([s.ssim for s in scores if s.method == m]))) for m in methods}


def scores_markdown(scores: list[ImageScore]) -> str:
    methods = list(dict.fromkeys(s.method for s in scores))
    by = {(s.name, s.method): s for s in scores}
    names = list(dict.fromkeys(s.name for s in scores))
    lines = ["| image | " + " | ".join(f"{m} PSNR-Y (dB) | {m} SSIM-Y" for m in methods) + " |",
             "|---|" + "---:|---:|" * len(methods)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{by[name, m].psnr_db:.2f} | {by[name, m].ssim:.4f}" for m in methods) + " |")
    means = mean_scores(scores)
    lines.append("| **mean** | " + " | ".join(f"**{means[m][0]:.2f}** | **{means[m][1]:.4f}**" for m in methods) + " |")
    return "\n".join(lines)


def scores_csv(scores: list[ImageScore]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image", "method", "psnr_db", "ssim"])
    for s in scores:
        writer.writerow([s.name, s.method, f"{s.psnr_db:.4f}", f"{s.ssim:.6f}"])
    for method, (p, q) in mean_scores(scores).items():
        writer.writerow(["mean", method, f"{p:.4f}", f"{q:.6f}"])
    return buffer.getvalue()
