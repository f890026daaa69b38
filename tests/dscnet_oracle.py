"""DSCNet's dynamic snake convolution, written here from its authors' published method, as an
oracle outside edgesr for edgesr.ops.dsconv and edgesr.ops.dsconv_reference.

Source read (not copied): github.com/YaoleiQi/DSCNet, DSCNet_2D_opensource/Code/DRIVE/
S3_DSConv_pro.py (``DSConv_pro``, ``get_coordinate_map_2D``, ``get_interpolated_feature``):
1. offsets = tanh(GroupNorm(K, 2K)(Conv3x3(x))), split into K y-offsets then K x-offsets;
2. the offsets across the kernel (y for morph 0, x for morph 1) accumulate outward from the
   centre c = K // 2 (the centre stays 0); the "pro" file walks all c steps. The original
   S3_DSConv.py stopped one step early, the typo the design records: ``full_walk=False``
   reproduces it, so a test can show the oracle tells the two apart;
3. the K points of pixel (i, j) sit at (i + s*acc_k, j + k - c) (morph 0) or
   (i + k - c, j + s*acc_k) (morph 1), stacked along height ("b (w k) h", morph 0) or width
   ("b w (h k)", morph 1);
4. coordinates clamped to the image, mapped to [-1, 1], sampled by torch's grid_sample
   (bilinear, align_corners=True): an implementation of the sampling edgesr's reference does
   not use;
5. a (K,1)/(1,K) strided conv collapses the points; GroupNorm(out // 4); ReLU.
Runs in float64. Needs H, W >= 2 (DSCNet divides by H - 1 and W - 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dscnet_forward(x: torch.Tensor, params: dict[str, torch.Tensor], *, kernel_size: int, morph: int,
                   extend_scope: float, full_walk: bool = True, eps: float = 1e-5) -> torch.Tensor:
    p = {name: value.double() for name, value in params.items()}
    x = x.double()
    k_len, centre = kernel_size, kernel_size // 2
    offset = F.conv2d(x, p["offset_conv.weight"], p["offset_conv.bias"], padding=1)
    offset = torch.tanh(F.group_norm(offset, k_len, p["offset_norm.weight"], p["offset_norm.bias"], eps))
    moving = offset[:, :k_len] if morph == 0 else offset[:, k_len:]
    walked = [torch.zeros_like(moving[:, 0])] * k_len
    for step in range(1, centre + 1 if full_walk else centre):
        walked[centre + step] = walked[centre + step - 1] + moving[:, centre + step]
        walked[centre - step] = walked[centre - step + 1] + moving[:, centre - step]
    walked = torch.stack(walked, dim=1) * extend_scope  # [N, K, H, W]

    n, _, height, width = x.shape
    rows = torch.arange(height, dtype=torch.float64).view(1, 1, height, 1)
    cols = torch.arange(width, dtype=torch.float64).view(1, 1, 1, width)
    spread = (torch.arange(k_len, dtype=torch.float64) - centre).view(1, k_len, 1, 1)
    shape = (n, k_len, height, width)
    if morph == 0:
        ys, xs = (rows + walked).expand(shape), (cols + spread).expand(shape)
        stack = lambda t: t.permute(0, 2, 1, 3).reshape(n, height * k_len, width)  # noqa: E731
    else:
        ys, xs = (rows + spread).expand(shape), (cols + walked).expand(shape)
        stack = lambda t: t.permute(0, 2, 3, 1).reshape(n, height, width * k_len)  # noqa: E731
    gy = stack(ys).clamp(0, height - 1) * (2.0 / (height - 1)) - 1.0
    gx = stack(xs).clamp(0, width - 1) * (2.0 / (width - 1)) - 1.0
    sampled = F.grid_sample(x, torch.stack([gx, gy], dim=-1), mode="bilinear", padding_mode="zeros",
                            align_corners=True)
    stride = (k_len, 1) if morph == 0 else (1, k_len)
    out = F.conv2d(sampled, p["collapse.weight"], p["collapse.bias"], stride=stride)
    out = F.group_norm(out, p["norm.weight"].numel() // 4, p["norm.weight"], p["norm.bias"], eps)
    return F.relu(out)
