"""docs/your-first-flow.md, run as a newcomer would: every ``$`` line of the guide, in order, in a
fresh copy of the project, with `make run` in the background (``python -m cli.dev``, what the
Makefile calls) and the playground page the guide opens. If a command in the guide stops
working, this test fails."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pytest
import requests

from conftest import ROOT, free_port, project_env, wait_for

GUIDE = ROOT / "docs" / "your-first-flow.md"


def commands() -> list[str]:
    text = GUIDE.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line[2:].strip() for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def copy_project(dest):
    """The project as a checkout has it (tracked and new files, nothing ignored), .venv shared."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    for rel in listed:
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("business_flows/", "test-artifacts/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to(ROOT / ".venv")


@pytest.mark.timeout(400)
def test_every_command_of_the_first_flow_guide_works(tmp_path, redis_url):
    repo = tmp_path / "flowgate"
    repo.mkdir()
    copy_project(repo)
    port = free_port()
    env = project_env(PORT=port, REDIS_URL=redis_url, PYTHONPATH=repo)
    steps = commands()
    assert [c.split()[0] for c in steps][:2] == ["export", ".venv/bin/flask"]
    server, log_path = None, tmp_path / "run.log"
    try:
        for command in steps:
            command = command.split("  #", 1)[0].strip()
            if command.startswith("export "):
                name, _, value = shlex.split(command)[1].partition("=")
                env[name] = value.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
                continue
            if command == "make run":
                with open(log_path, "w") as log:
                    server = subprocess.Popen([sys.executable, "-m", "cli.dev"], cwd=repo, env=env,
                                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

                def up():
                    try:
                        return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok
                    except requests.ConnectionError:
                        assert server.poll() is None, log_path.read_text()
                        return False

                wait_for(up, timeout=60, message="make run")
                continue
            argv = shlex.split(command)
            done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=240)
            assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
            if "flows new" in command:
                assert (repo / "business_flows" / "membership.py").is_file()
            if "flows lint" in command:
                assert "membership: clean" in done.stdout
            if "flows simulate" in command:
                assert "== START" in done.stdout and "== SUCCESS" in done.stdout
            if "pytest" in command:
                assert re.search(r"\b2 passed\b", done.stdout), done.stdout
        page = re.search(r"open (http://127\.0\.0\.1:5000/playground/\w+)", GUIDE.read_text()).group(1)
        shown = requests.get(page.replace(":5000", f":{port}"), timeout=10)
        assert shown.status_code == 200 and "START" in shown.text and "membership" in shown.text
        assert server is not None, "the guide serves the flow with make run"
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
    assert "Traceback" not in log_path.read_text()
