"""ONNX Runtime session settings chosen by measurement, and the optimised-model cache.

Defaults (docs/performance.md "ONNX Runtime defaults" shows the measurements; ``edgesr-bench
floor`` repeats them):

- **Graph optimisation level ``ORT_ENABLE_ALL``**: it adds the blocked-channel (NCHWc) conv
  kernels on top of ``EXTENDED``; ``edgesr-bench floor MODEL --settings extended`` timed
  ``EXTENDED`` at 1.23x (OSFFNet x4) and 1.24x (LMFN x4) the time of ``ALL`` at 320x180.
- **Intra-op threads = the physical cores this process may use**: SMT siblings share one core's
  vector units, so a second thread per core adds contention, not FLOP/s. Setting the count
  explicitly makes it follow this process's CPU affinity (``taskset``, container CPU sets).
- **Spinning on** (ORT's default, ``session.intra_op.allow_spinning``): a single session
  in a loop (``edgesr-run``'s tiles) keeps its workers hot; ``--settings no-spinning`` took
  1.01x and 1.05x the default's time. It hurts only when several sessions share the cores
  (benchmarks interleaving engines), so
  :class:`~edgesr.runtime.engines.ort.OrtOptions` can turn it off.
- **Optimised-model cache** (CPU provider only): the first session saves ONNX Runtime's
  optimised graph (``optimized_model_filepath``) under ``edgesr.fileio.cache_dir("ort")``,
  keyed by the model's bytes, the ONNX Runtime version, the optimisation level and this CPU;
  later sessions load it with optimisations off, so they do not pay the optimisation again.
  The cache follows edgesr's trust rule (:mod:`edgesr.trust`): the cache root and folder must
  be this user's own and not group/world-writable (else one warning and a private temporary
  folder), an entry must be this user's regular file whose SHA-256 recorded at write time
  matches (else one warning and it is rebuilt), and one that does not load is rebuilt.

I wrote the physical-core count myself (Linux ``/sys`` topology, restricted to this process's
affinity) rather than add psutil for one number: psutil counts the machine's cores and
ignores affinity as well.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from pathlib import Path
from typing import Any

from edgesr import fileio, trust
from edgesr.errors import EdgeSRError

logger = logging.getLogger(__name__)

#: Sub-folder of edgesr's cache root for ONNX Runtime's optimised CPU graphs.
ORT_CACHE_SUBDIR = "ort"
_TOPOLOGY = "/sys/devices/system/cpu/cpu{}/topology/{}"


def usable_cpus() -> list[int]:
    """The CPU ids this process may run on (its affinity; every CPU where that is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def physical_cores() -> int:
    """Physical cores among :func:`usable_cpus` (SMT siblings counted once); the usable CPU
    count where the topology cannot be read."""
    cpus = usable_cpus()
    cores = set()
    for cpu in cpus:
        try:
            package = Path(_TOPOLOGY.format(cpu, "physical_package_id")).read_text().strip()
            core = Path(_TOPOLOGY.format(cpu, "core_id")).read_text().strip()
        except OSError:
            return max(1, len(cpus))
        cores.add((package, core))
    return max(1, len(cores))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def optimized_model_path(model_path: Path, ort: Any, *, cache_root: Path | None = None,
                         unsaturated_int8: bool = False) -> Path:
    """Where the optimised graph of ``model_path`` for this ORT and CPU is (or will be) kept."""
    digest = hashlib.sha256()
    digest.update(fileio.file_sha256(model_path).encode())
    level = "ORT_ENABLE_ALL" + (" x64quantprecision" if unsaturated_int8 else "")  # other int8 kernels
    for part in (ort.__version__, level, _cpu_name(), platform.machine()):
        digest.update(b"\0" + part.encode())
    root = cache_root or fileio.cache_dir(ORT_CACHE_SUBDIR)
    return root / f"{model_path.stem}-{digest.hexdigest()[:24]}.onnx"


def graph_cache_folder(cache_root: Path | None = None) -> Path:
    """The folder for optimised graphs: ``cache_root`` or edgesr's ``ort`` cache, when it passes
    the trust rule; else (one warning) a private temporary folder."""
    what = "ONNX Runtime graph cache"
    if cache_root is not None:
        return trust.cache_folder(Path(cache_root), what=what)
    return trust.default_cache_folder(ORT_CACHE_SUBDIR, what=what)


def session_options(ort: Any, *, threads: int, spinning: bool, log_severity: int,
                    load_optimized: bool = False, unsaturated_int8: bool = False) -> Any:
    """ONNX Runtime ``SessionOptions`` with edgesr's defaults (module notes). ``unsaturated_int8``:
    ONNX Runtime's ``session.x64quantprecision``, whose int8 convolutions take u8 weights and do
    not saturate where the default u8 x s8 kernels do (CPUs without VNNI: runtime.engines.int8_cpu)."""
    options = ort.SessionOptions()
    if unsaturated_int8:
        options.add_session_config_entry("session.x64quantprecision", "1")
    options.log_severity_level = log_severity
    options.intra_op_num_threads = threads or physical_cores()
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_DISABLE_ALL if load_optimized else level.ORT_ENABLE_ALL
    return options


def cached_cpu_session(ort: Any, model_path: Path, *, threads: int, spinning: bool,
                       log_severity: int, cache_root: Path | None = None, unsaturated_int8: bool = False) -> Any:
    """A CPU-provider session of ``model_path``, through the optimised-graph cache."""
    providers = ["CPUExecutionProvider"]
    settings = {"threads": threads, "spinning": spinning, "log_severity": log_severity,
                "unsaturated_int8": unsaturated_int8}
    try:
        folder = graph_cache_folder(cache_root)
    except EdgeSRError as exc:  # no usable folder: only slower, as without the cache
        logger.info("no ONNX Runtime graph cache (%s)", exc)
        return ort.InferenceSession(str(model_path), session_options(ort, **settings), providers=providers)
    cached = optimized_model_path(model_path, ort, cache_root=folder, unsaturated_int8=unsaturated_int8)
    if trust.verified_entry(cached, what="ONNX Runtime graph"):
        try:
            session = ort.InferenceSession(str(cached), session_options(ort, **settings, load_optimized=True),
                                           providers=providers)
            logger.debug("ort: optimised graph from the cache %s", cached)
            return session
        except Exception as exc:  # a damaged cache entry: rebuild it
            logger.warning("cached graph %s does not load (%s); rebuilding it", cached,
                           " ".join(str(exc).split())[:160])
    made: list[Any] = []

    def optimise_and_save(tmp: str) -> None:  # this session is the one returned: no second load
        options = session_options(ort, **settings)
        options.optimized_model_filepath = tmp
        made.append(ort.InferenceSession(str(model_path), options, providers=providers))

    try:
        trust.write_entry(cached, optimise_and_save)
    except Exception as exc:  # noqa: BLE001  (a cache that cannot be written is only slower)
        logger.info("could not cache the optimised graph in %s (%s)", cached, exc)
    if made:
        return made[0]
    # not loadable (ONNX Runtime's own error follows) or not writable: no cache this time
    return ort.InferenceSession(str(model_path), session_options(ort, **settings), providers=providers)
