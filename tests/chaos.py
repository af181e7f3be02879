"""The fault-injection scenario (issue 8), on real processes: gunicorn from gunicorn.conf.py, two
``flask worker`` processes with the scheduler, a redis-server with appendonly persistence, and the
loopback Graph stand-in failing at random (30 % retryable, 5 % permanent, seeded).

N users complete their Flow (send API → INIT → data_exchange → SUCCESS through the encrypted
endpoint, then the ``nfm_reply`` webhook delivered twice, shuffled, some batched in reverse order);
M users open it and leave, with a ladder of two short recovery steps. Meanwhile a fault thread
SIGKILLs and SIGTERMs workers (restarting them) and restarts Redis. At the end ``Outcome`` holds
what the Graph stand-in accepted, what Redis recorded and what RQ left behind; ``violations()``
compares them with the documented guarantees (README "Nothing lost, nothing twice",
workers/effects.py).

Used by tests/test_chaos.py: a short form in ``make test``, ``make chaos-ci`` (CHAOS_SCALE=ci, in CI)
and ``make chaos`` (CHAOS_SCALE=long).
"""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis as redis_lib
import requests
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from conftest import APP_SECRET, ROOT, SECRET_KEY, RedisServer, demo_api_url, free_port, venv_bin, wait_for
from devtools.simulator import FlowClient
from procs import Workers, env_from_config
from standins.graph import ACCESS_TOKEN, GraphStandIn
from standins.meta_webhooks import body_of, completion, messages_change, signed_headers
from chaos_outcome import STEPS, Outcome
from workers.queues import QUEUES, queue
from workers.recovery import job_id as step_job_id

API_TOKEN = "chaos-api-token"
CONFIRMATION = "Thanks, we have your answers."


@dataclass
class Plan:
    completed: int
    abandoned: int
    seed: int
    sigkills: int  # at a random moment
    targeted_kills: int  # SIGKILL while the victim is inside a send (the documented residual risk)
    sigterms: int
    redis_restarts: int
    heartbeat_grace: int  # RQ_HEARTBEAT_GRACE; RQ's own 60 s in the long form
    spare_scheduler: bool  # SIGKILL only a worker that does not hold the scheduler lock
    settle_timeout: float
    traffic_seconds: float  # faults are spread over this window

    @property
    def time_limit(self) -> float:
        """Past this the run hangs (pytest-timeout): start-up, traffic, the fault thread's join,
        the settling wait and the collection, each at its own bound."""
        return 120 + 3 * self.traffic_seconds + self.settle_timeout + 60

    @classmethod
    def short(cls, seed: int | None = None) -> "Plan":
        # settle_timeout: a bound, not a wait: a retry scheduled behind a SIGKILLed scheduler's lock
        # (61 s) plus its backoff can take over a minute on a loaded machine.
        seed = int(os.environ.get("CHAOS_SEED", 8)) if seed is None else seed
        return cls(completed=8, abandoned=6, seed=seed, sigkills=1, targeted_kills=1, sigterms=1,
                   redis_restarts=1, heartbeat_grace=4, spare_scheduler=True, settle_timeout=150,
                   traffic_seconds=8)

    @classmethod
    def ci(cls, seed: int = 28) -> "Plan":
        """CI's pass (`make chaos-ci`): the long form's RQ timings and any worker killed, on fewer users."""
        return cls(completed=30, abandoned=20, seed=seed, sigkills=2, targeted_kills=2, sigterms=2,
                   redis_restarts=2, heartbeat_grace=60, spare_scheduler=False, settle_timeout=400,
                   traffic_seconds=30)

    @classmethod
    def long(cls, seed: int = 88) -> "Plan":
        return cls(completed=int(os.environ.get("CHAOS_COMPLETED", 60)),
                   abandoned=int(os.environ.get("CHAOS_ABANDONED", 40)), seed=seed,
                   sigkills=6, targeted_kills=3, sigterms=4, redis_restarts=2, heartbeat_grace=60,
                   spare_scheduler=False, settle_timeout=400, traffic_seconds=40)


