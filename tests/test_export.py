"""PyTorch -> ONNX export: parity, dynamic axes, metadata, DSConv nodes, params, cache.

Real exporter, onnxsim/onnxslim and ONNX Runtime throughout (no mocks). Tiny models for
speed; the full-size OSFFNet x4 and LMFN x4 where the numbers matter (parameter count,
FP32/FP16 parity on a real photo crop) in test_export_full.py.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgesr.export.cache import cache_key, cached_onnx_for  # noqa: E402
from edgesr.export.dsconv_onnx import dsconv_nodes  # noqa: E402
from edgesr.export.onnx_export import (  # noqa: E402
    export_model,
    onnx_from_model,
    spec_for,
)
from edgesr.export.graph_tidy import float_param_count  # noqa: E402
from edgesr.export.simplify import simplify_onnx  # noqa: E402
from edgesr.export.parity import (  # noqa: E402
    FP32_MAX_ABS_ERROR,
    FP32_MIN_PSNR_DB,
    check_parity,
    onnx_session,
    run_onnx,
)

from edgesr.errors import ConfigError, OutputError, UnknownNameError  # noqa: E402
from edgesr.metrics import psnr  # noqa: E402
from edgesr.models.registry import model_entry, model_name  # noqa: E402
from edgesr.ops.dsconv import DSConv  # noqa: E402
from edgesr.spec import DSCONV_DOMAIN, ModelSpec  # noqa: E402
from edgesr.weights_io import save_weights, weights_sha256  # noqa: E402
from export_util import perturbed, seeded_model  # noqa: E402
from oracles import assert_checker_agrees, ort_sr, torch_sr  # noqa: E402

TINY = ("osffnet-tiny_x4", "lmfn-tiny_x4")


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """(model, proto, path) for each tiny model, exported once per module."""
    folder = tmp_path_factory.mktemp("tiny")
    out = {}
    for name in TINY:
        model = seeded_model(name)
        path = folder / f"{name}.onnx"
        proto = onnx_from_model(model, spec=spec_for(name, model=model), path=path)
        out[name] = (model, proto, path)
    return out


# --------------------------------------------------------------------------- tiny models


@pytest.mark.parametrize("name", TINY)
def test_parity_at_other_size_and_batch_2(tiny_exports, name: str) -> None:
    model, _, path = tiny_exports[name]
    session = onnx_session(path)
    lr = np.random.default_rng(1).random((2, 3, 21, 27), dtype=np.float32)  # trace: 1x3x32x48
    sr = run_onnx(session, lr)
    ref = torch_sr(model, lr)
    assert sr.shape == (2, 3, 84, 108)
    assert np.abs(sr - ref).max() <= FP32_MAX_ABS_ERROR
    assert psnr(sr, ref, data_range=1.0) >= FP32_MIN_PSNR_DB
    # the two batch items are independent: item 1 alone gives the same output
    alone = run_onnx(session, lr[1:])
    assert np.abs(alone[0] - sr[1]).max() < 1e-5


@pytest.mark.parametrize("name", TINY)
def test_io_names_and_dynamic_axes(tiny_exports, name: str) -> None:
    _, proto, _ = tiny_exports[name]
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("lr", "sr")
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert in_dims == ["batch", 3, "height", "width"]
    assert out_dims == ["batch", 3, "sr_height", "sr_width"]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {i.domain or "": i.version for i in proto.opset_import}[""] == 18


def test_metadata_round_trip_through_onnx_and_onnxruntime(tiny_exports) -> None:
    name = "osffnet-tiny_x4"
    model, _, path = tiny_exports[name]
    from_onnx = ModelSpec.from_metadata(
        {p.key: p.value for p in onnx.load(str(path)).metadata_props}, source=str(path)
    )
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    from_ort = ModelSpec.from_metadata(dict(meta.custom_metadata_map), source=str(path))
    expected = spec_for(name, model=model)
    assert from_onnx == from_ort == expected
    import edgesr

    assert from_onnx.scale == 4 and from_onnx.arch == name and from_onnx.precision == "fp32"
    assert from_onnx.edgesr_version == edgesr.__version__
    assert from_onnx.weights_sha256 == weights_sha256(model)
    assert from_onnx.min_size_px == model_entry(name).min_input_px == 15
    assert (from_onnx.tile_px, from_onnx.overlap_px) == (256, 16)


def test_lmfn_one_custom_node_per_dsconv_runs_in_ort_and_reference(tiny_exports) -> None:
    model, proto, _ = tiny_exports["lmfn-tiny_x4"]
    modules = [m for m in model.modules() if isinstance(m, DSConv)]
    nodes = dsconv_nodes(proto)
    assert len(modules) > 0 and len(nodes) == len(modules)
    assert all(n.domain == DSCONV_DOMAIN for n in nodes)
    morphs = sorted(next(a.i for a in n.attribute if a.name == "morph") for n in nodes)
    assert morphs == sorted(m.morph for m in modules)
    assert [(f.domain, f.name) for f in proto.functions] == [(DSCONV_DOMAIN, "DynamicSnakeConv")]

    lr = np.random.default_rng(2).random((1, 3, 9, 11), dtype=np.float32)
    ref = torch_sr(model, lr)
    from onnx.reference import ReferenceEvaluator

    by_reference = ReferenceEvaluator(proto).run(None, {"lr": lr})[0]
    by_ort = run_onnx(onnx_session(proto), lr)
    assert np.abs(by_reference - ref).max() < 1e-4
    assert np.abs(by_ort - ref).max() < 1e-4


def test_inline_functions_leaves_no_custom_nodes_and_still_matches() -> None:
    name = "lmfn-tiny_x4"
    model = seeded_model(name)
    proto = onnx_from_model(model, spec=spec_for(name, model=model), path=None,
                            inline_functions=True)
    assert not any(n.domain == DSCONV_DOMAIN for n in proto.graph.node)
    assert not proto.functions
    assert DSCONV_DOMAIN not in {i.domain for i in proto.opset_import}
    assert any(n.op_type == "GridSample" for n in proto.graph.node)
    lr = np.random.default_rng(3).random((2, 3, 13, 18), dtype=np.float32)
    result = check_parity(model, proto, lr=lr, scale=4)
    assert assert_checker_agrees(result, torch_sr(model, lr), ort_sr(proto, lr), fp16=False)


@pytest.mark.parametrize("name", TINY)
def test_check_parity_says_no_to_weights_that_differ_from_the_graph(tiny_exports, name: str) -> None:
    """The graph was exported from the model; the model's first conv then moves by 2 % of its
    weights' scale: torch (the oracle) and the graph differ, and the checker must say so."""
    model, proto, _ = tiny_exports[name]
    changed = copy.deepcopy(model)
    conv = next(m for m in changed.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        conv.weight.add_(0.02 * conv.weight.abs().max())
    lr = np.random.default_rng(5).random((1, 3, 15, 17), dtype=np.float32)
    result = check_parity(changed, proto, lr=lr, scale=4)
    assert not assert_checker_agrees(result, torch_sr(changed, lr), ort_sr(proto, lr), fp16=False)
    assert result.max_abs_error > FP32_MAX_ABS_ERROR and "FAILED" in result.line()
    # and the untouched model passes on the same input: the verdict follows the weights
    assert assert_checker_agrees(check_parity(model, proto, lr=lr, scale=4), torch_sr(model, lr),
                                 ort_sr(proto, lr), fp16=False)


def test_onnxslim_simplifier_handles_the_custom_node(tiny_exports) -> None:
    """onnxslim (the fallback when onnxsim fails) on a graph with the custom node and its
    local function: axes stay dynamic, one node per DSConv, same output."""
    model, proto, _ = tiny_exports["lmfn-tiny_x4"]
    slim, used = simplify_onnx(proto, simplifiers=("onnxslim",))
    assert used.startswith("onnxslim ")
    dims = slim.graph.input[0].type.tensor_type.shape.dim
    assert not any(dims[a].HasField("dim_value") for a in (0, 2, 3))
    assert len(dsconv_nodes(slim)) == len(dsconv_nodes(proto))
    lr = np.random.default_rng(4).random((1, 3, 19, 14), dtype=np.float32)
    assert np.abs(run_onnx(onnx_session(slim), lr) - torch_sr(model, lr)).max() < 1e-4
    with pytest.raises(ConfigError, match="unknown simplifier"):
        simplify_onnx(proto, simplifiers=("onnxopt",))


def test_export_model_report_and_untrained_warning(tmp_path, caplog) -> None:
    out = tmp_path / "tiny.onnx"
    with caplog.at_level(logging.WARNING):
        report = export_model("osffnet-tiny", scale=4, output=out)
    assert "UNTRAINED" in caplog.text
    assert report.model == "osffnet-tiny_x4" and report.weights_source == "untrained initialization"
    assert report.path == out and report.size_bytes == out.stat().st_size > 0
    saved = onnx.load(str(out))
    assert report.node_total == len(saved.graph.node)
    assert report.node_counts["Conv"] == sum(n.op_type == "Conv" for n in saved.graph.node)
    assert report.params == float_param_count(saved) > 0
    assert report.simplifier.startswith("onnxsim ")
    assert [r.label for r in report.parity] == ["odd-size random", "photo crop"]
    assert [r.input_shape for r in report.parity] == [(1, 3, 37, 29), (1, 3, 96, 96)]
    assert all(r.passed and r.reference == "torch" for r in report.parity)
    assert report.fp32_nodes == () and report.precision == "fp32"
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temp file


def test_export_model_argument_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="needs a scale"):
        model_name("osffnet")
    with pytest.raises(ConfigError, match="x4 model but --scale 2"):
        export_model("osffnet_x4", scale=2, output=tmp_path / "a.onnx")
    with pytest.raises(UnknownNameError, match="osffnet_x4"):
        export_model("osfnet_x4", output=tmp_path / "a.onnx")
    with pytest.raises(ConfigError, match="opset"):
        export_model("osffnet-tiny_x4", opset=11, output=tmp_path / "a.onnx")
    with pytest.raises(OutputError, match="does not exist"):
        export_model("osffnet-tiny_x4", output=tmp_path / "missing" / "a.onnx")
    existing = tmp_path / "keep.onnx"
    existing.write_bytes(b"mine")
    with pytest.raises(OutputError, match="already exists"):
        export_model("osffnet-tiny_x4", output=existing, overwrite=False)
    assert existing.read_bytes() == b"mine"
    with pytest.raises(ConfigError, match="FP32 graphs"):
        onnx_from_model(seeded_model("osffnet-tiny_x4"), path=None,
                        spec=spec_for("osffnet-tiny_x4", precision="fp16"))


