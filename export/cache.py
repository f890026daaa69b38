"""Export once, reuse after: ONNX files cached per model, weights, edgesr version, opset and
precision. ``edgesr-run --model NAME`` reaches :func:`cached_onnx_for` through importlib (the
runtime cannot import torch code itself).

The cache folder is ``edgesr.fileio.cache_dir("onnx")``: ``$EDGESR_CACHE_DIR/onnx`` when that
variable is set, else ``$XDG_CACHE_HOME/edgesr/onnx``, else ``~/.cache/edgesr/onnx``. A file's name carries the model, precision, opset and a short hash of
the whole key::

    osffnet_x4_fp32_opset18_3f9a0c1b2d4e.onnx

The key's weights part is the SHA-256 of the ``weights`` file's bytes; without a file it is
``shipped-<sha256 of the shipped file>`` when edgesr ships weights for the model (hashing the
shipped file too, so a development checkout whose shipped weights change without a version
bump re-exports), else ``untrained`` (the seeded, reproducible initialization). Any change of
the key gives a new file name, so a stale file is never reused; a file whose metadata does
not match its key (e.g. a truncated write by another tool) is exported again.

An exported graph is code the runtime executes, so the cache follows edgesr's trust rule
(:mod:`edgesr.trust`): the cache root and folder must be this user's own and not
group/world-writable (else one warning and the export goes to a private temporary folder),
and a file is used only when it is this user's own regular file whose SHA-256, recorded at
export time (``<file>.sha256``), matches (else one warning and it is exported again).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import onnx
from edgesr import trust
from edgesr.export.model_loading import refuse_untrained
from edgesr.export.onnx_export import export_model

import edgesr
from edgesr.errors import WeightsError, printable
from edgesr.fileio import file_sha256
from edgesr.models.registry import model_name
from edgesr.spec import DEFAULT_OPSET, META_ARCH, META_PRECISION, META_VERSION
from edgesr.weights import shipped_weights

__all__ = ["cache_key", "cached_onnx_for"]

logger = logging.getLogger(__name__)


def _weights_tag(name: str, weights: str | Path | None) -> str:
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"weights file {str(path)!r} does not exist; check the path")
        return f"file-{file_sha256(path)}"
    shipped = shipped_weights(name)
    if shipped is not None:
        return f"shipped-{file_sha256(shipped)}"
    return "untrained"


def cache_key(name: str, *, weights: str | Path | None = None, fp16: bool = False,
              opset: int = DEFAULT_OPSET) -> str:
    """The cache key of an export, as one readable line."""
    return _key(model_name(name), weights=weights, precision=_precision(fp16),
                opset=opset)


def _precision(fp16: bool) -> str:
    return "fp16" if fp16 else "fp32"


def _key(name: str, *, weights: str | Path | None, precision: str, opset: int) -> str:
    """:func:`cache_key` of a resolved model name."""
    return (f"model={name} weights={_weights_tag(name, weights)} "
            f"edgesr={edgesr.__version__} opset={opset} precision={precision} form=deployment")


def _matches(path: Path, *, name: str, precision: str) -> bool:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have several types
        reason = printable(" ".join(str(exc).split())[:160])
        logger.warning("cached %s is unreadable (%s); exporting again", path.name, reason)
        return False
    meta = {p.key: p.value for p in model.metadata_props}
    expected = {META_ARCH: name, META_PRECISION: precision, META_VERSION: edgesr.__version__}
    wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
    if wrong:
        logger.warning("cached %s has metadata %s, expected %s; exporting again", path.name,
                       wrong, expected)
        return False
    return True


def cached_onnx_for(
    name: str,
    *,
    weights: str | Path | None = None,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    cache_dir: str | Path | None = None,
    allow_untrained: bool = False,
) -> Path:
    """The cached ONNX export of model ``name`` (e.g. ``osffnet_x4``), exporting it first
    when the cache has no file for this key (module docstring). Exports are checked
    (torch vs ONNX Runtime) before they enter the cache."""
    name = model_name(name)
    precision = _precision(fp16)
    if weights is None:
        refuse_untrained(name, allow_untrained=allow_untrained)  # before any log line: one line on stderr
    key = _key(name, weights=weights, precision=precision, opset=opset)
    what = "ONNX export cache"
    folder = (trust.cache_folder(Path(cache_dir).expanduser(), what=what) if cache_dir is not None
              else trust.default_cache_folder("onnx", what=what))
    short = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = folder / f"{name}_{precision}_opset{opset}_{short}.onnx"
    if trust.verified_entry(path, what="export") and _matches(path, name=name, precision=precision):
        logger.debug("reusing cached %s (%s)", path, key)
        return path
    trust.digest_path(path).unlink(missing_ok=True)  # the old digest must never vouch for new bytes
    logger.debug("no cached export for %s; exporting into %s", key, folder)
    export_model(name, weights=weights, opset=opset, fp16=fp16, output=path, check=True,
                 allow_untrained=allow_untrained)
    path.chmod(0o600)
    trust.record_digest(path)
    logger.info("exported %s into the cache %s (once)", name, printable(folder))
    return path
