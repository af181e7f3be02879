"""Heroku, played on loopback: app.json's config vars filled as a Heroku user would, and the
Procfile's process types run the way a dyno runs them.

Not honcho: a dyno gets its config vars, ``PORT`` (web only), ``DYNO`` and a plain ``PATH``, and
nothing of the shell that deployed it, which is what ``Dyno`` gives each process; the command
runs through ``bash -c`` like Heroku's ``/bin/sh -c``. ``release`` runs to completion before
``web`` and ``worker`` start, and a non-zero exit stops the deploy.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from support import ROOT, wait_for

ADDON_URLS = {"heroku-redis": "REDIS"}  # plan family → the config var prefix it sets (<AS>_URL)


def app_json() -> dict:
    return json.loads((ROOT / "app.json").read_text())


def procfile() -> dict[str, str]:
    """process type → command, in the file's order."""
    types = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            types[name.strip()] = command.strip()
    return types


def config_vars(manifest: dict, filled: dict, addons: dict) -> dict:
    """What ``heroku create`` from app.json sets: ``value``s, generated secrets, what the user
    typed for each required variable (Heroku asks for each; ``required`` defaults to true), and
    the add-ons' URLs. ``filled`` may hold optional variables too (the user typed them)."""
    env = {}
    for name, entry in manifest["env"].items():
        if "value" in entry:
            env[name] = str(entry["value"])
        elif entry.get("generator") == "secret":
            env[name] = secrets.token_hex(32)  # Heroku's generator: 64 hex characters
        elif entry.get("required", True) and name not in filled:
            raise AssertionError(f"Heroku would ask for {name} and not deploy without it")
    unknown = set(filled) - set(manifest["env"])
    assert not unknown, f"not declared in app.json: {sorted(unknown)}"
    env.update(filled)
    for addon in manifest.get("addons", []):
        plan = addon["plan"] if isinstance(addon, dict) else addon
        prefix = addon.get("as") if isinstance(addon, dict) else None
        env[f"{prefix or ADDON_URLS[plan.split(':')[0]]}_URL"] = addons[plan.split(":")[0]]
    return env


class Dyno:
    """One process type of the Procfile with the app's config vars; output kept in a file."""

    def __init__(self, kind: str, config: dict, port: int | None = None):
        self.kind = kind
        self.command = procfile()[kind]
        self.home = tempfile.mkdtemp(prefix=f"dyno-{kind}-")
        self.env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": self.home,
                    "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "true", "DYNO": f"{kind}.1", **config}
        if port is not None:
            self.env["PORT"] = str(port)
        self.log_path = Path(self.home) / "output.log"
        self.proc: subprocess.Popen | None = None

    def run(self, timeout: float = 120) -> tuple[int, str]:
        """A one-off process (release): its exit code and output."""
        done = subprocess.run(["bash", "-c", self.command], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr

    def start(self) -> "Dyno":
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["bash", "-c", f"exec {self.command}"], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return self

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        assert self.proc.poll() is None, f"{self.kind} exited {self.proc.returncode}:\n{self.output[-3000:]}"
        return True

    def wait_output(self, text: str, timeout: float = 30) -> None:
        wait_for(lambda: self.running() and text in self.output, timeout=timeout,
                 message=f"{self.kind} to print {text!r}")

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM to every process of the dyno, as Heroku does; SIGKILL after the grace period."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                raise AssertionError(f"{self.kind} ignored SIGTERM for {timeout}s")
        return self.proc.returncode
