"""The authors' published checkpoints, loaded into our models through explicit key maps.

BSRN (Li et al. 2022, github.com/xiaom233/BSRN) and LKDN (Xie et al. 2023,
github.com/stella-von/LKDN) publish trained x2/x3/x4 checkpoints (MIT) in BasicSR's layout.
Their tensors have exactly our shapes; only the names differ. Each map below renames one
official name to ours by rule, never by position, so a checkpoint either maps completely
or fails naming the keys that did not map. ``docs/weights.md`` lists the maps.

Detection (spandrel's idea, for our own table): a state dict is an official layout when
every key maps under one architecture's rules; the scale follows from the upsampler's
output channels (3 * scale**2). Our own files (``edgesr-train`` / ``edgesr-weights convert``
output) pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edgesr.errors import WeightsError

# Names inside one official block (after "B<i>."), ours on the right. Both architectures
# share the distillation steps (BSRN's design, which LKDN kept).
_DISTILLATION = {
    r"c([123])_d\.(.*)": lambda m: f"distill.{int(m[1]) - 1}.{m[2]}",
    r"c([123])_r\.(.*)": lambda m: f"refine.{int(m[1]) - 1}.{m[2]}",
    r"c4\.(.*)": lambda m: f"distill_last.{m[1]}",
}
_BSRN_BLOCK = {
    **_DISTILLATION,
    r"c5\.(.*)": lambda m: f"fuse.{m[1]}",
    r"esa\.conv1\.(.*)": lambda m: f"esa.reduce.{m[1]}",
    r"esa\.conv_f\.(.*)": lambda m: f"esa.skip.{m[1]}",
    r"esa\.conv2\.(.*)": lambda m: f"esa.down.{m[1]}",
    r"esa\.(conv_max|conv3_|conv3)\.(.*)": lambda m: f"esa.{m[1]}.{m[2]}",
    r"esa\.conv4\.(.*)": lambda m: f"esa.expand.{m[1]}",
    r"cca\.conv_du\.0\.(.*)": lambda m: f"cca.squeeze.{m[1]}",
    r"cca\.conv_du\.2\.(.*)": lambda m: f"cca.excite.{m[1]}",
}
_LKDN_BLOCK = {
    **_DISTILLATION,
    r"c5\.(.*)": lambda m: f"reduce.{m[1]}",
    r"atten\.pointwise\.(.*)": lambda m: f"cell.pw.{m[1]}",
    r"atten\.depthwise\.(.*)": lambda m: f"cell.dw.{m[1]}",
    r"atten\.depthwise_dilated\.(.*)": lambda m: f"cell.dw_dilated.{m[1]}",
    r"c6\.(.*)": lambda m: f"expand.{m[1]}",
    r"pixel_norm\.(.*)": lambda m: f"norm.{m[1]}",
}
# Names outside the blocks; both architectures share BSRN's trunk.
_TRUNK = {
    r"fea_conv\.(.*)": lambda m: f"shallow.{m[1]}",
    r"c1\.(.*)": lambda m: f"fuse.{m[1]}",
    r"c2\.(.*)": lambda m: f"fuse_conv.{m[1]}",
}
_BSRN_UPSAMPLER = {r"upsampler\.upsampleOneStep\.0\.(.*)": lambda m: f"upsampler.conv.{m[1]}"}
_LKDN_UPSAMPLER = {r"upsampler\.0\.(.*)": lambda m: f"upsampler.conv.{m[1]}"}

Rule = Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class KeyMap:
    """One architecture's renames: official name -> edgesr name."""

    family: str  # our model family
    source: str  # where the checkpoints come from, for messages and model cards
    block_rules: Mapping[str, Rule]
    top_rules: Mapping[str, Rule]

    def rename(self, key: str) -> str | None:
        """Our name for an official key, or None when no rule covers it."""
        block = re.fullmatch(r"B(\d+)\.(.*)", key)
        if block:
            inner = _apply(self.block_rules, block[2])
            return None if inner is None else f"blocks.{int(block[1]) - 1}.{inner}"
        return _apply(self.top_rules, key)


def _apply(rules: Mapping[str, Rule], key: str) -> str | None:
    for pattern, rule in rules.items():
        match = re.fullmatch(pattern, key)
        if match:
            return rule(match)
    return None


KEY_MAPS: dict[str, KeyMap] = {
    "bsrn": KeyMap("bsrn", "BSRN authors' checkpoints (net_g_BSRN_x*.pth, MIT)",
                   _BSRN_BLOCK, {**_TRUNK, **_BSRN_UPSAMPLER}),
    "lkdn": KeyMap("lkdn", "LKDN authors' checkpoints (LKDN_x*.pth, MIT)",
                   _LKDN_BLOCK, {**_TRUNK, **_LKDN_UPSAMPLER}),
}


@dataclass(frozen=True)
class Conversion:
    """What a conversion did: the layout it recognised and every rename."""

    family: str
    scale: int
    renames: dict[str, str]  # official -> ours
    state: dict[str, Any]  # ours -> tensor

    @property
    def model_name(self) -> str:
        return f"{self.family}_x{self.scale}"


def _scale_from_upsampler(state: Mapping[str, Any]) -> int:
    weight = state.get("upsampler.conv.weight")
    if weight is None:
        raise WeightsError("the checkpoint has no upsampler weight; cannot tell its scale")
    channels = int(weight.shape[0])
    scale = round((channels / 3) ** 0.5)
    if 3 * scale * scale != channels:
        raise WeightsError(f"upsampler has {channels} output channels, not 3 * scale**2")
    return scale


def convert_official(state: Mapping[str, Any]) -> Conversion | None:
    """Rename an official checkpoint's keys to ours; None when no known layout covers every key."""
    for key_map in KEY_MAPS.values():
        renames = {key: key_map.rename(key) for key in state}
        if renames and all(renames.values()):
            mapped = {ours: state[key] for key, ours in renames.items() if ours is not None}
            clean = {k: v for k, v in renames.items() if v is not None}
            return Conversion(key_map.family, _scale_from_upsampler(mapped), clean, mapped)
    return None


def unknown_layout_error(state: Mapping[str, Any]) -> WeightsError:
    sample = ", ".join(sorted(state)[:3])
    known = ", ".join(f"{m.family} ({m.source})" for m in KEY_MAPS.values())
    return WeightsError(
        f"unknown checkpoint layout (first keys: {sample}); edgesr converts {known} "
        "and reads its own .safetensors files"
    )
