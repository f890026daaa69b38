"""``edgesr-serve`` in a child process on free loopback ports: started, waited for until its
model is ready, stopped with SIGTERM. For ``edgesr-bench serve`` (a load test that starts
its own server) and the tests.

    with ServerProcess(["--model", "lkdn_x4.onnx", "--engine", "ort"], log_dir) as server:
        client = tritonclient.http.InferenceServerClient(server.http_url)
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from edgesr.errors import EdgeSRError
from edgesr.runtime.serve import LOCALHOST

#: Starting tritonserver, its Python stub and the engine took 10-20 s here (2 shared cores).
READY_TIMEOUT_S = 180.0
#: tritonserver waits up to 10 s for requests in flight (serve.py), then PyTriton cleans up.
STOP_TIMEOUT_S = 60.0


def free_port(host: str = LOCALHOST) -> int:
    """A port nothing listens on now (the OS's pick; another process could take it meanwhile)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``edgesr-serve ARGS`` on 127.0.0.1 with three free ports; stdout and stderr go to
    ``log_dir/serve.out`` and ``serve.err``."""

    def __init__(self, args: Sequence[str], log_dir: Path, *, name: str,
                 ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        self.name = name
        self.http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
        self.command = [sys.executable, "-m", "edgesr.runtime.serve_cli", *args, "--name", name,
                        "--host", LOCALHOST, "--http-port", str(self.http_port),
                        "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port)]
        self.http_url = f"{LOCALHOST}:{self.http_port}"
        self.out, self.err = Path(log_dir) / "serve.out", Path(log_dir) / "serve.err"
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen | None = None

    def _ready(self) -> bool:
        url = f"http://{self.http_url}/v2/models/{self.name}/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> ServerProcess:
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=err)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EdgeSRError(f"edgesr-serve exited {self.process.returncode} before it was "
                                  f"ready: {self.tail()}")
            if self._ready():
                return self
            time.sleep(0.5)
        self.stop()
        raise EdgeSRError(f"edgesr-serve not ready in {self.ready_timeout_s:.0f} s: {self.tail()}")

    def tail(self, chars: int = 2000) -> str:
        return " | ".join(p.read_text(errors="replace")[-chars:] for p in (self.out, self.err) if p.exists())

    def stop(self) -> int | None:
        """SIGTERM, then wait (kill after STOP_TIMEOUT_S); the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
