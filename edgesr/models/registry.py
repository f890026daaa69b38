"""The model table: every named variant, built by ``create_model(name)``.

Adding a model = one module in ``edgesr/models`` plus one ``_family`` line below.
Names are ``<family>_x<scale>``, ``<family>-tiny_x<scale>`` (a few thousand parameters, for
fast tests) and, for OSFFNet, the paper's ablation variants.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from edgesr.errors import ConfigError, UnknownNameError
from edgesr.spec import (
    DEFAULT_MODEL as DEFAULT_MODEL,  # re-exported: the one definition is in spec
)
from edgesr.spec import ModelSpec

SCALES = (2, 3, 4)


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One buildable variant: where its class lives and the config it is built with."""

    name: str
    family: str
    module: str  # edgesr.models.<module>
    model_class: str
    config: dict[str, Any] = field(default_factory=dict)
    min_input_px: int = 1  # smallest LR side the model accepts (ESA's pooling needs 15)
    paper_params: int | None = None  # what the paper's table says, when it says
    paper_multi_adds_g: float | None = None  # published Multi-Adds at a 1280x720 output
    published_counts_bias: bool = True  # False: the paper counted Multi-Adds without biases (LKDN)
    description: str = ""

    @property
    def scale(self) -> int:
        return int(self.config["scale"])

    @property
    def config_class(self) -> str:
        return f"{self.model_class}Config"

    def build(self) -> nn.Module:
        mod = importlib.import_module(f"edgesr.models.{self.module}")
        config = getattr(mod, self.config_class)(**self.config)
        return getattr(mod, self.model_class)(config=config)


# ESA: 3x3 stride-2 unpadded conv then a 7x7 max-pool -> needs (H - 3) // 2 + 1 >= 7.
_ESA_MIN_PX = 15

_OSFFNET_PARAMS = {2: 515_732, 3: 524_387, 4: 536_504}
_BSRN_PARAMS = {4: 352_400, 3: 340_283, 2: 331_628}
_IMDN_PARAMS = {4: 715_176, 3: 703_059, 2: 694_404}
_LKDN_PARAMS = {4: 321_992, 3: 311_387, 2: 303_812}
# Published Multi-Adds (G) at a 1280x720 output: OSFFNet Table 1 (its own and BSRN's/IMDN's
# rows) and LKDN's paper (18.3 G, counted without biases).
_OSFFNET_GMACS = {2: 83.2, 3: 37.8, 4: 22.0}
_BSRN_GMACS = {2: 73.0, 3: 33.3, 4: 19.4}
_IMDN_GMACS = {2: 158.8, 3: 71.5, 4: 40.9}
_LKDN_GMACS = {4: 18.3}

# OSFFNet ablations (paper Table 2 codes OISI/SFGC/MFDF, Table 4 attention variants), at x4.
# name: (switches, published params, published Multi-Adds G). Table 2 rounds params to K;
# DESIGN section 3 gives the exact counts of the variants it names.
OSFFNET_ABLATIONS: dict[str, tuple[dict[str, bool], int | None, float | None]] = {
    "osffnet-000": ({"oisi": False, "sfgc": False, "mfdf": False}, 486_480, 19.4),
    "osffnet-100": ({"oisi": True, "sfgc": False, "mfdf": False}, None, 19.5),
    "osffnet-010": ({"oisi": False, "sfgc": True, "mfdf": False}, None, 19.4),
    "osffnet-001": ({"oisi": False, "sfgc": False, "mfdf": True}, None, 21.9),
    "osffnet-110": ({"oisi": True, "sfgc": True, "mfdf": False}, None, 19.5),
    "osffnet-101": ({"oisi": True, "sfgc": False, "mfdf": True}, None, 22.0),
    "osffnet-011": ({"oisi": False, "sfgc": True, "mfdf": True}, None, 21.9),
    "osffnet-noatt": ({"esa": False, "cca": False}, 499_352, 20.7),
    "osffnet-esa": ({"cca": False}, 531_864, 22.0),
    "osffnet-cca": ({"esa": False}, 503_992, 20.7),
}

_TINY = {
    "osffnet": {"channels": 16, "num_blocks": 2, "stack_copies": 2, "drf_kernel_sizes": (1, 3)},
    "bsrn": {"channels": 16, "num_blocks": 2},
    "imdn": {"channels": 16, "num_blocks": 2},
    "lkdn": {"channels": 16, "attention_channels": 16, "num_blocks": 2},
    "lmfn": {"channels": 16, "attention_channels": 16, "num_blocks": 3},
}


def _family(
    family: str, module: str, model_class: str, *, params: dict[int, int] | None,
    gmacs: dict[int, float] | None = None, min_input_px: int, description: str,
    published_counts_bias: bool = True,
) -> list[ModelEntry]:
    base = ModelEntry(
        name="", family=family, module=module, model_class=model_class,
        published_counts_bias=published_counts_bias,
        min_input_px=min_input_px, description=description,
    )
    entries = []
    for scale in SCALES:
        entries.append(replace(
            base, name=f"{family}_x{scale}", config={"scale": scale},
            paper_params=(params or {}).get(scale), paper_multi_adds_g=(gmacs or {}).get(scale),
        ))
        entries.append(replace(
            base, name=f"{family}-tiny_x{scale}", config={"scale": scale, **_TINY[family]},
            description=f"tiny {family} for tests",
        ))
    return entries


