"""Running a command inside a private network namespace (``unshare --net``, only ``lo`` up) for
the Ray tests: Ray registers a node under the machine's network address and probes 8.8.8.8 for
it, so the tests keep every packet on loopback by giving Ray nothing else.

Known limit: Ray 2.60's raylet waits a fixed 15 s for its dashboard agent (a fresh Python
process) to write its ports and aborts after that; RAY_agent_register_timeout_ms and giving
the ports to ``ray start`` do not change it. Under `nice -n 10` on this 2-core machine at load
9-12 (two trainings and other suites) the agent missed it; at load 6 a run took 21-26 s."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

IP = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.path.exists(p)), None)


def private_network_works() -> str:
    """'' when ``unshare --net --map-root-user`` with ``ip`` works here, else why not."""
    if shutil.which("unshare") is None or IP is None:
        return "unshare or ip is not installed"
    done = subprocess.run(["unshare", "--net", "--map-root-user", IP, "link", "set", "lo", "up"],
                          capture_output=True, text=True)
    return "" if done.returncode == 0 else f"no private network namespace here: {done.stderr.strip()}"


def private_command(script: str) -> list[str]:
    """argv running ``script`` (sh) in a new network namespace with ``lo`` up. End ``script``
    with ``exec PROGRAM`` so the returned process is PROGRAM itself (signals reach it)."""
    return ["unshare", "--net", "--map-root-user", "sh", "-c", f"{IP} link set lo up && {script}"]


@contextmanager
def ray_environment() -> Iterator[dict[str, str]]:
    """The environment for a Ray run: no usage report, session files in a short temporary
    folder (Ray's socket paths must stay under 107 bytes), removed afterwards."""
    ray_tmp = tempfile.mkdtemp(prefix="r")
    try:
        yield {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": ray_tmp}
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
