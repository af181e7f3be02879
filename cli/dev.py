"""``make run``: the whole product on one machine with no configuration; ``make demo``: play the
member_check flow against it.

Starts (or joins) the embedded Redis, makes sure the development key pair exists before any
process needs it, then runs the web process (gunicorn, as in production, on 127.0.0.1) and an RQ
worker with the scheduler, and stops them all on Ctrl-C. While it runs, ``instance/make-run.json``
says where (URL and public key), so ``make demo`` in another terminal finds it whatever PORT it got.
"""
from __future__ import annotations

import json
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


RUN_FILE = "make-run.json"


def main() -> int:
    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    try:
        cfg = config.load(env)
        port = config.server(env)["port"]
    except config.ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    embedded, public_path = None, None
    if not cfg["REDIS_URL"]:
        embedded, env["REDIS_URL"] = storage.start_embedded(cfg["INSTANCE_DIR"])
    if not (cfg["FLOW_PRIVATE_KEY"] or cfg["FLOW_PRIVATE_KEY_PATH"]):
        private_path, public_path, _ = keys.ensure_dev_pair(cfg["INSTANCE_DIR"])
        env["FLOW_PRIVATE_KEY_PATH"] = str(private_path)
        print(f"public key (upload this to Meta): {public_path}")
    run_file = Path(cfg["INSTANCE_DIR"]) / RUN_FILE
    run_file.parent.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": os.getpid(),
                                    "public_key": str(public_path) if public_path else None}))
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
    run_file.unlink(missing_ok=True)
    if embedded is not None:
        embedded.shutdown()
    print("stopped.")
    return code


def demo() -> int:
    """``make demo``: member_check with a valid ID against the running ``make run`` (PORT, if
    given, wins), through the real encrypted protocol."""
    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    try:
        cfg = config.load(env)
    except config.ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    running = {}
    run_file = Path(cfg["INSTANCE_DIR"]) / RUN_FILE
    if run_file.exists():
        running = json.loads(run_file.read_text())
    url = (f"http://127.0.0.1:{env['PORT']}" if env.get("PORT")
           else running.get("url", "http://127.0.0.1:5000"))
    command = [str(Path(sys.executable).parent / "flask"), "--app", "app", "flows", "simulate",
               "member_check", "--field", "member_id=MEM123", "--url", f"{url}/flows/member_check"]
    if running.get("public_key"):
        command += ["--public-key", running["public_key"]]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(demo() if sys.argv[1:] == ["demo"] else main())
