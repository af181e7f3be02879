"""Recovery timers at scale: lateness of due steps with 10,000 pending, and memory per session.

    python -m bench.recovery

10,000 sessions get a recovery ladder scheduled through RQ (the real ``schedule_ladder``); a few
hundred steps fall due during the run, the rest hours later. Two real workers with the scheduler
run them; each step writes its start time on the session timeline, so lateness = start − due.
The bound is the scheduler's own tick (RQ polls about once a second), measured in the same run as
the smallest lateness seen.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import redis as redis_lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from bench.common import RedisServer, percentile  # noqa: E402
from flows import keys  # noqa: E402
from flows.recovery import Ladder  # noqa: E402
from flows.sessions import new_token  # noqa: E402
from workers.recovery import schedule_ladder  # noqa: E402

PENDING = 10_000
DUE_SOON = 300
WINDOW = (5.0, 35.0)


def main() -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    server = RedisServer(workdir).__enter__()
    url = server.url
    client = redis_lib.Redis.from_url(url)
    private, _ = keys.generate()
    cfg = {"APP_ENV": "production", "REDIS_URL": url, "FLOW_PRIVATE_KEY": private,
           "WHATSAPP_APP_SECRET": "bench", "FOLLOWUP_CHANNEL": "console", "INSTANCE_DIR": str(workdir),
           "SECRET_KEY": "bench-secret-key", "DEMO_FLOWS": True, "LOOKUP_BASE_URL": "demo://api/demo-api"}
    app = create_app(cfg)
    sessions, contacts = app.extensions["sessions"], app.extensions["contacts"]
    workers = []
    try:
        base = client.info("memory")["used_memory"]
        # Memory per open session: issued, opened, a screen reached, two carried values.
        tokens = []
        for i in range(PENDING):
            token, phone = new_token(), f"1555{i:07d}"
            sessions.issue(token, "member_check", phone, prefill={"member_id": f"MEM{i:05d}"})
            sessions.visit(token, "member_check", "MEMBER_LOOKUP")
            contacts.add_session(phone, token)
            contacts.inbound(phone)
            tokens.append((token, phone))
        per_session = (client.info("memory")["used_memory"] - base) / PENDING
        # 10,000 pending timers: DUE_SOON fall due in the window, the rest in 6 to 23 hours.
        now = datetime.now(timezone.utc)
        due_at = {}
        mem_before_timers = client.info("memory")["used_memory"]
        with app.app_context():
            for i, (token, phone) in enumerate(tokens):
                soon = i < DUE_SOON
                delay = random.uniform(*WINDOW) if soon else random.uniform(6 * 3600, 23 * 3600)
                ladder = Ladder.from_spec(f"{max(1, int(delay))}s")
                started = now + timedelta(seconds=delay - int(delay))
                schedule_ladder(client, token, "member_check", ladder, None, "UTC", started)
                if soon:
                    due_at[token] = (started + timedelta(seconds=int(max(1, int(delay))))).timestamp()
                    contacts.opt_out(phone, "bench")  # the step records a skip: cheap, timestamped
        per_timer = (client.info("memory")["used_memory"] - mem_before_timers) / PENDING
        env = {**os.environ, "PYTHONPATH": str(ROOT), "APP_ENV": "production", "REDIS_URL": url,
               "FLOW_PRIVATE_KEY": private.replace("\n", "\\n"), "WHATSAPP_APP_SECRET": "bench",
               "FOLLOWUP_CHANNEL": "console", "LOG_LEVEL": "WARNING", "SECRET_KEY": "bench-secret-key",
               "DEMO_FLOWS": "true", "LOOKUP_BASE_URL": "demo://api/demo-api"}
        flask = str(Path(sys.executable).parent / "flask")
        for _ in range(2):
            workers.append(subprocess.Popen([flask, "--app", "app", "worker"], cwd=ROOT, env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + WINDOW[1] + 60
        lateness = {}
        while time.time() < deadline and len(lateness) < len(due_at):
            for token, due in due_at.items():
                if token in lateness:
                    continue
                notes = [e for e in sessions.timeline(token) if e["event"] == "recovery_skipped"]
                if notes:
                    lateness[token] = notes[0]["at"] - due
            time.sleep(0.5)
        values = list(lateness.values())
        result = {
            "pending_timers": PENDING, "due_during_run": len(due_at), "fired": len(values),
            "lateness_p50_s": round(percentile(values, 50), 3) if values else None,
            "lateness_p99_s": round(percentile(values, 99), 3) if values else None,
            "lateness_min_s": round(min(values), 3) if values else None,
            "target_p99_s": 2.0,
            "redis_bytes_per_open_session": round(per_session),
            "redis_bytes_per_pending_timer": round(per_timer),
            "target_bytes_per_session": 2048,
        }
        print(json.dumps({"recovery": result}, indent=2))
        return result
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)
        server.__exit__(None, None, None)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