def _osffnet_ablations() -> list[ModelEntry]:
    return [
        ModelEntry(
            name=f"{name}_x4", family="osffnet", module="osffnet", model_class="OSFFNet",
            config={"scale": 4, **switches},
            min_input_px=_ESA_MIN_PX if switches.get("esa", True) else 1,
            paper_params=params, paper_multi_adds_g=gmacs,
            description="OSFFNet ablation (paper Tables 2 and 4)",
        )
        for name, (switches, params, gmacs) in OSFFNET_ABLATIONS.items()
    ]


MODEL_TABLE: dict[str, ModelEntry] = {
    e.name: e
    for e in [
        *_family("osffnet", "osffnet", "OSFFNet", params=_OSFFNET_PARAMS, gmacs=_OSFFNET_GMACS,
                 min_input_px=_ESA_MIN_PX, description="OSFFNet (AAAI 2024)"),
        *_family("lmfn", "lmfn", "LMFN", params=None, min_input_px=1,
                 description="LMFN (ICASSP 2025) on the LKDN backbone, with DSConv"),
        *_family("lkdn", "lkdn", "LKDN", params=_LKDN_PARAMS, gmacs=_LKDN_GMACS, min_input_px=1, published_counts_bias=False,
                 description="LKDN (CVPRW 2023) baseline"),
        *_family("bsrn", "bsrn", "BSRN", params=_BSRN_PARAMS, gmacs=_BSRN_GMACS, min_input_px=_ESA_MIN_PX,
                 description="BSRN (CVPRW 2022) baseline"),
        *_family("imdn", "imdn", "IMDN", params=_IMDN_PARAMS, gmacs=_IMDN_GMACS, min_input_px=1,
                 description="IMDN (ACM MM 2019) baseline"),
        *_osffnet_ablations(),
    ]
}



FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(e.family for e in MODEL_TABLE.values()))
ABLATION_NAMES: tuple[str, ...] = tuple(f"{name}_x4" for name in OSFFNET_ABLATIONS)


def model_entry(name: str) -> ModelEntry:
    """The table entry for ``name``; unknown names get close-match suggestions."""
    try:
        return MODEL_TABLE[name]
    except KeyError:
        raise UnknownNameError("model", name, MODEL_TABLE) from None


def model_name(name_or_family: str, *, scale: int | None = None) -> str:
    """The table name for what a user typed: ``osffnet`` + 4 -> ``osffnet_x4``; a full name
    passes when ``scale`` is None or agrees. A bare family without a scale, or a contradicting
    scale, raises ConfigError; unknown names raise UnknownNameError with close matches."""
    if scale is None:
        if name_or_family in MODEL_TABLE:
            return name_or_family
        variants = sorted(n for n in MODEL_TABLE if n.rsplit("_x", 1)[0] == name_or_family)
        if variants:
            raise ConfigError(
                f"model {name_or_family!r} needs a scale: received none, expected one of "
                f"{', '.join(variants)}. Pass --scale (e.g. --scale 4) or the full name."
            )
        return model_entry(name_or_family).name  # raises UnknownNameError with suggestions
    name = name_or_family if "_x" in name_or_family else f"{name_or_family}_x{scale}"
    entry = model_entry(name)
    if entry.scale != scale:
        raise ConfigError(
            f"model {name!r} is a x{entry.scale} model but --scale {scale} was given; "
            f"use {name_or_family.split('_x')[0]}_x{scale} or drop --scale"
        )
    return name


def model_spec(name: str, *, precision: str = "fp32") -> ModelSpec:
    """What the runtime needs to know about the named model (written into its ONNX metadata).

    Tiling advice is ModelSpec's default for every family (256 px tiles, 16 px overlap): the
    overlap covers the border context of the convolutions, and large tiles keep the per-tile
    statistics of CCA/ESA/GroupNorm close to whole-image ones (``edgesr-bench tiling``
    measures the remaining difference).
    """
    entry = model_entry(name)
    return ModelSpec(arch=entry.name, scale=entry.scale, precision=precision, min_size_px=entry.min_input_px)


def is_test_variant(name: str) -> bool:
    """Tiny variants exist for fast tests and are never trained: they export and run on their
    seeded initialization (with a warning) where a real model without weights is refused."""
    return "-tiny_x" in name


def create_model(name: str, *, eval_mode: bool = True) -> nn.Module:
    """Build the named variant with fresh weights (eval mode unless asked otherwise)."""
    model = model_entry(name).build()
    return model.eval() if eval_mode else model


def count_params(model: nn.Module) -> int:
    """Trainable parameters of the model (the papers' #Params)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


