"""Ahead-of-time compilation of the DSConv Triton kernel to PTX (no GPU needed; no torch).

``compile_dsconv`` turns the ``@triton.jit`` kernel of :mod:`edgesr.runtime.engines.trt.kernel` into
PTX for one dtype combination and one GPU architecture (``GPUTarget("cuda", 87, 32)`` for
Orin, 90 for Hopper). The TensorRT AOT plugin (:mod:`edgesr.runtime.engines.trt.plugin`) returns that
PTX from ``aot_impl``; the JIT plugin loads it through the CUDA driver. TensorRT's AOT
launcher passes exactly inputs + int32 scalars + outputs, so Triton's hidden trailing
scratch parameters are removed here when the kernel never reads them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from edgesr.errors import ConfigError, EngineUnavailableError
from edgesr.runtime.engines.trt.kernel import (
    CONSTEXPR_NAMES,
    POINTER_INPUT_NAMES,
    SCALAR_ARG_NAMES,
    DSConvLaunch,
    dsconv_kernel,
    triton,
)

__all__ = [
    "CompiledDSConv",
    "compile_dsconv",
    "ptx_entry_params",
    "strip_unused_trailing_params",
    "triton_signature",
]

_TRITON_DTYPES = {"fp32": "fp32", "float32": "fp32", "fp16": "fp16", "float16": "fp16"}


def triton_signature(
    *, x_dtype: str, offset_dtype: str, weight_dtype: str, bias_dtype: str, out_dtype: str
) -> dict[str, str]:
    """The non-constexpr part of the kernel signature for triton's AOT compiler."""

    def ptr(name: str, dtype: str) -> str:
        if dtype not in _TRITON_DTYPES:
            raise ConfigError(
                f"DSConv {name} dtype {dtype!r} is not supported; expected fp32 or fp16"
            )
        return "*" + _TRITON_DTYPES[dtype]

    sig = {
        "x_ptr": ptr("x", x_dtype),
        "offset_ptr": ptr("offset", offset_dtype),
        "weight_ptr": ptr("weight", weight_dtype),
        "bias_ptr": ptr("bias", bias_dtype),
    }
    sig.update({name: "i32" for name in SCALAR_ARG_NAMES})
    sig["y_ptr"] = ptr("output", out_dtype)
    return sig


@dataclass(frozen=True, kw_only=True)
class CompiledDSConv:
    """One AOT-compiled kernel: PTX (and cubin when ptxas ran), entry name, launch shape."""

    name: str
    ptx: str
    cubin: bytes
    num_warps: int
    shared_bytes: int
    launch: DSConvLaunch
    triton_version: str
    hidden_params: int = 0  # triton's trailing scratch pointers, stripped from ``ptx``