class ChaosWorkers(Workers):
    """Named workers (the scheduler lock names its holder's scheduler, whose parent we find)."""

    def __init__(self, cfg: dict, count: int, logdir: Path):
        super().__init__(cfg, count)
        self.logdir = logdir
        self.started = 0
        self.names: dict[int, str] = {}  # pid → worker name

    def start_one(self) -> subprocess.Popen:
        self.started += 1
        log = open(self.logdir / f"worker-{self.started}.log", "w")
        self.logs.append(log.name)
        proc = subprocess.Popen([venv_bin("flask"), "--app", "app", "worker", "--name",
                                 f"chaos-{self.started}"],
                                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        self.names[proc.pid] = f"chaos-{self.started}"
        return proc

    def __exit__(self, *exc):
        for proc in self.procs:
            self.stop(proc)  # the logs stay in the scenario's directory for the failure report

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]


class Scenario:
    def __init__(self, plan: Plan, workdir: Path, keypair):
        self.plan = plan
        self.workdir = workdir
        self.keypair = keypair
        self.rng = random.Random(plan.seed)
        self.outcome = Outcome(plan)
        self.redis_server = RedisServer(workdir)
        self.database_url = f"sqlite:///{workdir / 'records.sqlite3'}"  # the records store (SQL)
        self.graph = GraphStandIn()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.gunicorn = None
        self.workers = None
        self.redis = None
        self.stop_faults = threading.Event()
        self.fault_error = None

    # --- set-up -----------------------------------------------------------------------------
    def config(self) -> dict:
        p = self.plan
        return {
            "APP_ENV": "production", "REDIS_URL": self.redis_server.url, "FLOW_PRIVATE_KEY": self.keypair[0],
            "DATABASE_URL": self.database_url,
            "WHATSAPP_APP_SECRET": APP_SECRET, "SECRET_KEY": SECRET_KEY, "DEMO_FLOWS": True,
            "LOOKUP_BASE_URL": demo_api_url(),
            "WHATSAPP_API_BASE": self.graph.url, "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": "100200300", "API_TOKEN": API_TOKEN, "FOLLOWUP_CHANNEL": "cloud",
            "FLOW_TEMPLATES": {"member_check": ("member_check_invite", "en_US")},
            "CONFIRMATION_TEXT": CONFIRMATION, "RECOVERY_STEPS": "2s,4s", "RECOVERY_GIVE_UP_AFTER": "1s",
            # Retries outlast a run of retryable answers (0.3^7 ≈ 0.02 %) and a Redis restart.
            "JOB_MAX_RETRIES": 7, "JOB_RETRY_BACKOFF": (1, 1, 2, 2, 3, 3, 4),
            "EFFECT_LEASE_SECONDS": 6,
            "RQ_MAINTENANCE_INTERVAL": 2, "RQ_JOB_MONITORING_INTERVAL": 1, "RQ_WORKER_TTL": 20,
            "RQ_HEARTBEAT_GRACE": p.heartbeat_grace,
            "WEB_CONCURRENCY": 2, "GUNICORN_THREADS": 4, "PORT": self.port,
        }

    def __enter__(self):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-ins' access lines: hundreds
        self.redis_server.start(persist=True)
        self.redis = redis_lib.Redis.from_url(self.redis_server.url, socket_timeout=5)
        self.graph.__enter__()
        cfg = self.config()
        env = env_from_config(cfg)
        self.gunicorn_log = open(self.workdir / "gunicorn.log", "w")
        self.gunicorn = subprocess.Popen([venv_bin("gunicorn"), "--config", "gunicorn.conf.py"], cwd=ROOT,
                                         env=env, stdout=self.gunicorn_log, stderr=subprocess.STDOUT)
        self.workers = ChaosWorkers(cfg, 2, self.workdir).__enter__()

        def healthy():
            try:
                return requests.get(f"{self.base}/health", timeout=1).status_code == 200
            except requests.ConnectionError:
                assert self.gunicorn.poll() is None, (self.workdir / "gunicorn.log").read_text()
                return False

        wait_for(healthy, timeout=30, message="gunicorn /health")
        return self

    def __exit__(self, *exc):
        self.stop_faults.set()
        if self.workers:
            self.workers.__exit__(*exc)
        if self.gunicorn and self.gunicorn.poll() is None:
            self.gunicorn.send_signal(signal.SIGTERM)
            self.gunicorn.wait(timeout=30)
        self.graph.__exit__(*exc)
        self.redis_server.stop()

    # --- HTTP as Meta and the business do it: retry what was not taken ----------------------
    def retrying(self, what: str, call, ok=lambda r: r.status_code < 500, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = call()
                if ok(result):
                    return result
                status = getattr(result, "status_code", getattr(result, "status", "?"))
                self.outcome.http_retries[f"{what} {status}"] += 1
            except requests.ConnectionError:
                self.outcome.http_retries[f"{what} refused"] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} kept failing for {timeout}s")
            time.sleep(0.2)

    def send(self, phone: str) -> str:
        resp = self.retrying("send API", lambda: requests.post(
            f"{self.base}/api/flows/member_check/send", json={"to": phone},
            headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10))
        assert resp.status_code == 202, resp.text
        return resp.json()["flow_token"]

    def client(self) -> FlowClient:
        return FlowClient(f"{self.base}/flows/member_check", self.keypair[1], APP_SECRET)

    def play(self, phone: str, complete: bool):
        token = self.send(phone)
        client = self.client()
        reply = self.retrying("endpoint INIT", lambda: client.init(token), ok=lambda r: r.status < 500)
        assert reply.screen == "MEMBER_LOOKUP", reply
        if not complete:
            self.outcome.abandoned[token] = phone
            return
        reply = self.retrying("endpoint exchange", lambda: client.exchange(
            token, "MEMBER_LOOKUP", {"member_id": "MEM123"}), ok=lambda r: r.status < 500)
        assert reply.screen == "CONFIRM", reply
        reply = self.retrying("endpoint complete", lambda: client.exchange(
            token, "CONFIRM", {"member_id": "MEM123"}), ok=lambda r: r.status < 500)
        assert reply.status == 200 and reply.screen == "SUCCESS", reply
        message = completion(token=token, values={"member_id": "MEM123"}, user=phone, context_id=None)
        self.outcome.completions[message["id"]] = {"token": token, "phone": phone,
                                                   "completed_at": time.time(), "message": message}

    def deliver(self, messages: list[dict]):
        raw = body_of(messages_change(messages=messages))
        resp = self.retrying("webhook", lambda: requests.post(
            f"{self.base}/webhooks/whatsapp", data=raw, headers=signed_headers(raw, APP_SECRET), timeout=10))
        assert resp.status_code == 200, resp.text

    def webhooks(self):
        """Every completion twice, shuffled; a third of them also batched in reverse order."""
        messages = [info["message"] for info in self.outcome.completions.values()]
        deliveries = [[m] for m in messages] * 2
        self.rng.shuffle(deliveries)
        pairs = [messages[i:i + 2][::-1] for i in range(0, len(messages) - 1, 6)]
        deliveries = deliveries[: len(deliveries) - len(pairs)] + pairs  # those still arrive twice overall
        covered = Counter(m["id"] for d in deliveries for m in d)
        deliveries += [[m] for m in messages if covered[m["id"]] < 2]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(self.deliver, deliveries))

    # --- faults ------------------------------------------------------------------------------
    def scheduler_holder(self) -> int | None:
        """pid of the worker whose scheduler holds the lock (the scheduler is its child)."""
        try:
            name = self.redis.get(f"rq:scheduler-lock:{QUEUES[0]}")
            pid = name and self.redis.hget(f"rq:scheduler:{name.decode()}", "pid")
        except redis_lib.RedisError:
            return None
        if not pid:
            return None
        try:
            return int(Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None

    def held_effects(self) -> set[str]:
        """Effects some attempt is inside right now: their lease is held."""
        return {raw.decode()[len("fg:effect:"):-len(":lease")]
                for raw in self.redis.scan_iter("fg:effect:*:lease", count=500)}

    @staticmethod
    def effect_of(job: Job) -> str | None:
        """The idempotency key of the send a job makes (workers/completion.py, recovery.py, sending.py)."""
        args, func = job.args or (), job.func_name
        if func.endswith("process_completion") and args and isinstance(args[0], dict):
            return f"confirm:{args[0].get('id')}"
        if func.endswith("recovery_step") and len(args) == 2:
            return f"rec-{args[0]}-{args[1]}"
        if func.endswith("deliver_flow") and len(args) == 1:
            return f"send-{args[0]}"
        return None

    def sending_now(self) -> dict:
        """worker name → the effect its running job holds right now (lock or lease present)."""
        held, out = self.held_effects(), {}
        for name in QUEUES:
            for job_id in StartedJobRegistry(queue=queue(self.redis, name)).get_job_ids():
                job = Job.fetch_many([job_id], connection=self.redis,
                                     serializer=queue(self.redis, name).serializer)[0]
                key = job and self.effect_of(job)
                if key in held and job.worker_name:
                    out[job.worker_name] = key
        return out

    def kill_worker(self, sig, targeted: bool = False):
        alive = self.workers.alive()
        if self.plan.spare_scheduler and sig == signal.SIGKILL:
            holder = self.scheduler_holder()
            alive = [p for p in alive if p.pid != holder] if holder else []
        if not alive:
            return
        victim = self.rng.choice(alive)
        if targeted:
            def inside_a_send():
                sending = self.sending_now()
                hits = [(p, sending[self.workers.names[p.pid]]) for p in alive
                        if self.workers.names[p.pid] in sending]
                return hits or self.stop_faults.is_set()

            hits = wait_for(inside_a_send, timeout=60, interval=0.005, message="a worker inside a send")
            if hits is True:
                return
            victim, _ = hits[0]
        self.workers.stop(victim, sig)
        self.outcome.faults[f"{signal.Signals(sig).name} worker{' mid-send' if targeted else ''}"] += 1
        if sig == signal.SIGKILL:
            self.note_interrupted()
        time.sleep(self.rng.uniform(0.2, 1.0))
        self.workers.start_one()

    def restart_redis(self):
        self.redis_server.stop()  # SIGTERM: redis-server flushes its append-only file
        time.sleep(self.rng.uniform(0.3, 1.5))
        self.redis_server.start(persist=True)
        self.outcome.faults["Redis restart"] += 1
        # A job inside a send when Redis went away may never record its end: the same gap as a
        # SIGKILL (its lease or lock survives, thanks to the append-only file).
        self.note_interrupted()

    def note_interrupted(self):
        """Effects held right after a fault and still held 1.5 s later: the attempt holding them
        died (a live send holds its lock or lease for < 0.2 s here)."""
        first = self.held_effects()
        time.sleep(1.5)
        self.outcome.orphans |= first & self.held_effects()

    def fault_loop(self):
        p = self.plan
        faults = ([lambda: self.kill_worker(signal.SIGKILL)] * p.sigkills
                  + [lambda: self.kill_worker(signal.SIGKILL, targeted=True)] * p.targeted_kills
                  + [lambda: self.kill_worker(signal.SIGTERM)] * p.sigterms
                  + [self.restart_redis] * p.redis_restarts)
        self.rng.shuffle(faults)
        gap = p.traffic_seconds / (len(faults) + 1)
        try:
            for fault in faults:
                if self.stop_faults.wait(self.rng.uniform(0.3, 1.7) * gap):
                    return
                fault()
                # A worker that died of the Redis restart is restarted like a crashed dyno.
                for proc in list(self.workers.procs):
                    if proc.poll() is not None and len(self.workers.alive()) < 2:
                        self.workers.start_one()
                        self.outcome.faults["worker restarted after it exited on its own"] += 1
        except Exception as exc:  # noqa: BLE001 - reported by run(), the thread must not die silently
            self.fault_error = exc

    # --- the run -----------------------------------------------------------------------------
    def run(self) -> Outcome:
        started = time.monotonic()
        self.graph.chaos(self.plan.seed, latency=(0.02, 0.15))
        faults = threading.Thread(target=self.fault_loop, daemon=True)
        faults.start()
        kinds = [True] * self.plan.completed + [False] * self.plan.abandoned
        self.rng.shuffle(kinds)
        phones = [f"1555{self.plan.seed % 100:02d}{i:05d}" for i in range(len(kinds))]
        # Users arrive over most of the fault window, so faults land in the middle of traffic.
        window = self.plan.traffic_seconds * 0.7
        starts = sorted(self.rng.uniform(0, window) for _ in kinds)

        def user(args):
            at, phone, complete = args
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            self.play(phone, complete)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(user, zip(starts, phones, kinds)))
        self.webhooks()
        faults.join(timeout=self.plan.traffic_seconds * 3)
        self.stop_faults.set()
        if self.fault_error:
            raise self.fault_error
        while len(self.workers.alive()) < 2:
            self.workers.start_one()
        try:
            wait_for(self.settled, timeout=self.plan.settle_timeout, interval=0.5,
                     message="the run to settle")
            self.outcome.settled = True
        except AssertionError:
            self.outcome.settled = False
        self.collect()
        self.outcome.seconds = time.monotonic() - started
        return self.outcome

    def registries(self) -> dict:
        out = Counter()
        for name in QUEUES:
            q = queue(self.redis, name)
            out["queued"] += q.count
            out["intermediate"] += self.redis.llen(q.intermediate_queue_key)
            out["started"] += StartedJobRegistry(queue=q).count
            out["scheduled"] += ScheduledJobRegistry(queue=q).count
        return out

    def settled(self) -> bool:
        try:
            if any(self.registries().values()):
                return False
            done = [k.decode() for k in self.redis.scan_iter("fg:effect:confirm:*", count=1000)]
        except redis_lib.RedisError:
            return False
        # Every completion's confirmation reached a final record (done or unknown).
        return sum(1 for k in done if not k.endswith(":lease")) >= len(self.outcome.completions)

    def collect(self):
        o, r = self.outcome, self.redis
        for entry, status in self.graph.answers:
            o.graph_answers[str(status)] += 1
            body = entry.json() or {}
            key = body.get("biz_opaque_callback_data", "-")
            if key.startswith("rec-"):
                o.attempts.setdefault(key[4:].rsplit("-", 1)[0], []).append((key[-5:], status))
            if status == 200:
                key = body.get("biz_opaque_callback_data", "-")
                o.sends.setdefault(key, []).append(entry.at)
                o.bodies.setdefault(key, []).append(body)
        keys = [f"confirm:{wamid}" for wamid in o.completions]
        keys += [f"rec-{origin}-{step}" for origin in o.abandoned for step in STEPS]
        for key in keys:
            o.effect_state[key] = {k.decode(): v.decode() for k, v in r.hgetall(f"fg:effect:{key}").items()}
        o.fallback = [json.loads(x) for x in r.lrange("fg:fallback:pending", 0, -1)]
        resp = requests.get(f"{self.base}/api/submissions?limit=500",
                            headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
        o.submissions = resp.json()["submissions"] if resp.status_code == 200 else []
        for origin in o.abandoned:
            o.timelines[origin] = [json.loads(x) for x in r.lrange(f"fg:session:{origin}:timeline", 0, -1)]
            for step in STEPS:
                o.step_jobs[f"rec-{origin}-{step}"] = self.job_state(step_job_id("rec", origin, step))
        o.worker_logs = [line for name in self.workers.logs for line in Path(name).read_text().splitlines()]
        o.limbo = dict(self.registries())
        for name in QUEUES:
            registry = FailedJobRegistry(queue=queue(r, name))
            for job_id in registry.get_job_ids():
                job = Job.fetch(job_id, connection=r, serializer=queue(r, name).serializer)
                o.failed_jobs.append(self.explain(job))

    def job_state(self, jid: str) -> dict:
        """For a failure report: what RQ holds of one job (status, retries left, last result)."""
        job = Job.fetch_many([jid], connection=self.redis, serializer=queue(self.redis).serializer)[0]
        if job is None:
            return {"id": jid, "status": "absent"}
        last = job.latest_result()
        return {"id": jid, "status": job.get_status(refresh=False), "retries_left": job.retries_left,
                "result": last and (last.type.name, repr(last.return_value)[:60],
                                    (last.exc_string or "")[-160:])}

    def explain(self, job: Job) -> dict:
        """A failed job is fine only when a fault interrupted its send (its lease held across the
        fault) and its retries ran out before the lease did: nothing was sent again."""
        args = job.args or ()
        key = None
        if job.func_name.endswith("recovery_step") and len(args) == 2:
            key = f"rec-{args[0]}-{args[1]}"
        elif job.func_name.endswith("deliver_flow") and len(args) == 1:
            key = f"send-{args[0]}"
        return {"id": job.id, "func": job.func_name, "explained": bool(key and key in self.outcome.orphans),
                "error": (job.latest_result().exc_string or "")[-200:] if job.latest_result() else ""}
