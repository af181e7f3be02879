"""Real worker processes for tests: ``flask --app app worker``, as the Procfile runs it."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile

from conftest import ROOT, project_env, venv_bin, wait_for


def env_from_config(cfg: dict) -> dict:
    """The environment a child process needs to build the same app as ``create_app(cfg)``."""
    env = {}
    for key, value in cfg.items():
        if value is None or key == "INSTANCE_DIR":
            continue
        if key == "FLOW_PRIVATE_KEY" or key == "FLOW_PRIVATE_KEY_PREVIOUS":
            value = value.replace("\n", "\\n")
        elif isinstance(value, dict):
            value = ",".join(f"{k}={':'.join(v) if isinstance(v, tuple) else v}" for k, v in value.items())
        elif isinstance(value, (tuple, list)):
            value = ",".join(str(v) for v in value)
        env[key] = value
    if "INSTANCE_DIR" in cfg:
        env["FLOWGATE_INSTANCE_DIR"] = cfg["INSTANCE_DIR"]
    return project_env(**env)


class Workers:
    """N forked RQ workers with the scheduler; output kept in files for assertions."""

    def __init__(self, cfg: dict, count: int = 1):
        self.env = env_from_config(cfg)
        self.count = count
        self.procs: list[subprocess.Popen] = []
        self.logs: list[str] = []

    def start_one(self) -> subprocess.Popen:
        log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)
        self.logs.append(log.name)
        proc = subprocess.Popen([venv_bin("flask"), "--app", "app", "worker"], cwd=ROOT, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def __enter__(self):
        for _ in range(self.count):
            self.start_one()
        wait_for(lambda: all("Listening on" in self.output(i) for i in range(self.count)),
                 timeout=30, message="workers to start")
        return self

    def output(self, index: int | None = None) -> str:
        paths = self.logs if index is None else [self.logs[index]]
        return "".join(open(p, errors="replace").read() for p in paths)

    def stop(self, proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 40) -> int | None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)  # the whole group, as Heroku signals every process
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                return proc.wait(timeout=10)
        return proc.returncode

    def __exit__(self, *exc):
        for proc in self.procs:
            self.stop(proc)
        if not os.environ.get("KEEP_WORKER_LOGS"):
            for path in self.logs:
                os.unlink(path)


class Gunicorn:
    """The real gunicorn from gunicorn.conf.py on a free loopback port, until the ``with`` ends
    (SIGTERM then; ``output`` holds everything it printed, access log included)."""

    def __init__(self, **env):
        from conftest import free_port

        self.port = int(env.pop("PORT", None) or free_port())
        self.env = project_env(PORT=self.port, **env)
        self.proc = None
        self.output = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        import requests

        self.proc = subprocess.Popen([venv_bin("gunicorn"), "--config", "gunicorn.conf.py"], cwd=ROOT,
                                     env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

        def healthy():
            try:
                return requests.get(f"{self.url}/health", timeout=1).json()
            except requests.ConnectionError:
                assert self.proc.poll() is None, self.proc.stdout.read()
                return None

        self.health = wait_for(healthy, timeout=20, message="gunicorn /health")
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        self.output, _ = self.proc.communicate(timeout=30)


class LoggedGunicorn(Gunicorn):
    """Gunicorn whose output goes to a file that the test reads while it runs (``text()``)."""

    def __enter__(self):
        import requests

        self.log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([venv_bin("gunicorn"), "--config", "gunicorn.conf.py"], cwd=ROOT,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

        def healthy():
            try:
                return requests.get(f"{self.url}/health", timeout=1).json()
            except requests.ConnectionError:
                assert self.proc.poll() is None, self.text()
                return None

        self.health = wait_for(healthy, timeout=30, message="gunicorn /health")
        return self

    def text(self) -> str:
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.output = self.text()
        if not os.environ.get("KEEP_WORKER_LOGS"):
            os.unlink(self.log.name)
