"""What a chaos run (tests/chaos.py) left behind, and the guarantees it is checked against.

Gathered from the Graph stand-in's log (what reached users), Redis (effect records, the fallback
list, timelines, RQ registries) and the submissions API; each completion and each recovery step is
put in exactly one class, and any class outside the documented ones is a violation.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

STEPS = ("step1", "step2")


@dataclass
class Outcome:
    plan: object  # chaos.Plan
    completions: dict = field(default_factory=dict)  # wamid → {token, phone, completed_at}
    abandoned: dict = field(default_factory=dict)  # origin token → phone
    faults: Counter = field(default_factory=Counter)
    http_retries: Counter = field(default_factory=Counter)  # 5xx / refused connections we retried
    orphans: set = field(default_factory=set)  # effects whose attempt a SIGKILL / Redis restart cut
    graph_answers: Counter = field(default_factory=Counter)
    sends: dict = field(default_factory=dict)  # callback key → [accepted send times]
    bodies: dict = field(default_factory=dict)  # callback key → accepted bodies
    attempts: dict = field(default_factory=dict)  # origin → [(step key, status)] of every send
    effect_state: dict = field(default_factory=dict)
    fallback: list = field(default_factory=list)
    submissions: list = field(default_factory=list)
    timelines: dict = field(default_factory=dict)
    limbo: dict = field(default_factory=dict)
    failed_jobs: list = field(default_factory=list)
    step_jobs: dict = field(default_factory=dict)  # rec-<origin>-<step> → RQ's state of its job
    worker_logs: list = field(default_factory=list)
    settled: bool = False
    seconds: float = 0.0

    # --- the guarantees ---------------------------------------------------------------------
    def classify_confirmations(self) -> Counter:
        kinds = Counter()
        cases = {c.get("message_id"): c for c in self.fallback}
        for wamid in self.completions:
            key = f"confirm:{wamid}"
            n = len(self.sends.get(key, []))
            state = self.effect_state.get(key, {})
            result = json.loads(state.get("result", "{}") or "{}")
            case = cases.get(wamid, {})
            if n == 1 and state.get("state") == "done" and "message_id" in result:
                kinds["sent once"] += 1
            elif n == 0 and result.get("failed") == "permanent" and case.get("reason") == "permanent":
                kinds["permanent failure recorded"] += 1
            elif n <= 1 and state.get("state") == "unknown" and case.get("reason") == "unknown_outcome" \
                    and key in self.orphans:
                kinds[f"unknown outcome recorded ({n} sent)"] += 1
            else:
                kinds[f"VIOLATION n={n} state={state.get('state')} fallback={case.get('reason')}"] += 1
        return kinds

    def classify_steps(self) -> Counter:
        return Counter(label for _, _, label in self.step_labels())

    def step_violations(self) -> list:
        return [v for v in self.step_labels() if v[2].startswith("VIOLATION")]

    def step_labels(self) -> list:
        """(origin, step, class) of every recovery step."""
        out = []
        unknown = {(c.get("flow_token"), c.get("detail"))
                   for c in self.fallback if c.get("reason") == "unknown_outcome"}
        for origin in self.abandoned:
            events = self.timelines.get(origin, [])
            for step in STEPS:
                key = f"rec-{origin}-{step}"
                n = len(self.sends.get(key, []))
                refused = any(e["event"] == "send_refused" and key in e.get("detail", "") for e in events)
                state = self.effect_state.get(key, {}).get("state")
                if state == "unknown" and n <= 1 and key in self.orphans and (origin, key) in unknown:
                    # workers/effects.py (SKIP): its worker died mid-send; not resent, handed over.
                    label = f"step outcome unknown, recorded ({n} sent)"
                elif n == 1 and not refused and state == "done":
                    label = "step sent once"
                elif n == 0 and refused:
                    label = "step refused, recorded (131026)"
                elif n == 0 and any(e["event"] == "recovery_skipped" and e.get("detail", "").startswith(
                        f"{step}: superseded") for e in events):
                    # Its retries fell after the next step was sent (workers/recovery.py).
                    label = "step superseded by a later one, recorded"
                elif key in self.orphans and n == 0 and state == "running":
                    # A fault cut the attempt before the send, and the job's retries ran out
                    # while its lease still held (the job is in RQ's failed registry).
                    label = "step interrupted by a fault, retries exhausted (0 sent)"
                else:
                    label = (f"VIOLATION step n={n} refused={refused} state={state} "
                             f"orphan={key in self.orphans} handed_over={(origin, key) in unknown}")
                out.append((origin, step, label))
        return out

    def steps_after_completion(self) -> int:
        late = 0
        for info in self.completions.values():
            for step in STEPS:
                late += sum(1 for at in self.sends.get(f"rec-{info['token']}-{step}", [])
                            if at > info["completed_at"])
        return late

    def submission_counts(self) -> Counter:
        by_message = Counter(doc["message_id"] for doc in self.submissions)
        return Counter(by_message[w] for w in self.completions)

    def violations(self) -> list[str]:
        out = []
        if not self.settled:
            out.append("the run did not settle before the timeout")
        subs = self.submission_counts()
        if subs != Counter({1: len(self.completions)}):
            out.append(f"submissions per completion: {dict(subs)}")
        out += [k for k in self.classify_confirmations() if k.startswith("VIOLATION")]
        out += [k for k in self.classify_steps() if k.startswith("VIOLATION")]
        if self.steps_after_completion():
            out.append(f"{self.steps_after_completion()} recovery steps sent after completion")
        if any(self.limbo.values()):
            out.append(f"jobs left in limbo: {self.limbo}")
        unexplained = [j for j in self.failed_jobs if not j["explained"]]
        if unexplained:
            out.append(f"failed jobs without a recorded outcome: {unexplained}")
        return out

    def details(self) -> str:
        """For a failure report: what each origin with a missing or doubled step went through,
        and everything known of each step classified as a violation."""
        lines = []
        for origin, step, label in self.step_violations():
            key = f"rec-{origin}-{step}"
            short, jid = origin[:9], (self.step_jobs.get(key) or {}).get("id", "-")
            timeline = [(e["event"], e.get("detail", "")[:60]) for e in self.timelines.get(origin, [])]
            lines.append(f"{label}: {key[:14]}…{step} effect={self.effect_state.get(key)} "
                         f"job={self.step_jobs.get(key)} "
                         f"orphan={key in self.orphans}\n  timeline={timeline}\n  "
                         + "\n  ".join(line[:220] for line in self.worker_logs
                                       if short in line or jid in line))
        for origin in self.abandoned:
            counts = [len(self.sends.get(f"rec-{origin}-{step}", [])) for step in STEPS]
            if counts != [1, 1]:
                timeline = [(e["event"], e.get("detail", "")[:50]) for e in self.timelines.get(origin, [])]
                lines.append(f"{origin[:10]} sent={counts} attempts={self.attempts.get(origin)} "
                             f"timeline={timeline}")
        return "\n".join(lines)

    def table(self) -> str:
        rows = [("completed Flows (N)", len(self.completions)), ("abandoned Flows (M)", len(self.abandoned))]
        rows += [(f"fault: {k}", v) for k, v in sorted(self.faults.items())]
        rows += [(f"graph answered {k}", v) for k, v in sorted(self.graph_answers.items())]
        rows += [(f"HTTP retried by the client: {k}", v) for k, v in sorted(self.http_retries.items())]
        rows += [(f"submissions stored {k}x", v) for k, v in sorted(self.submission_counts().items())]
        rows += [(f"confirmation: {k}", v) for k, v in sorted(self.classify_confirmations().items())]
        rows += [(f"recovery: {k}", v) for k, v in sorted(self.classify_steps().items())]
        rows += [("recovery steps after completion", self.steps_after_completion())]
        rows += [(f"left in {k}", v) for k, v in sorted(self.limbo.items())]
        rows += [("failed jobs (all explained)" if all(j["explained"] for j in self.failed_jobs)
                  else "failed jobs (UNEXPLAINED)", len(self.failed_jobs))]
        rows += [("sends interrupted by a fault (held across it)", len(self.orphans)),
                 ("seconds", round(self.seconds, 1))]
        width = max(len(r[0]) for r in rows)
        lines = [f"| {'count'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
        return "\n".join(lines)


