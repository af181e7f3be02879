"""`make run` and `make demo` as a newcomer runs them (``python -m cli.dev`` and ``python -m cli.dev
demo``, what the Makefile calls): loopback only, and the demo finds the port `make run` got."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import requests

from conftest import ROOT, free_port, project_env, wait_for


def demo(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.dev", "demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_make_run_listens_on_loopback_and_make_demo_uses_its_port(redis_url, tmp_path):
    port = free_port()
    log_path = tmp_path / "run.log"
    instance = tmp_path / "instance"
    with open(log_path, "w") as log:
        run = subprocess.Popen([sys.executable, "-m", "cli.dev"], cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT,
                               env=project_env(PORT=port, REDIS_URL=redis_url,
                                               FLOWGATE_INSTANCE_DIR=instance),
                               start_new_session=True)
    try:
        def up():
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok
            except requests.ConnectionError:
                assert run.poll() is None, log_path.read_text()
                return False

        wait_for(up, timeout=40, message="make run's gunicorn")
        assert f"Listening at: http://127.0.0.1:{port}" in log_path.read_text()
        home = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert home.status_code == 200 and 'href="/dashboard"' in home.text

        # A second terminal: no PORT there, yet the demo reaches the port make run got.
        played = demo(project_env(FLOWGATE_INSTANCE_DIR=instance))
        assert played.returncode == 0, played.stdout + played.stderr
        assert f"member_check at http://127.0.0.1:{port}/flows/member_check" in played.stdout
        assert "== SUCCESS" in played.stdout and played.stderr == ""
    finally:
        run.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            run.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
    assert run.returncode == 0, log_path.read_text()
    assert not (instance / "make-run.json").exists()
    assert "Traceback" not in log_path.read_text()


def test_make_demo_with_nothing_listening_says_so_in_one_line(tmp_path):
    nobody = free_port()
    played = demo(project_env(PORT=nobody, FLOWGATE_INSTANCE_DIR=tmp_path / "instance"))
    assert played.returncode == 1
    lines = [line for line in (played.stdout + played.stderr).splitlines() if line.strip()]
    assert lines[-1].startswith(f"Error: cannot connect to http://127.0.0.1:{nobody}/flows/member_check")
    assert "Traceback" not in played.stderr
    assert [line for line in lines if line.startswith("Error")] == lines[-1:]
