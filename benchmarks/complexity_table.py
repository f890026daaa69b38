"""The complexity table: params and Multi-Adds of every model at a 1280x720 output."""

from __future__ import annotations

import json
from dataclasses import dataclass

from edgesr.complexity import measure
from edgesr.models import model_entry
from edgesr.models.registry import ABLATION_NAMES, FAMILIES, SCALES


@dataclass(frozen=True, kw_only=True)
class ComplexityRow:
    name: str
    scale: int
    lr_size: str
    params: int
    published_params: int | None
    paper_g: float
    paper_nobias_g: float
    full_g: float
    published_g: float | None
    published_counts_bias: bool

    @property
    def params_match(self) -> bool | None:
        return None if self.published_params is None else self.params == self.published_params

    @property
    def multi_adds_match(self) -> bool | None:
        # Published figures have one decimal, counted with or without biases (LKDN: without).
        if self.published_g is None:
            return None
        ours = self.paper_g if self.published_counts_bias else self.paper_nobias_g
        return round(ours, 1) == self.published_g


def default_names(*, families: tuple[str, ...] = FAMILIES, scales: tuple[int, ...] = SCALES,
                  ablations: bool = True) -> list[str]:
    names = [f"{family}_x{scale}" for family in families for scale in scales]
    if ablations:
        names += [n for n in ABLATION_NAMES if model_entry(n).scale in scales]
    return names


def complexity_rows(names: list[str]) -> list[ComplexityRow]:
    rows = []
    for name in names:
        entry = model_entry(name)
        c = measure(entry.build(), scale=entry.scale)
        rows.append(ComplexityRow(
            name=name, scale=entry.scale, lr_size=f"{c.lr_width}x{c.lr_height}", params=c.params,
            published_params=entry.paper_params, paper_g=c.paper_g,
            paper_nobias_g=c.paper_nobias_g, full_g=c.full_g,
            published_g=entry.paper_multi_adds_g, published_counts_bias=entry.published_counts_bias,
        ))
    return rows


def _mark(match: bool | None) -> str:
    return "" if match is None else (" ✓" if match else " ✗")


def format_table(rows: list[ComplexityRow]) -> str:
    header = ("model", "LR in", "params", "published", "paper G", "no-bias G", "full G", "published G")
    lines = [header]
    for r in rows:
        lines.append((
            r.name, r.lr_size, f"{r.params:,}",
            (f"{r.published_params:,}" if r.published_params else "-") + _mark(r.params_match),
            f"{r.paper_g:.2f}", f"{r.paper_nobias_g:.2f}", f"{r.full_g:.2f}",
            (f"{r.published_g:.1f}" if r.published_g else "-") + _mark(r.multi_adds_match),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
            for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append("")
    text.append("Multi-Adds for a 1280x720 HR output. paper: Conv2d only, bias = 1 per output element "
                "(OSFFNet/BSRN convention); no-bias: the same without biases (LKDN's); "
                "full: every multiply-add incl. Linear/MLP, norms, interpolation, grid sampling.")
    return "\n".join(text)


def rows_as_json(rows: list[ComplexityRow]) -> str:
    return json.dumps([{**r.__dict__, "params_match": r.params_match,
                        "multi_adds_match": r.multi_adds_match} for r in rows], indent=2)
