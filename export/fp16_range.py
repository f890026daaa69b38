"""Which parts of a model must stay float32 in an FP16 graph, found by measuring its values.

The LKDN authors' weights drive the large-kernel attention (LKA) cells to values of 1e9-1e10
before each block's channel LayerNorm brings them back (measured with forward hooks on the
bundled example photo), far past float16's 65,504: converted to FP16 as they are, those
blocks give Inf. An exact rescaling does not help either: dividing the attention convs by the
2**29 needed would push their weights below float16's smallest normal number.

So the export measures instead: a forward pass on a calibration photo (the bundled example)
records every module's largest output, and a module whose values come within ``HEADROOM`` of
float16's maximum keeps all its ONNX nodes float32 (its scope, e.g. ``/blocks.1/cell/``). The
LayerNorm after it is float32 anyway (normalisation statistics are on the FP16 block list), so
the values are back in range before the graph returns to float16.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

FP16_MAX = 65504.0
HEADROOM = 2.0**6  # values a calibration photo reaches may grow on other photos
_EXAMPLE = Path(__file__).resolve().parents[1] / "runtime" / "examples" / "chelsea_160x120.png"


def calibration_input() -> torch.Tensor:
    import cv2

    image = cv2.imread(str(_EXAMPLE), cv2.IMREAD_COLOR)
    if image is None:  # an install without the example: a smooth gradient still exercises it
        image = np.tile(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], (96, 1, 3))
    return torch.from_numpy(image[..., ::-1].astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()


def onnx_scope(module_name: str) -> str:
    """The node-name prefix torch's exporter gives a module: ``blocks.1.cell`` -> ``/blocks.1/cell/``
    (list indices stay attached to their list, as in ``/blocks.1/refine.0/pw/Conv``)."""
    parts: list[str] = []
    for part in module_name.split("."):
        if part.isdigit() and parts:
            parts[-1] = f"{parts[-1]}.{part}"
        else:
            parts.append(part)
    return "/" + "/".join(parts) + "/"


@torch.no_grad()
def module_peaks(model: nn.Module, lr: torch.Tensor) -> dict[str, float]:
    """Largest |output| of every named module on ``lr``."""
    peaks: dict[str, float] = {}
    handles = []
    for name, module in model.named_modules():
        if name:
            def hook(_m, _inp, out, name=name):
                if torch.is_tensor(out):
                    peaks[name] = max(peaks.get(name, 0.0), float(out.abs().max()))
            handles.append(module.register_forward_hook(hook))
    try:
        model(lr)
    finally:
        for handle in handles:
            handle.remove()
    return peaks


def _next_sibling(model: nn.Module, name: str) -> str | None:
    """The module registered right after ``name`` in its parent (the one reading its output
    in a sequential block, e.g. the LayerNorm after ``expand``)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    names = [n for n, _ in parent.named_children()]
    index = names.index(child)
    if index + 1 >= len(names):
        return None
    return f"{parent_name}.{names[index + 1]}" if parent_name else names[index + 1]


def fp32_scopes(model: nn.Module) -> list[str]:
    """ONNX scopes of the outermost modules whose values come near float16's range, and of the
    module after each (the one that reads those values, such as LKDN's LayerNorm, which must
    take them in float32 to bring them back into range)."""
    peaks = module_peaks(model, calibration_input())
    over = sorted(n for n, peak in peaks.items() if peak * HEADROOM > FP16_MAX)
    outermost = [n for n in over if not any(n.startswith(o + ".") for o in over if o != n)]
    readers = {_next_sibling(model, n) for n in outermost} - set(outermost) - {None}
    scopes = [onnx_scope(n) for n in sorted(set(outermost) | readers)]
    if scopes:
        log.info("FP16: %d module(s) reach float16's range on the calibration photo; kept float32: %s",
                 len(scopes), ", ".join(scopes[:6]) + (" ..." if len(scopes) > 6 else ""))
    return scopes
