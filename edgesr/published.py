"""Published Set5/Set14 rows (Y channel, scale-pixel border) that shipped weights are compared with.

Standard library only. Sources:
- OSFFNet and BSRN: the OSFFNet paper (Wang and Zhang, AAAI 2024), Table 1 (BSRN's rows there
  are the ones BSRN's own paper prints).
- LKDN: Xie et al., "Large Kernel Distillation Network for Efficient Single Image
  Super-Resolution", CVPRW 2023, Table 4 (x4 only; repeated in the authors' README).
- LMFN (ICASSP 2025) publishes no numbers for our reconstruction; its card shows its donor's.
"""

from __future__ import annotations

OSFFNET_PAPER = "OSFFNet paper (AAAI 2024), Table 1"
LKDN_PAPER = "LKDN paper (CVPRW 2023), Table 4"

# (model, benchmark) -> (PSNR dB, SSIM, source)
PUBLISHED: dict[tuple[str, str], tuple[float, float, str]] = {
    ("osffnet_x2", "Set5"): (38.11, 0.9610, OSFFNET_PAPER), ("osffnet_x2", "Set14"): (33.72, 0.9190, OSFFNET_PAPER),
    ("osffnet_x3", "Set5"): (34.58, 0.9287, OSFFNET_PAPER), ("osffnet_x3", "Set14"): (30.48, 0.8450, OSFFNET_PAPER),
    ("osffnet_x4", "Set5"): (32.39, 0.8976, OSFFNET_PAPER), ("osffnet_x4", "Set14"): (28.75, 0.7852, OSFFNET_PAPER),
    ("bsrn_x2", "Set5"): (38.10, 0.9610, OSFFNET_PAPER), ("bsrn_x2", "Set14"): (33.74, 0.9193, OSFFNET_PAPER),
    ("bsrn_x3", "Set5"): (34.46, 0.9277, OSFFNET_PAPER), ("bsrn_x3", "Set14"): (30.47, 0.8449, OSFFNET_PAPER),
    ("bsrn_x4", "Set5"): (32.35, 0.8966, OSFFNET_PAPER), ("bsrn_x4", "Set14"): (28.73, 0.7847, OSFFNET_PAPER),
    ("lkdn_x4", "Set5"): (32.39, 0.8979, LKDN_PAPER), ("lkdn_x4", "Set14"): (28.79, 0.7859, LKDN_PAPER),
}


def published_row(model: str, benchmark: str) -> tuple[float, float, str] | None:
    return PUBLISHED.get((model, benchmark))