def compile_dsconv(
    *,
    kernel_size: int,
    morph: int,
    extend_scope: float,
    dtypes: dict[str, str],
    launch: DSConvLaunch,
    compute_capability: tuple[int, int],
    warp_size: int = 32,
    ptx_version: int | None = None,
) -> CompiledDSConv:
    """Compile the kernel for one dtype combination and GPU (no GPU needed to compile).

    ``dtypes`` has keys x, offset, weight, bias, out. The returned PTX has Triton's hidden
    trailing scratch parameters removed where the kernel never reads them (see
    :func:`strip_unused_trailing_params`), so that TensorRT's AOT launcher, which passes
    exactly inputs + scalars + outputs, matches the entry's parameter list. ``ptx_version``
    (e.g. 82) caps the PTX ISA for older drivers; the default is triton's newest.
    """
    kernel = dsconv_kernel()
    compiler = importlib.import_module("triton.compiler")
    backends = importlib.import_module("triton.backends.compiler")
    signature = triton_signature(
        x_dtype=dtypes["x"],
        offset_dtype=dtypes["offset"],
        weight_dtype=dtypes["weight"],
        bias_dtype=dtypes["bias"],
        out_dtype=dtypes["out"],
    )
    constexprs: dict[str, object] = {
        "K": int(kernel_size),
        "MORPH": int(morph),
        "EXTEND_SCOPE": float(extend_scope),
        "BLOCK_P": launch.block_p,
        "BLOCK_O": launch.block_o,
    }
    full_sig = dict(signature)
    full_sig.update({name: "constexpr" for name in CONSTEXPR_NAMES})
    try:  # triton >= 3.3: constexprs are part of the signature and passed as `constexprs`
        src = compiler.ASTSource(fn=kernel, signature=full_sig, constexprs=constexprs)
    except TypeError:  # triton 3.2 and older spell it `constants`
        src = compiler.ASTSource(fn=kernel, signature=signature, constants=constexprs)
    major, minor = compute_capability
    target = backends.GPUTarget("cuda", major * 10 + minor, warp_size)
    options: dict[str, object] = {"num_warps": launch.num_warps, "enable_fp_fusion": True}
    if ptx_version is not None:
        options["ptx_version"] = int(ptx_version)
    compiled = triton.compile(src, target=target, options=options)
    meta = compiled.metadata
    expected = len(POINTER_INPUT_NAMES) + len(SCALAR_ARG_NAMES) + 1
    raw_ptx = compiled.asm["ptx"]
    ptx = strip_unused_trailing_params(raw_ptx, keep=expected)
    return CompiledDSConv(
        name=str(meta.name),
        ptx=ptx,
        cubin=bytes(compiled.asm.get("cubin", b"")),
        num_warps=int(meta.num_warps),
        shared_bytes=int(meta.shared),
        launch=launch,
        triton_version=str(getattr(triton, "__version__", "")),
        hidden_params=len(ptx_entry_params(raw_ptx)) - expected,
    )


def ptx_entry_params(ptx: str) -> list[str]:
    """Parameter names of the (single) ``.entry`` of a PTX module."""
    start = ptx.find(".entry")
    if start < 0:
        raise ConfigError("the Triton PTX has no .entry; the kernel did not compile")
    open_paren = ptx.index("(", start)
    close_paren = ptx.index(")", open_paren)
    names = []
    for decl in ptx[open_paren + 1 : close_paren].split(","):
        decl = decl.strip()
        if decl:
            names.append(decl.split()[-1])
    return names


def strip_unused_trailing_params(ptx: str, *, keep: int) -> str:
    """Drop the entry parameters after the first ``keep`` if the body never reads them.

    Triton >= 3.3 appends ``global_scratch`` and ``profile_scratch`` pointers to every
    kernel; this kernel allocates no scratch, so they are never loaded. TensorRT's AOT
    launcher passes exactly the plugin's inputs, extra scalars and outputs; a longer
    parameter list would make the driver read arguments that were never passed.
    """
    names = ptx_entry_params(ptx)
    if len(names) < keep:
        raise ConfigError(
            f"the DSConv PTX entry has {len(names)} parameters, expected at least {keep}; "
            "the kernel signature and the plugin disagree"
        )
    extra = names[keep:]
    if not extra:
        return ptx
    start = ptx.find(".entry")
    open_paren = ptx.index("(", start)
    close_paren = ptx.index(")", open_paren)
    body = ptx[close_paren:]
    used = [name for name in extra if f"[{name}]" in body or f"{name}+" in body]
    if used:
        raise EngineUnavailableError(
            f"this triton ({getattr(triton, '__version__', '?')}) gives the DSConv kernel "
            f"hidden parameters {used} that it reads, which TensorRT's AOT plugin launcher "
            "cannot pass; install triton 3.2 (NVIDIA's sample pins it) or use the JIT plugin "
            "(TrtOptions(plugin_impl='jit'))"
        )
    decls = [d for d in ptx[open_paren + 1 : close_paren].split(",") if d.strip()]
    kept = ",".join(decls[:keep])
    if not kept.endswith("\n"):
        kept += "\n"
    return ptx[: open_paren + 1] + kept + ptx[close_paren:]
