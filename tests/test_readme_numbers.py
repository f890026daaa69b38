"""The numbers the README and docs/ quote that do not depend on machine speed, read back from
the text and compared with their sources: quality with the model cards (what edgesr-eval
measured) and the papers' tables (edgesr/published.py), parameter counts and Multi-Adds with the
models themselves, versions with the constraints files, roofline figures with predict's own
count and the datasheet figures of benchmarks/targets.json. Timings are not here: each names
the command and the machine that measured it.

When a model card changes (new weights), these fail until the text follows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgesr.published import PUBLISHED
from edgesr.weights import model_card, shipped_onnx

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
PAIR = r"(\d+\.\d+) / (\d\.\d+)"


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def _rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell (bold marks and notes in parentheses dropped)."""
    rows = {}
    lines = text.splitlines()
    for line, below in zip(lines, [*lines[1:], ""]):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        header = below.startswith("|---") or below.startswith("|:")
        if line.startswith("|") and len(cells) > 1 and not header and not set(cells[0]) <= set("-: "):
            rows[re.sub(r"\s*\(.*\)$", "", cells[0].replace("**", "")).strip()] = cells[1:]
    return rows


def _card_rows(name: str) -> dict[str, tuple[str, str]]:
    """The card's own Set5/Set14 cells ('32.39', '0.8979'), and its bicubic cells."""
    text = model_card(name).read_text(encoding="utf-8")
    found = {}
    for bench in ("Set5", "Set14"):
        line = next(line for line in text.splitlines() if line.startswith(f"| {bench} |"))
        ours, bicubic = re.search(rf"\*\*{PAIR}\*\*", line), re.findall(PAIR, line)[-1]
        found[bench], found[f"bicubic {bench}"] = ours.groups(), bicubic
    return found


def _pair(cell: str) -> tuple[str, str]:
    return re.fullmatch(PAIR, cell.replace("**", "").strip()).groups()


def _published(name: str) -> str:
    if (name, "Set5") not in PUBLISHED:
        return "not published"
    (p5, s5, _), (p14, s14, _) = PUBLISHED[name, "Set5"], PUBLISHED[name, "Set14"]
    return f"{p5:.2f} / {s5:.4f}, {p14:.2f} / {s14:.4f}"


README_MODELS = ("lkdn_x4", "bsrn_x4", "osffnet_x4", "lmfn_x4")


@pytest.fixture(scope="module")
def counted() -> dict[str, tuple[int, float]]:
    """(params, paper-convention Multi-Adds in G at a 1280x720 output) of the README's models,
    counted on PyTorch's meta device."""
    torch = pytest.importorskip("torch")
    from edgesr.complexity import lr_size_for_hr, paper_multi_adds
    from edgesr.models.registry import count_params, create_model

    counts = {}
    for name in README_MODELS:
        with torch.device("meta"):
            model = create_model(name)
        height, width = lr_size_for_hr(scale=4)
        with_bias, _ = paper_multi_adds(model, torch.zeros(1, 3, height, width, device="meta"))
        counts[name] = (count_params(model), with_bias / 1e9)
    return counts


def test_readme_model_table_follows_cards_papers_and_models(counted) -> None:
    rows = _rows(_section(README, "## Models"))
    assert set(rows) == {*README_MODELS, "bicubic"}
    for name in README_MODELS:
        params, multi_adds, set5, set14, paper, weights, onnx = rows[name]
        card = _card_rows(name)
        assert (_pair(set5), _pair(set14)) == (card["Set5"], card["Set14"]), name
        assert paper == _published(name), name
        assert int(params.replace(",", "")) == counted[name][0], name
        assert multi_adds == f"{counted[name][1]:.2f} G", name
        assert onnx == ("yes" if shipped_onnx(name) else "no"), name
        assert weights == ("authors' checkpoint" if name.startswith(("lkdn", "bsrn")) else
                           f"distilled from {'bsrn' if name.startswith('osffnet') else 'lkdn'}_x4 here"), name
    bicubic = rows["bicubic"]
    assert (_pair(bicubic[2]), _pair(bicubic[3])) == (card["bicubic Set5"], card["bicubic Set14"])


def test_quick_start_numbers() -> None:
    from PIL import Image

    from edgesr.spec import DEFAULT_MODEL

    quick = _section(README, "## Quick start")
    example = re.search(r"edgesr-run (\S+\.png) -o out\.png", quick).group(1)
    with Image.open(REPO / example) as image:
        width, height = image.size
    assert f"`out.png`\nis {4 * width}×{4 * height}." in quick and DEFAULT_MODEL == "lkdn_x4"
    assert f"model shipped: {_card_rows(DEFAULT_MODEL)['Set5'][0]} dB on Set5)" in quick
    assert len(quick.strip().splitlines()) <= 40