# --------------------------------------------------------------------------- cache


def test_cache_reuses_and_invalidates(tmp_path) -> None:
    name = "osffnet-tiny_x4"
    weights = tmp_path / "w.safetensors"
    save_weights(perturbed(seeded_model(name), seed=1), weights)
    cache = tmp_path / "cache"
    first = cached_onnx_for(name, weights=weights, cache_dir=cache)
    stamp = first.stat().st_mtime_ns
    again = cached_onnx_for(name, weights=weights, cache_dir=cache)
    assert again == first and again.stat().st_mtime_ns == stamp  # not exported again

    save_weights(perturbed(seeded_model(name), seed=2), weights)  # new weights: new key, new file
    changed = cached_onnx_for(name, weights=weights, cache_dir=cache)
    assert changed != first and changed.is_file()
    assert first.stat().st_mtime_ns == stamp
    meta = {p.key: p.value for p in onnx.load(str(changed)).metadata_props}
    assert meta["edgesr.weights_sha256"] != {
        p.key: p.value for p in onnx.load(str(first)).metadata_props
    }["edgesr.weights_sha256"]

    keys = {cache_key(name, weights=weights), cache_key(name, weights=weights, opset=17),
            cache_key(name, weights=weights, fp16=True), cache_key(name)}
    assert len(keys) == 4 and "weights=untrained" in cache_key(name)


def test_default_cache_dir_follows_environment(tmp_path, monkeypatch) -> None:
    """Without cache_dir, exports go under edgesr's one cache root (edgesr.fileio.cache_dir):
    $EDGESR_CACHE_DIR/onnx, else ~/.cache/edgesr/onnx."""
    import edgesr.export.cache as cache_module

    def fake_export(name: str, *, output: Path, **_: object) -> None:
        Path(output).write_bytes(b"")

    monkeypatch.setattr(cache_module, "export_model", fake_export)
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path))
    assert cached_onnx_for("osffnet-tiny_x4").parent == tmp_path / "onnx"
    monkeypatch.delenv("EDGESR_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cached_onnx_for("osffnet-tiny_x4").parent == Path.home() / ".cache" / "edgesr" / "onnx"
