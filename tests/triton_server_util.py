"""Start and stop the real ``tritonserver`` bundled in nvidia-pytriton on a model repository,
bound to 127.0.0.1 only (HTTP, gRPC and metrics), for tests.

Found while building this: the bundled server has the Python backend only (no ONNX Runtime or
TensorRT backend), its Python stub is one binary per Python version that must be copied into
the backend folder (as pytriton itself does), and the stub needs the running interpreter's
libpython directory on LD_LIBRARY_PATH, its site-packages on PYTHONPATH and its folder first
on PATH (without that, an interpreter not activated ran the stub without its packages).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _backends(work: Path) -> Path:
    """A backend folder with the Python backend and this interpreter's stub (pytriton's layout)."""
    from pytriton.utils.distribution import get_root_module_path, get_stub_path

    bundled = get_root_module_path() / "tritonserver" / "backends" / "python"
    python = work / "backends" / "python"
    shutil.copytree(bundled, python, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(get_stub_path(f"{sys.version_info.major}.{sys.version_info.minor}"),
                python / "triton_python_backend_stub")
    return work / "backends"


def _env() -> dict[str, str]:
    from pytriton.utils.distribution import get_libs_path

    env = dict(os.environ)
    libpython = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (str(get_libs_path()), libpython,
                                                   env.get("LD_LIBRARY_PATH", "")) if p)
    env["PYTHONPATH"] = ":".join(p for p in (sysconfig.get_paths()["purelib"],
                                             env.get("PYTHONPATH", "")) if p)
    # the stub's embedded Python finds its prefix (and so site-packages) from the `python3`
    # first on PATH, as pytriton arranges: this interpreter's, activated or not
    env["PATH"] = os.pathsep.join((os.path.dirname(sys.executable), env.get("PATH", "")))
    return env


class TritonServer:
    """``with TritonServer(repo, work) as server:`` -> ``server.http_url`` (host:port)."""

    def __init__(self, repo: Path, work: Path, *, ready_timeout_s: float = 60.0) -> None:
        self.repo, self.work, self.ready_timeout_s = repo, work, ready_timeout_s
        self.http_port = free_port()
        self.http_url = f"{HOST}:{self.http_port}"
        self.log = work / "tritonserver.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        from pytriton.utils.distribution import get_root_module_path

        binary = get_root_module_path() / "tritonserver" / "bin" / "tritonserver"
        return [str(binary), f"--model-repository={self.repo}",
                f"--backend-directory={_backends(self.work)}",
                f"--http-address={HOST}", f"--http-port={self.http_port}",
                f"--grpc-address={HOST}", f"--grpc-port={free_port()}",
                f"--metrics-address={HOST}", f"--metrics-port={free_port()}",
                "--allow-sagemaker=false", "--allow-vertex-ai=false", "--exit-on-error=true",
                "--exit-timeout-secs=10"]

    def __enter__(self) -> TritonServer:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(self.command(), env=_env(), stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.work)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited {self.process.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"tritonserver not ready in {self.ready_timeout_s} s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # Triton's graceful shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _ip(hex_address: str) -> str:
    """/proc/net/tcp's little-endian hex address as text (IPv4, or IPv6 with '::ffff:' kept)."""
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def tcp_local_addresses(pid: int) -> list[str]:
    """The local IP address of every TCP socket process ``pid`` holds (from /proc): its
    listening sockets and its ends of open connections."""
    inodes = _socket_inodes(pid)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                found.append(_ip(fields[1].split(":")[0]))
    return found