def test_install_versions_follow_the_constraints_files() -> None:
    install = _section(README, "## Installing")
    pins = {}
    for name in ("cpu", "jetson", "trt-cu12"):
        for line in (REPO / "constraints" / f"{name}.txt").read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                package, version = line.split("==")
                pins[name, package.strip()] = version.split()[0]
    assert f"`constraints/cpu.txt` pins torch {pins['cpu', 'torch']}" in install
    assert f"onnxruntime wheels for it stop at {pins['jetson', 'onnxruntime']}, the version it pins" in install
    pyproject = (REPO / "pyproject.toml").read_text()
    trt = re.search(r'"tensorrt-cu12==([\d.]+)"', pyproject).group(1)
    assert f"adds TensorRT {trt}," in install


def test_training_doc_table_follows_cards_and_papers() -> None:
    rows = _rows((REPO / "docs" / "training.md").read_text(encoding="utf-8"))
    shipped = sorted(p.stem for p in (REPO / "edgesr" / "weights").glob("*.safetensors"))
    assert set(shipped) <= set(rows)
    for name in shipped:
        set5, set14, paper = rows[name][:3]
        card = _card_rows(name)
        assert (_pair(set5), _pair(set14)) == (card["Set5"], card["Set14"]), name
        if (name, "Set5") in PUBLISHED:
            assert paper == _published(name), name
    assert (_pair(rows["bicubic"][0]), _pair(rows["bicubic"][1])) == (card["bicubic Set5"], card["bicubic Set14"])


#: The names each row of docs/models.md's complexity table covers, in its column order.
COMPLEXITY_ROWS = {
    "osffnet_x2 / x3 / x4": ["osffnet_x2", "osffnet_x3", "osffnet_x4"],
    "osffnet-000_x4": ["osffnet-000_x4"],
    "osffnet-noatt / -esa / -cca _x4": ["osffnet-noatt_x4", "osffnet-esa_x4", "osffnet-cca_x4"],
    "lmfn_x2 / x3 / x4": ["lmfn_x2", "lmfn_x3", "lmfn_x4"],
    "bsrn_x4 / x3 / x2": ["bsrn_x4", "bsrn_x3", "bsrn_x2"],
    "imdn_x4 / x3 / x2": ["imdn_x4", "imdn_x3", "imdn_x2"],
    "lkdn_x4": ["lkdn_x4"],
}


def test_models_doc_complexity_table_params_and_published_figures() -> None:
    torch = pytest.importorskip("torch")
    from edgesr.models.registry import count_params, create_model, model_entry

    text = _section((REPO / "docs" / "models.md").read_text(encoding="utf-8"), "## Complexity")
    rows = _rows(text)
    assert set(COMPLEXITY_ROWS) <= set(rows)
    for label, names in COMPLEXITY_ROWS.items():
        params = [int(p.replace(",", "")) for p in rows[label][0].split(" / ")]
        published_g = re.findall(r"\d+\.\d", rows[label][3])
        for i, name in enumerate(names):
            with torch.device("meta"):
                assert params[i] == count_params(create_model(name)), name
            entry = model_entry(name)
            if entry.paper_multi_adds_g is not None and published_g:
                assert float(published_g[i]) == entry.paper_multi_adds_g, name


def test_predict_figures_in_the_benchmarks_doc() -> None:
    """docs/benchmarks.md quotes predict on the shipped osffnet_x4 for the Orin NX at 1280x720."""
    from edgesr.benchmarks.onnx_cost import model_cost
    from edgesr.benchmarks.roofline import dominant_ops, roofline_floor, target

    text = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    cost = model_cost(shipped_onnx("osffnet_x4"), height=180, width=320)
    nx = target("jetson-orin-nx")
    floor = roofline_floor(cost, nx, precision="fp32")
    shares = dict(dominant_ops(cost, bound=floor.bound, precision="fp32"))
    quoted = (f"{cost.multi_adds / 1e9:.3f} G Multi-Adds → compute {floor.compute_s * 1e3:.2f} ms at "
              f"{nx.peak_tflops['fp32']:g} TFLOPS fp32; {cost.bytes_at('fp32') / 1e9:.1f} GB moved → memory\n"
              f"{floor.memory_s * 1e3:.2f} ms at {nx.memory_bandwidth_gbs:g} GB/s; floor {floor.floor_s * 1e3:.2f} ms "
              f"({floor.fps_bound:.1f} FPS), {floor.bound}-bound, "
              + ", ".join(f"{op} {share:.0%}".replace("%", " %") for op, share in list(shares.items())[:3]))
    assert quoted in text
    assert f"the shipped\n  deployment form has {cost.multi_adds:,}" in text
