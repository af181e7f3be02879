"""``make run``: the whole product on one machine with no configuration.

Starts (or joins) the embedded Redis, makes sure the development key pair exists before any
process needs it, then runs the web process (gunicorn, as in production) and an RQ worker with
the scheduler, and stops them all on Ctrl-C.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import config
import storage
from flows import keys

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    cfg = config.load(env)
    port = config.server(env)["port"]
    embedded = None
    if not cfg["REDIS_URL"]:
        embedded, env["REDIS_URL"] = storage.start_embedded(cfg["INSTANCE_DIR"])
    if not (cfg["FLOW_PRIVATE_KEY"] or cfg["FLOW_PRIVATE_KEY_PATH"]):
        private_path, public_path, _ = keys.ensure_dev_pair(cfg["INSTANCE_DIR"])
        env["FLOW_PRIVATE_KEY_PATH"] = str(private_path)
        print(f"public key (upload this to Meta): {public_path}")
    bin_dir = Path(sys.executable).parent
    procs = [
        subprocess.Popen([str(bin_dir / "gunicorn"), "--config", "gunicorn.conf.py"], cwd=ROOT, env=env),
        subprocess.Popen([str(bin_dir / "flask"), "--app", "app", "worker"], cwd=ROOT, env=env),
    ]
    print(f"\nFlowgate is running at http://127.0.0.1:{port}  (endpoint: /flows/<flow_name>)")
    print(f"Dashboard: http://127.0.0.1:{port}/dashboard   "
          f"Playground: http://127.0.0.1:{port}/playground/member_check")
    print("Try the demo flow in another terminal:  make demo")
    print("Ctrl-C stops everything.\n", flush=True)

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            print(f"a process exited with {dead[0].returncode}; stopping", file=sys.stderr)
            code = dead[0].returncode or 1
            break
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    if embedded is not None:
        embedded.shutdown()
    print("stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
