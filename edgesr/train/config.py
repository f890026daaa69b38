"""Training recipes: small TOML files whose keys are exactly ``TrainConfig``'s fields.

An unknown key fails with the list of valid ones, so a typo never silently trains the
wrong recipe. Packaged recipes live in ``edgesr/recipes`` and are named without ``.toml``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from edgesr.errors import ConfigError

OPTIMIZERS = ("adam", "adan")
SCHEDULERS = ("cosine", "constant")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    model: str  # a model-table name, e.g. "osffnet_x4"
    train_dir: str  # folder of HR images
    out_dir: str = "runs/train"
    val_dir: str | None = None  # folder of HR images for validation PSNR
    iterations: int = 500_000
    batch_size: int = 64  # global batch (split over DDP processes)
    lr_patch_px: int = 64
    loss: str = "l1"
    optimizer: str = "adam"
    lr: float = 1e-4
    lr_min: float = 1e-7
    scheduler: str = "cosine"
    # Linear warmup of the lr over the first N iterations (0: none). A fresh Adam's first steps
    # move every weight by about lr whatever its gradient, which knocks a trained start
    # (init_from) off its optimum: OSFFNet x4's validation PSNR fell 0.11 dB in 400 iterations
    # at lr 1e-4 without it.
    warmup_iterations: int = 0
    betas: tuple[float, ...] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    ema_decay: float | None = None  # e.g. 0.999 (LKDN/LMFN recipe)
    val_every: int = 5000
    checkpoint_every: int = 5000
    log_every: int = 100
    seed: int = 0
    num_workers: int = 2
    finetune_from: str | None = None  # a x2 checkpoint: load all but the upsampler
    init_from: str | None = None  # weights of the same model to start from (a later stage)
    # A trained relative of the same scale (official BSRN for OSFFNet, LKDN for LMFN), as a
    # weights file or the name of a model whose weights ship (e.g. "bsrn_x4"):
    # shared layers copied, new modules started as identities (edgesr.warm_start).
    warm_start_from: str | None = None
    # Keep BatchNorm layers on their running statistics while training (a warm start's
    # BatchNorm is the identity only with its initial statistics).
    freeze_batchnorm: bool = False
    # Distillation (edgesr.train.distill) from a donor: a shipped model name ("bsrn_x4") or a
    # weights file of the student's donor. Implies warm_start_from the same donor unless
    # init_from is given. block_iterations > 0 runs the block-wise stage first (Adam at
    # block_lr); the end-to-end loss is hr_weight x L1 to HR + distill_weight x L1 to the
    # donor's SR. hr_weight = 0 is pure distillation: the donor labels any photo, and the
    # target "as good as the donor" is closeness to the donor's function.
    distill_from: str | None = None
    block_iterations: int = 0
    block_lr: float = 5e-4
    distill_weight: float = 1.0
    hr_weight: float = 1.0
    # > 0 adds feature_weight x the mean L1 from each student block's output to the donor's
    # (edgesr.train.distill.feature_loss): every block gets its own target end to end.
    feature_weight: float = 0.0
    # With init_from and distill_from: before training, copy the donor's tensors back into every
    # layer the student shares with it (all but the distilled blocks; distill.reseat_donor_layers).
    reseat_donor_layers: bool = False
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        _check_types_and_ranges(self)  # first: the checks below compare values
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"scheduler {self.scheduler!r} is not one of {', '.join(SCHEDULERS)}")
        if self.loss != "l1":
            raise ConfigError(f"loss {self.loss!r} is not supported; the papers train with 'l1'")
        if self.hr_weight == 0 and not (self.distill_from and self.distill_weight > 0):
            raise ConfigError("hr_weight = 0 leaves no loss: it needs distill_from and distill_weight > 0")
        if self.reseat_donor_layers and not (self.init_from and self.distill_from):
            raise ConfigError("reseat_donor_layers needs init_from (the trained student) and distill_from (its donor)")
        if self.feature_weight and not self.distill_from:
            raise ConfigError("feature_weight needs distill_from (the donor whose block outputs are the targets)")
        if self.block_iterations and not self.distill_from:
            raise ConfigError("block_iterations needs distill_from (the donor whose blocks are copied)")
        if self.distill_from and self.warm_start_from and self.warm_start_from != self.distill_from:
            raise ConfigError(f"warm_start_from {self.warm_start_from!r} and distill_from {self.distill_from!r} "
                              "name different donors; give distill_from alone")
        starts = [k for k in ("finetune_from", "init_from", "warm_start_from") if getattr(self, k)]
        if len(starts) > 1:
            raise ConfigError(f"give one of finetune_from (another scale, upsampler skipped), init_from "
                              f"(same model, all weights) or warm_start_from (a relative); got {', '.join(starts)}")

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_STRINGS = ("model", "train_dir", "out_dir", "loss", "optimizer", "scheduler")
_OPTIONAL_STRINGS = ("val_dir", "finetune_from", "init_from", "warm_start_from", "distill_from", "cache_dir")
_POSITIVE_INTS = ("iterations", "batch_size", "lr_patch_px", "val_every", "checkpoint_every", "log_every")
_NON_NEGATIVE_INTS = ("seed", "num_workers", "block_iterations", "warmup_iterations")
#: name -> (low, low included, high, high included): the valid range, named in the error.
_NUMBER_RANGES: dict[str, tuple[float, bool, float, bool]] = {
    "lr": (0.0, False, 1.0, True),
    "lr_min": (0.0, True, 1.0, True),
    "eps": (0.0, False, 1.0, False),
    "weight_decay": (0.0, True, 1.0, True),
    "ema_decay": (0.0, False, 1.0, False),
    "block_lr": (0.0, False, 1.0, True),
    "distill_weight": (0.0, True, 100.0, True),
    "hr_weight": (0.0, True, 100.0, True),
    "feature_weight": (0.0, True, 100.0, True),
}


def _bad(name: str, value: object, expected: str) -> ConfigError:
    return ConfigError(f"{name} = {value!r}: expected {expected}; fix the recipe or the flag")


def _in_range(name: str, value: object) -> None:
    low, low_in, high, high_in = _NUMBER_RANGES[name]
    interval = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise _bad(name, value, f"a number in {interval}")
    if (value < low or (value == low and not low_in)) or (value > high or (value == high and not high_in)):
        raise _bad(name, value, f"a number in {interval}")


def _check_types_and_ranges(config: TrainConfig) -> None:
    """Every field has its type and lies in its valid range (named in the error), so a recipe
    with ``lr = "fast"`` or ``--lr -1`` fails here, in one line, not in the optimizer."""
    for name in _STRINGS + _OPTIONAL_STRINGS:
        value = getattr(config, name)
        if not isinstance(value, str) and not (value is None and name in _OPTIONAL_STRINGS):
            raise _bad(name, value, "a string")
    for name, low in [(n, 1) for n in _POSITIVE_INTS] + [(n, 0) for n in _NON_NEGATIVE_INTS]:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _bad(name, value, f"an integer >= {low}")
    for name in ("freeze_batchnorm", "reseat_donor_layers"):
        if not isinstance(getattr(config, name), bool):
            raise _bad(name, getattr(config, name), "true or false")
    if config.seed >= 2**32:  # numpy's and torch's seeds are 32/64-bit; the data order mixes it in
        raise _bad("seed", config.seed, "an integer in [0, 2**32)")
    for name in _NUMBER_RANGES:
        if not (name == "ema_decay" and config.ema_decay is None):
            _in_range(name, getattr(config, name))
    if config.lr_min > config.lr:
        raise _bad("lr_min", config.lr_min, f"at most lr ({config.lr:g})")
    betas = config.betas
    count = {"adam": 2, "adan": 3}.get(config.optimizer, 2)
    if not isinstance(betas, tuple) or len(betas) != count or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in betas):
        raise _bad("betas", betas, f"{count} numbers in [0, 1) for {config.optimizer} "
                   "(adam: [0.9, 0.999]; adan: [0.98, 0.92, 0.99])")


def valid_keys() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def config_from_dict(values: dict[str, Any], *, source: str) -> TrainConfig:
    unknown = sorted(set(values) - set(valid_keys()))
    if unknown:
        raise ConfigError(f"{source}: unknown keys {', '.join(unknown)}; valid keys: {', '.join(valid_keys())}")
    if isinstance(values.get("betas"), list):  # TOML arrays are lists
        values = {**values, "betas": tuple(values["betas"])}
    try:
        return TrainConfig(**values)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(f"{source}: {exc}".replace("__init__() ", "")) from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def packaged_recipes() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("edgesr.recipes").iterdir()
                  if p.name.endswith(".toml"))


def load_config(path_or_name: str, **overrides: Any) -> TrainConfig:
    """Read a recipe file (or a packaged recipe by name) and apply command-line overrides."""
    path = Path(path_or_name)
    if path.is_file():
        text, source = path.read_text(), str(path)
    elif path_or_name in packaged_recipes():
        text = (resources.files("edgesr.recipes") / f"{path_or_name}.toml").read_text()
        source = f"recipe {path_or_name}"
    else:
        raise ConfigError(
            f"config {path_or_name!r} is neither a file nor a packaged recipe "
            f"({', '.join(packaged_recipes())})"
        )
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(values, source=source)
