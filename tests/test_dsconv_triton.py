"""The fused DSConv Triton kernel vs the numpy oracle, on CPU under TRITON_INTERPRET=1.

triton reads TRITON_INTERPRET when a kernel is defined, and other tests in this process may
import triton without it, so the kernel runs in a fresh subprocess that sets the variable
before anything imports triton (one subprocess for all cases; the interpreter needs torch
CPU tensors to hand it memory). The AOT path (Triton -> PTX for a GPU that is not here) is
compiled in a second subprocess without the interpreter; ptxas ships with triton.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgesr.errors import ConfigError, EngineUnavailableError

HAS_TRITON = importlib.util.find_spec("triton") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (pip install triton)")
needs_torch = pytest.mark.skipif(
    not HAS_TORCH, reason="the Triton interpreter needs torch CPU tensors; torch is not installed"
)
REPO = Path(__file__).resolve().parents[1]

# (name, K, morph, N, C, H, W, O, extend_scope, dtype, layout)
CASES = [
    ("k3_m0", 3, 0, 1, 3, 5, 7, 4, 1.0, "float32", "nchw"),
    ("k3_m1", 3, 1, 2, 4, 6, 5, 3, 1.0, "float32", "nchw"),
    ("k5_m0", 5, 0, 1, 2, 7, 4, 5, 1.0, "float32", "nchw"),
    ("k5_m1_scope", 5, 1, 2, 3, 4, 9, 6, 0.7, "float32", "nchw"),
    ("k3_m0_many_o_pixels", 3, 0, 1, 2, 9, 20, 40, 1.3, "float32", "nchw"),  # 2 O-blocks, 2 P-blocks
    ("k3_m1_one_row", 3, 1, 1, 2, 1, 6, 3, 1.0, "float32", "nchw"),  # H == 1
    ("k5_m0_one_col", 5, 0, 1, 2, 6, 1, 3, 1.0, "float32", "nchw"),  # W == 1
    ("k3_m0_channels_last", 3, 0, 2, 3, 5, 6, 4, 1.0, "float32", "nhwc"),  # strided x and y
    ("k3_m1_fp16", 3, 1, 1, 3, 6, 5, 4, 1.0, "float16", "nchw"),
]

_SCRIPT = textwrap.dedent(
    r"""
    import json, os, sys
    os.environ["TRITON_INTERPRET"] = "1"
    import numpy as np
    import torch
    from edgesr.ops.dsconv_reference import dynamic_snake_conv_reference
    from edgesr.runtime.engines.trt import kernel as dt, kernel_compile as dc

    cases = json.loads(sys.argv[1])
    rng = np.random.default_rng(0)
    results = {}
    for name, K, morph, N, C, H, W, O, scope, dtype, layout in cases:
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        # offsets of several pixels so that points leave the image and get clamped
        off = (np.tanh(rng.standard_normal((N, 2 * K, H, W)) * 2.0) * 2.5).astype(np.float32)
        wshape = (O, C, K, 1) if morph == 0 else (O, C, 1, K)
        w = rng.standard_normal(wshape).astype(np.float32)
        b = rng.standard_normal(O).astype(np.float32)
        tdt = getattr(torch, dtype)
        x_np, off_np, w_np, b_np = (a.astype(dtype).astype(np.float64) for a in (x, off, w, b))
        ref = dynamic_snake_conv_reference(x_np, off_np, w_np, b_np, kernel_size=K, morph=morph, extend_scope=scope)
        xt = torch.from_numpy(x).to(tdt)
        yt = torch.full((N, O, H, W), float("nan"), dtype=tdt)
        if layout == "nhwc":  # same values, channels-last memory: non-contiguous strides
            xt = xt.contiguous(memory_format=torch.channels_last)
            yt = yt.contiguous(memory_format=torch.channels_last)
        ot = torch.from_numpy(off).to(tdt)
        wt = torch.from_numpy(w.reshape(O, -1).copy()).to(tdt)
        bt = torch.from_numpy(b).to(tdt)
        launch = dt.choose_launch(out_channels=O, block_p=16)
        scalars = dt.scalar_args(
            x_shape=tuple(xt.shape), out_channels=O, kernel_size=K,
            x_strides=xt.stride(), offset_strides=ot.stride(), out_strides=yt.stride(),
        )
        grid = launch.grid(npix=N * H * W, out_channels=O)
        dt.dsconv_kernel()[grid](
            xt, ot, wt, bt, *scalars, yt,
            K=K, MORPH=morph, EXTEND_SCOPE=scope, BLOCK_P=launch.block_p, BLOCK_O=launch.block_o,
        )
        out = yt.float().numpy().astype(np.float64)
        results[name] = {
            "max_abs": float(np.abs(out - ref).max()),
            "finite": bool(np.isfinite(out).all()),
            "shape": list(out.shape),
            "grid": list(grid),
        }
    print("RESULTS " + json.dumps(results))
    """
)

_COMPILE_SCRIPT = textwrap.dedent(
    r"""
    import json, os
    os.environ.pop("TRITON_INTERPRET", None)
    from edgesr.runtime.engines.trt import kernel as dt, kernel_compile as dc
    out = {}
    for name, dtypes, cc, ptx_version in [
        ("fp32_sm87_isa82", dict(x="fp32", offset="fp32", weight="fp32", bias="fp32", out="fp32"), (8, 7), 82),
        ("fp16_sm90", dict(x="fp16", offset="fp32", weight="fp16", bias="fp16", out="fp16"), (9, 0), None),
    ]:
        c = dc.compile_dsconv(
            kernel_size=3, morph=1, extend_scope=1.0, dtypes=dtypes,
            launch=dt.choose_launch(out_channels=14), compute_capability=cc, ptx_version=ptx_version,
        )
        lines = c.ptx.splitlines()
        out[name] = {
            "name": c.name,
            "params": len(dc.ptx_entry_params(c.ptx)),
            "hidden": c.hidden_params,
            "version": [l for l in lines if l.startswith(".version")],
            "target": [l for l in lines if l.startswith(".target")],
            "reqntid": [l.strip() for l in lines if l.strip().startswith(".reqntid")],
            "num_warps": c.num_warps,
            "cubin": len(c.cubin),
        }
    print("RESULTS " + json.dumps(out))
    """
)


def _run(script: str, *args: str, interpret: bool) -> dict[str, dict[str, object]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences triton 3.9's notice
    if not interpret:
        env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=str(REPO),
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULTS "))
    return json.loads(line[len("RESULTS ") :])


@pytest.fixture(scope="module")
def interpreter_results() -> dict[str, dict[str, object]]:
    return _run(_SCRIPT, json.dumps(CASES), interpret=True)


@needs_triton
@needs_torch
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_kernel_matches_numpy_oracle(case: tuple[object, ...], interpreter_results: dict[str, dict[str, object]]) -> None:
    name, _, _, n, _, h, w, o, _, dtype, _ = case
    result = interpreter_results[str(name)]
    assert result["finite"], "the kernel left NaN (unwritten) outputs"
    assert result["shape"] == [n, o, h, w]
    tolerance = 1e-4 if dtype == "float32" else 2e-2  # fp16 storage of the output
    assert float(result["max_abs"]) < tolerance, result  # type: ignore[arg-type]


@needs_triton
def test_aot_compiles_to_ptx_for_tensorrt() -> None:
    results = _run(_COMPILE_SCRIPT, interpret=False)
    for name, info in results.items():
        # 4 input pointers + 17 int32 scalars + 1 output: TensorRT's AOT calling convention
        assert info["params"] == 22, (name, info)
        assert info["name"] == "edgesr_dsconv_kernel"
        assert info["reqntid"] == [f".reqntid {int(info['num_warps']) * 32}"]  # type: ignore[call-overload]
        assert int(info["cubin"]) > 0  # type: ignore[call-overload]
    assert results["fp32_sm87_isa82"]["version"] == [".version 8.2"]
    assert results["fp32_sm87_isa82"]["target"] == [".target sm_87"]
    assert results["fp16_sm90"]["target"][0].startswith(".target sm_90")  # type: ignore[index]


# --------------------------------------------------------------------------- pure helpers

from edgesr.runtime.engines.trt import kernel as dt, kernel_compile as dc  # noqa: E402  (no triton needed for these)

_PTX = """//
.version 8.8
.target sm_87
.visible .entry edgesr_dsconv_kernel(
	.param .u64 .ptr .global .align 1 k_param_0,
	.param .u32 k_param_1,
	.param .u64 .ptr .global .align 1 k_param_2,
	.param .u64 .ptr .global .align 1 k_param_3,
	.param .u64 .ptr .global .align 1 k_param_4
)
.reqntid 128
{
	ld.param.b64 	%rd3, [k_param_0];
	ld.param.b32 	%r4, [k_param_1];
	ld.param.b64 	%rd4, [k_param_2];
}
"""


def test_strip_unused_trailing_params() -> None:
    assert dc.ptx_entry_params(_PTX) == [f"k_param_{i}" for i in range(5)]
    stripped = dc.strip_unused_trailing_params(_PTX, keep=3)
    assert dc.ptx_entry_params(stripped) == ["k_param_0", "k_param_1", "k_param_2"]
    assert "k_param_3" not in stripped and stripped.endswith(_PTX[_PTX.index(")") :])
    assert dc.strip_unused_trailing_params(_PTX, keep=5) == _PTX
    used = _PTX.replace("[k_param_2];", "[k_param_4];")
    with pytest.raises(EngineUnavailableError, match="hidden parameters"):
        dc.strip_unused_trailing_params(used, keep=3)
    with pytest.raises(ConfigError, match="expected at least 6"):
        dc.strip_unused_trailing_params(_PTX, keep=6)
    with pytest.raises(ConfigError, match="no .entry"):
        dc.ptx_entry_params("// empty")


def test_launch_and_scalar_helpers() -> None:
    launch = dt.choose_launch(out_channels=14)
    assert (launch.block_p, launch.block_o, launch.num_warps) == (128, 16, 4)
    assert dt.choose_launch(out_channels=1).block_o == 2
    assert dt.choose_launch(out_channels=100).block_o == 32
    assert launch.grid(npix=2 * 7 * 40, out_channels=14) == (5, 1, 1)
    with pytest.raises(ConfigError):
        dt.choose_launch(out_channels=0)
    with pytest.raises(ConfigError):
        dt.choose_launch(out_channels=4, block_p=100)
    assert dt.contiguous_strides((2, 3, 4, 5)) == (60, 20, 5, 1)
    scalars = dt.scalar_args(x_shape=(2, 3, 4, 5), out_channels=6, kernel_size=3)
    assert dict(zip(dt.SCALAR_ARG_NAMES, scalars)) == {
        "C": 3, "H": 4, "W": 5, "O": 6, "NPIX": 40,
        "sxn": 60, "sxc": 20, "sxh": 5, "sxw": 1,
        "son": 120, "soc": 20, "soh": 5, "sow": 1,
        "syn": 120, "syc": 20, "syh": 5, "syw": 1,
    }  # fmt: skip
    with pytest.raises(ConfigError, match="int32"):
        dt.scalar_args(x_shape=(1, 64, 40000, 40000), out_channels=4, kernel_size=3)
    sig = dc.triton_signature(x_dtype="fp16", offset_dtype="fp32", weight_dtype="fp16", bias_dtype="fp32", out_dtype="fp16")
    assert list(sig)[:4] == list(dt.POINTER_INPUT_NAMES) and list(sig)[-1] == "y_ptr"
    assert sig["x_ptr"] == "*fp16" and sig["C"] == "i32" and len(sig) == 22
    with pytest.raises(ConfigError, match="int8"):
        dc.triton_signature(x_dtype="int8", offset_dtype="fp32", weight_dtype="fp32", bias_dtype="fp32", out_dtype="fp32")


def test_module_imports_without_triton_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dt, "HAVE_TRITON", False)
    monkeypatch.setattr(dt, "TRITON_IMPORT_ERROR", "ModuleNotFoundError: No module named 'triton'")
    with pytest.raises(EngineUnavailableError, match="pip install triton") as info:
        dt.dsconv_kernel()
    assert "\n" not in str(info.value)
