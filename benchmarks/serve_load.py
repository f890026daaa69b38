"""``edgesr-bench serve``: a bounded load test of ``edgesr-serve`` (a real tritonserver).

    edgesr-bench serve [--url HOST:PORT --name NAME] [--model M] [--engine E]
                       [--requests 200] [--concurrency 8] [--size 32x32]

``--concurrency`` client threads send one random uint8 RGB image of ``--size`` with
tritonclient over HTTP, each as soon as its previous answer came, until ``--requests`` were
sent; then it stops. It reports the latency of each request (p50, p99, min, max), the
throughput, errors (error responses, failed connections) and wrong answers (a response whose
pixels differ from the expected image: ``expected`` when given, else the first response).
Without --url it starts its own ``edgesr-serve`` on free loopback ports and stops it after.

Hand-written because NVIDIA's perf_analyzer is not pip-installable (the ``perf-analyzer``
package on PyPI is a 2 KB placeholder) and does not compare every response with an oracle.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesr.errors import ConfigError
from edgesr.runtime.serve import INPUT_NAME, OUTPUT_NAME

DEFAULT_REQUESTS = 200
DEFAULT_CONCURRENCY = 8
DEFAULT_SIZE = (32, 32)  # width, height: a video-frame tile's worth of work, many per second
SERVER_NAME = "edgesr"


@dataclass(kw_only=True)
class LoadReport:
    """What one load test saw (latencies of the requests that got an answer, in ms)."""

    requests: int
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # error responses and failed requests
    wrong: int = 0  # answers whose pixels differ from the expected image
    wall_s: float = 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def describe(self) -> str:
        ms = self.latencies_ms
        rate = len(ms) / self.wall_s if self.wall_s > 0 else float("nan")
        spread = f", min {min(ms):.1f}, max {max(ms):.1f}" if ms else ""
        text = (f"{self.requests} requests, {self.concurrency} concurrent, in {self.wall_s:.1f} s "
                f"({rate:.1f} req/s): latency p50 {self.percentile(50):.1f} ms, "
                f"p99 {self.percentile(99):.1f} ms{spread}; errors {len(self.errors)}, wrong {self.wrong}")
        if self.errors:
            text += f"\nfirst error: {self.errors[0][-500:]}"
        return text


def _http() -> Any:
    try:
        import tritonclient.http as http
    except ImportError:
        raise ConfigError("edgesr-bench serve needs tritonclient: pip install -e '.[serve]' "
                          "(tritonclient[http] is not installed here)") from None
    return http


def run_load(url: str, model_name: str, image: np.ndarray, *, expected: np.ndarray | None = None,
             requests: int = DEFAULT_REQUESTS, concurrency: int = DEFAULT_CONCURRENCY,
             timeout_s: float = 120.0) -> LoadReport:
    """Send ``requests`` copies of ``image`` from ``concurrency`` threads (module notes)."""
    http = _http()
    report = LoadReport(requests=requests, concurrency=concurrency)
    lock = threading.Lock()
    state = {"left": requests, "reference": expected}

    def take() -> bool:
        with lock:
            state["left"] -= 1
            return state["left"] >= 0

    def record(latency_ms: float | None, answer: np.ndarray | None, error: str | None) -> None:
        with lock:
            if error is not None:
                report.errors.append(error)
                return
            report.latencies_ms.append(latency_ms)
            if state["reference"] is None:
                state["reference"] = answer
            elif not np.array_equal(answer, state["reference"]):
                report.wrong += 1

    def worker() -> None:
        # one client per thread: a tritonclient.http client is not meant to be shared by threads
        client = http.InferenceServerClient(url, connection_timeout=timeout_s, network_timeout=timeout_s)
        try:
            while take():
                tensor = http.InferInput(INPUT_NAME, list(image.shape), "UINT8")
                tensor.set_data_from_numpy(image)
                start = time.perf_counter()
                try:
                    answer = client.infer(model_name, [tensor]).as_numpy(OUTPUT_NAME)
                except Exception as exc:  # noqa: BLE001 (every failure is counted, none stops the test)
                    record(None, None, f"{type(exc).__name__}: {exc}")
                    continue
                record((time.perf_counter() - start) * 1000.0, answer, None)
        finally:
            client.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    report.wall_s = time.perf_counter() - start
    return report


def add_serve_parser(sub: argparse._SubParsersAction, parse_size) -> None:  # noqa: ANN001
    p = sub.add_parser("serve", help="bounded load test of edgesr-serve: p50/p99 latency, errors",
                       description=__doc__.split("\n\n")[2].replace("\n", " "))
    p.add_argument("--url", default=None, metavar="HOST:PORT",
                   help="a running edgesr-serve's HTTP endpoint (default: start one on loopback)")
    p.add_argument("--name", default=None, help="the served model's name (with --url; its start line shows it)")
    p.add_argument("--model", default=None, help="without --url: the model to serve (default: edgesr-serve's)")
    p.add_argument("--engine", default="ort", help="without --url: the server's engine (default: ort)")
    p.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, metavar="N",
                   help=f"requests in all (default {DEFAULT_REQUESTS})")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                   help=f"requests in flight (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, metavar="WxH",
                   help=f"image size (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]})")
    p.set_defaults(handler=run_serve_command)


def run_serve_command(args: argparse.Namespace) -> str:
    if args.requests < 1 or args.concurrency < 1:
        raise ConfigError("--requests and --concurrency must be >= 1")
    if (args.url is None) != (args.name is None):
        raise ConfigError("--url and --name go together: the server's address and its model's name")
    width, height = args.size
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    _http()  # before a server starts
    if args.url is not None:
        report = run_load(args.url, args.name, image, requests=args.requests, concurrency=args.concurrency)
        return f"edgesr-serve at {args.url} ({args.name}), {width}x{height}: {report.describe()}"
    from edgesr.runtime.serve_process import ServerProcess

    serve_args = ["--engine", args.engine] + (["--model", args.model] if args.model else [])
    with tempfile.TemporaryDirectory(prefix="edgesr-bench-serve-") as logs:
        with ServerProcess(serve_args, Path(logs), name=SERVER_NAME) as server:
            report = run_load(server.http_url, SERVER_NAME, image, requests=args.requests,
                              concurrency=args.concurrency)
    model = args.model or "the default model"
    return f"edgesr-serve ({model}, engine {args.engine}) on loopback, {width}x{height}: {report.describe()}"
